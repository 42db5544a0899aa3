/**
 * `POST /api/v1/vault/query-keys`: the richer key search, its criteria in a JSON body (H: the
 * body's field list in Thales' PowerShell module, CDSP-Orchestration). The emulator models the
 * criteria this project's change check and the scheduler's key query use; the answer is the
 * list's envelope (M), or ids only with `returnOnlyIDs` (shape L: a list of id strings).
 */
import { invalidParam } from './errors.js';
import type { CmKeyResource } from './types.js';

export interface KeyQuery {
  readonly skip: number;
  readonly limit: number;
  readonly returnOnlyIDs: boolean;
  readonly id?: string;
  readonly name?: string;
  readonly names?: readonly string[];
  readonly states?: readonly string[];
  readonly objectTypes?: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
  /** Epoch ms; strictly after (L: whether CM's bound is inclusive is unknown). */
  readonly updatedAfter?: number;
  readonly updatedBefore?: number;
  readonly createdAfter?: number;
}

export interface KeyQueryPage {
  readonly skip: number;
  readonly limit: number;
  readonly total: number;
  readonly resources: CmKeyResource[] | string[];
}

const DATE_FIELDS = ['updatedAfter', 'updatedBefore', 'createdAfter'] as const;
const LIST_FIELDS = ['names', 'states', 'objectTypes'] as const;

/** Validates a query-keys body; anything malformed is a 400 naming the field. */
export function parseKeyQuery(body: Record<string, unknown>, paging: { readonly defaultPageSize: number; readonly maxPageSize: number }): KeyQuery {
  const query: { -readonly [K in keyof KeyQuery]: KeyQuery[K] } = {
    skip: count(body.skip, 'skip') ?? 0,
    limit: Math.min(count(body.limit, 'limit') ?? paging.defaultPageSize, paging.maxPageSize),
    returnOnlyIDs: flag(body.returnOnlyIDs, 'returnOnlyIDs'),
  };
  for (const field of ['id', 'name'] as const) {
    const value = body[field];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string') throw invalidParam(`${field} must be a string`);
    query[field] = value;
  }
  for (const field of LIST_FIELDS) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw invalidParam(`${field} must be an array of strings`);
    query[field] = value;
  }
  if (body.labels !== undefined && body.labels !== null) {
    const labels = body.labels;
    if (typeof labels !== 'object' || Array.isArray(labels) || !Object.values(labels).every((value) => typeof value === 'string')) {
      throw invalidParam('labels must map names to strings');
    }
    query.labels = labels as Record<string, string>;
  }
  for (const field of DATE_FIELDS) {
    const value = body[field];
    if (value === undefined || value === null || value === '') continue;
    const at = typeof value === 'string' ? Date.parse(value) : Number.NaN;
    if (Number.isNaN(at)) throw invalidParam(`${field} must be an RFC 3339 date`);
    query[field] = at;
  }
  return query;
}

export function applyKeyQuery(all: readonly CmKeyResource[], query: KeyQuery): KeyQueryPage {
  const after = (date: string, bound: number | undefined): boolean => bound === undefined || Date.parse(date) > bound;
  const matching = all.filter(
    (key) =>
      (query.id === undefined || key.id === query.id) &&
      (query.name === undefined || key.name === query.name) &&
      (query.names === undefined || query.names.includes(key.name)) &&
      (query.states === undefined || query.states.includes(key.state)) &&
      (query.objectTypes === undefined || query.objectTypes.includes(key.objectType)) &&
      Object.entries(query.labels ?? {}).every(([name, value]) => key.labels[name] === value) &&
      after(key.updatedAt, query.updatedAfter) &&
      (query.updatedBefore === undefined || Date.parse(key.updatedAt) < query.updatedBefore) &&
      after(key.createdAt, query.createdAfter),
  );
  const page = matching.slice(query.skip, query.skip + query.limit);
  return { skip: query.skip, limit: query.limit, total: matching.length, resources: query.returnOnlyIDs ? page.map((key) => key.id) : page };
}

function count(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalidParam(`${field} must be a non-negative integer`);
  return value;
}

function flag(value: unknown, field: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw invalidParam(`${field} must be a boolean`);
  return value;
}
