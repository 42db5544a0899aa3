import { X509Certificate } from 'node:crypto';
import { publicKeyObject } from '../jwks/validate.js';
import { representationOf, type Representation } from './representation.js';

/** The PEM forms of one served key: its SubjectPublicKeyInfo, and its leaf certificate if it has x5c. */
export interface PemForms {
  readonly publicKey: Representation;
  /** undefined when the key is published without a certificate chain. */
  readonly certificate: Representation | undefined;
}

/**
 * PEM forms of served keys, made on first request from the key's served JSON and kept as long as
 * that representation is served (a WeakMap: a key unchanged across set versions keeps its object,
 * and so its PEM forms; a dropped key's go with it). Each has the key's Last-Modified and an ETag of
 * its own bytes. The JSON was validated before it was served (validate.ts: a public key, and an x5c
 * whose first certificate holds that very key), so this only converts.
 */
export class PemRepresentations {
  private readonly byKey = new WeakMap<Representation, PemForms>();

  of(key: Representation): PemForms {
    let forms = this.byKey.get(key);
    if (forms === undefined) {
      forms = pemFormsOf(key);
      this.byKey.set(key, forms);
    }
    return forms;
  }
}

export function pemFormsOf(key: Representation): PemForms {
  const jwk = JSON.parse(key.bytes.toString('utf8')) as Record<string, unknown>;
  const spki = publicKeyObject(jwk).export({ type: 'spki', format: 'pem' });
  const leaf = Array.isArray(jwk.x5c) && typeof jwk.x5c[0] === 'string' ? jwk.x5c[0] : undefined;
  return {
    publicKey: representationOf(Buffer.from(spki), key.lastModified),
    // X509Certificate.toString() is the PEM block: base64 in 64-character lines, LF endings.
    certificate: leaf === undefined ? undefined : representationOf(Buffer.from(new X509Certificate(Buffer.from(leaf, 'base64')).toString()), key.lastModified),
  };
}
