import { createHash, X509Certificate, type KeyObject } from 'node:crypto';

/**
 * The few X.509 facts the JWK `x5c` / `x5t#S256` members depend on (RFC 7517 4.7, 4.9), from
 * Node's own X509Certificate: no ASN.1 dependency. Node exposes no keyUsage (its `keyUsage` is the
 * extended key usage), so that one extension is read from the DER by hand, minimally.
 */

/** A certificate's DER, base64 (standard alphabet, with padding: RFC 7517 4.7). */
export function derBase64(certificate: X509Certificate): string {
  return certificate.raw.toString('base64');
}

/** RFC 7517 4.9: base64url of the SHA-256 of the DER. */
export function x5tS256(certificate: X509Certificate): string {
  return createHash('sha256').update(certificate.raw).digest('base64url');
}

/** Whether two public keys are the same key (their SubjectPublicKeyInfo DER bytes are equal). */
export function sameSpki(a: KeyObject, b: KeyObject): boolean {
  return a.export({ type: 'spki', format: 'der' }).equals(b.export({ type: 'spki', format: 'der' }));
}

/** Whether `issuer` issued `subject`: names chain and the signature verifies with the issuer's key. */
export function issuedBy(subject: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

export const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KeyUsageName = keyof typeof KEY_USAGE_BITS;

/**
 * The key usages a certificate's keyUsage extension (OID 2.5.29.15) grants, or undefined when the
 * certificate has no such extension (RFC 5280 4.2.1.3: then the key's usage is not restricted).
 * Throws on DER it cannot walk.
 */
export function keyUsageOf(certificate: X509Certificate): Set<KeyUsageName> | undefined {
  const der = certificate.raw;
  const tbs = children(der, element(der, 0).content)[0];
  if (tbs === undefined) throw new Error('certificate without tbsCertificate');
  // Extensions are the [3] explicit-tagged member of tbsCertificate.
  const wrapper = children(der, tbs.content).find((child) => child.tag === 0xa3);
  if (wrapper === undefined) return undefined;
  const list = children(der, wrapper.content)[0];
  if (list === undefined) return undefined;
  for (const extension of children(der, list.content)) {
    const parts = children(der, extension.content);
    const oid = parts[0];
    if (oid === undefined || oid.tag !== 0x06 || !der.subarray(oid.content.start, oid.content.end).equals(KEY_USAGE_OID)) continue;
    const octets = parts[parts.length - 1];
    if (octets === undefined || octets.tag !== 0x04) throw new Error('keyUsage extension without a value');
    const bits = element(der, octets.content.start);
    if (bits.tag !== 0x03) throw new Error('keyUsage is not a BIT STRING');
    const bytes = der.subarray(bits.content.start + 1, bits.content.end);
    const granted = new Set<KeyUsageName>();
    for (const [name, bit] of Object.entries(KEY_USAGE_BITS) as [KeyUsageName, number][]) {
      const byte = bytes[bit >> 3];
      if (byte !== undefined && (byte & (0x80 >> (bit & 7))) !== 0) granted.add(name);
    }
    return granted;
  }
  return undefined;
}

const KEY_USAGE_OID = Buffer.from([0x55, 0x1d, 0x0f]);

interface Span {
  readonly start: number;
  readonly end: number;
}
interface Element {
  readonly tag: number;
  readonly content: Span;
  readonly end: number;
}

/** One DER element (tag, definite length) at `at`. */
function element(der: Buffer, at: number): Element {
  const tag = der[at];
  let length = der[at + 1];
  if (tag === undefined || length === undefined) throw new Error('truncated DER');
  let start = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] ?? 0);
    start += count;
  }
  const end = start + length;
  if (end > der.length) throw new Error('truncated DER');
  return { tag, content: { start, end }, end };
}

function children(der: Buffer, span: Span): Element[] {
  const found: Element[] = [];
  for (let at = span.start; at < span.end; ) {
    const child = element(der, at);
    if (child.end > span.end) throw new Error('DER element overruns its parent');
    found.push(child);
    at = child.end;
  }
  return found;
}

/** Parses one certificate given as DER bytes or PEM text; undefined when it is not one. */
export function parseCertificate(input: Buffer | string): X509Certificate | undefined {
  try {
    return new X509Certificate(input);
  } catch {
    return undefined;
  }
}

/** Every certificate in a PEM bundle (text outside the blocks is ignored). */
export function parsePemBundle(text: string): { certificates: X509Certificate[]; unreadable: number } {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const certificates: X509Certificate[] = [];
  let unreadable = 0;
  for (const block of blocks) {
    const certificate = parseCertificate(block);
    if (certificate === undefined) unreadable++;
    else certificates.push(certificate);
  }
  return { certificates, unreadable };
}
