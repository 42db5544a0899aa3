import { TokenOperationError, UnsupportedAlgorithmError } from './errors.js';
import { compactJws, protectedHeader, signingInput } from './compact-jws.js';
import type { PublicKeyJwk } from './public-jwk.js';
import { SIGNING_MECHANISMS, isSigningAlgorithm, signatureLength, type SigningAlgorithm, type SigningMechanism } from './signing-algorithms.js';
import { currentHandle, findTokenKeys, selectKey, type TokenKey } from './token-keys.js';
import { pkcs11Code, type TokenSession } from './token-session.js';

export interface SignerOptions {
  /** CKA_LABEL: the key's name in CipherTrust Manager. */
  readonly label: string;
  readonly alg: SigningAlgorithm;
  /** Which version, when the label holds several (CipherTrust versions share a label). */
  readonly kid?: string;
}

/** RSA keys below this are refused: the publisher does not publish them, so nobody could verify. */
const MIN_RSA_BITS = 2048;

/**
 * Signs JWS/JWTs with one private key of the token. The kid in each header is the key's RFC 7638
 * thumbprint, computed from the token's public attributes: the kid the publisher publishes for it.
 * Every signature is verified with the public key before it is returned, so a token fault (or a
 * wrong key pairing) never produces a token that partners reject, or one that leaks key bits.
 */
export class JwtSigner {
  private constructor(
    private readonly token: TokenSession,
    private readonly key: TokenKey,
    readonly alg: SigningAlgorithm,
    private readonly spec: SigningMechanism,
    private readonly length: number,
  ) {}

  static async create(token: TokenSession, options: SignerOptions): Promise<JwtSigner> {
    if (!isSigningAlgorithm(options.alg)) throw new UnsupportedAlgorithmError(`unsupported signing algorithm ${String(options.alg)}`);
    const spec = SIGNING_MECHANISMS[options.alg];
    const keys = await findTokenKeys(token, options.label);
    const key = selectKey(keys, options.label, options.kid, (candidate) => candidate.canSign && fits(candidate.publicJwk, spec), `sign with ${options.alg}`);
    const length = signatureLength(spec.kty, keyBytes(key.publicJwk));
    if (key.publicJwk.kty === 'RSA' && length * 8 < MIN_RSA_BITS) {
      throw new UnsupportedAlgorithmError(`key "${options.label}" is RSA-${length * 8}; at least ${MIN_RSA_BITS} bits are required`);
    }
    const signer = new JwtSigner(token, key, options.alg, spec, length);
    // A first signature proves the private key and the public half we found belong together.
    signer.signBytes(Buffer.from('hsm-jwks-publisher pairing check'));
    return signer;
  }

  get kid(): string {
    return this.key.kid;
  }

  get label(): string {
    return this.key.label;
  }

  /** The public JWK partners find at /jwks for this key (members as the publisher builds them). */
  publicJwk(): PublicKeyJwk & { kid: string; alg: SigningAlgorithm; use: 'sig' } {
    return { ...this.key.publicJwk, kid: this.key.kid, alg: this.alg, use: 'sig' };
  }

  /** A compact JWS of `payload` with header {alg, kid, ...header}. */
  sign(payload: Buffer | string, header: Readonly<Record<string, unknown>> = {}): Promise<string> {
    // The token call is synchronous; a failure still comes back as a rejected promise.
    return new Promise((resolve) => {
      const input = signingInput(protectedHeader(this.alg, this.key.kid, header), Buffer.from(payload));
      resolve(compactJws(input, this.signBytes(Buffer.from(input, 'ascii'))));
    });
  }

  /** A JWT: `claims` as the payload, `typ: JWT` unless the header says otherwise. */
  signJwt(claims: Readonly<Record<string, unknown>>, header: Readonly<Record<string, unknown>> = {}): Promise<string> {
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return Promise.reject(new TypeError('JWT claims must be a JSON object'));
    return this.sign(JSON.stringify(claims), { typ: 'JWT', ...header });
  }

  private signBytes(input: Buffer): Buffer {
    const data = this.spec.toSign(input);
    let signature: Buffer;
    try {
      signature = this.token.run((p11, session) => {
        p11.C_SignInit(session, this.spec.mechanism, currentHandle(this.token, p11, session, this.key));
        return p11.C_Sign(session, data, Buffer.alloc(this.length));
      });
    } catch (error) {
      const code = pkcs11Code(error);
      if (code === undefined) throw error;
      throw new TokenOperationError(`signing with key "${this.key.label}" (kid ${this.key.kid}, ${this.alg}) failed: ${code}`, code);
    }
    if (signature.length !== this.length || !this.spec.verify(this.key.publicKey, input, signature)) {
      throw new TokenOperationError(`the token's ${this.alg} signature with key "${this.key.label}" (kid ${this.key.kid}) does not verify; not used`, undefined);
    }
    return signature;
  }
}

function fits(jwk: PublicKeyJwk, spec: SigningMechanism): boolean {
  return jwk.kty === spec.kty && (spec.crv === undefined || (jwk.kty === 'EC' && jwk.crv === spec.crv));
}

/** Modulus length (RSA) or coordinate length (EC), in bytes. */
function keyBytes(jwk: PublicKeyJwk): number {
  return Buffer.from(jwk.kty === 'RSA' ? jwk.n : jwk.x, 'base64url').length;
}
