import type { IncomingMessage } from 'node:http';

export type BodyResult = { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly reason: 'too_large' | 'aborted' };

/**
 * The request body, at most `maxBytes`. On functions-framework the body parsers have already read
 * the stream and kept the bytes in `rawBody`; on the bare host the stream is read here and cut
 * off as soon as it passes the limit.
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > maxBytes) return { ok: false, reason: 'too_large' };
  const saved = (req as IncomingMessage & { rawBody?: unknown }).rawBody;
  if (Buffer.isBuffer(saved)) return saved.length > maxBytes ? { ok: false, reason: 'too_large' } : { ok: true, body: saved };
  if (req.readableEnded) return { ok: true, body: Buffer.alloc(0) };
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: BodyResult): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        // Stop reading; the answer (413) closes the connection.
        req.pause();
        finish({ ok: false, reason: 'too_large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish({ ok: true, body: Buffer.concat(chunks, size) });
    const onError = (): void => finish({ ok: false, reason: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
