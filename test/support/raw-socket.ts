import { connect } from 'node:net';

/** One HTTP/1.1 response as it came off the wire. */
export interface WireResponse {
  readonly status: number;
  /** Lower-cased names; repeated fields joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Everything the server sent on this connection, interim responses included. */
  readonly raw: Buffer;
}

/**
 * Sends bytes on a fresh TCP connection exactly as given (no client-side validation, encoding or
 * normalisation: node:http refuses control characters and fetch resolves dot segments) and reads
 * the first final response. Resolves undefined when the server closes without answering.
 */
export function exchange(baseUrl: string, request: string | Buffer, options: { head?: boolean; timeoutMs?: number } = {}): Promise<WireResponse | undefined> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((done, fail) => {
    const socket = connect(Number(port), hostname);
    let received = Buffer.alloc(0);
    let settled = false;
    const settle = (result: WireResponse | undefined | Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (result instanceof Error) fail(result);
      else done(result);
    };
    const timer = setTimeout(() => settle(new Error(`no complete answer within ${options.timeoutMs ?? 5000} ms: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`)), options.timeoutMs ?? 5000);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const response = parseResponse(received, options.head === true, false);
      if (response !== undefined) settle(response);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (received.length === 0) return settle(undefined);
      settle(parseResponse(received, options.head === true, true) ?? new Error(`incomplete answer: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`));
    });
    // A reset after a complete answer (the server closing on unread input) is not a failure.
    socket.on('error', (error) => {
      const response = parseResponse(received, options.head === true, true);
      settle(response ?? (received.length === 0 && (error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : error));
    });
    socket.end(typeof request === 'string' ? Buffer.from(request, 'latin1') : request);
  });
}

/** The first final (non-1xx) response in `bytes`, or undefined while it is incomplete. */
function parseResponse(bytes: Buffer, head: boolean, closed: boolean): WireResponse | undefined {
  let offset = 0;
  for (;;) {
    const end = bytes.indexOf('\r\n\r\n', offset);
    if (end === -1) return undefined;
    const lines = bytes.subarray(offset, end).toString('latin1').split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (match === null) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const bodyStart = end + 4;
    if (status < 200) {
      offset = bodyStart;
      continue;
    }
    const raw = bytes;
    if (head || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0), raw };
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (bytes.length - bodyStart < length) return undefined;
      return { status, headers, body: bytes.subarray(bodyStart, bodyStart + length), raw };
    }
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const body = dechunk(bytes.subarray(bodyStart));
      return body === undefined ? undefined : { status, headers, body, raw };
    }
    return closed ? { status, headers, body: bytes.subarray(bodyStart), raw } : undefined;
  }
}

function dechunk(bytes: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset);
    if (lineEnd === -1) return undefined;
    const size = parseInt(bytes.subarray(offset, lineEnd).toString('latin1'), 16);
    if (size === 0) return Buffer.concat(parts);
    if (bytes.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
}
