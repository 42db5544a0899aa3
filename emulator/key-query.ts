/**
 * `GET /api/v1/vault/keys2` query semantics: filters, the label selector and skip/limit paging,
 * as a pure function over the registry's resources.
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
}

export interface ListPage {
  readonly skip: number;
  readonly limit: number;
  readonly total: number;
  readonly resources: CmKeyResource[];
}

export function parseListQuery(params: URLSearchParams, paging: { readonly defaultPageSize: number; readonly maxPageSize: number }): ListQuery {
  const skip = count(params.get('skip'), 'skip') ?? 0;
  // CM documents no maximum; the emulator caps silently so clients are forced to page by `total`.
  const limit = Math.min(count(params.get('limit'), 'limit') ?? paging.defaultPageSize, paging.maxPageSize);
  const query: { -readonly [K in keyof ListQuery]: ListQuery[K] } = { skip, limit };
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
