import { createECDH } from 'node:crypto';
import { KEY_MANAGEMENT_ALGORITHMS, parseCompactJwe, type JweHeader, type KeyManagementAlgorithm } from './compact-jwe.js';
import { epkMembers } from './ephemeral-key.js';
import { JweDecryptionFailedError, KeyNotFoundError, TokenOperationError, UnsupportedAlgorithmError } from './errors.js';
import { decryptJwe } from './jwe-decryption.js';
import type { JweDeviation } from './jwe-deviations.js';
import type { EcCurve } from './public-jwk.js';
import { TokenKeyDecryption } from './token-key-decryption.js';
import { findTokenKeys, type TokenKey } from './token-keys.js';
import type { TokenSession } from './token-session.js';

export interface DecrypterOptions {
  /** CKA_LABEL: the key's name in CipherTrust Manager. Every version under it is used. */
  readonly label: string;
  /** Key management algorithms accepted; default all three. Narrow it to what you publish. */
  readonly algorithms?: readonly KeyManagementAlgorithm[];
  /** Largest compact JWE accepted, in characters; default 1 MiB. */
  readonly maxJweBytes?: number;
  /** Least time between two rescans of the label for an unknown kid; default 10 s. */
  readonly rescanCooldownMs?: number;
  readonly now?: () => number;
}

export interface DecryptedJwe {
  readonly plaintext: Buffer;
  readonly protectedHeader: JweHeader;
  /** The kid of the key that decrypted it. */
  readonly kid: string;
  /**
   * The departures from RFC 7518 accepted to decrypt it (empty for a conforming sender), to log or
   * count with `kid` so the partner can be told: see JWE_DEVIATIONS.
   */
  readonly deviations: readonly JweDeviation[];
}

const NODE_CURVE: Readonly<Record<EcCurve, string>> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };

/**
 * Decrypts compact JWEs sent to the keys under one label: partners encrypt to the `enc` key they
 * found at /jwks, and say which with `kid`. A kid we do not know makes us look at the token again
 * (CipherTrust may have added a version since), at most once per cooldown, since the kid comes
 * from the sender.
 */
export class JweDecrypter {
  private keys: readonly TokenKey[];
  private lastScan: number;
  /** The rescan in flight: concurrent messages for a new kid wait for it instead of failing. */
  private scanning: Promise<readonly TokenKey[]> | undefined;

  private constructor(
    private readonly token: TokenSession,
    private readonly options: Required<Omit<DecrypterOptions, 'now'>> & { now: () => number },
    keys: readonly TokenKey[],
  ) {
    this.keys = keys;
    this.lastScan = options.now();
  }

  static async create(token: TokenSession, options: DecrypterOptions): Promise<JweDecrypter> {
    const resolved = {
      label: options.label,
      algorithms: options.algorithms ?? KEY_MANAGEMENT_ALGORITHMS,
      maxJweBytes: options.maxJweBytes ?? 1024 * 1024,
      rescanCooldownMs: options.rescanCooldownMs ?? 10_000,
      now: options.now ?? Date.now,
    };
    for (const alg of resolved.algorithms) {
      if (!(KEY_MANAGEMENT_ALGORITHMS as readonly string[]).includes(alg)) throw new UnsupportedAlgorithmError(`unsupported key management algorithm ${String(alg)}`);
    }
    const keys = await decryptionKeys(token, options.label);
    if (keys.length === 0) throw new KeyNotFoundError(`no key labelled "${options.label}" that can decrypt (RSA, CKA_DECRYPT) or derive (EC, CKA_DERIVE) in the token`);
    return new JweDecrypter(token, resolved, keys);
  }

  /** The kids this decrypter can decrypt for, as published. */
  get kids(): string[] {
    return this.keys.map((key) => key.kid);
  }

  async decrypt(jwe: string): Promise<DecryptedJwe> {
    const parsed = parseCompactJwe(jwe, this.options.maxJweBytes);
    const { kid } = parsed.header;
    const candidates = kid !== undefined ? [await this.keyFor(kid)] : this.keys.filter((key) => fits(key, parsed.header));
    if (candidates.length === 0) throw new KeyNotFoundError(`no key labelled "${this.options.label}" fits alg ${parsed.header.alg}`);
    // Without a kid each fitting key is tried; every failure looks the same to the sender.
    for (const key of candidates) {
      try {
        const { plaintext, deviations } = decryptJwe(parsed, key.publicJwk, new TokenKeyDecryption(this.token, key), this.options.algorithms);
        return { plaintext, protectedHeader: parsed.header, kid: key.kid, deviations };
      } catch (error) {
        if (!(error instanceof JweDecryptionFailedError) || key === candidates[candidates.length - 1]) throw error;
      }
    }
    throw new JweDecryptionFailedError();
  }

  private async keyFor(kid: string): Promise<TokenKey> {
    const known = this.keys.find((key) => key.kid === kid);
    if (known !== undefined) return known;
    const now = this.options.now();
    if (this.scanning === undefined && now - this.lastScan >= this.options.rescanCooldownMs) {
      this.lastScan = now;
      this.scanning = decryptionKeys(this.token, this.options.label).finally(() => (this.scanning = undefined));
    }
    if (this.scanning !== undefined) {
      this.keys = await this.scanning;
      const found = this.keys.find((key) => key.kid === kid);
      if (found !== undefined) return found;
    }
    // The kid is the sender's: quoted and cut short, so it cannot forge log lines.
    throw new KeyNotFoundError(`no key labelled "${this.options.label}" has kid ${JSON.stringify(kid.slice(0, 64))}`);
  }
}

/** Without a kid: the keys of the type the algorithm needs (and, for ECDH-ES, of the epk's curve). */
function fits(key: TokenKey, header: JweHeader): boolean {
  if (header.alg !== 'ECDH-ES') return key.publicJwk.kty === 'RSA';
  const crv = epkMembers(header.epk)?.members.crv;
  return key.publicJwk.kty === 'EC' && (crv === undefined || key.publicJwk.crv === crv);
}

async function decryptionKeys(token: TokenSession, label: string): Promise<TokenKey[]> {
  const keys = (await findTokenKeys(token, label)).filter((key) => (key.publicJwk.kty === 'RSA' ? key.canDecrypt : key.canDerive));
  for (const key of keys) if (key.publicJwk.kty === 'EC') proveEcPairing(token, key);
  return keys;
}

/**
 * An EC private key is paired with its public object by label and CKA_ID: an agreement with a
 * throwaway key proves the pairing, so a wrong pair fails here and not on a partner's message.
 */
function proveEcPairing(token: TokenSession, key: TokenKey): void {
  if (key.publicJwk.kty !== 'EC') return;
  const curve = NODE_CURVE[key.publicJwk.crv];
  const ephemeral = createECDH(curve);
  ephemeral.generateKeys();
  const expected = ephemeral.computeSecret(Buffer.concat([Buffer.from([4]), Buffer.from(key.publicJwk.x, 'base64url'), Buffer.from(key.publicJwk.y, 'base64url')]));
  const actual = new TokenKeyDecryption(token, key).ecdhSharedSecret(ephemeral.getPublicKey());
  if (!actual.equals(expected)) {
    throw new TokenOperationError(`EC key "${key.label}" (kid ${key.kid}): its private key does not match the public key found for it`, undefined);
  }
}
