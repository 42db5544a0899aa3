import { Counter, Gauge, Histogram, Registry, collectProcessMetricsSoon } from './prometheus.js';
import type { CipherTrustEndpoint } from '../ciphertrust/errors.js';
import { parseCertificate } from '../jwks/x509.js';
import { CERTIFICATE_PROBLEMS, type CertificateProblem } from '../publisher/certificate-chain.js';
import { SKIP_REASONS, type SkipReason } from '../publisher/cm-key-to-jwk.js';
import { GUARD_NAMES, type GuardName } from '../publisher/guards.js';
import { CHECK_OUTCOMES, type CheckOutcome } from '../publisher/change-check.js';
import { CYCLE_OUTCOMES, type CycleOutcome } from '../publisher/publication-cycle.js';
import type { PublicationObserver } from '../publisher/publication-observer.js';
import type { PlannedKey } from '../publisher/publication-policy.js';

/** How key-rotated classified an incoming request. */
export const EVENT_DISPOSITIONS = ['ping', 'change_check', 'rotation', 'ignored', 'invalid', 'unauthorized', 'too_large'] as const;
export type EventDisposition = (typeof EVENT_DISPOSITIONS)[number];

/** The publisher's metrics, in a registry of its own (no prom-client global state). */
export class PublisherMetrics implements PublicationObserver {
  readonly registry = new Registry();
  private readonly lastSuccess: Gauge;
  private readonly publications: Counter<'outcome'>;
  private readonly cycleDuration: Histogram;
  private readonly guardRefusals: Counter<'guard'>;
  private readonly skipped: Counter<'reason'>;
  private readonly published: Gauge<'use' | 'state'>;
  private readonly setKeys: Gauge;
  private readonly setBytes: Gauge;
  private readonly maxKeys: Gauge;
  private readonly maxSetBytes: Gauge;
  private readonly keptUnreadable: Gauge;
  private readonly keptUnknownState: Gauge;
  private readonly certificateExpiry: Gauge<'kid'>;
  private readonly certificatesRefusedGauge: Gauge<'reason'>;
  private readonly cmRequests: Counter<'endpoint' | 'status'>;
  private readonly cmLatency: Histogram<'endpoint'>;
  private readonly cmNodeDown: Gauge<'node'>;
  private readonly cmNodeDownTotal: Counter<'node'>;
  private readonly events: Counter<'disposition'>;
  private readonly changeChecks: Counter<'outcome'>;

  constructor(options: { defaultMetrics: boolean } = { defaultMetrics: true }) {
    const registers = [this.registry];
    this.lastSuccess = new Gauge({
      name: 'jwks_publisher_last_success_timestamp_seconds',
      help: 'Unix time of the last publication cycle that ended with the store matching CipherTrust Manager.',
      registers,
    });
    this.publications = new Counter({
      name: 'jwks_publisher_publications_total',
      help: 'Publication cycles by outcome: published, unchanged, refused (a guard), failed, dry_run.',
      labelNames: ['outcome'],
      registers,
    });
    this.cycleDuration = new Histogram({
      name: 'jwks_publisher_cycle_duration_seconds',
      help: 'Duration of a publication cycle, CipherTrust Manager calls included.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.guardRefusals = new Counter({
      name: 'jwks_publisher_guard_refusals_total',
      help: 'Publications refused by a guard (empty_set, mass_removal, max_keys, max_bytes); the current files were kept (a withdrawal over a cap is published without its additions).',
      labelNames: ['guard'],
      registers,
    });
    this.skipped = new Counter({
      name: 'jwks_publisher_keys_skipped_total',
      help: 'CipherTrust Manager keys not published, per cycle, by reason; private_key_material is a security event.',
      labelNames: ['reason'],
      registers,
    });
    this.published = new Gauge({
      name: 'jwks_publisher_keys_published',
      help: 'Keys in the published set after the last successful cycle, by use and CipherTrust Manager state.',
      labelNames: ['use', 'state'],
      registers,
    });
    // The set and the caps side by side, so an alert divides one by the other (JwksKeySetNearCap).
    this.setKeys = new Gauge({
      name: 'jwks_publisher_set_keys',
      help: 'Keys in the published jwks.json after the last successful cycle.',
      registers,
    });
    this.setBytes = new Gauge({
      name: 'jwks_publisher_set_bytes',
      help: 'Size in bytes of the published jwks.json after the last successful cycle.',
      registers,
    });
    this.maxKeys = new Gauge({
      name: 'jwks_publisher_set_max_keys',
      help: 'JWKS_MAX_KEYS: a publication with more keys is refused (guard max_keys).',
      registers,
    });
    this.maxSetBytes = new Gauge({
      name: 'jwks_publisher_set_max_bytes',
      help: 'JWKS_MAX_BYTES: a larger publication is refused (guard max_bytes).',
      registers,
    });
    this.keptUnreadable = new Gauge({
      name: 'jwks_publisher_keys_kept_unreadable',
      help: 'Published keys kept as they are in the last cycle because CipherTrust Manager answered their public key unreadable.',
      registers,
    });
    this.keptUnknownState = new Gauge({
      name: 'jwks_publisher_keys_kept_unknown_state',
      help: 'Published keys kept as they are in the last cycle although CipherTrust Manager reports them in a state the publisher does not know.',
      registers,
    });
    // One series per published key with a chain: a published set holds tens of keys, not thousands.
    this.certificateExpiry = new Gauge({
      name: 'jwks_publisher_certificate_expiry_timestamp_seconds',
      help: "Unix time at which each published key's certificate (x5c[0]) expires, by kid, after the last successful cycle.",
      labelNames: ['kid'],
      registers,
    });
    this.certificatesRefusedGauge = new Gauge({
      name: 'jwks_publisher_certificates_refused',
      help: 'Keys published without x5c in the last cycle because the certificate CipherTrust Manager holds for them failed a check, by reason (public_key_mismatch, expired, not_yet_valid, untrusted_chain, key_usage).',
      labelNames: ['reason'],
      registers,
    });
    this.cmRequests = new Counter({
      name: 'jwks_ciphertrust_requests_total',
      help: 'CipherTrust Manager requests (each attempt) by endpoint and HTTP status, or timeout / network_error / too_large (an answer over 16 MiB, cut off).',
      labelNames: ['endpoint', 'status'],
      registers,
    });
    this.cmLatency = new Histogram({
      name: 'jwks_ciphertrust_request_duration_seconds',
      help: 'CipherTrust Manager request duration (each attempt) by endpoint.',
      labelNames: ['endpoint'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    // Labelled by node base URL: a cluster has a handful of nodes, so the series stay few.
    this.cmNodeDown = new Gauge({
      name: 'jwks_ciphertrust_node_down',
      help: 'CipherTrust Manager cluster nodes (CIPHERTRUST_URL lists several): 1 while a node is marked down (it failed and has not answered since).',
      labelNames: ['node'],
      registers,
    });
    this.cmNodeDownTotal = new Counter({
      name: 'jwks_ciphertrust_node_down_total',
      help: 'Times a CipherTrust Manager cluster node was marked down (connection refused, timeout or 5xx); requests moved on to the next node.',
      labelNames: ['node'],
      registers,
    });
    this.events = new Counter({
      name: 'jwks_publisher_events_total',
      help: 'Requests to key-rotated by disposition: ping, rotation, ignored (unknown type), invalid, unauthorized, too_large.',
      labelNames: ['disposition'],
      registers,
    });
    this.changeChecks = new Counter({
      name: 'jwks_publisher_change_checks_total',
      help: 'Change checks (the frequent PingSource tick) by outcome: unchanged, changed (a publication ran), due (a key date passed, or no baseline yet), failed (CM could not be asked).',
      labelNames: ['outcome'],
      registers,
    });
    // Every series an alert reads exists at 0 from the start: increase() cannot see a counter's
    // first event if the series only appears with it.
    for (const outcome of CYCLE_OUTCOMES) this.publications.labels(outcome).inc(0);
    for (const guard of GUARD_NAMES) this.guardRefusals.labels(guard).inc(0);
    for (const reason of SKIP_REASONS) this.skipped.labels(reason).inc(0);
    for (const disposition of EVENT_DISPOSITIONS) this.events.labels(disposition).inc(0);
    for (const outcome of CHECK_OUTCOMES) this.changeChecks.labels(outcome).inc(0);
    for (const reason of CERTIFICATE_PROBLEMS) this.certificatesRefusedGauge.labels(reason).set(0);
    if (options.defaultMetrics) collectProcessMetricsSoon(this.registry);
  }

  cycleFinished(outcome: CycleOutcome, seconds: number, at: Date): void {
    this.publications.inc({ outcome });
    this.cycleDuration.observe(seconds);
    if (outcome === 'published' || outcome === 'unchanged') this.lastSuccess.set(at.getTime() / 1000);
  }

  guardRefused(guard: GuardName): void {
    this.guardRefusals.inc({ guard });
  }

  keySkipped(reason: SkipReason): void {
    this.skipped.inc({ reason });
  }

  keysPublished(keys: readonly PlannedKey[], bytes: number): void {
    this.published.reset();
    for (const { jwk, sources } of keys) this.published.inc({ use: jwk.use, state: sources[0]?.state ?? 'unknown' });
    this.setKeys.set(keys.length);
    this.setBytes.set(bytes);
    this.certificateExpiry.reset();
    for (const { jwk } of keys) {
      const leaf = jwk.x5c?.[0] === undefined ? undefined : parseCertificate(Buffer.from(jwk.x5c[0], 'base64'));
      if (leaf !== undefined) this.certificateExpiry.set({ kid: jwk.kid }, leaf.validToDate.getTime() / 1000);
    }
  }

  /** The caps this process enforces, for the alert that warns before a publication is refused. */
  setCaps(maxKeys: number, maxBytes: number): void {
    this.maxKeys.set(maxKeys);
    this.maxSetBytes.set(maxBytes);
  }

  certificatesRefused(problems: readonly CertificateProblem[]): void {
    for (const reason of CERTIFICATE_PROBLEMS) this.certificatesRefusedGauge.set({ reason }, problems.filter((problem) => problem === reason).length);
  }

  keysKeptUnreadable(count: number): void {
    this.keptUnreadable.set(count);
  }

  keysKeptUnknownState(count: number): void {
    this.keptUnknownState.set(count);
  }

  ciphertrustRequest(endpoint: CipherTrustEndpoint, status: string, seconds: number): void {
    this.cmRequests.inc({ endpoint, status });
    this.cmLatency.observe({ endpoint }, seconds);
  }

  ciphertrustNodeChanged(node: string, state: 'down' | 'up'): void {
    this.cmNodeDown.set({ node }, state === 'down' ? 1 : 0);
    if (state === 'down') this.cmNodeDownTotal.inc({ node });
  }

  eventReceived(disposition: EventDisposition): void {
    this.events.inc({ disposition });
  }

  changeCheck(outcome: CheckOutcome): void {
    this.changeChecks.inc({ outcome });
  }
}
