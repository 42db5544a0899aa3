/**
 * The seam between CM's key objects and the place their material lives. Real CM generates a key
 * pair in its HSM and keeps only what it needs to describe it; the emulator does the same through
 * a KeyMaterialSource. The default generates with node:crypto and keeps nothing secret;
 * end-to-end tests plug in a PKCS#11 token (SoftHSM2) where the private half stays.
 */
import { generateMaterial, generateMaterialSync, type KeyMaterial, type KeySpec } from './key-material.js';

/** Who a key's material belongs to: CM's name for it and the version being made. */
export interface KeyIdentity {
  readonly name: string;
  readonly version: number;
  readonly usageMask: number;
}

/** Where key material comes from. The default generates it with node:crypto; tests plug in a PKCS#11 token. */
export interface KeyMaterialSource {
  /**
   * Material for a new key (version 0) or a new version. Synchronous: the programmatic API returns
   * resources, not promises. Returns the public half only. Called for every spec, AES included
   * (return {}), so a source can refuse what it cannot hold by throwing: a CmError is answered as
   * is, anything else as CM's 500; either way no key object is created.
   */
  generate(spec: KeySpec, identity: KeyIdentity): KeyMaterial;
  /** CM destroyed this version: its material must be gone from wherever it lives. Optional. */
  destroy?(identity: KeyIdentity): void;
}

/** The default: fresh node:crypto key pairs, private halves dropped at once. */
export const nodeCryptoKeyMaterial: KeyMaterialSource = {
  generate: (spec) => generateMaterialSync(spec),
};

/**
 * Material for a REST call. The default source generates off the event loop, so a 4096-bit RSA key
 * does not stall other requests (the identity is not needed for that); a plugged source is called
 * synchronously, so nothing else runs between choosing the identity and storing the key.
 */
export async function generateForRequest(source: KeyMaterialSource, spec: KeySpec, identity: KeyIdentity): Promise<KeyMaterial> {
  return source === nodeCryptoKeyMaterial ? generateMaterial(spec) : source.generate(spec, identity);
}
