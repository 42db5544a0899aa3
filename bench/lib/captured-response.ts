/**
 * One answer of a running server, kept so that an anchor can send the same bytes (issue 16): the
 * anchor's headers come from the function itself, asked once before the load, so the anchor cannot
 * drift from what the function sends.
 */
import { Agent, createServer, get, type Server } from 'node:http';

export interface CapturedResponse {
  readonly status: number;
  /** Header lines as sent (name case and order kept), without the ones Node.js writes itself. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
  /** From the Keep-Alive line (Node.js writes it from server.keepAliveTimeout); 0 when absent. */
  readonly keepAliveTimeoutMs: number;
}

/**
 * Written by every node:http server on its own (Date; Connection and Keep-Alive from its keep-alive
 * state): an anchor's server writes them too, so they are not passed to it.
 */
const WRITTEN_BY_NODE = new Set(['date', 'connection', 'keep-alive']);

/** GET `url` once on a keep-alive connection (as a load generator's), and keep what came back. */
export async function captureResponse(url: string): Promise<CapturedResponse> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    return await new Promise<CapturedResponse>((resolve, reject) => {
      get(url, { agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const raw = response.rawHeaders;
          const headers: [string, string][] = [];
          let keepAliveTimeoutMs = 0;
          for (let index = 0; index < raw.length; index += 2) {
            const name = raw[index] as string;
            const value = raw[index + 1] as string;
            if (name.toLowerCase() === 'keep-alive') keepAliveTimeoutMs = Number(/timeout=(\d+)/.exec(value)?.[1] ?? 0) * 1000;
            if (!WRITTEN_BY_NODE.has(name.toLowerCase())) headers.push([name, value]);
          }
          resolve({ status: response.statusCode ?? 0, headers, body: Buffer.concat(chunks), keepAliveTimeoutMs });
        });
      }).on('error', reject);
    });
  } finally {
    agent.destroy();
  }
}

export function serializeCapturedResponse(captured: CapturedResponse): string {
  return JSON.stringify({ ...captured, body: captured.body.toString('base64') });
}

export function parseCapturedResponse(text: string): CapturedResponse {
  const parsed = JSON.parse(text) as Omit<CapturedResponse, 'body'> & { body: string };
  return { ...parsed, body: Buffer.from(parsed.body, 'base64') };
}

/**
 * A bare node:http server answering every request with `captured`, the ordinary way: writeHead
 * with an object, end with a Buffer. Not listening yet.
 */
export function createSameResponseServer(captured: CapturedResponse): Server {
  const headers = Object.fromEntries(captured.headers);
  const server = createServer((_request, response) => response.writeHead(captured.status, headers).end(captured.body));
  server.keepAliveTimeout = captured.keepAliveTimeoutMs;
  return server;
}
