/**
 * JOSE with keys that never leave the HSM, for internal apps (banking core, payment gateway):
 * signs JWTs and decrypts JWEs through PKCS#11, with the kids the JWKS publisher publishes.
 *
 *   const hsm = openHsm(tokenOptionsFromEnv());
 *   const signer = await hsm.signer({ label: 'payments-signing', alg: 'PS256' });
 *   const jwt = await signer.signJwt({ sub: 'payment-123', iat: Math.floor(Date.now() / 1000) });
 *   const inbound = await hsm.decrypter({ label: 'partner-inbound' });
 *   const { plaintext } = await inbound.decrypt(compactJwe);
 *   hsm.close();
 */
import { JweDecrypter, type DecrypterOptions } from './jwe-decrypter.js';
import { JwtSigner, type SignerOptions } from './jwt-signer.js';
import type { PublicKeyJwk } from './public-jwk.js';
import { findTokenKeys } from './token-keys.js';
import { TokenSession, type TokenOptions } from './token-session.js';

export { tokenOptionsFromEnv } from './config.js';
export {
  AmbiguousKeyError,
  HsmConfigurationError,
  HsmError,
  JweDecryptionFailedError,
  JweInvalidError,
  KeyNotFoundError,
  MechanismNotSupportedError,
  TokenOperationError,
  UnsupportedAlgorithmError,
} from './errors.js';
export { KEY_MANAGEMENT_ALGORITHMS, type JweHeader, type KeyManagementAlgorithm } from './compact-jwe.js';
export { CONTENT_ENCRYPTIONS, type ContentEncryption } from './content-decryption.js';
export { JWE_DEVIATIONS, type JweDeviation } from './jwe-deviations.js';
export { SIGNING_ALGORITHMS, type SigningAlgorithm } from './signing-algorithms.js';
export type { DecryptedJwe, DecrypterOptions, JweDecrypter } from './jwe-decrypter.js';
export type { JwtSigner, SignerOptions } from './jwt-signer.js';
export type { PublicKeyJwk } from './public-jwk.js';
export type { TokenOptions } from './token-session.js';

/** What the token holds under a label, to choose a version by kid. */
export interface TokenKeyInfo {
  readonly kid: string;
  readonly publicJwk: PublicKeyJwk;
  readonly canSign: boolean;
  readonly canDecrypt: boolean;
  readonly canDerive: boolean;
}

export interface Hsm {
  /** A signer for one key (by label, and kid when the label holds several versions). */
  signer(options: SignerOptions): Promise<JwtSigner>;
  /** A decrypter for the keys under one label. */
  decrypter(options: DecrypterOptions): Promise<JweDecrypter>;
  /** Every key under `label`, with the kid partners see for it. */
  keys(label: string): Promise<TokenKeyInfo[]>;
  /** Closes the session; the library is finalized when no other Hsm of this process uses it. */
  close(): void;
}

/** Loads the library, finds the token by label and logs in (one read-only session). */
export function openHsm(options: TokenOptions): Hsm {
  const token = TokenSession.open(options);
  return {
    signer: (signerOptions) => JwtSigner.create(token, signerOptions),
    decrypter: (decrypterOptions) => JweDecrypter.create(token, decrypterOptions),
    keys: async (label) =>
      (await findTokenKeys(token, label)).map(({ kid, publicJwk, canSign, canDecrypt, canDerive }) => ({ kid, publicJwk, canSign, canDecrypt, canDerive })),
    close: () => token.close(),
  };
}
