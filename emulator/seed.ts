/**
 * Demonstration keys for the local stack and for tests that want a realistic mix: what the
 * publisher must publish, and what it must skip.
 */
import type { CmKeyResource, EmulatorKeys } from './types.js';

const SIGN_VERIFY = 1 | 2;
const ENCRYPT_DECRYPT = 4 | 8;
const PUBLISH = { jwks: 'publish' };

/**
 * Creates, all labelled `jwks=publish` unless said otherwise: an RSA-2048 and an EC P-256
 * signing key, an RSA-2048 encryption key, an AES-256 key (symmetric: never published), and an
 * RSA-2048 signing key without the label (not selected).
 */
export function seedDemoKeys(keys: EmulatorKeys): CmKeyResource[] {
  return [
    keys.create({ name: 'demo-rsa-signing', algorithm: 'rsa', size: 2048, usageMask: SIGN_VERIFY, labels: { ...PUBLISH } }),
    keys.create({ name: 'demo-ec-signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN_VERIFY, labels: { ...PUBLISH } }),
    keys.create({ name: 'demo-rsa-encryption', algorithm: 'rsa', size: 2048, usageMask: ENCRYPT_DECRYPT, labels: { ...PUBLISH } }),
    keys.create({ name: 'demo-aes', algorithm: 'aes', size: 256, usageMask: ENCRYPT_DECRYPT, labels: { ...PUBLISH } }),
    keys.create({ name: 'demo-rsa-unlabelled', algorithm: 'rsa', size: 2048, usageMask: SIGN_VERIFY }),
  ];
}
