import { CipherTrustError } from '../ciphertrust/errors.js';
import type { KeyReadResult } from '../ciphertrust/key-reader.js';
import { KeySetRefusedError } from '../jwks/errors.js';
import { serializeKeySet } from '../jwks/serialize.js';
import { validateKeySet, type PublicJwk } from '../jwks/validate.js';
import type { Logger } from '../observability/logger.js';
import { KEY_SET_OBJECT, StoreError, type KeySetStore } from '../store/store.js';
import { convertCmKey, type Conversion } from './cm-key-to-jwk.js';
import { checkGuards, type GuardRefusal } from './guards.js';
import {
  applyPublicationPolicy,
  keepUnaccountedWhileUnreadable,
  type KeySource,
  type PlannedKey,
  type PolicyOutcome,
  type SkippedKey,
} from './publication-policy.js';
import type { PublicationObserver } from './publication-observer.js';
import { writeKeySet } from './write-key-set.js';

/** What asked for a cycle: a CloudEvent (its id and type), the hourly ping, or an operator. */
export interface CycleTrigger {
  readonly kind: 'rotation' | 'ping' | 'cli';
  readonly eventId?: string;
  readonly eventType?: string;
}

export type CycleOutcome = 'published' | 'unchanged' | 'refused' | 'failed' | 'dry_run';
export type CycleFailure = 'ciphertrust' | 'store' | 'invalid_output' | 'internal';

/** A key added or removed, named as CM knows it (source absent: CM no longer has that material). */
export interface KeyChange {
  readonly kid: string;
  readonly use?: string;
  readonly alg?: string;
  readonly cmKey?: KeySource;
}

export interface CycleResult {
  readonly outcome: CycleOutcome;
  readonly failure?: CycleFailure;
  readonly guard?: GuardRefusal;
  readonly message?: string;
  readonly added: readonly KeyChange[];
  readonly removed: readonly KeyChange[];
  /** Keys in the set after the cycle (or that would be, for a dry run or a refusal). */
  readonly keys: number;
  /** Published kids kept only because some CM key could not be read this time. */
  readonly removalsDeferred?: readonly string[];
  readonly filesWritten: number;
  readonly filesRemoved: number;
}

export interface CycleOptions {
  /** Compute and report, write nothing. */
  readonly dryRun?: boolean;
  /** Lifts the mass-removal guard for this cycle (an operator's decision, recorded in the audit). */
  readonly confirmRemoval?: boolean;
}

export interface PublicationCycleDependencies {
  readonly reader: { read(): Promise<KeyReadResult> };
  readonly store: KeySetStore;
  readonly logger: Logger;
  readonly observer: PublicationObserver;
  readonly retainDeactivatedMs: number;
  readonly allowEmpty: boolean;
  readonly maxSetBytes: number;
  readonly now?: () => Date;
}

interface PublishedSet {
  readonly kids: readonly string[];
  readonly keys: ReadonlyMap<string, PublicJwk>;
  readonly bytes: Buffer | undefined;
}

/**
 * One publication: read the keys from CM, convert, apply the policy, check the guards against
 * what is published, write, and leave one audit record. Any failure before the write leaves the
 * published files untouched.
 */
export class PublicationCycle {
  private readonly now: () => Date;

  constructor(private readonly deps: PublicationCycleDependencies) {
    this.now = deps.now ?? (() => new Date());
  }

  async run(triggers: readonly CycleTrigger[], options: CycleOptions = {}): Promise<CycleResult> {
    const started = process.hrtime.bigint();
    let result: CycleResult;
    try {
      result = await this.attempt(options);
    } catch (error) {
      // A bug, not an outage: still one audit record and a failed answer, never a silent death.
      this.deps.logger.error({ event: 'publication_crashed', err: error }, 'publication failed unexpectedly');
      result = { outcome: 'failed', failure: 'internal', message: 'unexpected error (see publication_crashed log)', added: [], removed: [], keys: 0, filesWritten: 0, filesRemoved: 0 };
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.deps.observer.cycleFinished(result.outcome, seconds, this.now());
    if (result.guard !== undefined) this.deps.observer.guardRefused(result.guard.guard);
    if (options.dryRun !== true) this.audit(triggers, options, result);
    return result;
  }

  private async attempt(options: CycleOptions): Promise<CycleResult> {
    const nothing = { added: [], removed: [], keys: 0, filesWritten: 0, filesRemoved: 0 };
    let read: { policy: PolicyOutcome; unreadable: number };
    try {
      read = await this.readPolicy();
    } catch (error) {
      if (!(error instanceof CipherTrustError)) throw error;
      return { ...nothing, outcome: 'failed', failure: 'ciphertrust', message: error.message };
    }
    let published: PublishedSet;
    try {
      published = await this.readPublished();
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      return { ...nothing, outcome: 'failed', failure: 'store', message: error.message };
    }

    const { outcome: policy, kept } = keepUnaccountedWhileUnreadable(read.policy, published.keys, read.unreadable);
    for (const kid of kept) {
      this.deps.logger.warn(
        { event: 'removal_deferred', kid },
        'a published key is no longer accounted for while some CM key cannot be read; kept until CM answers cleanly',
      );
    }
    const keys = policy.keys.map((planned) => planned.jwk);
    const changes = diff(published, policy);
    const guard = checkGuards({
      publishedKids: published.kids,
      nextKids: keys.map((key) => key.kid),
      withdrawnKids: new Set(policy.withdrawn.keys()),
      allowEmpty: this.deps.allowEmpty,
      confirmRemoval: options.confirmRemoval === true,
    });
    const planned = { ...changes, keys: keys.length, filesWritten: 0, filesRemoved: 0, ...(kept.length > 0 && { removalsDeferred: kept }) };
    if (guard !== undefined) return { ...planned, outcome: 'refused', guard, message: guard.message };
    if (options.dryRun === true) return { ...planned, outcome: 'dry_run' };

    const setBytes = serializeKeySet(keys);
    const invalid = checkOutput(setBytes, this.deps.maxSetBytes);
    if (invalid !== undefined) return { ...planned, outcome: 'failed', failure: 'invalid_output', message: invalid };
    try {
      const report = await writeKeySet(this.deps.store, keys, setBytes, published.bytes, this.deps.maxSetBytes);
      const touched = report.written.length + report.removed.length;
      this.deps.observer.keysPublished(policy.keys);
      return { ...planned, outcome: touched > 0 ? 'published' : 'unchanged', filesWritten: report.written.length, filesRemoved: report.removed.length };
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      return { ...planned, outcome: 'failed', failure: 'store', message: error.message };
    }
  }

  private async readPolicy(): Promise<{ policy: PolicyOutcome; unreadable: number }> {
    const read = await this.deps.reader.read();
    const conversions: Conversion[] = await Promise.all(read.keys.map((key) => convertCmKey(key)));
    const policy = applyPublicationPolicy(conversions, this.now(), this.deps.retainDeactivatedMs);
    for (const malformed of read.malformed) {
      this.deps.observer.keySkipped('malformed_resource');
      this.deps.logger.warn(
        { event: 'key_skipped', reason: 'malformed_resource', cmKeyId: malformed.id, detail: malformed.problem },
        'a CipherTrust Manager key resource could not be read; skipped, the others still publish',
      );
    }
    for (const skipped of policy.skipped) this.logSkipped(skipped);
    return { policy, unreadable: read.malformed.length };
  }

  private logSkipped(skipped: SkippedKey): void {
    this.deps.observer.keySkipped(skipped.reason);
    const record = { event: 'key_skipped', reason: skipped.reason, kid: skipped.kid, cmKey: skipped.source, detail: skipped.detail };
    if (skipped.reason === 'private_key_material') {
      this.deps.logger.error({ ...record, security: true }, 'CipherTrust Manager returned private key material in publickey; key not published');
    } else if (EXPECTED_SKIPS.has(skipped.reason)) {
      this.deps.logger.info(record, 'key not published (not an asymmetric key pair)');
    } else {
      this.deps.logger.warn(record, `key not published: ${skipped.detail}`);
    }
  }

  private async readPublished(): Promise<PublishedSet> {
    const empty: PublishedSet = { kids: [], keys: new Map(), bytes: undefined };
    const result = await this.deps.store.read(KEY_SET_OBJECT, { maxBytes: this.deps.maxSetBytes });
    if (result.kind !== 'found') return empty;
    try {
      const set = validateKeySet(result.object.body);
      return { kids: set.keys.map((key) => key.kid), keys: new Map(set.keys.map((key) => [key.kid, key])), bytes: result.object.body };
    } catch (error) {
      if (!(error instanceof KeySetRefusedError)) throw error;
      // A corrupt or refused set is replaced: serving keeps its last good copy until then. The
      // removal guard cannot judge against it, so the operator is told.
      this.deps.logger.warn(
        { event: 'published_set_unreadable', reason: error.reason, security: error.security, detail: error.message },
        'the published key set is not valid; it will be replaced by the one computed now',
      );
      return { ...empty, bytes: result.object.body };
    }
  }

  private audit(triggers: readonly CycleTrigger[], options: CycleOptions, result: CycleResult): void {
    const record = {
      audit: true,
      event: 'publication',
      outcome: result.outcome,
      failure: result.failure,
      guard: result.guard?.guard,
      reason: describeTriggers(triggers),
      added: result.added,
      removed: result.removed,
      keys: result.keys,
      filesWritten: result.filesWritten,
      filesRemoved: result.filesRemoved,
      ...(result.removalsDeferred !== undefined && { removalsDeferred: result.removalsDeferred }),
      store: this.deps.store.location,
      ...(options.confirmRemoval === true && { override: 'confirm_removal' }),
      ...(result.message !== undefined && { message: result.message }),
    };
    const summary = `publication ${result.outcome}: ${result.added.length} added, ${result.removed.length} removed, ${result.keys} keys`;
    if (result.outcome === 'failed' || result.outcome === 'refused') this.deps.logger.error(record, `${summary}; ${result.message ?? ''}`);
    else this.deps.logger.info(record, summary);
  }
}

/** Skips that are normal for a labelled CM partition (an AES key, a Public Key twin). */
const EXPECTED_SKIPS = new Set(['public_key_object', 'not_key_pair', 'unsupported_algorithm']);
/** Events named in one audit record; the rest are counted. */
const MAX_AUDITED_EVENTS = 20;

function diff(published: PublishedSet, policy: PolicyOutcome): { added: KeyChange[]; removed: KeyChange[] } {
  const next = new Map<string, PlannedKey>(policy.keys.map((planned) => [planned.jwk.kid, planned]));
  const added = policy.keys
    .filter((planned) => !published.keys.has(planned.jwk.kid))
    .map((planned) => ({ kid: planned.jwk.kid, use: planned.jwk.use, alg: planned.jwk.alg, cmKey: planned.sources[0] }));
  const removed = published.kids
    .filter((kid) => !next.has(kid))
    .map((kid) => {
      const key = published.keys.get(kid);
      const source = policy.withdrawn.get(kid) ?? policy.known.get(kid);
      return { kid, use: key?.use, alg: key?.alg, ...(source !== undefined && { cmKey: source }) };
    });
  return { added, removed };
}

function checkOutput(setBytes: Buffer, maxBytes: number): string | undefined {
  if (setBytes.length > maxBytes) return `the key set would be ${setBytes.length} bytes, over JWKS_MAX_BYTES (${maxBytes})`;
  try {
    validateKeySet(setBytes);
    return undefined;
  } catch (error) {
    // Unreachable unless conversion and validation disagree: never write what serving would refuse.
    return `the computed key set fails validation: ${(error as Error).message}`;
  }
}

function describeTriggers(triggers: readonly CycleTrigger[]): Record<string, unknown> {
  const events = triggers.filter((trigger) => trigger.eventId !== undefined);
  return {
    kinds: [...new Set(triggers.map((trigger) => trigger.kind))].sort(),
    requests: triggers.length,
    events: events.slice(0, MAX_AUDITED_EVENTS).map((trigger) => ({ id: trigger.eventId, type: trigger.eventType })),
    ...(events.length > MAX_AUDITED_EVENTS && { eventsNotListed: events.length - MAX_AUDITED_EVENTS }),
  };
}
