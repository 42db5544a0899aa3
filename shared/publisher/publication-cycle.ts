import { CipherTrustError } from '../ciphertrust/errors.js';
import type { KeyReadResult } from '../ciphertrust/key-reader.js';
import { serializeKeySet } from '../jwks/serialize.js';
import { validateKeySet } from '../jwks/validate.js';
import type { Logger } from '../observability/logger.js';
import { StoreError, type KeySetStore } from '../store/store.js';
import type { X509Certificate } from 'node:crypto';
import { auditRecord } from './audit-record.js';
import { attachCertificates, type CertificateOutcome } from './attach-certificates.js';
import { convertCmKey, type Conversion } from './cm-key-to-jwk.js';
import { checkGuards, checkSetCaps, type GuardRefusal } from './guards.js';
import { serializeSourceRecord } from './key-sources.js';
import { applyPublicationPolicy, type KeySource, type PlannedKey, type PolicyOutcome, type SkippedKey } from './publication-policy.js';
import type { PublicationObserver } from './publication-observer.js';
import { readPublishedState, type PublishedState } from './published-state.js';
import { writeKeySet } from './write-key-set.js';

/** What asked for a cycle: a CloudEvent (its id and type), the hourly ping, the change check, an operator, or key-rotated starting. */
export interface CycleTrigger {
  readonly kind: 'rotation' | 'ping' | 'change-check' | 'cli' | 'startup';
  readonly eventId?: string;
  readonly eventType?: string;
}

export const CYCLE_OUTCOMES = ['published', 'unchanged', 'refused', 'failed', 'dry_run'] as const;
export type CycleOutcome = (typeof CYCLE_OUTCOMES)[number];
export type CycleFailure = 'ciphertrust' | 'store' | 'invalid_output' | 'internal';

/** A key added or removed, named as CM knows it (cmKey absent: CM no longer accounts for it). */
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
  readonly filesWritten: number;
  readonly filesRemoved: number;
  /** Published kids kept as they are because CM answered their public key unreadable. */
  readonly keptUnreadable?: readonly string[];
  /** Published kids kept as they are although CM reports them in a state the publisher does not know. */
  readonly keptUnknownState?: readonly string[];
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
  /** JWKS_MAX_KEYS: a set with more keys is refused (guard max_keys). */
  readonly maxKeys: number;
  /** JWKS_CERT_TRUST_ANCHORS: a key's certificate chain is published only when it reaches one. */
  readonly certificateAnchors?: readonly X509Certificate[];
  readonly now?: () => Date;
}

/** Another writer committed between our read of the store and our commit: start over, this often. */
const MAX_ATTEMPTS_ON_CONFLICT = 3;
/**
 * The store's own files are read up to this size at least, whatever JWKS_MAX_BYTES says: a cap
 * lowered below the published set must not make that set unreadable (every cycle would fail, and a
 * compromised key could not be withdrawn); the max_bytes guard refuses what is over the cap.
 */
const MIN_READ_BYTES = 4 * 1024 * 1024;
/** Skips that are normal for a labelled CM partition (an AES key, a Public Key twin). */
const EXPECTED_SKIPS = new Set(['public_key_object', 'not_key_pair', 'unsupported_algorithm']);

/**
 * One publication: read the keys from CM and the published state from the store, apply the
 * policy, check the guards, write, and leave one audit record. Any failure before the write
 * leaves the published files untouched.
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
      result = await this.attemptUntilCommitted(options);
    } catch (error) {
      // A bug, not an outage: still one audit record and a failed answer, never a silent death.
      this.deps.logger.error({ event: 'publication_crashed', err: error }, 'publication failed unexpectedly');
      result = { ...NOTHING, outcome: 'failed', failure: 'internal', message: 'unexpected error (see publication_crashed log)' };
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.deps.observer.cycleFinished(result.outcome, seconds, this.now());
    if (result.guard !== undefined) this.deps.observer.guardRefused(result.guard.guard);
    if (options.dryRun !== true) {
      const record = auditRecord(triggers, options, result, this.deps.store.location);
      const summary = `publication ${result.outcome}: ${result.added.length} added, ${result.removed.length} removed, ${result.keys} keys`;
      if (result.outcome === 'failed' || result.outcome === 'refused') this.deps.logger.error(record, `${summary}; ${result.message ?? ''}`);
      else this.deps.logger.info(record, summary);
    }
    return result;
  }

  /**
   * A writer that read the store before another one committed would otherwise overwrite a newer
   * view (say, one without a key just compromised): on a conflict, CM is read again.
   */
  private async attemptUntilCommitted(options: CycleOptions): Promise<CycleResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(options);
      } catch (error) {
        if (!(error instanceof StoreError && error.failure === 'conflict')) throw error;
        this.deps.logger.warn({ event: 'publication_conflict', attempt }, 'another writer published meanwhile; reading CipherTrust Manager again');
        if (attempt >= MAX_ATTEMPTS_ON_CONFLICT) return { ...NOTHING, outcome: 'failed', failure: 'store', message: error.message };
      }
    }
  }

  private async attempt(options: CycleOptions): Promise<CycleResult> {
    let read: KeyReadResult;
    try {
      read = await this.deps.reader.read();
    } catch (error) {
      if (!(error instanceof CipherTrustError)) throw error;
      return { ...NOTHING, outcome: 'failed', failure: 'ciphertrust', message: error.message };
    }
    let published: PublishedState;
    try {
      published = await readPublishedState(this.deps.store, this.readLimit(), this.deps.logger);
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      return { ...NOTHING, outcome: 'failed', failure: 'store', message: error.message };
    }
    const conversions: Conversion[] = await Promise.all(read.keys.map((key) => convertCmKey(key)));
    const bare = applyPublicationPolicy(conversions, this.now(), this.deps.retainDeactivatedMs, published);
    const certificates = attachCertificates(bare.keys, read.keys, this.deps.certificateAnchors ?? [], this.now());
    const policy: PolicyOutcome = { ...bare, keys: certificates.keys };
    this.report(read, policy);
    this.reportCertificates(certificates);

    const guard = checkGuards({
      publishedKids: published.kids,
      nextKids: policy.keys.map((planned) => planned.jwk.kid),
      withdrawnKids: new Set(policy.withdrawn.keys()),
      allowEmpty: this.deps.allowEmpty,
      confirmRemoval: options.confirmRemoval === true,
    });
    if (guard !== undefined) return { ...plan(published, policy, policy.keys), outcome: 'refused', guard, message: guard.message };
    const { publishing, setBytes, capped } = this.withinCaps(published, policy);
    const planned = plan(published, policy, publishing);
    if (capped !== undefined && publishing === policy.keys) return { ...planned, outcome: 'refused', guard: capped, message: capped.message };
    if (options.dryRun === true) return { ...planned, outcome: 'dry_run', ...(capped !== undefined && { guard: capped, message: capped.message }) };

    const keys = publishing.map((key) => key.jwk);
    const invalid = checkOutput(setBytes);
    if (invalid !== undefined) return { ...planned, outcome: 'failed', failure: 'invalid_output', message: invalid };
    try {
      const report = await writeKeySet(this.deps.store, {
        keys,
        setBytes,
        sourcesBytes: serializeSourceRecord(publishing),
        current: published,
        maxBytes: this.readLimit(),
      });
      this.deps.observer.keysPublished(publishing, setBytes.length);
      for (const object of report.replacedPrivate) {
        // Someone who can write the store put private material there: replaced, and the SIEM told.
        this.deps.logger.warn(
          { event: 'published_key_file_unsafe', reason: 'private_key_material', security: true, object },
          'a stored per-key file held private key material; it was replaced by the public key',
        );
      }
      const touched = report.written.length + report.removed.length;
      return {
        ...planned,
        outcome: touched > 0 ? 'published' : 'unchanged',
        ...(capped !== undefined && { guard: capped, message: capped.message }),
        filesWritten: report.written.length,
        filesRemoved: report.removed.length,
      };
    } catch (error) {
      if (!(error instanceof StoreError) || error.failure === 'conflict') throw error;
      return { ...planned, outcome: 'failed', failure: 'store', message: error.message };
    }
  }

  private readLimit(): number {
    return Math.max(this.deps.maxSetBytes, MIN_READ_BYTES);
  }

  /**
   * The set to publish and its bytes, within JWKS_MAX_KEYS and JWKS_MAX_BYTES (`capped` absent), or
   * refused (`capped`, `publishing` the whole policy). A cap never keeps a compromised or destroyed
   * key published: when the cycle withdraws one, the withdrawal is published alone, without the keys
   * that would be added (they come once the set has room), and the refusal is still reported.
   */
  private withinCaps(published: PublishedState, policy: PolicyOutcome): { publishing: readonly PlannedKey[]; setBytes: Buffer; capped?: GuardRefusal } {
    const caps = { maxKeys: this.deps.maxKeys, maxBytes: this.deps.maxSetBytes };
    const setBytes = serializeKeySet(policy.keys.map((key) => key.jwk));
    const capped = checkSetCaps({ ...caps, keys: policy.keys.length, bytes: setBytes.length });
    if (capped === undefined) return { publishing: policy.keys, setBytes };
    if (!published.kids.some((kid) => policy.withdrawn.has(kid))) return { publishing: policy.keys, setBytes, capped };
    const publishing = policy.keys.filter((key) => published.keys.has(key.jwk.kid));
    const held = policy.keys.length - publishing.length;
    return {
      publishing,
      setBytes: serializeKeySet(publishing.map((key) => key.jwk)),
      capped: { guard: capped.guard, message: `${capped.message.replace(/; keeping the current set$/, '')}; a compromised or destroyed key is withdrawn now, ${held} new key(s) held back until the set has room` },
    };
  }

  /** Logs and counts what CM offered but will not be published as it is. */
  private report(read: KeyReadResult, policy: PolicyOutcome): void {
    const { logger, observer } = this.deps;
    logger.debug({ event: 'ciphertrust_read', keys: read.keys.length, fetched: read.fetched }, 'keys read from CipherTrust Manager');
    for (const malformed of read.malformed) {
      observer.keySkipped('malformed_resource');
      logger.warn(
        { event: 'key_skipped', reason: 'malformed_resource', cmKeyId: malformed.id, detail: malformed.problem },
        'a CipherTrust Manager key resource could not be read; skipped, the others still publish',
      );
    }
    if (read.outsideSelector.length > 0) {
      logger.warn(
        { event: 'selector_not_applied', count: read.outsideSelector.length, cmKeys: read.outsideSelector.slice(0, 20) },
        'CipherTrust Manager listed keys that do not match the label selector; they are ignored',
      );
    }
    for (const skipped of policy.skipped) this.logSkipped(skipped);
    for (const kid of policy.kept) {
      logger.warn({ event: 'key_kept_unreadable', kid }, 'CipherTrust Manager answered this published key unreadable; it stays published as it is');
    }
    observer.keysKeptUnreadable(policy.kept.length);
    for (const { kid, source } of policy.keptUnknownState) {
      // A state CM has that we do not know may mean the key must go (a new kind of revocation) or
      // must stay (a new kind of retirement): kept, and a person told, rather than guessed.
      logger.warn(
        { event: 'key_kept_unknown_state', security: true, kid, cmKey: source },
        `CipherTrust Manager reports a published key in state "${source.state}", which this publisher does not know; it stays published until an operator acts or CM moves it to a known state`,
      );
    }
    observer.keysKeptUnknownState(policy.keptUnknownState.length);
  }

  /** A key published without the certificate CM holds for it: security-relevant, never silent. */
  private reportCertificates(outcome: CertificateOutcome): void {
    for (const refused of outcome.refused) {
      this.deps.logger.warn(
        { event: 'certificate_refused', security: true, kid: refused.kid, reason: refused.problem, cmCertificate: refused.certificate, detail: refused.detail },
        `key published without its certificate chain: ${refused.detail}`,
      );
    }
    for (const object of outcome.unreadable) {
      this.deps.logger.warn({ event: 'certificate_unreadable', cmCertificate: object }, 'a CipherTrust Manager certificate object holds no readable X.509 certificate; ignored');
    }
    this.deps.observer.certificatesRefused(outcome.refused.map((refused) => refused.problem));
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
}

const NOTHING = { added: [], removed: [], keys: 0, filesWritten: 0, filesRemoved: 0 } as const;

/** What a cycle publishing `keys` changes, before it writes. */
function plan(published: PublishedState, policy: PolicyOutcome, keys: readonly PlannedKey[]) {
  return {
    ...diff(published, policy, keys),
    keys: keys.length,
    filesWritten: 0,
    filesRemoved: 0,
    ...(policy.kept.length > 0 && { keptUnreadable: policy.kept }),
    ...(policy.keptUnknownState.length > 0 && { keptUnknownState: policy.keptUnknownState.map(({ kid }) => kid) }),
  };
}

function diff(published: PublishedState, policy: PolicyOutcome, keys: readonly PlannedKey[]): { added: KeyChange[]; removed: KeyChange[] } {
  const next = new Map<string, PlannedKey>(keys.map((planned) => [planned.jwk.kid, planned]));
  const added = keys
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

/** The size is the max_bytes guard's (checkSetCaps); a withdrawal over a cap only shrinks the set. */
function checkOutput(setBytes: Buffer): string | undefined {
  try {
    validateKeySet(setBytes);
    return undefined;
  } catch (error) {
    // Unreachable unless conversion and validation disagree: never write what serving would refuse.
    return `the computed key set fails validation: ${(error as Error).message}`;
  }
}
