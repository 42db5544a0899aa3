import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * How the proxy treats one request:
 * - pass: forwarded, S3's answer returned;
 * - no-answer: read, never forwarded, never answered (a store that accepts and hangs);
 * - stall-body: forwarded; the headers and the first byte of the body are returned, then nothing;
 * - forwarded-no-answer: forwarded (S3 acts on it) but the answer never comes back, as when the
 *   connection drops after a PUT committed;
 * - a status: answered with an S3 error document of that status (500 InternalError,
 *   503 SlowDown), never forwarded.
 */
export type ProxyAnswer = 'pass' | 'no-answer' | 'stall-body' | 'forwarded-no-answer' | 500 | 503;

export interface ProxiedRequest {
  readonly method: string;
  /** The object key (path-style, bucket removed); '' for a bucket request such as a listing. */
  readonly key: string;
}

export type ProxyRule = (request: ProxiedRequest) => ProxyAnswer;

/** A proxy in front of a real S3 server (s3rver), for faults a real store shows. */
export interface S3FaultProxy {
  readonly url: string;
  /** Every request seen since start, in order. */
  readonly requests: readonly ProxiedRequest[];
  /** Decides each request from now on; pass() goes back to forwarding everything. */
  setRule(rule: ProxyRule): void;
  pass(): void;
  close(): Promise<void>;
}

const ERROR_CODES: Record<500 | 503, string> = { 500: 'InternalError', 503: 'SlowDown' };

export async function startS3FaultProxy(target: URL): Promise<S3FaultProxy> {
  const passAll: ProxyRule = () => 'pass';
  let rule = passAll;
  const requests: ProxiedRequest[] = [];
  const server = http.createServer((request, response) => {
    const seen = { method: request.method ?? 'GET', key: keyOf(request.url ?? '/') };
    requests.push(seen);
    const answer = rule(seen);
    if (answer === 'no-answer') {
      request.resume();
      return;
    }
    if (answer === 500 || answer === 503) {
      // The body is read first: answering mid-upload makes the client see a reset, not the status.
      request.resume();
      request.once('end', () => {
        const code = ERROR_CODES[answer];
        response.writeHead(answer, { 'Content-Type': 'application/xml' });
        response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`);
      });
      return;
    }
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers },
      (reply) => {
        if (answer === 'forwarded-no-answer') {
          reply.resume();
          return;
        }
        response.writeHead(reply.statusCode ?? 502, reply.headers);
        if (answer === 'stall-body') {
          reply.once('data', (chunk: Buffer) => response.write(chunk.subarray(0, 1)));
          return;
        }
        reply.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setRule(next) {
      rule = next;
    },
    pass() {
      rule = passAll;
    },
    close: () =>
      new Promise((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

function keyOf(target: string): string {
  const path = new URL(target, 'http://proxy').pathname;
  const afterBucket = path.indexOf('/', 1);
  return afterBucket === -1 ? '' : decodeURIComponent(path.slice(afterBucket + 1));
}
