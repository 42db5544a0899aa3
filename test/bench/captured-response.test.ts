/**
 * The throughput targets' anchor (bench/lib/captured-response.ts): a bare server that must send
 * byte for byte what the function sent, or the ratio compares two different answers. Here a
 * server with a serving function's kind of answer is captured, the anchor is built from the
 * capture, and both raw responses must be the same bytes but for the Date line.
 * No speed is asserted (speed lives in `npm run bench`).
 */
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { captureResponse, createSameResponseServer, parseCapturedResponse, serializeCapturedResponse } from '../../bench/lib/captured-response.js';

const BODY = Buffer.from('{"keys":[{"kty":"EC","kid":"k1","crv":"P-256","x":"é"}]}');

/** Answers as a serving function does: mixed-case names in its own order, a long keep-alive. */
function startOriginal(): Server {
  const server = createServer((_request, response) => {
    response.writeHead(200, {
      'Access-Control-Allow-Origin': '*',
      ETag: '"abc"',
      'Last-Modified': 'Sun, 06 Dec 2026 15:53:58 GMT',
      Vary: 'Accept',
      'Content-Type': 'application/jwk-set+json',
      'Content-Length': String(BODY.length),
    });
    response.end(BODY);
  });
  server.keepAliveTimeout = 65_000;
  return server;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** One keep-alive request as wrk sends it; the whole raw response (headers and body). */
function rawAnswer(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    let raw = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      raw = Buffer.concat([raw, chunk]);
      const end = raw.indexOf('\r\n\r\n');
      if (end !== -1 && raw.length >= end + 4 + BODY.length) {
        socket.destroy();
        resolve(raw.toString('latin1'));
      }
    });
    socket.on('error', reject);
  });
}

describe('bench anchor: the same response as a function', () => {
  it('sends the captured answer byte for byte: status line, header lines in order and case, Connection and Keep-Alive, body', async () => {
    const original = startOriginal();
    const port = await listen(original);
    let anchor: Server | undefined;
    try {
      const captured = parseCapturedResponse(serializeCapturedResponse(await captureResponse(`http://127.0.0.1:${port}/jwks`)));
      expect(captured.status).toBe(200);
      expect(captured.keepAliveTimeoutMs).toBe(65_000);
      expect(captured.body.equals(BODY)).toBe(true);
      expect(captured.headers.map(([name]) => name)).toEqual(['Access-Control-Allow-Origin', 'ETag', 'Last-Modified', 'Vary', 'Content-Type', 'Content-Length']);
      anchor = createSameResponseServer(captured);
      const anchorPort = await listen(anchor);
      const withoutDate = (raw: string): string => raw.replace(/\r\nDate: [^\r]*/, '');
      const expected = await rawAnswer(port);
      expect(expected).toContain('\r\nKeep-Alive: timeout=65\r\n');
      expect(withoutDate(await rawAnswer(anchorPort))).toBe(withoutDate(expected));
    } finally {
      await close(original);
      if (anchor !== undefined) await close(anchor);
    }
  });
});
