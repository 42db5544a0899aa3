import type { X509Certificate } from 'node:crypto';
import { certificateOf, isCertificateObject } from '../ciphertrust/certificate-material.js';
import type { CmKey } from '../ciphertrust/cm-key.js';
import type { PublicJwk } from '../jwks/validate.js';
import { CERTIFICATE_KEY_LABEL, chooseChain, type CertificateProblem, type CmCertificate } from './certificate-chain.js';
import type { PlannedKey } from './publication-policy.js';

export interface RefusedCertificate {
  readonly kid: string;
  readonly problem: CertificateProblem;
  readonly detail: string;
  readonly certificate: { readonly id: string; readonly name: string };
}

export interface CertificateOutcome {
  /** The planned keys, each with the chain to publish (x5c, x5t#S256) or none. */
  readonly keys: readonly PlannedKey[];
  /** Keys published without x5c because the certificate CM holds for them is not fit to publish. */
  readonly refused: readonly RefusedCertificate[];
  /** Certificate objects whose material is not an X.509 certificate. */
  readonly unreadable: readonly { readonly id: string; readonly name: string }[];
}

/**
 * Gives each planned key the certificate chain CM holds for it, or none. The chain is chosen
 * afresh every cycle from CM's certificate objects (labelled like the keys), so a renewed
 * certificate replaces the old one, and one that stops qualifying (expired, say) goes; the kid,
 * the key's thumbprint, never changes with it. A key is never published with a certificate that
 * failed a check: it goes out without x5c, and the refusal is reported.
 */
export function attachCertificates(planned: readonly PlannedKey[], objects: readonly CmKey[], anchors: readonly X509Certificate[], now: Date): CertificateOutcome {
  const certificates: CmCertificate[] = [];
  const unreadable: { id: string; name: string }[] = [];
  for (const object of objects) {
    if (!isCertificateObject(object)) continue;
    const certificate = certificateOf(object);
    if (certificate === undefined) unreadable.push({ id: object.id, name: object.name });
    else certificates.push({ id: object.id, name: object.name, claims: object.labels[CERTIFICATE_KEY_LABEL], certificate });
  }
  const refused: RefusedCertificate[] = [];
  const keys = planned.map((key): PlannedKey => {
    const bare = withoutCertificate(key.jwk);
    const decision = chooseChain(bare, key.sources[0]?.name ?? '', certificates, anchors, now);
    if (decision.kind === 'refused') {
      refused.push({ kid: bare.kid, problem: decision.problem, detail: decision.detail, certificate: { id: decision.certificate.id, name: decision.certificate.name } });
    }
    const jwk = decision.kind === 'chain' ? { ...bare, x5c: decision.x5c, 'x5t#S256': decision.x5tS256 } : bare;
    return { ...key, jwk };
  });
  return { keys, refused, unreadable };
}

/** The JWK without certificate members (a kept key's stored JWK may carry an old chain). */
function withoutCertificate(jwk: PublicJwk): PublicJwk {
  const bare = { ...jwk };
  delete bare.x5c;
  delete bare['x5t#S256'];
  return bare;
}
