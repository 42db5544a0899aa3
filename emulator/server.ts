/**
 * The HTTPS server: TLS (with optional client certificates for mTLS grants), the request pipeline
 * (latency, request hooks, injected faults, body, bearer token, route), CM error bodies, the
 * request record, an outage (stop listening, listen again), and a close() that does not wait for
 * hung or keep-alive connections.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ClientCertificate } from './auth.js';
import { CmError, injectedFailure, internalError } from './errors.js';
import type { FaultDecision } from './faults.js';
import { parseBody, readBody, sendJson } from './http-io.js';
import { grantTypeOf, matchRoute, type RouteDependencies } from './routes.js';
import type { TlsMaterial } from './tls.js';
import type { RecordedRequest } from './types.js';

const TOKEN_PATH = '/api/v1/auth/tokens';

const MAX_RECORDED_REQUESTS = 10_000;

export class EmulatorServer {
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Cancels latency sleeps of requests still in progress when the server closes. */
  private readonly closing = new AbortController();

  constructor(
    tls: TlsMaterial,
    private readonly deps: RouteDependencies,
    private readonly logger: Logger,
  ) {
    this.server = createServer(
      {
        key: tls.serverKeyPem,
        cert: tls.serverCertPem,
        // Client certificates are asked for but optional: only the client_credential and
        // user_certificate grants need one, and they check `authorized` themselves.
        ca: tls.caPem,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (request, response) => void this.handle(request, response),
    );
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('tlsClientError', (error) => this.logger.debug({ event: 'tls_client_error', reason: error.message }, 'TLS handshake failed'));
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((done, fail) => {
      this.server.once('error', fail);
      this.server.listen(port, host, () => {
        this.server.off('error', fail);
        const address = this.server.address();
        if (typeof address === 'object' && address !== null) done(address.port);
        else fail(new Error('server has no address'));
      });
    });
  }

  /** Stops listening and drops every connection, including hung requests, at once. */
  async close(): Promise<void> {
    this.closing.abort();
    await this.stopListening();
  }

  /** An outage: new connections are refused and open ones dropped; listen() again ends it. */
  async stopListening(): Promise<void> {
    // The callback gets an error when the server was not listening: nothing to wait for then.
    const closed = new Promise<void>((done) => this.server.close(() => done()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    const target = request.url ?? '/';
    const queryStart = target.indexOf('?');
    const path = queryStart < 0 ? target : target.slice(0, queryStart);
    const query = new URLSearchParams(queryStart < 0 ? '' : target.slice(queryStart + 1));
    const match = matchRoute(method, path, this.deps);
    const record: RecordedRequest = { method, path, query: firstValues(query), status: 0, endpoint: match.endpoint };
    let status: number;
    let fault: FaultDecision = { kind: 'none' };
    try {
      const latency = this.deps.faults.latencyMs;
      if (latency > 0 && match.endpoint !== 'faults') await sleep(latency, undefined, { signal: this.closing.signal });
      this.deps.faults.runHooks({ endpoint: match.endpoint, method, path, query: record.query });
      fault = this.deps.faults.take(match.endpoint);
      if (fault.kind === 'hang') {
        // Accepted and never answered: the client's timeout is what is under test.
        this.remember(record);
        request.resume();
        return;
      }
      if (fault.kind === 'oversize') {
        request.resume();
        record.status = 200;
        this.remember(record);
        record.bytesSent = await streamOversized(response, fault.bytes);
        return;
      }
      const body = parseBody(await readBody(request), request.headers['content-type']);
      if (match.endpoint === 'auth') record.grantType = grantTypeOf(body);
      if (fault.kind === 'fail') throw injectedFailure(fault.status);
      // Under /api/ and /emulator/ the token is checked before a 404/405 is given, so an
      // unauthenticated caller learns nothing about which paths exist.
      const protectedPath = (path.startsWith('/api/') || path.startsWith('/emulator/')) && path !== TOKEN_PATH;
      if ('error' in match ? protectedPath : match.authenticated) await this.deps.tokens.verify(request.headers.authorization);
      if ('error' in match) throw match.error;
      const result = await match.handle({ query, body, certificate: clientCertificate(request) });
      status = result.status;
      answer(response, result.status, result.body, {}, fault);
    } catch (error) {
      if (this.closing.signal.aborted) return;
      const failure = error instanceof CmError ? error : internalError();
      if (!(error instanceof CmError)) this.logger.error({ event: 'emulator_error', reason: error instanceof Error ? error.message : String(error) }, 'unexpected error');
      status = failure.status;
      // After a 413 the rest of the body is not read: the connection cannot be reused.
      const headers = failure.status === 413 ? { ...failure.headers, Connection: 'close' } : failure.headers;
      if (!response.headersSent) answer(response, failure.status, failure.body(), headers, fault);
    }
    record.status = status;
    this.remember(record);
    this.logger.debug({ event: 'request', method, path, endpoint: record.endpoint, status }, 'request handled');
  }

  /** Keeps the latest requests only, so a local stack left running does not grow without bound. */
  private remember(record: RecordedRequest): void {
    this.requests.push(record);
    if (this.requests.length > MAX_RECORDED_REQUESTS) this.requests.splice(0, this.requests.length - MAX_RECORDED_REQUESTS);
  }
}

/** A JSON answer, or the corrupted form a malform or truncate fault asks for. */
function answer(response: ServerResponse, status: number, body: unknown, headers: Record<string, string>, fault: FaultDecision): void {
  if (fault.kind !== 'malform' && fault.kind !== 'truncate') {
    sendJson(response, status, body, headers);
    return;
  }
  const payload = Buffer.from(JSON.stringify(body));
  if (fault.kind === 'malform') {
    // The real answer with its first member name unquoted: looks like JSON, is not.
    const broken = Buffer.from(payload.toString('utf8').replace(/^\{"([^"]*)":/, '{$1:'));
    response.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': broken.length });
    response.end(broken);
    return;
  }
  // The full length is announced, half the bytes arrive, then the connection drops (a CM or
  // proxy dying mid-answer).
  response.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': payload.length });
  response.write(payload.subarray(0, Math.floor(payload.length / 2)), () => response.socket?.destroy());
}

/** One listed key's worth of padding, as a CM listing item (no key material). */
const PADDING_ITEM = JSON.stringify({ id: '0'.repeat(64), name: 'oversize-padding', version: 0, algorithm: 'EC', objectType: 'Private Key', state: 'Active', labels: {} });

/**
 * A 200 key listing that does not end: items streamed as fast as the client reads them (never
 * buffered here), until it hangs up or about `limit` body bytes are sent. Returns the bytes
 * written (the last chunk may not have reached the client).
 */
async function streamOversized(response: ServerResponse, limit: number): Promise<number> {
  let open = true;
  const closed = once(response, 'close').then(() => {
    open = false;
  });
  const chunk = Buffer.from(`,${PADDING_ITEM}`.repeat(Math.ceil(65536 / (PADDING_ITEM.length + 1))));
  response.writeHead(200, { 'Content-Type': 'application/json' });
  const head = Buffer.from(`{"skip":0,"limit":10,"total":${Number.MAX_SAFE_INTEGER},"resources":[${PADDING_ITEM}`);
  response.write(head);
  let sent = head.length;
  // Whole items only, so a listing that does reach `limit` ends as valid JSON.
  while (open && sent < limit) {
    sent += chunk.length;
    if (!response.write(chunk)) await Promise.race([once(response, 'drain'), closed]);
  }
  if (open) response.end(']}');
  return sent;
}

function clientCertificate(request: IncomingMessage): ClientCertificate {
  const socket = request.socket as TLSSocket;
  const subject = socket.getPeerCertificate().subject as Record<string, string | string[]> | undefined;
  const commonName = subject?.CN;
  const fingerprint256 = socket.getPeerCertificate().fingerprint256 as string | undefined;
  return { authorized: socket.authorized, commonName: typeof commonName === 'string' ? commonName : undefined, fingerprint256: fingerprint256 || undefined };
}

function firstValues(query: URLSearchParams): Record<string, string> {
  // Through a Map and fromEntries, so names like __proto__ are plain keys.
  const values = new Map<string, string>();
  for (const [name, value] of query) if (!values.has(name)) values.set(name, value);
  return Object.fromEntries(values);
}
