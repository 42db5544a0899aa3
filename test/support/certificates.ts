import { randomBytes, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CmKey } from '../../shared/ciphertrust/cm-key.js';
import { createCertificateAuthority, issueCertificate, type CertificateAuthority, type IssueOptions } from '../../emulator/certificate-authority.js';
import { cmKey } from './cm-keys.js';

/** The emulator's bank PKI in a temporary directory, for one test file. */
export async function testAuthority(): Promise<CertificateAuthority & { remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'test-ca-'));
  const ca = await createCertificateAuthority(join(dir, 'ca'));
  return { ...ca, remove: () => rm(dir, { recursive: true, force: true }) };
}

export function certificateFor(ca: CertificateAuthority, publicKey: KeyObject, options: Omit<IssueOptions, 'publicKeyPem' | 'commonName'> & { commonName?: string } = {}): Promise<string> {
  return issueCertificate(ca, { commonName: 'jwt-signing', ...options, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
}

/** A CM `Certificate` object, as the reader yields it once its material is read. */
export function certificateObject(pem: string, name = `cert-${randomBytes(3).toString('hex')}`, labels: Record<string, string> = {}): CmKey {
  return { ...cmKey('', undefined, {}, { name, objectType: 'Certificate', usageMask: 0, labels: { jwks: 'publish', ...labels } }), material: pem };
}

/** base64 DER of a PEM certificate (an x5c entry). */
export function derOf(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
}
