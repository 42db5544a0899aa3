import type { KeyObject } from 'node:crypto';
import { KeySetRefusedError } from './errors.js';
import { issuedBy, parseCertificate, sameSpki, x5tS256 } from './x509.js';

/** The certificate members of a published JWK (RFC 7517 4.7, 4.9). */
export interface CertificateMembers {
  /** base64 (not base64url) DER, leaf first, each certified by the next; the trust anchor is left out. */
  x5c: string[];
  /** base64url SHA-256 of x5c[0]'s DER. */
  'x5t#S256': string;
}

/** No bank chain is longer; a longer one is a mistake or an attempt to bloat the set. */
export const MAX_CHAIN_LENGTH = 6;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Checks a JWK's x5c and x5t#S256 against its key: both present or both absent; x5c[0] holds the
 * very key the JWK carries (SPKI equal); x5t#S256 is x5c[0]'s thumbprint; each certificate is
 * signed by the next. Trust (anchors, validity dates, key usage) is the publisher's decision, made
 * before publication; this is what a stored set must satisfy to be served at all, so a certificate
 * planted in the store for another key is refused like private material.
 */
export function assertCertificateMembers(jwk: Record<string, unknown>, key: KeyObject, where: string): void {
  const chain = jwk.x5c;
  const thumbprint = jwk['x5t#S256'];
  if (chain === undefined && thumbprint === undefined) return;
  const refuse = (message: string): never => {
    throw new KeySetRefusedError('certificate_mismatch', `${where} ${message}`);
  };
  if (!Array.isArray(chain) || chain.length === 0 || chain.length > MAX_CHAIN_LENGTH) {
    return refuse(`has an x5c that is not an array of 1 to ${MAX_CHAIN_LENGTH} certificates`);
  }
  if (typeof thumbprint !== 'string') return refuse('has x5c without x5t#S256');
  const certificates = chain.map((entry: unknown, index) => {
    const certificate = typeof entry === 'string' && BASE64.test(entry) ? parseCertificate(Buffer.from(entry, 'base64')) : undefined;
    return certificate ?? refuse(`has x5c[${index}] that is not a base64 DER certificate`);
  });
  const leaf = certificates[0]!;
  if (!sameSpki(leaf.publicKey, key)) return refuse("has x5c[0] whose public key is not the JWK's key");
  if (x5tS256(leaf) !== thumbprint) return refuse("has x5t#S256 that is not x5c[0]'s SHA-256 thumbprint");
  certificates.slice(0, -1).forEach((certificate, index) => {
    if (!issuedBy(certificate, certificates[index + 1]!)) refuse(`has x5c[${index}] that x5c[${index + 1}] did not sign`);
  });
}
