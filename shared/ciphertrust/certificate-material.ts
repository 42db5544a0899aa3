import type { X509Certificate } from 'node:crypto';
import { parseCertificate } from '../jwks/x509.js';
import type { CmKey } from './cm-key.js';

/**
 * The certificate of a CM `Certificate` object. It is imported as `material` with `certType`
 * x509-pem or x509-der (H: Thales' Ansible vault_keys2_save); how CM answers a DER one in JSON is
 * not documented (L), so PEM, base64 DER and hex DER are all read. Undefined: not a certificate.
 */
export function certificateOf(object: CmKey): X509Certificate | undefined {
  const material = object.material?.trim();
  if (material === undefined || material === '') return undefined;
  if (material.includes('-----BEGIN CERTIFICATE-----')) return parseCertificate(material);
  if (/^[0-9a-fA-F]+$/.test(material) && material.length % 2 === 0) return parseCertificate(Buffer.from(material, 'hex'));
  if (/^[A-Za-z0-9+/\s]+={0,2}$/.test(material)) return parseCertificate(Buffer.from(material.replace(/\s+/g, ''), 'base64'));
  return undefined;
}

export function isCertificateObject(object: CmKey): boolean {
  return object.objectType.toLowerCase() === 'certificate';
}
