/**
 * Demonstration keys for the local stack and for tests that want a realistic mix: what the
 * publisher must publish, and what it must skip.
 */
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { createCertificateAuthority, issueCertificate } from './certificate-authority.js';
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

/**
 * Gives the demo's signing keys certificates from the emulator's bank PKI in `caDir`: the RSA and
 * P-256 signing keys above, plus two signing keys it creates on P-384 and P-521, each with a
 * certificate (labelled `jwks-key=<key name>`) issued by the issuing CA, whose own certificate is
 * imported too (the chain's middle link). The root, `<caDir>/root.pem`, is the trust anchor the
 * publisher is given (JWKS_CERT_TRUST_ANCHORS), as partners would hold it.
 */
export async function seedDemoCertificates(keys: EmulatorKeys, caDir: string): Promise<{ anchorFile: string; certificates: CmKeyResource[] }> {
  const ca = await createCertificateAuthority(caDir);
  const signing = [
    ...keys.list().filter((key) => key.name === 'demo-rsa-signing' || key.name === 'demo-ec-signing'),
    keys.create({ name: 'demo-ec384-signing', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN_VERIFY, labels: { ...PUBLISH } }),
    keys.create({ name: 'demo-ec521-signing', algorithm: 'ec', curveid: 'secp521r1', usageMask: SIGN_VERIFY, labels: { ...PUBLISH } }),
  ];
  const certificates = [keys.importCertificate({ name: 'demo-issuing-ca', material: ca.issuingPem, certType: 'x509-pem', labels: { ...PUBLISH } })];
  for (const key of signing) {
    if (key.publickey === undefined) continue;
    const publicKeyPem = createPublicKey(key.publickey).export({ type: 'spki', format: 'pem' }).toString();
    const pem = await issueCertificate(ca, { publicKeyPem, commonName: key.name, keyUsage: 'digitalSignature' });
    certificates.push(keys.importCertificate({ name: `${key.name}-certificate`, material: pem, certType: 'x509-pem', labels: { ...PUBLISH, 'jwks-key': key.name } }));
  }
  return { anchorFile: join(caDir, 'root.pem'), certificates };
}
