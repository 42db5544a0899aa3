import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { HTTP, type CloudEvent } from 'cloudevents';
import { startEmulator, startEmulatorCluster } from '../../emulator/index.js';
import type { EmulatorClusterOptions, EmulatorOptions, RunningEmulator, RunningEmulatorCluster } from '../../emulator/index.js';

/** An emulator on an ephemeral port with its own temporary TLS directory, removed on stop. */
export interface TestEmulator extends RunningEmulator {
  readonly tlsDir: string;
  stop(): Promise<void>;
}

export async function startTestEmulator(options: Omit<EmulatorOptions, 'tlsDir'> = {}): Promise<TestEmulator> {
  const tlsDir = await mkdtemp(join(tmpdir(), 'cm-emulator-'));
  const emulator = await startEmulator({ port: 0, ...options, tlsDir });
  return {
    ...emulator,
    tlsDir,
    stop: async () => {
      await emulator.close();
      await rm(tlsDir, { recursive: true, force: true });
    },
  };
}

/** An emulator cluster on ephemeral ports with its own temporary TLS directory, removed on stop. */
export interface TestEmulatorCluster extends RunningEmulatorCluster {
  readonly tlsDir: string;
  stop(): Promise<void>;
}

export async function startTestEmulatorCluster(options: Omit<EmulatorClusterOptions, 'tlsDir'>): Promise<TestEmulatorCluster> {
  const tlsDir = await mkdtemp(join(tmpdir(), 'cm-emulator-cluster-'));
  const cluster = await startEmulatorCluster({ port: 0, ...options, tlsDir });
  return {
    ...cluster,
    tlsDir,
    stop: async () => {
      await cluster.close();
      await rm(tlsDir, { recursive: true, force: true });
    },
  };
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON object (the emulator answers JSON objects only); {} for an empty body. */
  readonly json: Record<string, unknown>;
  readonly text: string;
}

export interface CallOptions {
  readonly token?: string;
  /** Sent as JSON, unless it is a string (sent as is). */
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** PEM files of a client certificate for mTLS. */
  readonly clientCert?: { certFile: string; keyFile: string };
  /** Trust this CA instead of the emulator's (undefined = the emulator's). */
  readonly ca?: string | null;
  readonly timeoutMs?: number;
}

/** Where an emulator listens and the CA to trust (a RunningEmulator, or one started by the CLI). */
export type Endpoint = Pick<RunningEmulator, 'url' | 'caPem'>;

/** One HTTPS request to the emulator over node:https, trusting its CA. */
export function call(emulator: Endpoint, method: string, path: string, options: CallOptions = {}): Promise<ApiResponse> {
  const { hostname, port } = new URL(emulator.url);
  const payload = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  if (payload !== undefined && headers['Content-Type'] === undefined) headers['Content-Type'] = 'application/json';
  if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
  return new Promise((done, fail) => {
    const req = request(
      {
        hostname,
        port,
        path,
        method,
        headers,
        agent: false,
        ca: options.ca === null ? undefined : (options.ca ?? emulator.caPem),
        cert: options.clientCert === undefined ? undefined : readFileSync(options.clientCert.certFile),
        key: options.clientCert === undefined ? undefined : readFileSync(options.clientCert.keyFile),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          done({ status: res.statusCode ?? 0, headers: res.headers, text, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) });
        });
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    if (options.timeoutMs !== undefined) req.setTimeout(options.timeoutMs, () => req.destroy(new Error('client timeout')));
    req.end(payload);
  });
}

/** A JWT from the password grant. */
export async function login(emulator: Endpoint, username = 'admin', password = 'admin'): Promise<string> {
  const response = await call(emulator, 'POST', '/api/v1/auth/tokens', { body: { grant_type: 'password', username, password } });
  if (response.status !== 200) throw new Error(`login failed: ${response.status} ${response.text}`);
  return (response.json as { jwt: string }).jwt;
}

/** A node:http server that records the CloudEvents posted to it. */
export interface EventSink {
  readonly url: string;
  readonly events: CloudEvent<unknown>[];
  /** Status answered to deliveries (default 202). */
  status: number;
  waitFor(count: number): Promise<CloudEvent<unknown>[]>;
  close(): Promise<void>;
}

export async function startEventSink(): Promise<EventSink> {
  const events: CloudEvent<unknown>[] = [];
  const sink: { status: number } = { status: 202 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      events.push(HTTP.toEvent({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }) as CloudEvent<unknown>);
      res.writeHead(sink.status).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return Object.assign(sink, {
    url: `http://127.0.0.1:${address.port}/events`,
    events,
    async waitFor(count: number): Promise<CloudEvent<unknown>[]> {
      await eventually(() => events.length >= count);
      return events.slice(0, count);
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  });
}

export async function eventually(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** A clock tests move by hand. */
export class ManualClock {
  constructor(private current: Date = new Date('2030-01-01T00:00:00.000Z')) {}
  readonly now = (): Date => new Date(this.current.getTime());
  advance(seconds: number): void {
    this.current = new Date(this.current.getTime() + seconds * 1000);
  }
  iso(offsetSeconds = 0): string {
    return new Date(this.current.getTime() + offsetSeconds * 1000).toISOString();
  }
}
