/**
 * Key sets in the CipherTrust Manager emulator for the propagation and publication scenarios, made
 * through its programmatic API (no REST round trip, no event unless a sink is set), and the kid
 * the publisher will give a CM key.
 */
import { createPublicKey } from 'node:crypto';
import type { CmKeyResource, EmulatorKeys } from '../../emulator/index.js';
import { USAGE } from '../../shared/publisher/cm-key-to-jwk.js';
import { thumbprintKid } from '../../shared/jwks/thumbprint.js';

export const PUBLISH_LABELS: Readonly<Record<string, string>> = { jwks: 'publish' };
const SIGN = USAGE.sign | USAGE.verify;
const ENCRYPT = USAGE.encrypt | USAGE.decrypt;

/**
 * Production's shape (bench/lib/fixture.ts: two RSA-2048 signing keys, an EC P-256 signing key, an
 * RSA encryption key), labelled for publication. Returns the EC signing key, the one to rotate.
 */
export function createProductionLikeKeys(keys: EmulatorKeys): CmKeyResource {
  keys.create({ name: 'bench-rsa-sig-current', algorithm: 'rsa', size: 2048, usageMask: SIGN, labels: { ...PUBLISH_LABELS } });
  keys.create({ name: 'bench-rsa-sig-retained', algorithm: 'rsa', size: 2048, usageMask: SIGN, labels: { ...PUBLISH_LABELS } });
  keys.create({ name: 'bench-rsa-enc', algorithm: 'rsa', size: 2048, usageMask: ENCRYPT, labels: { ...PUBLISH_LABELS } });
  return keys.create({ name: 'bench-ec-sig', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: { ...PUBLISH_LABELS } });
}

/**
 * `total` EC P-256 signing keys, every (total / selected)-th labelled for publication, the others
 * labelled for another application: the publisher's listing must filter them out. Each key has
 * its own freshly generated pair.
 */
export function createBulkKeys(keys: EmulatorKeys, total: number, selected: number): void {
  const stride = total / selected;
  let published = 0;
  for (let index = 0; index < total; index++) {
    const publish = published < selected && index >= published * stride;
    if (publish) published++;
    keys.create({
      name: `bench-bulk-${String(index).padStart(5, '0')}`,
      algorithm: 'ec',
      curveid: 'prime256v1',
      usageMask: SIGN,
      labels: publish ? { ...PUBLISH_LABELS } : { app: 'other' },
    });
  }
}

/** The kid the publisher gives this key: the RFC 7638 thumbprint of its public key. */
export async function kidOf(resource: CmKeyResource): Promise<string> {
  if (resource.publickey === undefined) throw new Error(`key ${resource.name} has no public key`);
  const jwk = createPublicKey(resource.publickey).export({ format: 'jwk' });
  if (jwk.kty === undefined) throw new Error(`key ${resource.name}: no kty in its JWK`);
  return thumbprintKid({ ...jwk, kty: jwk.kty });
}
