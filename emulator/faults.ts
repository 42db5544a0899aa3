/**
 * Fault injection: latency, failed and hung requests, answers that are not JSON, cut off or
 * endless, a broken public key, a key in a state CM may have but the emulator does not model,
 * another spelling of a state, the listing's shape, short-lived or revoked tokens, and (programmatically) hooks that
 * run before a request is handled, e.g. to change keys between the pages of a listing. Driven
 * programmatically by tests and over `/emulator/v1/faults` on the local stack. Requests to the
 * fault endpoint itself are never failed, hung, corrupted, hooked or delayed, so a fault can
 * always be cleared.
 */
import { invalidParam } from './errors.js';
import { checkSpelling } from './key-states.js';
import type { TokenService } from './auth.js';
import type { ListingShape } from './key-query.js';
import type { KeyRegistry } from './objects.js';
import type { EmulatorFaults, Endpoint, FaultEndpoint } from './types.js';

export const FAULT_ENDPOINTS: readonly FaultEndpoint[] = [
  'any',
  'auth',
  'auth_revoke',
  'list',
  'get',
  'create',
  'version',
  'revoke',
  'reactivate',
  'destroy',
  'patch',
  'query',
  'scheduler',
  'other',
];

/** A PEM with valid armour and base64 whose content is not a key ("not a public key"). */
export const MALFORMED_PEM = '-----BEGIN PUBLIC KEY-----\nbm90IGEgcHVibGljIGtleQ==\n-----END PUBLIC KEY-----\n';

/** Default size of an oversized answer: far beyond anything a client should read whole. */
export const DEFAULT_OVERSIZE_BYTES = 1024 * 1024 * 1024;

/** What the answer to one request becomes (see EmulatorFaults for each kind). */
type RuleKind = 'fail' | 'hang' | 'malform' | 'truncate' | 'oversize';

interface FaultRule {
  readonly kind: RuleKind;
  readonly endpoint: FaultEndpoint;
  readonly status: number;
  /** Oversized answers: how many body bytes at most. */
  readonly bytes: number;
  remaining: number;
}

export type FaultDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'fail'; readonly status: number }
  | { readonly kind: 'hang' }
  | { readonly kind: 'malform' }
  | { readonly kind: 'truncate' }
  | { readonly kind: 'oversize'; readonly bytes: number };

/** What a request hook sees: the request as classified, before its token is checked. */
export interface HookedRequest {
  readonly endpoint: Endpoint;
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
}

export type RequestHook = (request: HookedRequest) => void;

export class FaultController implements EmulatorFaults {
  private latency = 0;
  private rules: FaultRule[] = [];
  private readonly malformed = new Set<string>();
  private readonly forced = new Set<string>();
  private hooks: RequestHook[] = [];
  private readonly listingDefaults: ListingShape;

  constructor(
    private readonly registry: KeyRegistry,
    private readonly tokens: TokenService,
    /** The routes' listing shape, changed in place; clear() restores what it was at start. */
    private readonly listing: ListingShape,
  ) {
    this.listingDefaults = { ...listing };
  }

  get latencyMs(): number {
    return this.latency;
  }

  setLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw invalidParam('latency must be a non-negative number of milliseconds');
    this.latency = ms;
  }

  failNext(options: { endpoint?: FaultEndpoint; status: number; count?: number }): void {
    if (!Number.isInteger(options.status) || options.status < 400 || options.status > 599) throw invalidParam('failNext.status must be an HTTP error status (400-599)');
    this.push('fail', options, options.status);
  }

  hangNext(options: { endpoint?: FaultEndpoint; count?: number }): void {
    this.push('hang', options);
  }

  malformNext(options: { endpoint?: FaultEndpoint; count?: number }): void {
    this.push('malform', options);
  }

  truncateNext(options: { endpoint?: FaultEndpoint; count?: number }): void {
    this.push('truncate', options);
  }

  oversizeNext(options: { endpoint?: FaultEndpoint; count?: number; bytes?: number }): void {
    const bytes = options.bytes ?? DEFAULT_OVERSIZE_BYTES;
    if (!Number.isSafeInteger(bytes) || bytes < 1) throw invalidParam('oversizeNext.bytes must be a positive integer');
    this.push('oversize', options, 0, bytes);
  }

  onRequest(hook: RequestHook): () => void {
    this.hooks.push(hook);
    return () => {
      this.hooks = this.hooks.filter((candidate) => candidate !== hook);
    };
  }

  /** Runs the request hooks, in the order they were added (never for the fault endpoint). */
  runHooks(request: HookedRequest): void {
    if (request.endpoint === 'faults') return;
    for (const hook of [...this.hooks]) hook(request);
  }

  malformPublicKey(id: string): void {
    const key = this.registry.get(id);
    if (key?.publickey === undefined) throw invalidParam(`key ${id} has no public key to malform`);
    this.registry.setPublicKeyPem(id, MALFORMED_PEM);
    this.malformed.add(id);
  }

  forceState(id: string, state: string): void {
    if (typeof state !== 'string' || state.trim() === '') throw invalidParam('forceState.state must be a non-empty string');
    this.registry.forceState(id, state);
    this.forced.add(id);
  }

  spellState(state: string, spelling: string): void {
    this.registry.spellings.set(state, spelling);
  }

  setListingShape(shape: Partial<ListingShape>): void {
    Object.assign(this.listing, checkListingShape(shape));
  }

  setTokenDuration(seconds: number): void {
    this.tokens.setDuration(seconds);
  }

  revokeAllTokens(): void {
    this.tokens.revokeAll();
  }

  /** Back to normal: no latency, pending faults or hooks, default token duration, real public keys. */
  clear(): void {
    this.latency = 0;
    this.rules = [];
    this.hooks = [];
    this.tokens.resetDuration();
    for (const id of this.malformed) this.registry.restorePublicKeyPem(id);
    this.malformed.clear();
    for (const id of this.forced) this.registry.restoreState(id);
    this.forced.clear();
    this.registry.spellings.clear();
    Object.assign(this.listing, this.listingDefaults);
  }

  /** Consumes the first pending fault matching this request, in the order they were set. */
  take(endpoint: Endpoint): FaultDecision {
    if (endpoint === 'faults') return { kind: 'none' };
    const rule = this.rules.find((candidate) => candidate.endpoint === 'any' || candidate.endpoint === endpoint);
    if (rule === undefined) return { kind: 'none' };
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.rules = this.rules.filter((candidate) => candidate !== rule);
    switch (rule.kind) {
      case 'fail':
        return { kind: 'fail', status: rule.status };
      case 'oversize':
        return { kind: 'oversize', bytes: rule.bytes };
      default:
        return { kind: rule.kind };
    }
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
    for (const field of ['hangNext', 'malformNext', 'truncateNext'] as const) {
      if (body[field] === undefined) continue;
      const spec = objectField(body[field], field);
      const options = { endpoint: endpointOf(spec.endpoint), count: countOf(spec.count) };
      steps.push(() => this[field](options));
    }
    if (body.oversizeNext !== undefined) {
      const spec = objectField(body.oversizeNext, 'oversizeNext');
      const bytes = spec.bytes === undefined ? DEFAULT_OVERSIZE_BYTES : numberField(spec.bytes, 'oversizeNext.bytes');
      if (!Number.isSafeInteger(bytes) || bytes < 1) throw invalidParam('oversizeNext.bytes must be a positive integer');
      const options = { endpoint: endpointOf(spec.endpoint), count: countOf(spec.count), bytes };
      steps.push(() => this.oversizeNext(options));
    }
    if (body.malformPublicKey !== undefined) {
      const id = body.malformPublicKey;
      if (typeof id !== 'string' || this.registry.get(id)?.publickey === undefined) throw invalidParam('malformPublicKey must be the id of a key with a public key');
      steps.push(() => this.malformPublicKey(id));
    }
    if (body.forceState !== undefined) {
      const spec = objectField(body.forceState, 'forceState');
      const { id, state } = spec;
      if (typeof id !== 'string' || this.registry.get(id) === undefined) throw invalidParam('forceState.id must be the id of a key');
      if (typeof state !== 'string' || state.trim() === '') throw invalidParam('forceState.state must be a non-empty string');
      steps.push(() => this.forceState(id, state));
    }
    if (body.spellState !== undefined) {
      const spec = objectField(body.spellState, 'spellState');
      const { state, as } = spec;
      checkSpelling(state, as);
      steps.push(() => this.spellState(state, as as string));
    }
    if (body.listingShape !== undefined) {
      const shape = checkListingShape(objectField(body.listingShape, 'listingShape'));
      steps.push(() => this.setListingShape(shape));
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

  private push(kind: RuleKind, options: { endpoint?: FaultEndpoint; count?: number }, status = 0, bytes = 0): void {
    this.rules.push({ kind, endpoint: endpointOf(options.endpoint), status, bytes, remaining: countOf(options.count) });
  }

  /** What is armed, for `GET`/`POST /emulator/v1/faults` answers. */
  describe(): Record<string, unknown> {
    return {
      latencyMs: this.latency,
      pending: this.rules.map(({ kind, endpoint, status, bytes, remaining }) =>
        kind === 'fail' ? { kind, endpoint, status, count: remaining } : kind === 'oversize' ? { kind, endpoint, bytes, count: remaining } : { kind, endpoint, count: remaining },
      ),
      malformedPublicKeys: [...this.malformed],
      forcedStates: [...this.forced],
      stateSpellings: this.registry.spellings.describe(),
      listingShape: { ...this.listing },
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

function checkListingShape(shape: Record<string, unknown>): Partial<ListingShape> {
  const { emptyResources, queryMessages, ignoredParameters } = shape;
  if (emptyResources !== undefined && emptyResources !== 'null' && emptyResources !== 'array') throw invalidParam('listingShape.emptyResources must be "null" or "array"');
  if (queryMessages !== undefined && typeof queryMessages !== 'boolean') throw invalidParam('listingShape.queryMessages must be a boolean');
  if (ignoredParameters !== undefined && (!Array.isArray(ignoredParameters) || !ignoredParameters.every((name) => typeof name === 'string'))) {
    throw invalidParam('listingShape.ignoredParameters must be an array of parameter names');
  }
  return {
    ...(emptyResources !== undefined && { emptyResources }),
    ...(queryMessages !== undefined && { queryMessages }),
    ...(ignoredParameters !== undefined && { ignoredParameters: [...ignoredParameters] }),
  };
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
