import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import { nodeCryptoKeyMaterial, type KeyIdentity, type KeyMaterial, type KeyMaterialSource, type KeySpec } from '../../emulator/index.js';
import { acquireLibrary, type LoadedLibrary } from '../../hsm/pkcs11-library.js';
import { ecPublicJwk, publicKeyObject, rsaPublicJwk } from '../../hsm/public-jwk.js';
import type { TokenOptions } from '../../hsm/token-session.js';
import { describeIfInstalled } from './dependencies.js';
import { partnerDependencies } from './partner-clients.js';

/** Debian's softhsm2 package puts the library here; SOFTHSM2_LIB overrides it. */
export const SOFTHSM_LIBRARY = process.env.SOFTHSM2_LIB ?? '/usr/lib/softhsm/libsofthsm2.so';

/**
 * The end-to-end suites: a real token (SoftHSM2) and the partners' Python clients. Skipped with a
 * loud message on a developer's machine that lacks them; a failure in CI.
 */
export function describeWithHsm(name: string, body: () => void): void {
  const partners = partnerDependencies();
  const missing = [...(existsSync(SOFTHSM_LIBRARY) ? [] : [`softhsm2 (${SOFTHSM_LIBRARY})`]), ...(partners.ok ? [] : partners.missing)];
  describeIfInstalled(name, missing, 'apt-get install softhsm2 python3-jwt python3-jwcrypto', body);
}

/** CKA_EC_PARAMS (named curve OIDs) of the curves the token makes keys on. */
const EC_PARAMS: Readonly<Record<string, Buffer>> = {
  prime256v1: Buffer.from('06082a8648ce3d030107', 'hex'),
  secp384r1: Buffer.from('06052b81040022', 'hex'),
  secp521r1: Buffer.from('06052b81040023', 'hex'),
};

/** CM usageMask bits (reference: ciphertrust-rest-api.md). */
const SIGN_OR_VERIFY = 1 | 2;
const ENCRYPTION = 4 | 8 | 16 | 32;
const KEY_AGREEMENT = 2048;

/**
 * A fresh SoftHSM2 token (own label, own PINs) for one test file. It doubles as CipherTrust
 * Manager's HSM: as a KeyMaterialSource for the emulator, it generates each CM key version in the
 * token (CKA_LABEL = the CM key name, as CipherTrust's PKCS#11 library shows it) and gives the
 * emulator only the public half.
 */
export class SoftHsmToken implements KeyMaterialSource {
  readonly options: TokenOptions;
  /** CKA_ID of each CM key version made here, to destroy exactly that version. */
  private readonly ids = new Map<string, Buffer>();

  private constructor(
    private readonly library: LoadedLibrary,
    private session: Buffer | undefined,
    tokenLabel: string,
    pin: string,
  ) {
    this.options = { libraryPath: SOFTHSM_LIBRARY, tokenLabel, pin };
  }

  /** A new token labelled `${prefix}-<random>` in the run's token directory (test/softhsm-global.js). */
  static create(prefix = 'jwks-e2e'): Promise<SoftHsmToken> {
    const conf = process.env.SOFTHSM2_CONF;
    if (conf === undefined || !conf.includes('softhsm-tests-')) {
      throw new Error('SOFTHSM2_CONF is not the test run\'s own (jest globalSetup test/softhsm-global-setup.js sets it): refusing to touch other tokens');
    }
    const tokenLabel = `${prefix}-${randomBytes(4).toString('hex')}`;
    const library = acquireLibrary(SOFTHSM_LIBRARY);
    try {
      const { p11 } = library;
      const slot = p11.C_GetSlotList(true).find((candidate) => (p11.C_GetTokenInfo(candidate).flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0);
      if (slot === undefined) throw new Error('SoftHSM2 offers no free slot');
      const soPin = randomBytes(8).toString('hex');
      const pin = randomBytes(8).toString('hex');
      // The label is blank-padded to 32 bytes; unpadded, SoftHSM2 stores NULs after it.
      p11.C_InitToken(slot, soPin, tokenLabel.padEnd(32, ' '));
      const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      p11.C_Login(session, pkcs11js.CKU_SO, soPin);
      p11.C_InitPIN(session, pin);
      p11.C_Logout(session);
      p11.C_Login(session, pkcs11js.CKU_USER, pin);
      return Promise.resolve(new SoftHsmToken(library, session, tokenLabel, pin));
    } catch (error) {
      library.release();
      throw error;
    }
  }

  /** KeyMaterialSource: CM creates a key or a version in its HSM. */
  generate(spec: KeySpec, identity: KeyIdentity): KeyMaterial {
    if (spec.algorithm === 'AES') return {};
    const params = spec.algorithm === 'EC' ? EC_PARAMS[spec.curveid] : undefined;
    // Curves JOSE has no name for stay with node:crypto: nothing signs with them here.
    if (spec.algorithm === 'EC' && params === undefined) return nodeCryptoKeyMaterial.generate(spec, identity);
    const id = randomBytes(16);
    const handles = this.generateKeyPair(identity.name, id, spec.algorithm === 'RSA' ? { bits: spec.size } : { params: params! }, identity.usageMask);
    this.ids.set(versionKey(identity), id);
    return { publicKey: publicKeyObject(this.publicJwkOf(handles.publicKey, spec.algorithm)) };
  }

  /** KeyMaterialSource: CM destroyed a version; its pair leaves the HSM. */
  destroy(identity: KeyIdentity): void {
    const id = this.ids.get(versionKey(identity));
    if (id === undefined) return;
    const { p11 } = this.library;
    const session = this.adminSession;
    p11.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_LABEL, value: identity.name },
      { type: pkcs11js.CKA_ID, value: id },
    ]);
    const handles = p11.C_FindObjects(session, 8);
    p11.C_FindObjectsFinal(session);
    for (const handle of handles) p11.C_DestroyObject(session, handle);
    this.ids.delete(versionKey(identity));
  }

  /**
   * Ends every session of this application on the token and logs it out, as an HSM restart
   * would. This token's own session is opened again when next needed.
   */
  closeAllSessions(): void {
    this.library.p11.C_CloseAllSessions(this.currentSlot());
    this.session = undefined;
  }

  /** Slot ids change when the library is initialized again: the token is found by its label. */
  private currentSlot(): Buffer {
    const { p11 } = this.library;
    const slot = p11.C_GetSlotList(true).find((candidate) => p11.C_GetTokenInfo(candidate).label.trimEnd() === this.options.tokenLabel);
    if (slot === undefined) throw new Error(`token ${this.options.tokenLabel} is gone`);
    return slot;
  }

  /** The token stays in the run's directory, removed with it at the end of the run. */
  close(): Promise<void> {
    if (this.session !== undefined) this.library.p11.C_CloseSession(this.session);
    this.library.release();
    return Promise.resolve();
  }

  private get adminSession(): Buffer {
    if (this.session === undefined) {
      const session = this.library.p11.C_OpenSession(this.currentSlot(), pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        this.library.p11.C_Login(session, pkcs11js.CKU_USER, this.options.pin);
      } catch (error) {
        if (!(error instanceof pkcs11js.Pkcs11Error) || error.message !== 'CKR_USER_ALREADY_LOGGED_IN') throw error;
      }
      this.session = session;
    }
    return this.session;
  }

  private generateKeyPair(label: string, id: Buffer, kind: { bits: number } | { params: Buffer }, usageMask: number): { publicKey: Buffer; privateKey: Buffer } {
    const sign = (usageMask & SIGN_OR_VERIFY) !== 0;
    const encrypt = (usageMask & (ENCRYPTION | KEY_AGREEMENT)) !== 0;
    const rsa = 'bits' in kind;
    const common = [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
    ];
    // Every usage set explicitly: SoftHSM2 turns on the ones left out.
    const publicTemplate = [
      ...common,
      ...(rsa ? [{ type: pkcs11js.CKA_MODULUS_BITS, value: kind.bits }, { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }] : [{ type: pkcs11js.CKA_EC_PARAMS, value: kind.params }]),
      { type: pkcs11js.CKA_VERIFY, value: sign },
      { type: pkcs11js.CKA_ENCRYPT, value: rsa && encrypt },
      { type: pkcs11js.CKA_WRAP, value: false },
    ];
    const privateTemplate = [
      ...common,
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: sign },
      { type: pkcs11js.CKA_DECRYPT, value: rsa && encrypt },
      { type: pkcs11js.CKA_DERIVE, value: !rsa && encrypt },
      { type: pkcs11js.CKA_UNWRAP, value: false },
    ];
    return this.library.p11.C_GenerateKeyPair(
      this.adminSession,
      { mechanism: rsa ? pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN : pkcs11js.CKM_EC_KEY_PAIR_GEN },
      publicTemplate,
      privateTemplate,
    );
  }

  private publicJwkOf(handle: Buffer, algorithm: 'RSA' | 'EC') {
    const { p11 } = this.library;
    const read = (types: number[]) => p11.C_GetAttributeValue(this.adminSession, handle, types.map((type) => ({ type }))).map((attribute) => attribute.value);
    if (algorithm === 'RSA') {
      const [modulus, exponent] = read([pkcs11js.CKA_MODULUS, pkcs11js.CKA_PUBLIC_EXPONENT]);
      return rsaPublicJwk(modulus!, exponent!);
    }
    const [params, point] = read([pkcs11js.CKA_EC_PARAMS, pkcs11js.CKA_EC_POINT]);
    return ecPublicJwk(params!, point!);
  }
}

function versionKey(identity: KeyIdentity): string {
  return `${identity.name}\u0000${identity.version}`;
}
