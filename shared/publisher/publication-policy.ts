import { PROTECT_STOP, recogniseState, type CmKey, type KnownState } from '../ciphertrust/cm-key.js';
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
  /** Published keys kept as they are although CM reports them in a state this code does not know. */
  readonly keptUnknownState: readonly { readonly kid: string; readonly source: KeySource }[];
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
const WITHDRAWN_STATES: ReadonlySet<KnownState> = new Set<KnownState>(['Compromised', 'Destroyed', 'Destroyed Compromised']);
/** When one key material has several CM objects, the audit names the most current first. */
const STATE_RANK: Partial<Record<KnownState, number>> = { Active: 0, 'Pre-Active': 1, [PROTECT_STOP]: 2, Deactivated: 3 };

/**
 * The publication policy, by CM state:
 * - `sig` keys: Pre-Active (published ahead, so partners' caches know a key before it signs),
 *   Active, and Deactivated or protect-stop until `retainDeactivatedMs` after the key stopped
 *   signing (tokens signed before a rotation keep verifying);
 * - `enc` keys: Active only, and not past a protectStopDate (partners must not encrypt to a key on
 *   its way out);
 * - Compromised, Destroyed, Destroyed Compromised: never. A key material that any CM object marks
 *   so is withheld even if another object holding it is still active.
 * - a state this code does not know (CM may add states; protect-stop's spelling is unconfirmed): a
 *   key already published stays as it is, reported in `keptUnknownState` (security log, metric,
 *   alert) until an operator acts or CM moves it to a known state; a key not yet published is not
 *   added. Withdrawing it at once could pull a signing key every live token depends on.
 * States are matched tolerantly (recogniseState). One kid is published once; copies that disagree
 * on use or alg are all withheld.
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
  const keptUnknown = new Map<string, KeySource>();
  const eligible = new Map<string, { jwk: PublicJwk; key: CmKey }[]>();
  const addEligible = (jwk: PublicJwk, key: CmKey): void => {
    const copies = eligible.get(jwk.kid) ?? [];
    copies.push({ jwk, key });
    eligible.set(jwk.kid, copies);
  };

  for (const conversion of conversions) {
    const source = sourceOf(conversion.key);
    const state = recogniseState(source.state);
    const unreadable = conversion.kind === 'no_material' || (conversion.kind === 'skipped' && UNREADABLE.has(conversion.reason));
    const recordedKid = unreadable ? previous.kidsByCmId.get(source.id) : undefined;
    const kid = conversion.kind === 'converted' ? conversion.jwk.kid : conversion.kind === 'skipped' ? (conversion.kid ?? recordedKid) : recordedKid;
    if (kid !== undefined && !known.has(kid)) known.set(kid, source);
    if (kid !== undefined && state !== undefined && WITHDRAWN_STATES.has(state)) withdrawn.set(kid, source);
    if (conversion.kind === 'no_material') continue;
    // What is published now under this key's kid: recorded by CM id when CM answered it unreadable.
    const publishedKid = conversion.kind === 'converted' ? conversion.jwk.kid : recordedKid;
    const published = publishedKid === undefined ? undefined : previous.keys.get(publishedKid);
    if (state === undefined && published !== undefined) {
      addEligible(published, conversion.key);
      keptUnknown.set(published.kid, source);
      if (conversion.kind === 'skipped' && unreadable) kept.add(published.kid);
      continue;
    }
    if (conversion.kind === 'skipped') {
      skipped.push({ source, reason: conversion.reason, detail: conversion.detail, ...(kid !== undefined && { kid }) });
      if (published !== undefined && isPublishable(conversion.key, published.use, now, retainDeactivatedMs)) {
        addEligible(published, conversion.key);
        kept.add(published.kid);
      }
      continue;
    }
    if (state === undefined) {
      skipped.push({ source, reason: 'unknown_state', detail: `state "${source.state}" is not a CipherTrust Manager key state this publisher knows`, kid: conversion.jwk.kid });
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
  const planned = (kid: string): boolean => keys.some((key) => key.jwk.kid === kid);
  return {
    keys,
    withdrawn,
    known,
    skipped,
    kept: [...kept].filter(planned).sort(),
    keptUnknownState: [...keptUnknown]
      .filter(([kid]) => planned(kid))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([kid, source]) => ({ kid, source })),
  };
}

function isPublishable(key: CmKey, use: 'sig' | 'enc', now: Date, retainDeactivatedMs: number): boolean {
  const state = recogniseState(key.state);
  // Partners must not encrypt to a key that may no longer protect: CM may keep a key Active past
  // its protectStopDate (M: Thales' Ansible docs ask for "active with a protect stop date that is
  // not expired"), which is protect-stop in all but name.
  if (use === 'enc') return state === 'Active' && ifPassed(key.protectStopDate, now) === undefined;
  switch (state) {
    case 'Pre-Active':
    case 'Active':
      return true;
    case 'Deactivated':
      // CM sets deactivationDate when a key is revoked or scheduled off; updatedAt is the fallback
      // for a resource without it (M: not every CM version is known to fill it in).
      return retained(key.deactivationDate ?? key.updatedAt, now, retainDeactivatedMs);
    case PROTECT_STOP:
      // protectStopDate is when it stopped protecting; one still ahead means the key entered the
      // state another way (reactivated into it, a scheduler), so updatedAt is the better guess (L).
      return retained(ifPassed(key.protectStopDate, now) ?? key.updatedAt, now, retainDeactivatedMs);
    default:
      return false;
  }
}

/** The date if it is not after `now` (an unreadable date is never passed). */
function ifPassed(date: string | undefined, now: Date): string | undefined {
  return date !== undefined && Date.parse(date) <= now.getTime() ? date : undefined;
}

/** Within the retention after `since`; an unreadable date retains nothing. */
function retained(since: string, now: Date, retainMs: number): boolean {
  const at = Date.parse(since);
  return Number.isFinite(at) && now.getTime() < at + retainMs;
}

function sourceOf(key: CmKey): KeySource {
  return { id: key.id, name: key.name, version: key.version, state: key.state };
}

function rankOf(source: KeySource): number {
  const state = recogniseState(source.state);
  return (state === undefined ? undefined : STATE_RANK[state]) ?? 9;
}

function compareSources(a: KeySource, b: KeySource): number {
  const rank = rankOf(a) - rankOf(b);
  return rank !== 0 ? rank : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

