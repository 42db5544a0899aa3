/**
 * The one definition of what a key id may look like. It is used for request paths, stored sets and
 * object names, so a kid that passes here can never address anything outside the store.
 *
 * RFC 7638 SHA-256 thumbprints (what our publisher uses) are 43 base64url characters; the charset
 * is base64url only, which excludes '.', '/', '%', NUL and every non-ASCII character by construction.
 */
export const MAX_KID_LENGTH = 128;

const KID_PATTERN = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_KID_LENGTH}}$`);

export function isValidKid(value: unknown): value is string {
  return typeof value === 'string' && KID_PATTERN.test(value);
}
