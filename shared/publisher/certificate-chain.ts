import type { X509Certificate } from 'node:crypto';
import { MAX_CHAIN_LENGTH } from '../jwks/certificate-members.js';
import { publicKeyObject, type PublicJwk } from '../jwks/validate.js';
import { derBase64, issuedBy, keyUsageOf, sameSpki, x5tS256, type KeyUsageName } from '../jwks/x509.js';

/** Label of a CM certificate object naming the CM key it certifies (optional: SPKI decides). */
export const CERTIFICATE_KEY_LABEL = 'jwks-key';

/** Why a certificate CM holds for a published key is not published with it. Stable: metric labels. */
export const CERTIFICATE_PROBLEMS = ['public_key_mismatch', 'expired', 'not_yet_valid', 'untrusted_chain', 'key_usage'] as const;
export type CertificateProblem = (typeof CERTIFICATE_PROBLEMS)[number];

/** A certificate object read from CM, parsed. */
export interface CmCertificate {
  readonly id: string;
  readonly name: string;
  /** The CM key name its `jwks-key` label names: the certificate says it is that key's. */
  readonly claims?: string | undefined;
  readonly certificate: X509Certificate;
}

export type ChainDecision =
  | { readonly kind: 'chain'; readonly x5c: string[]; readonly x5tS256: string; readonly leaf: CmCertificate; readonly notAfter: Date }
  | { readonly kind: 'none' }
  | { readonly kind: 'refused'; readonly problem: CertificateProblem; readonly certificate: CmCertificate; readonly detail: string };

/**
 * Picks the certificate chain to publish with `jwk`. Candidates are the CM certificates whose
 * public key is the JWK's (SPKI equal), and those whose `jwks-key` label names the key (CM names
 * are unique, so a certificate cannot share its key's name); a claim is only ever a reason to
 * complain when the public keys differ, never a reason to publish. A
 * candidate qualifies when it is valid now, grants the key usage the JWK's `use` needs, and
 * chains, through certificates CM holds, up to one of `anchors`. Of those qualifying, the one
 * valid longest wins. x5c is leaf first, then the intermediates, without the anchor: partners must
 * hold the anchor already (a chain that brings its own root proves nothing), clients that read x5c
 * (jwks-rsa, jose's importX509) use x5c[0] only, and RFC 7517 4.7 does not ask for the root.
 */
export function chooseChain(
  jwk: PublicJwk,
  keyName: string,
  certificates: readonly CmCertificate[],
  anchors: readonly X509Certificate[],
  now: Date,
): ChainDecision {
  const key = publicKeyObject(jwk);
  let refusal: ChainDecision | undefined;
  let best: Extract<ChainDecision, { kind: 'chain' }> | undefined;
  for (const candidate of certificates) {
    const matches = sameSpki(candidate.certificate.publicKey, key);
    if (!matches) {
      if (candidate.claims !== undefined && candidate.claims !== '' && candidate.claims === keyName) {
        refusal ??= { kind: 'refused', problem: 'public_key_mismatch', certificate: candidate, detail: `certificate "${candidate.name}" (${candidate.id}) is labelled ${CERTIFICATE_KEY_LABEL}=${keyName} but carries another public key` };
      }
      continue;
    }
    // Labelled for another key: contradictory, so not used here (that key reports the mismatch).
    if (candidate.claims !== undefined && candidate.claims !== '' && candidate.claims !== keyName) continue;
    const problem = checkCandidate(candidate, jwk, certificates, anchors, now);
    if ('problem' in problem) {
      refusal ??= { kind: 'refused', problem: problem.problem, certificate: candidate, detail: problem.detail };
      continue;
    }
    const notAfter = candidate.certificate.validToDate;
    if (best === undefined || notAfter > best.notAfter) {
      best = { kind: 'chain', x5c: problem.chain.map(derBase64), x5tS256: x5tS256(candidate.certificate), leaf: candidate, notAfter };
    }
  }
  return best ?? refusal ?? { kind: 'none' };
}

type Check = { readonly chain: X509Certificate[] } | { readonly problem: CertificateProblem; readonly detail: string };

function checkCandidate(candidate: CmCertificate, jwk: PublicJwk, pool: readonly CmCertificate[], anchors: readonly X509Certificate[], now: Date): Check {
  const leaf = candidate.certificate;
  const name = `certificate "${candidate.name}" (${candidate.id})`;
  const dates = validityProblem(leaf, now);
  if (dates !== undefined) return { problem: dates, detail: `${name} is ${dates === 'expired' ? `expired since ${leaf.validTo}` : `not valid before ${leaf.validFrom}`}` };
  let usage: Set<KeyUsageName> | undefined;
  try {
    usage = keyUsageOf(leaf);
  } catch (error) {
    return { problem: 'key_usage', detail: `${name} has a keyUsage extension that does not parse (${(error as Error).message})` };
  }
  const needed = neededUsage(jwk);
  // No keyUsage extension at all leaves the key unrestricted (RFC 5280 4.2.1.3).
  if (usage !== undefined && !usage.has(needed)) return { problem: 'key_usage', detail: `${name} lacks keyUsage ${needed}, which a ${jwk.kty} "${jwk.use}" key needs` };
  const chain = buildChain(leaf, pool.map((entry) => entry.certificate), anchors, now);
  if (chain === undefined) return { problem: 'untrusted_chain', detail: `${name} does not chain up to JWKS_CERT_TRUST_ANCHORS through valid certificates CipherTrust Manager holds` };
  return { chain };
}

/** digitalSignature for sig; keyEncipherment for RSA enc, keyAgreement for EC (ECDH) enc. */
export function neededUsage(jwk: Pick<PublicJwk, 'kty' | 'use'>): KeyUsageName {
  if (jwk.use === 'sig') return 'digitalSignature';
  return jwk.kty === 'RSA' ? 'keyEncipherment' : 'keyAgreement';
}

function validityProblem(certificate: X509Certificate, now: Date): 'expired' | 'not_yet_valid' | undefined {
  if (now > certificate.validToDate) return 'expired';
  if (now < certificate.validFromDate) return 'not_yet_valid';
  return undefined;
}

/** Leaf, then intermediates, up to (not including) an anchor; undefined when none is reached. */
function buildChain(leaf: X509Certificate, pool: readonly X509Certificate[], anchors: readonly X509Certificate[], now: Date): X509Certificate[] | undefined {
  const chain = [leaf];
  for (let current = leaf; chain.length <= MAX_CHAIN_LENGTH; ) {
    if (anchors.some((anchor) => validityProblem(anchor, now) === undefined && issuedBy(current, anchor))) return chain;
    const issuer = pool.find((candidate) => candidate.ca && !chain.includes(candidate) && validityProblem(candidate, now) === undefined && issuedBy(current, candidate));
    if (issuer === undefined || chain.length === MAX_CHAIN_LENGTH) return undefined;
    chain.push(issuer);
    current = issuer;
  }
  return undefined;
}
