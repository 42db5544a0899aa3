import pkcs11js from 'pkcs11js';
import { HsmConfigurationError, TokenOperationError } from './errors.js';
import { acquireLibrary, type LoadedLibrary } from './pkcs11-library.js';

export interface TokenOptions {
  /** The PKCS#11 library: CipherTrust's libcadp_pkcs11.so in production, SoftHSM2's in tests. */
  readonly libraryPath: string;
  /** CKA token label (CK_TOKEN_INFO.label), trailing blanks ignored. */
  readonly tokenLabel: string;
  /** The user PIN (CKU_USER). Kept in memory only, to log in again after a lost session. */
  readonly pin: string;
}

/** What an operation is given: the library and a logged-in session, valid for this call only. */
export type TokenOperation<T> = (p11: pkcs11js.PKCS11, session: Buffer) => T;

/** Return values after which a new session (and login) may succeed where the old one failed. */
const SESSION_LOST: ReadonlySet<string> = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT',
  // Object handles may not survive a new session: found again by label after the reopen.
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
  // An operation left active (by a library bug or a crash mid-call) blocks the session for good.
  'CKR_OPERATION_ACTIVE',
]);

/**
 * One read-only, logged-in session on one token. Calls are synchronous: each init+operation pair
 * runs without interleaving on the JavaScript thread (PKCS#11 allows one active operation per
 * session) and takes about a millisecond. A session lost under us (HSM restart, network HSM
 * failover) is reopened once per call.
 */
export class TokenSession {
  /** A #private field: never serialized or inspected, so a logged signer cannot show it. */
  readonly #pin: string;
  private session: Buffer | undefined;
  private closed = false;
  /** Increments on every new session, so callers can drop object handles found in an older one. */
  private sessionGeneration = 0;

  private constructor(
    private readonly library: LoadedLibrary,
    private slot: Buffer,
    readonly tokenLabel: string,
    pin: string,
  ) {
    this.#pin = pin;
  }

  static open(options: TokenOptions): TokenSession {
    if (options.pin === '') throw new HsmConfigurationError('the token PIN is empty');
    const library = acquireLibrary(options.libraryPath);
    try {
      const token = new TokenSession(library, findSlot(library, options.tokenLabel), options.tokenLabel, options.pin);
      token.reopen();
      return token;
    } catch (error) {
      library.release();
      throw error;
    }
  }

  get generation(): number {
    return this.sessionGeneration;
  }

  /** Runs `operation` on the session; once more on a new session if the first one was lost. */
  run<T>(operation: TokenOperation<T>): T {
    if (this.closed) throw new TokenOperationError('the token session is closed', undefined);
    try {
      return operation(this.library.p11, this.current());
    } catch (error) {
      if (!SESSION_LOST.has(pkcs11Code(error) ?? '')) throw error;
      this.reopen();
      return operation(this.library.p11, this.current());
    }
  }

  /** Slot ids are not stable (SoftHSM2 renumbers them when the library restarts): found again by label. */
  private openSession(): Buffer {
    const { p11 } = this.library;
    try {
      return p11.C_OpenSession(this.slot, pkcs11js.CKF_SERIAL_SESSION);
    } catch (error) {
      const code = pkcs11Code(error);
      if (code !== 'CKR_SLOT_ID_INVALID' && code !== 'CKR_TOKEN_NOT_PRESENT' && code !== 'CKR_DEVICE_REMOVED') throw error;
      this.slot = findSlot(this.library, this.tokenLabel);
      return p11.C_OpenSession(this.slot, pkcs11js.CKF_SERIAL_SESSION);
    }
  }

  /** What a log line may show of this session. */
  toJSON(): { tokenLabel: string } {
    return { tokenLabel: this.tokenLabel };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    try {
      if (session !== undefined) this.library.p11.C_CloseSession(session);
    } catch {
      // Already gone with the device; nothing left to release on the token.
    } finally {
      this.library.release();
    }
  }

  private current(): Buffer {
    if (this.session === undefined) this.reopen();
    return this.session!;
  }

  private reopen(): void {
    const { p11 } = this.library;
    if (this.session !== undefined) {
      try {
        p11.C_CloseSession(this.session);
      } catch {
        // The old session is already invalid: that is why we are here.
      }
      this.session = undefined;
    }
    let session: Buffer;
    try {
      session = this.openSession();
    } catch (error) {
      throw new TokenOperationError(`cannot open a session on token "${this.tokenLabel}": ${pkcs11Code(error) ?? String(error)}`, pkcs11Code(error));
    }
    try {
      p11.C_Login(session, pkcs11js.CKU_USER, this.#pin);
    } catch (error) {
      const code = pkcs11Code(error);
      // Login is per application and token, not per session: another session of ours did it.
      if (code !== 'CKR_USER_ALREADY_LOGGED_IN') {
        p11.C_CloseSession(session);
        if (code === 'CKR_PIN_INCORRECT' || code === 'CKR_PIN_LOCKED' || code === 'CKR_PIN_EXPIRED') {
          throw new HsmConfigurationError(`login to token "${this.tokenLabel}" refused: ${code}`);
        }
        throw new TokenOperationError(`login to token "${this.tokenLabel}" failed: ${code ?? String(error)}`, code);
      }
    }
    this.session = session;
    this.sessionGeneration += 1;
  }
}

/** The CKR_* name of a PKCS#11 failure, or undefined for anything else. */
export function pkcs11Code(error: unknown): string | undefined {
  return error instanceof pkcs11js.Pkcs11Error ? error.message : undefined;
}

function findSlot(library: LoadedLibrary, tokenLabel: string): Buffer {
  const wanted = normalizeLabel(tokenLabel);
  const labels: string[] = [];
  for (const slot of library.p11.C_GetSlotList(true)) {
    const info = library.p11.C_GetTokenInfo(slot);
    if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) continue;
    const label = normalizeLabel(info.label);
    if (label === wanted) return slot;
    labels.push(label);
  }
  // Token labels are not secret, and the list is what an operator needs to fix the setting.
  throw new HsmConfigurationError(
    `no initialized token labelled "${wanted}" in ${library.path} (tokens present: ${labels.length === 0 ? 'none' : labels.map((label) => `"${label}"`).join(', ')})`,
  );
}

/** Token labels are blank-padded to 32 bytes (and NUL-padded by some libraries). */
function normalizeLabel(label: string): string {
  return label.replace(/[\s\0]+$/, '');
}
