/**
 * Fault injection: latency, failed and hung requests, a broken public key, short-lived or revoked
 * tokens. Driven programmatically by tests and over `/emulator/v1/faults` on the local stack.
 * Requests to the fault endpoint itself are never failed, hung or delayed, so a fault can always
 * be cleared.
 */
import { invalidParam } from './errors.js';
import type { TokenService } from './auth.js';
import type { KeyRegistry } from './objects.js';
import type { EmulatorFaults, Endpoint, FaultEndpoint } from './types.js';

export const FAULT_ENDPOINTS: readonly FaultEndpoint[] = [
  'any',
  'auth',
  'list',
  'get',
  'create',
  'version',
  'revoke',
  'reactivate',
  'destroy',
  'patch',
  'other',
];

/** A PEM with valid armour and base64 whose content is not a key ("not a public key"). */
export const MALFORMED_PEM = '-----BEGIN PUBLIC KEY-----\nbm90IGEgcHVibGljIGtleQ==\n-----END PUBLIC KEY-----\n';

interface FaultRule {
  readonly kind: 'fail' | 'hang';
  readonly endpoint: FaultEndpoint;
  readonly status: number;
  remaining: number;
}

export type FaultDecision = { readonly kind: 'none' } | { readonly kind: 'fail'; readonly status: number } | { readonly kind: 'hang' };

export class FaultController implements EmulatorFaults {
  private latency = 0;
  private rules: FaultRule[] = [];
  private readonly malformed = new Set<string>();

  constructor(
    private readonly registry: KeyRegistry,
    private readonly tokens: TokenService,
  ) {}

  get latencyMs(): number {
    return this.latency;
  }

  setLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw invalidParam('latency must be a non-negative number of milliseconds');
    this.latency = ms;
  }

  failNext(options: { endpoint?: FaultEndpoint; status: number; count?: number }): void {
    if (!Number.isInteger(options.status) || options.status < 400 || options.status > 599) throw invalidParam('failNext.status must be an HTTP error status (400-599)');
    this.rules.push({ kind: 'fail', endpoint: endpointOf(options.endpoint), status: options.status, remaining: countOf(options.count) });
  }

  hangNext(options: { endpoint?: FaultEndpoint; count?: number }): void {
    this.rules.push({ kind: 'hang', endpoint: endpointOf(options.endpoint), status: 0, remaining: countOf(options.count) });
  }

  malformPublicKey(id: string): void {
    const key = this.registry.get(id);
    if (key?.publickey === undefined) throw invalidParam(`key ${id} has no public key to malform`);
    this.registry.setPublicKeyPem(id, MALFORMED_PEM);
    this.malformed.add(id);
  }

  setTokenDuration(seconds: number): void {
    this.tokens.setDuration(seconds);
  }

  revokeAllTokens(): void {
    this.tokens.revokeAll();
  }

  /** Back to normal: no latency or pending faults, default token duration, real public keys. */
  clear(): void {
    this.latency = 0;
    this.rules = [];
    this.tokens.resetDuration();
    for (const id of this.malformed) this.registry.restorePublicKeyPem(id);
    this.malformed.clear();
  }

  /** Consumes the first pending fault matching this request, in the order they were set. */
  take(endpoint: Endpoint): FaultDecision {
    if (endpoint === 'faults') return { kind: 'none' };
    const rule = this.rules.find((candidate) => candidate.endpoint === 'any' || candidate.endpoint === endpoint);
    if (rule === undefined) return { kind: 'none' };
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.rules = this.rules.filter((candidate) => candidate !== rule);
    return rule.kind === 'fail' ? { kind: 'fail', status: rule.status } : { kind: 'hang' };
  }

  /** `POST /emulator/v1/faults`: everything is validated before anything is applied. */
  apply(body: Record<string, unknown>): void {
    const steps: (() => void)[] = [];
    if (body.latencyMs !== undefined) {
      const ms = numberField(body.latencyMs, 'latencyMs');
      steps.push(() => this.setLatency(ms));
    }
    if (body.failNext !== undefined) {
      const spec = objectField(body.failNext, 'failNext');
      const options = { endpoint: endpointOf(spec.endpoint), status: numberField(spec.status, 'failNext.status'), count: countOf(spec.count) };
      if (!Number.isInteger(options.status) || options.status < 400 || options.status > 599) throw invalidParam('failNext.status must be an HTTP error status (400-599)');
      steps.push(() => this.failNext(options));
    }
    if (body.hangNext !== undefined) {
      const spec = objectField(body.hangNext, 'hangNext');
      const options = { endpoint: endpointOf(spec.endpoint), count: countOf(spec.count) };
      steps.push(() => this.hangNext(options));
    }
    if (body.malformPublicKey !== undefined) {
      const id = body.malformPublicKey;
      if (typeof id !== 'string' || this.registry.get(id)?.publickey === undefined) throw invalidParam('malformPublicKey must be the id of a key with a public key');
      steps.push(() => this.malformPublicKey(id));
    }
    if (body.tokenDurationSeconds !== undefined) {
      const seconds = numberField(body.tokenDurationSeconds, 'tokenDurationSeconds');
      if (!Number.isInteger(seconds) || seconds < 1) throw invalidParam('tokenDurationSeconds must be a positive integer');
      steps.push(() => this.setTokenDuration(seconds));
    }
    if (body.revokeAllTokens !== undefined) {
      if (typeof body.revokeAllTokens !== 'boolean') throw invalidParam('revokeAllTokens must be a boolean');
      if (body.revokeAllTokens) steps.push(() => this.revokeAllTokens());
    }
    for (const step of steps) step();
  }

  /** What is armed, for `GET`/`POST /emulator/v1/faults` answers. */
  describe(): Record<string, unknown> {
    return {
      latencyMs: this.latency,
      pending: this.rules.map(({ kind, endpoint, status, remaining }) => (kind === 'fail' ? { kind, endpoint, status, count: remaining } : { kind, endpoint, count: remaining })),
      malformedPublicKeys: [...this.malformed],
    };
  }
}

function endpointOf(value: unknown): FaultEndpoint {
  if (value === undefined) return 'any';
  if (typeof value !== 'string' || !(FAULT_ENDPOINTS as readonly string[]).includes(value)) {
    throw invalidParam(`endpoint must be one of ${FAULT_ENDPOINTS.join(', ')}`);
  }
  return value as FaultEndpoint;
}

function countOf(value: unknown): number {
  if (value === undefined) return 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw invalidParam('count must be a positive integer');
  return value;
}

function numberField(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalidParam(`${field} must be a non-negative number`);
  return value;
}

function objectField(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidParam(`${field} must be an object`);
  return value as Record<string, unknown>;
}
