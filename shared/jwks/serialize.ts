import { CERTIFICATE_MEMBERS, PUBLIC_MEMBERS_BY_KTY } from './members.js';
import type { PublicJwk } from './validate.js';

/**
 * The published bytes. Members are written in the allowlist's order and nothing outside it is
 * copied, so the same keys always give the same bytes (and ETag) and no private member can pass.
 */
export function serializeKey(key: PublicJwk): Buffer {
  return Buffer.from(JSON.stringify(pickPublicMembers(key)));
}

/** Keys sorted by kid, so the set does not depend on the order CM listed them in. */
export function serializeKeySet(keys: readonly PublicJwk[]): Buffer {
  const sorted = [...keys].sort((a, b) => (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0));
  return Buffer.from(JSON.stringify({ keys: sorted.map(pickPublicMembers) }));
}

function pickPublicMembers(key: PublicJwk): Record<string, unknown> {
  const members = PUBLIC_MEMBERS_BY_KTY[key.kty];
  if (members === undefined) throw new TypeError(`unsupported kty ${String(key.kty)}`);
  const source = key as unknown as Record<string, unknown>;
  const picked: Record<string, unknown> = {};
  for (const member of [...members, ...CERTIFICATE_MEMBERS]) {
    if (source[member] !== undefined) picked[member] = source[member];
  }
  return picked;
}
