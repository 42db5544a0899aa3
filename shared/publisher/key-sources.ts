import type { PlannedKey } from './publication-policy.js';

/** One CM key object behind a published kid. No state: it changes without the kid changing. */
export interface RecordedSource {
  readonly id: string;
  readonly name: string;
  readonly version: number;
}

/** kid -> the CM objects it was published from, as recorded in jwks-sources.json. */
export type SourceRecord = ReadonlyMap<string, readonly RecordedSource[]>;

/**
 * The bytes of jwks-sources.json for a planned set: kids sorted, sources sorted by CM id, so the
 * same CM content gives the same bytes and an unchanged set rewrites nothing.
 */
export function serializeSourceRecord(keys: readonly PlannedKey[]): Buffer {
  const entries = [...keys]
    .sort((a, b) => compare(a.jwk.kid, b.jwk.kid))
    .map(({ jwk, sources }): [string, RecordedSource[]] => [
      jwk.kid,
      [...sources].sort((a, b) => compare(a.id, b.id)).map(({ id, name, version }) => ({ id, name, version })),
    ]);
  return Buffer.from(JSON.stringify({ keys: Object.fromEntries(entries) }));
}

/** Reads jwks-sources.json leniently: anything unreadable is left out (the record is a help, not a need). */
export function parseSourceRecord(bytes: Buffer): SourceRecord {
  const record = new Map<string, RecordedSource[]>();
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch {
    return record;
  }
  const keys = (document as { keys?: unknown } | null)?.keys;
  if (typeof keys !== 'object' || keys === null) return record;
  for (const [kid, sources] of Object.entries(keys)) {
    if (!Array.isArray(sources)) continue;
    const valid = sources.filter(
      (source: unknown): source is RecordedSource =>
        typeof (source as RecordedSource | null)?.id === 'string' &&
        typeof (source as RecordedSource).name === 'string' &&
        typeof (source as RecordedSource).version === 'number',
    );
    if (valid.length > 0) record.set(kid, valid);
  }
  return record;
}

/** CM id -> the kid recorded for it. */
export function kidsByCmId(record: SourceRecord): Map<string, string> {
  const kids = new Map<string, string>();
  for (const [kid, sources] of record) for (const source of sources) kids.set(source.id, kid);
  return kids;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
