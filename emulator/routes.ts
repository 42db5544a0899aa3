/**
 * The REST surface: which method and path reach which operation, and what each answers. Matching
 * is separate from handling so the server can classify a request (for faults and the request
 * record) before it reads the body or checks the token.
 */
import { TokenService, type ClientCertificate } from './auth.js';
import { type CmError, badRequest, invalidParam, methodNotAllowed, notFound } from './errors.js';
import type { FaultController } from './faults.js';
import { applyListQuery, listingEnvelope, parseFields, parseListQuery, type ListingShape } from './key-query.js';
import type { KeyRegistry, LookupType } from './objects.js';
import { applyKeyQuery, parseKeyQuery } from './query-keys.js';
import type { KeyRotationScheduler } from './scheduler.js';
import { createJobConfig, jobConfigView, listJobConfigs } from './scheduler-routes.js';
import type { ClientRegistration, CmKeyResource, Endpoint } from './types.js';

export interface RouteDependencies {
  readonly registry: KeyRegistry;
  readonly scheduler: KeyRotationScheduler;
  readonly tokens: TokenService;
  readonly faults: FaultController;
  readonly paging: { readonly defaultPageSize: number; readonly maxPageSize: number };
  readonly includePublicKeyInList: boolean;
  /** Switchable by the listingShape fault. */
  readonly listing: ListingShape;
}

export interface RouteContext {
  readonly query: URLSearchParams;
  readonly body: Record<string, unknown>;
  readonly certificate: ClientCertificate;
}

export interface RouteResult {
  readonly status: number;
  readonly body: unknown;
}

export interface Route {
  readonly endpoint: Endpoint;
  /** Needs `Authorization: Bearer <jwt>` (everything but the token endpoint). */
  readonly authenticated: boolean;
  handle(context: RouteContext): Promise<RouteResult>;
}

/** A request that matches no route: 404 or 405, still classified for the request record. */
export interface RouteMiss {
  readonly endpoint: Endpoint;
  readonly error: CmError;
}

const KEYS = '/api/v1/vault/keys2';
const QUERY_KEYS = '/api/v1/vault/query-keys';
const JOB_CONFIGS = '/api/v1/scheduler/job-configs';
const KEY_ACTIONS = { versions: 'version', revoke: 'revoke', reactivate: 'reactivate', destroy: 'destroy' } as const;

export function matchRoute(method: string, pathname: string, deps: RouteDependencies): Route | RouteMiss {
  const byMethod = (table: Partial<Record<string, Route>>): Route | RouteMiss => {
    const route = table[method];
    if (route !== undefined) return route;
    const allowed = Object.keys(table);
    return { endpoint: Object.values(table)[0]?.endpoint ?? 'other', error: methodNotAllowed(allowed) };
  };

  if (pathname === '/api/v1/auth/tokens') return byMethod({ POST: route('auth', false, (context) => issueToken(deps, context)) });
  // The holder revokes its refresh token by presenting it (with its client_id): no bearer needed.
  if (pathname === '/api/v1/auth/revoke') return byMethod({ POST: route('auth_revoke', false, (context) => revokeToken(deps, context)) });
  // Control API, like the fault endpoint (never faulted): refresh tokens issued, client registration.
  if (pathname === '/emulator/v1/refresh-tokens') {
    return byMethod({ GET: route('faults', true, () => ok(200, { issued: deps.tokens.refreshTokensIssued, resources: deps.tokens.listRefreshTokens() })) });
  }
  if (pathname === '/emulator/v1/clients') {
    return byMethod({ POST: route('faults', true, (context) => ok(201, { client_id: deps.tokens.registerClient(clientRegistration(context.body)) })) });
  }
  if (pathname === '/emulator/v1/faults') {
    return byMethod({
      GET: route('faults', true, () => ok(200, deps.faults.describe())),
      POST: route('faults', true, (context) => {
        deps.faults.apply(context.body);
        return ok(200, deps.faults.describe());
      }),
      DELETE: route('faults', true, () => {
        deps.faults.clear();
        return ok(200, deps.faults.describe());
      }),
    });
  }
  if (pathname === QUERY_KEYS) return byMethod({ POST: route('query', true, (context) => queryKeys(deps, context)) });
  if (pathname === JOB_CONFIGS) {
    return byMethod({
      GET: route('scheduler', true, () => ok(200, listJobConfigs(deps.scheduler))),
      POST: route('scheduler', true, (context) => ok(201, createJobConfig(deps.scheduler, context.body))),
    });
  }
  if (pathname.startsWith(`${JOB_CONFIGS}/`) && !pathname.slice(JOB_CONFIGS.length + 1).includes('/')) {
    const id = decode(pathname.slice(JOB_CONFIGS.length + 1));
    return byMethod({
      GET: route('scheduler', true, () => ok(200, jobConfigView(deps.scheduler.get(id), undefined))),
      // Answered with the removed configuration (CM's exact DELETE answer is not known).
      DELETE: route('scheduler', true, () => {
        const removed = jobConfigView(deps.scheduler.get(id), undefined);
        deps.scheduler.remove(id);
        return ok(200, removed);
      }),
    });
  }
  if (pathname === KEYS) {
    return byMethod({ GET: route('list', true, (context) => listKeys(deps, context)), POST: route('create', true, (context) => createKey(deps, context)) });
  }
  if (pathname.startsWith(`${KEYS}/`)) {
    const segments = pathname.slice(KEYS.length + 1).split('/');
    const [rawRef, action, ...rest] = segments;
    if (rawRef === undefined || rawRef === '' || rest.length > 0) return { endpoint: 'other', error: notFound() };
    if (action === undefined) {
      return byMethod({
        GET: route('get', true, (context) => ok(200, deps.registry.find(decode(rawRef), ...lookup(context.query), parseFields(context.query)))),
        PATCH: route('patch', true, (context) => ok(200, deps.registry.patch(keyId(deps, rawRef, context), context.body))),
      });
    }
    const endpoint = Object.hasOwn(KEY_ACTIONS, action) ? KEY_ACTIONS[action as keyof typeof KEY_ACTIONS] : undefined;
    if (endpoint !== undefined) return byMethod({ POST: route(endpoint, true, (context) => keyAction(deps, endpoint, keyId(deps, rawRef, context), context.body)) });
  }
  return { endpoint: 'other', error: notFound() };
}

function route(endpoint: Endpoint, authenticated: boolean, handle: (context: RouteContext) => RouteResult | Promise<RouteResult>): Route {
  // Through a promise, so a synchronous throw becomes a rejection like any other failure.
  return { endpoint, authenticated, handle: (context) => Promise.resolve(context).then(handle) };
}

function ok(status: number, body: unknown): RouteResult {
  return { status, body };
}

async function issueToken(deps: RouteDependencies, context: RouteContext): Promise<RouteResult> {
  return ok(200, await deps.tokens.issue(context.body, context.certificate));
}

function revokeToken(deps: RouteDependencies, context: RouteContext): RouteResult {
  deps.tokens.revoke(context.body);
  return ok(200, {});
}

function clientRegistration(body: Record<string, unknown>): ClientRegistration {
  return {
    clientId: optionalString(body, 'client_id'),
    commonName: optionalString(body, 'common_name'),
    certificateFingerprint: optionalString(body, 'certificate_fingerprint'),
    domain: optionalString(body, 'domain'),
  };
}

function listKeys(deps: RouteDependencies, context: RouteContext): RouteResult {
  const query = parseListQuery(context.query, deps.paging, deps.listing.ignoredParameters);
  const page = applyListQuery(deps.registry.list(query.fields), query);
  // The list may omit `publickey` (reference, M); by default it does, so clients must GET each key.
  const resources = deps.includePublicKeyInList ? page.resources : page.resources.map(withoutPublicKey);
  return ok(200, listingEnvelope({ ...page, resources }, query, deps.listing));
}

function queryKeys(deps: RouteDependencies, context: RouteContext): RouteResult {
  const page = applyKeyQuery(deps.registry.list(), parseKeyQuery(context.body, deps.paging));
  // Same rule as the list: no publickey unless the emulator is told to include it.
  const resources = deps.includePublicKeyInList || page.resources.every((item) => typeof item === 'string') ? page.resources : page.resources.map(withoutPublicKey);
  return ok(200, { ...page, resources });
}

function withoutPublicKey(resource: CmKeyResource): CmKeyResource {
  const copy = { ...resource };
  delete copy.publickey;
  return copy;
}

async function createKey(deps: RouteDependencies, context: RouteContext): Promise<RouteResult> {
  return ok(201, await deps.registry.createFromRequest(context.body));
}

async function keyAction(deps: RouteDependencies, action: 'version' | 'revoke' | 'reactivate' | 'destroy', id: string, body: Record<string, unknown>): Promise<RouteResult> {
  const { registry } = deps;
  switch (action) {
    case 'version':
      return ok(201, await registry.rotateFromRequest(id));
    case 'revoke': {
      if (typeof body.reason !== 'string') throw invalidParam('reason is required');
      return ok(200, registry.revoke(id, body.reason, { message: optionalString(body, 'message'), compromiseOccurrenceDate: optionalString(body, 'compromiseOccurrenceDate') }));
    }
    case 'reactivate': {
      // CM requires the reason (H: `reason` is required in Thales' Go structs and Ansible module).
      if (typeof body.reason !== 'string') throw invalidParam('reason is required');
      return ok(200, registry.reactivate(id, body.reason));
    }
    case 'destroy':
      return ok(200, registry.destroy(id));
  }
}

/** The key id behind a path segment, honouring `?type=id|name|uri` (and `version`) as GET does. */
function keyId(deps: RouteDependencies, rawRef: string, context: RouteContext): string {
  return deps.registry.resolveId(decode(rawRef), ...lookup(context.query));
}

function lookup(query: URLSearchParams): [LookupType, number | undefined] {
  const type = query.get('type') ?? 'inferred';
  if (type !== 'id' && type !== 'name' && type !== 'uri' && type !== 'inferred') throw invalidParam(`invalid type ${type}`);
  const rawVersion = query.get('version');
  if (rawVersion === null || rawVersion === '') return [type, undefined];
  if (!/^\d{1,9}$/.test(rawVersion)) throw invalidParam('version must be a non-negative integer');
  return [type, Number(rawVersion)];
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest('Malformed percent-encoding in path');
  }
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidParam(`${field} must be a string`);
  return value;
}

/** For the request record: the grant a token request asked for. */
export function grantTypeOf(body: Record<string, unknown>): string {
  return TokenService.grantType(body);
}
