/**
 * JWK member and algorithm lists (RFC 7517, RFC 7518), shared by the publisher (which builds keys
 * from this allowlist) and the serving side (which refuses any stored key outside it).
 */

/** Members that only exist in private or symmetric keys. Their presence anywhere is a leak. */
export const PRIVATE_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The only members a published key may carry, per key type. */
export const PUBLIC_MEMBERS_BY_KTY: Readonly<Record<string, readonly string[]>> = {
  RSA: ['kty', 'kid', 'use', 'alg', 'n', 'e'],
  EC: ['kty', 'kid', 'use', 'alg', 'crv', 'x', 'y'],
  OKP: ['kty', 'kid', 'use', 'alg', 'crv', 'x'],
};

/**
 * Members a published key may carry besides those, when CM holds a certificate for it: the chain
 * (RFC 7517 4.7) and the leaf's SHA-256 thumbprint (4.9). Always both, or neither.
 */
export const CERTIFICATE_MEMBERS: readonly string[] = ['x5c', 'x5t#S256'];

/** Algorithms that fit each key type and use; a key whose alg is elsewhere is refused. */
export const ALGORITHMS: Readonly<Record<string, Readonly<Record<'sig' | 'enc', readonly string[]>>>> = {
  RSA: {
    sig: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
    enc: ['RSA-OAEP', 'RSA-OAEP-256', 'RSA-OAEP-384', 'RSA-OAEP-512'],
  },
  EC: {
    sig: ['ES256', 'ES384', 'ES512'],
    enc: ['ECDH-ES', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES+A256KW'],
  },
  OKP: {
    sig: ['EdDSA', 'Ed25519'],
    enc: ['ECDH-ES', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES+A256KW'],
  },
};

/** Curves we accept per key type. */
export const CURVES_BY_KTY: Readonly<Record<string, readonly string[]>> = {
  EC: ['P-256', 'P-384', 'P-521'],
  OKP: ['Ed25519', 'X25519'],
};

/** For EC signing keys the curve fixes the algorithm (RFC 7518 3.4). */
export const EC_SIGNING_ALG_BY_CRV: Readonly<Record<string, string>> = {
  'P-256': 'ES256',
  'P-384': 'ES384',
  'P-521': 'ES512',
};
