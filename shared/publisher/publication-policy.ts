import type { CmKey } from '../ciphertrust/cm-key.js';
import type { PublicJwk } from '../jwks/validate.js';
import type { Conversion, SkipReason } from './cm-key-to-jwk.js';

/** Which CM key a published kid comes from, as the audit record names it. */
export interface KeySource {
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly state: string;
}

export interface PlannedKey {
  readonly jwk: PublicJwk;
  /** Usually one; several when CM holds the same key material more than once. */
  readonly sources: readonly KeySource[];
}

export interface SkippedKey {
  readonly source: KeySource;
  readonly reason: SkipReason;
  readonly detail: string;
  readonly kid?: string;
}

export interface PolicyOutcome {
  /** What to publish, sorted by kid. */
  readonly keys: readonly PlannedKey[];
  /** Kids of Compromised or Destroyed keys: never published, and their removal is always allowed. */
  readonly withdrawn: ReadonlyMap<string, KeySource>;
  /** Every kid CM holds material for (whatever its state), to name the source of a removed key. */
  readonly known: ReadonlyMap<string, KeySource>;
  /** Keys that could not be published as they are: logged and counted. */
  readonly skipped: readonly SkippedKey[];
  /** Kids kept as published because CM answered their public key unreadable this time. */
  readonly kept: readonly string[];
}

/** What is published now, as the next cycle needs to know it. */
export interface PreviousPublication {
  /** CM id -> kid, from jwks-sources.json. */
  readonly kidsByCmId: ReadonlyMap<string, string>;
  /** The published keys by kid. */
  readonly keys: ReadonlyMap<string, PublicJwk>;
}

const NOTHING_PUBLISHED: PreviousPublication = { kidsByCmId: new Map(), keys: new Map() };
/** Skips that mean "CM has a key here whose public half we could not read this time". */
const UNREADABLE: ReadonlySet<SkipReason> = new Set(['malformed_public_key', 'no_public_key']);

/** States whose keys are never published; a key entering one is removed at once. */
export const WITHDRAWN_STATES: ReadonlySet<string> = new Set(['Compromised', 'Destroyed', 'Destroyed Compromised']);
const SIGNATURE_STATES = new Set(['Pre-Active', 'Active', 'Deactivated']);
const KNOWN_STATES = new Set(['Pre-Active', 'Active', 'Deactivated', ...WITHDRAWN_STATES]);
/** When one key material has several CM objects, the audit names the most current first. */
const STATE_RANK: Readonly<Record<string, number>> = { Active: 0, 'Pre-Active': 1, Deactivated: 2 };

/**
 * The publication policy, by CM state:
 * - `sig` keys: Pre-Active (published ahead, so partners' caches know a key before it signs),
 *   Active, and Deactivated until `retainDeactivatedMs` after the deactivation date (tokens signed
 *   before a rotation keep verifying);
 * - `enc` keys: Active only (partners must not encrypt to a key on its way out);
 * - Compromised, Destroyed, Destroyed Compromised: never. A key material that any CM object marks
 *   so is withheld even if another object holding it is still active.
 * One kid is published once; copies that disagree on use or alg are all withheld.
 *
 * A published key whose material CM no longer returns (destroyed) or returns unreadable is
 * recognised by the kid recorded for its CM id at publication: destroyed, it is withdrawn like a
 * compromised key; unreadable but still in a publishing state, it stays as published, so one bad
 * answer from CM never makes a live key vanish from partners' caches.
 */
export function applyPublicationPolicy(
  conversions: readonly Conversion[],
  now: Date,
  retainDeactivatedMs: number,
  previous: PreviousPublication = NOTHING_PUBLISHED,
): PolicyOutcome {
  const withdrawn = new Map<string, KeySource>();
  const known = new Map<string, KeySource>();
  const skipped: SkippedKey[] = [];
  const kept = new Set<string>();
  const eligible = new Map<string, { jwk: PublicJwk; key: CmKey }[]>();
  const addEligible = (jwk: PublicJwk, key: CmKey): void => {
    const copies = eligible.get(jwk.kid) ?? [];
    copies.push({ jwk, key });
    eligible.set(jwk.kid, copies);
  };

  for (const conversion of conversions) {
    const source = sourceOf(conversion.key);
    const unreadable = conversion.kind === 'no_material' || (conversion.kind === 'skipped' && UNREADABLE.has(conversion.reason));
    const recordedKid = unreadable ? previous.kidsByCmId.get(source.id) : undefined;
    const kid = conversion.kind === 'converted' ? conversion.jwk.kid : conversion.kind === 'skipped' ? (conversion.kid ?? recordedKid) : recordedKid;
    if (kid !== undefined && !known.has(kid)) known.set(kid, source);
    if (kid !== undefined && WITHDRAWN_STATES.has(source.state)) withdrawn.set(kid, source);
    if (conversion.kind === 'no_material') continue;
    if (conversion.kind === 'skipped') {
      skipped.push({ source, reason: conversion.reason, detail: conversion.detail, ...(kid !== undefined && { kid }) });
      const published = recordedKid === undefined ? undefined : previous.keys.get(recordedKid);
      if (published !== undefined && KNOWN_STATES.has(source.state) && isPublishable(conversion.key, published.use, now, retainDeactivatedMs)) {
        addEligible(published, conversion.key);
        kept.add(published.kid);
      }
      continue;
    }
    if (!KNOWN_STATES.has(source.state)) {
      skipped.push({ source, reason: 'unknown_state', detail: `state "${source.state}" is not a CipherTrust Manager key state`, kid: conversion.jwk.kid });
      continue;
    }
    if (isPublishable(conversion.key, conversion.jwk.use, now, retainDeactivatedMs)) addEligible(conversion.jwk, conversion.key);
  }

  const keys: PlannedKey[] = [];
  for (const [kid, copies] of eligible) {
    if (withdrawn.has(kid)) continue;
    const [first] = copies;
    if (first === undefined) continue;
    if (copies.some(({ jwk }) => jwk.use !== first.jwk.use || jwk.alg !== first.jwk.alg)) {
      for (const { key } of copies) {
        skipped.push({ source: sourceOf(key), reason: 'conflicting_duplicate', detail: 'CM holds this key material more than once with different use or alg', kid });
      }
      continue;
    }
    const sources = copies.map(({ key }) => sourceOf(key)).sort(compareSources);
    keys.push({ jwk: first.jwk, sources });
    known.set(kid, sources[0] as KeySource);
  }
  keys.sort((a, b) => (a.jwk.kid < b.jwk.kid ? -1 : a.jwk.kid > b.jwk.kid ? 1 : 0));
  return { keys, withdrawn, known, skipped, kept: [...kept].filter((kid) => keys.some((planned) => planned.jwk.kid === kid)).sort() };
}

function isPublishable(key: CmKey, use: 'sig' | 'enc', now: Date, retainDeactivatedMs: number): boolean {
  if (use === 'enc') return key.state === 'Active';
  if (!SIGNATURE_STATES.has(key.state)) return false;
  if (key.state !== 'Deactivated') return true;
  // CM sets deactivationDate when a key is revoked or scheduled off; updatedAt is the fallback for
  // a resource without it (M: not every CM version is known to fill it in).
  const deactivatedAt = Date.parse(key.deactivationDate ?? key.updatedAt);
  return Number.isFinite(deactivatedAt) && now.getTime() < deactivatedAt + retainDeactivatedMs;
}

function sourceOf(key: CmKey): KeySource {
  return { id: key.id, name: key.name, version: key.version, state: key.state };
}

function compareSources(a: KeySource, b: KeySource): number {
  const rank = (STATE_RANK[a.state] ?? 9) - (STATE_RANK[b.state] ?? 9);
  return rank !== 0 ? rank : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

