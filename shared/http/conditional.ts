import type { IncomingHttpHeaders } from 'node:http';

/**
 * RFC 9110 13.1: If-None-Match wins over If-Modified-Since; If-None-Match compares entity tags
 * weakly and accepts "*"; an invalid date is ignored.
 */
export function isNotModified(headers: IncomingHttpHeaders, etag: string, lastModified: Date): boolean {
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) return matchesAny(ifNoneMatch, etag);
  const ifModifiedSince = headers['if-modified-since'];
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  if (Number.isNaN(since)) return false;
  // HTTP dates have whole seconds: compare at that resolution.
  return Math.floor(lastModified.getTime() / 1000) <= Math.floor(since / 1000);
}

function matchesAny(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const opaque = etag.startsWith('W/') ? etag.slice(2) : etag;
  for (const candidate of header.split(',')) {
    const tag = candidate.trim();
    if ((tag.startsWith('W/') ? tag.slice(2) : tag) === opaque) return true;
  }
  return false;
}
