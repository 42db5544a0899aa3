/**
 * `GET /api/v1/vault/keys2` query semantics: filters, the label selector and skip/limit paging,
 * as a pure function over the registry's resources, and the envelope CM answers them in.
 */
import { invalidParam } from './errors.js';
import type { CmKeyResource } from './types.js';

export interface ListQuery {
  readonly skip: number;
  readonly limit: number;
  readonly name?: string;
  readonly state?: string;
  /** Case-sensitive against the stored upper-case value (reference, M): `rsa` matches nothing. */
  readonly algorithm?: string;
  readonly objectType?: string;
  readonly usageMask?: number;
  /** Every entry must hold: `[name, value]`, or `[name, undefined]` for "has the label". */
  readonly labels?: readonly (readonly [string, string | undefined])[];
  /** Optional parts of each resource asked for (`fields=links,meta`). */
  readonly fields: ReadonlySet<string>;
  /** Parameters CM's listing does not know, in the order given. */
  readonly unknownParameters: readonly string[];
}

/**
 * How the emulator shapes a listing where CM's choice is switchable, because clients must cope
 * with both: an empty page as `"resources": null` (CM's answer, M: kroxylicious' GetKeysResponse,
 * "null when total is 0"; a page past the end is taken to be the same Go nil slice, L) or `[]`;
 * and `messages` naming the query parameters CM did not understand (H: PagingInfo.Messages).
 */
export interface ListingShape {
  emptyResources: 'null' | 'array';
  queryMessages: boolean;
  /** Parameters this CM does not understand (an older version, say): not applied, named in messages. */
  ignoredParameters: readonly string[];
}

/** Query parameters CM's key listing understands (H: ListKeysParams in Thales' SPIRE plugin). */
const KNOWN_PARAMETERS: ReadonlySet<string> = new Set([
  'skip',
  'limit',
  'name',
  'state',
  'alias',
  'linkType',
  'fields',
  'usageMask',
  'metaContains',
  'objectType',
  'sha1Fingerprint',
  'sha256Fingerprint',
  'algorithm',
  'size',
  'id',
  'uuid',
  'muid',
  'keyId',
  'compareIDWithUUID',
  'version',
  'labels',
]);

export interface ListPage {
  readonly skip: number;
  readonly limit: number;
  readonly total: number;
  readonly resources: CmKeyResource[];
}

export function parseListQuery(
  given: URLSearchParams,
  paging: { readonly defaultPageSize: number; readonly maxPageSize: number },
  ignored: readonly string[] = [],
): ListQuery {
  const params = new URLSearchParams([...given].filter(([name]) => !ignored.includes(name)));
  const skip = count(params.get('skip'), 'skip') ?? 0;
  // CM documents no maximum; the emulator caps silently so clients are forced to page by `total`.
  const limit = Math.min(count(params.get('limit'), 'limit') ?? paging.defaultPageSize, paging.maxPageSize);
  const fields = parseFields(params);
  const unknownParameters = [...new Set(given.keys())].filter((name) => !KNOWN_PARAMETERS.has(name) || ignored.includes(name));
  const query: { -readonly [K in keyof ListQuery]: ListQuery[K] } = { skip, limit, fields, unknownParameters };
  for (const field of ['name', 'state', 'algorithm', 'objectType'] as const) {
    const value = params.get(field);
    if (value !== null && value !== '') query[field] = value;
  }
  const usageMask = count(params.get('usageMask'), 'usageMask');
  if (usageMask !== undefined) query.usageMask = usageMask;
  const labels = params.get('labels');
  if (labels !== null && labels !== '') query.labels = parseSelector(labels);
  return query;
}

export function applyListQuery(all: readonly CmKeyResource[], query: ListQuery): ListPage {
  const matching = all.filter(
    (key) =>
      (query.name === undefined || key.name === query.name) &&
      (query.state === undefined || key.state === query.state) &&
      (query.algorithm === undefined || key.algorithm === query.algorithm) &&
      (query.objectType === undefined || key.objectType === query.objectType) &&
      (query.usageMask === undefined || key.usageMask === query.usageMask) &&
      (query.labels ?? []).every(([name, value]) => (value === undefined ? name in key.labels : key.labels[name] === value)),
  );
  return { skip: query.skip, limit: query.limit, total: matching.length, resources: matching.slice(query.skip, query.skip + query.limit) };
}

/** `fields=links,meta`: the optional parts of a resource to include (on GET one key too, L). */
export function parseFields(params: URLSearchParams): ReadonlySet<string> {
  return new Set((params.get('fields') ?? '').split(',').map((field) => field.trim()).filter((field) => field !== ''));
}

/** The answer's envelope: CM's paging info, the page, and `messages` when there is something to say. */
export function listingEnvelope(page: ListPage, query: ListQuery, shape: ListingShape): Record<string, unknown> {
  const envelope: Record<string, unknown> = {
    skip: page.skip,
    limit: page.limit,
    total: page.total,
    resources: page.resources.length === 0 && shape.emptyResources === 'null' ? null : page.resources,
  };
  // CM's wording is not known (L); the parameter's name is what a client can act on.
  if (shape.queryMessages && query.unknownParameters.length > 0) envelope.messages = query.unknownParameters.map((name) => `Unknown query parameter: ${name}`);
  return envelope;
}

/** `a=x` or `a=x,b=y`; a bare `a` means "has label a" (selector syntax beyond `=` is not modelled). */
function parseSelector(selector: string): [string, string | undefined][] {
  return selector.split(',').map((term) => {
    const at = term.indexOf('=');
    const name = (at < 0 ? term : term.slice(0, at)).trim();
    if (name === '') throw invalidParam(`invalid labels selector ${selector}`);
    return [name, at < 0 ? undefined : term.slice(at + 1).trim()];
  });
}

/** A non-negative decimal integer, or undefined when absent; anything else is a 400. */
function count(raw: string | null, field: string): number | undefined {
  if (raw === null || raw === '') return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw invalidParam(`${field} must be a non-negative integer`);
  return Number(raw);
}
