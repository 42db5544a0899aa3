import pkcs11js from 'pkcs11js';
import { HsmConfigurationError } from './errors.js';

/**
 * A PKCS#11 library is one global state per process: a second C_Initialize fails with
 * CKR_CRYPTOKI_ALREADY_INITIALIZED and one C_Finalize ends it for every user. So each library path
 * is loaded once and shared, and finalized when its last user releases it.
 */
export interface LoadedLibrary {
  readonly path: string;
  readonly p11: pkcs11js.PKCS11;
  /** Finalizes the library when this was its last user. Idempotent. */
  release(): void;
}

interface Entry {
  readonly p11: pkcs11js.PKCS11;
  users: number;
}

const loaded = new Map<string, Entry>();

export function acquireLibrary(path: string): LoadedLibrary {
  let entry = loaded.get(path);
  if (entry === undefined) {
    entry = { p11: initialize(path), users: 0 };
    loaded.set(path, entry);
  }
  entry.users += 1;
  const held = entry;
  let released = false;
  return {
    path,
    p11: held.p11,
    release() {
      if (released) return;
      released = true;
      held.users -= 1;
      if (held.users > 0) return;
      loaded.delete(path);
      try {
        held.p11.C_Finalize();
      } finally {
        held.p11.close();
      }
    },
  };
}

function initialize(path: string): pkcs11js.PKCS11 {
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(path);
  } catch (error) {
    throw new HsmConfigurationError(`cannot load the PKCS#11 library ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    // OS locking: the library may be called from libuv's threads (async calls); without it
    // SoftHSM2 corrupts its heap under concurrent calls (measured, docs/research/pkcs11-softhsm2.md).
    p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (error) {
    p11.close();
    const code = error instanceof pkcs11js.Pkcs11Error ? error.message : String(error);
    const hint =
      code === 'CKR_CRYPTOKI_ALREADY_INITIALIZED'
        ? ': something else in this process initialized it without this module; share one library'
        : code === 'CKR_GENERAL_ERROR'
          ? ' (SoftHSM2 says only this when SOFTHSM2_CONF or its tokendir is missing or unreadable)'
          : '';
    throw new HsmConfigurationError(`C_Initialize of ${path} failed with ${code}${hint}`);
  }
  return p11;
}
