import type { KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { AmbiguousKeyError, KeyNotFoundError } from './errors.js';
import { curveOfParams, ecPublicJwk, jwkOfSpki, kidOf, publicKeyObject, rsaPublicJwk, type PublicKeyJwk } from './public-jwk.js';
import type { TokenSession } from './token-session.js';

/** PKCS#11 3.0's CKA_PUBLIC_KEY_INFO; pkcs11js 2.1 has no constant for it. */
const CKA_PUBLIC_KEY_INFO = 0x129;

/** A private key in the token with its public half, as partners see it. */
export interface TokenKey {
  /** CKA_LABEL: the key name in CipherTrust Manager. */
  readonly label: string;
  /** The RFC 7638 thumbprint: the kid the publisher publishes for this key. */
  readonly kid: string;
  readonly publicJwk: PublicKeyJwk;
  readonly publicKey: KeyObject;
  readonly canSign: boolean;
  readonly canDecrypt: boolean;
  readonly canDerive: boolean;
  /** The private key object; valid in the session generation it was found in. */
  readonly handle: Buffer;
  readonly generation: number;
}

/**
 * Every private key labelled `label`, with its public half read from the token. CipherTrust gives
 * all versions of a key the same CKA_LABEL, so a label may hold several keys: callers pick one by
 * kid. RSA public members are attributes of the private object itself; an EC private object has
 * no public point, so its public object is the one with the same label and CKA_ID (or the
 * token's CKA_PUBLIC_KEY_INFO when it fills that in).
 */
export async function findTokenKeys(token: TokenSession, label: string): Promise<TokenKey[]> {
  const found = token.run((p11, session) => {
    const generation = token.generation;
    return scanLabel(p11, session, label).map((key) => ({ ...key, generation }));
  });
  return Promise.all(
    found.map(async (key) => ({ ...key, label, kid: await kidOf(key.publicJwk), publicKey: publicKeyObject(key.publicJwk) })),
  );
}

/**
 * The handle of `key` in the current session: the one it was found with, or, after the session
 * was reopened, the private key of the same label with the same public members.
 */
export function currentHandle(token: TokenSession, p11: pkcs11js.PKCS11, session: Buffer, key: TokenKey): Buffer {
  if (key.generation === token.generation) return key.handle;
  const found = relocated.get(key);
  if (found !== undefined && found.generation === token.generation) return found.handle;
  const same = scanLabel(p11, session, key.label).find((candidate) => sameJwk(candidate.publicJwk, key.publicJwk));
  if (same === undefined) throw new KeyNotFoundError(`key "${key.label}" with kid ${key.kid} is no longer in the token`);
  relocated.set(key, { generation: token.generation, handle: same.handle });
  return same.handle;
}

/** Handles found again after a new session, so one reopen costs one search, not one per call. */
const relocated = new WeakMap<TokenKey, { generation: number; handle: Buffer }>();

function scanLabel(p11: pkcs11js.PKCS11, session: Buffer, label: string): (PublicMembers & { handle: Buffer })[] {
  return findObjects(p11, session, [
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
  ]).flatMap((handle) => {
    let members: PublicMembers | undefined;
    try {
      members = publicMembersOf(p11, session, label, handle);
    } catch (error) {
      // One version whose public half cannot be told must not hide the others under the label.
      if (error instanceof KeyNotFoundError) return [];
      throw error;
    }
    return members === undefined ? [] : [{ ...members, handle }];
  });
}

function sameJwk(a: PublicKeyJwk, b: PublicKeyJwk): boolean {
  return a.kty === 'RSA' && b.kty === 'RSA' ? a.n === b.n && a.e === b.e : a.kty === 'EC' && b.kty === 'EC' && a.crv === b.crv && a.x === b.x && a.y === b.y;
}

/** The one key of `label` with `kid`, or the only key of `label` when no kid is given. */
export function selectKey(keys: readonly TokenKey[], label: string, kid: string | undefined, fits: (key: TokenKey) => boolean, purpose: string): TokenKey {
  const usable = keys.filter(fits);
  if (kid !== undefined) {
    const match = usable.find((key) => key.kid === kid);
    if (match !== undefined) return match;
    const other = keys.find((key) => key.kid === kid);
    throw new KeyNotFoundError(
      other !== undefined
        ? `key "${label}" with kid ${kid} is not allowed to ${purpose} (check its usage attributes)`
        : `no key "${label}" with kid ${kid} in the token (it has: ${describeKids(keys)})`,
    );
  }
  if (usable.length === 1) return usable[0]!;
  if (usable.length === 0) throw new KeyNotFoundError(`no key labelled "${label}" that can ${purpose} in the token`);
  throw new AmbiguousKeyError(
    `${usable.length} keys labelled "${label}" can ${purpose} (versions of one CipherTrust key): say which by kid (${describeKids(usable)})`,
    usable.map((key) => key.kid),
  );
}

function describeKids(keys: readonly TokenKey[]): string {
  return keys.length === 0 ? 'none' : keys.map((key) => key.kid).join(', ');
}

type PublicMembers = Pick<TokenKey, 'publicJwk' | 'canSign' | 'canDecrypt' | 'canDerive'>;

function publicMembersOf(p11: pkcs11js.PKCS11, session: Buffer, label: string, handle: Buffer): PublicMembers | undefined {
  const [keyType, sign, decrypt, derive, id] = values(p11, session, handle, [
    pkcs11js.CKA_KEY_TYPE,
    pkcs11js.CKA_SIGN,
    pkcs11js.CKA_DECRYPT,
    pkcs11js.CKA_DERIVE,
    pkcs11js.CKA_ID,
  ]);
  const usage = { canSign: isTrue(sign), canDecrypt: isTrue(decrypt), canDerive: isTrue(derive) };
  switch (ulong(keyType)) {
    case pkcs11js.CKK_RSA: {
      const [modulus, exponent] = values(p11, session, handle, [pkcs11js.CKA_MODULUS, pkcs11js.CKA_PUBLIC_EXPONENT]);
      return { ...usage, publicJwk: rsaPublicJwk(modulus!, exponent!) };
    }
    case pkcs11js.CKK_EC: {
      const [params] = values(p11, session, handle, [pkcs11js.CKA_EC_PARAMS]);
      if (curveOfParams(params!) === undefined) return undefined; // a curve JOSE has no name for
      const info = optionalValue(p11, session, handle, CKA_PUBLIC_KEY_INFO);
      if (info !== undefined && info.length > 0) return { ...usage, publicJwk: jwkOfSpki(info) };
      return { ...usage, publicJwk: ecPublicHalf(p11, session, label, id!, params!) };
    }
    default:
      return undefined; // not a key type JOSE uses
  }
}

function ecPublicHalf(p11: pkcs11js.PKCS11, session: Buffer, label: string, id: Buffer, params: Buffer): PublicKeyJwk {
  const candidates = findObjects(p11, session, [
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
    { type: pkcs11js.CKA_ID, value: id },
  ]);
  if (candidates.length !== 1) {
    throw new KeyNotFoundError(
      `EC key "${label}" (CKA_ID ${id.toString('hex') || 'empty'}): ${candidates.length} public objects share its label and CKA_ID, so its public half cannot be told`,
    );
  }
  const [publicParams, point] = values(p11, session, candidates[0]!, [pkcs11js.CKA_EC_PARAMS, pkcs11js.CKA_EC_POINT]);
  if (!publicParams!.equals(params)) throw new KeyNotFoundError(`EC key "${label}": its public object is on another curve`);
  return ecPublicJwk(params, point!);
}

function findObjects(p11: pkcs11js.PKCS11, session: Buffer, template: pkcs11js.Template): Buffer[] {
  p11.C_FindObjectsInit(session, template);
  try {
    const handles: Buffer[] = [];
    for (let batch = p11.C_FindObjects(session, 64); batch.length > 0; batch = p11.C_FindObjects(session, 64)) handles.push(...batch);
    return handles;
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

function values(p11: pkcs11js.PKCS11, session: Buffer, handle: Buffer, types: readonly number[]): Buffer[] {
  return p11.C_GetAttributeValue(
    session,
    handle,
    types.map((type) => ({ type })),
  ).map((attribute) => attribute.value);
}

function optionalValue(p11: pkcs11js.PKCS11, session: Buffer, handle: Buffer, type: number): Buffer | undefined {
  try {
    return values(p11, session, handle, [type])[0];
  } catch {
    return undefined; // CKR_ATTRIBUTE_TYPE_INVALID on libraries before PKCS#11 3.0
  }
}

/** CK_BBOOL is one byte. */
function isTrue(value: Buffer | undefined): boolean {
  return value !== undefined && value.length > 0 && value[0] !== 0;
}

/** CK_ULONG in the platform's byte order and width (little-endian 64-bit on Linux x86_64 and arm64). */
function ulong(value: Buffer | undefined): number {
  if (value === undefined) return -1;
  return value.length >= 8 ? Number(value.readBigUInt64LE()) : value.readUInt32LE();
}
