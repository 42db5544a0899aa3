import { createHash } from 'node:crypto';

/**
 * Bytes as served, with a strong entity tag derived from the bytes alone, so every replica that
 * holds the same bytes sends the same ETag whatever its clock or its store's metadata.
 */
export interface Representation {
  readonly bytes: Buffer;
  /** Quoted, as it goes on the wire: "<base64url SHA-256>". */
  readonly etag: string;
  readonly lastModified: Date;
}

export function representationOf(bytes: Buffer, lastModified: Date): Representation {
  const digest = createHash('sha256').update(bytes).digest('base64url');
  return { bytes, etag: `"${digest}"`, lastModified };
}
