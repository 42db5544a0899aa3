import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from './responses.js';

/**
 * Checks `Authorization: Bearer <secret>` against a configured shared secret. Compared as SHA-256
 * digests in constant time, so neither length nor content leaks through timing.
 */
export function sharedSecretCheck(secret: string): (req: IncomingMessage) => boolean {
  const expected = digest(secret);
  return (req) => {
    const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    return match !== null && timingSafeEqual(digest(match[1] as string), expected);
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** The 401 for a request without the right secret, saying which scheme is expected. */
export function answerMissingSecret(res: ServerResponse): void {
  sendError(res, false, 401, 'unauthorized', 'this endpoint needs Authorization: Bearer <shared secret>', {
    'Cache-Control': 'no-store',
    'WWW-Authenticate': 'Bearer',
  });
}
