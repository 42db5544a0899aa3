/**
 * The parts of a CM key resource (GET /api/v1/vault/keys2) that publication depends on, read
 * defensively: CM's field set is documented, but some details are only known from third-party
 * clients (see ../shared/reference/ciphertrust-rest-api.md), so nothing is assumed present.
 */

/** CM key states, exact spelling. */
export const CM_STATES = ['Pre-Active', 'Active', 'Deactivated', 'Compromised', 'Destroyed', 'Destroyed Compromised'] as const;
export type CmState = (typeof CM_STATES)[number];

export interface CmKey {
  readonly id: string;
  readonly name: string;
  readonly version: number;
  /** "RSA", "EC", "AES", ... (compared case-insensitively). */
  readonly algorithm: string;
  readonly size: number | undefined;
  readonly curveid: string | undefined;
  readonly usageMask: number;
  /** "Private Key", "Public Key", "Symmetric Key", ... */
  readonly objectType: string;
  readonly state: string;
  readonly labels: Readonly<Record<string, string>>;
  /** PEM of the public half; the list call may omit it, GET by id returns it. */
  readonly publickey: string | undefined;
  readonly updatedAt: string;
  /** When a Pre-Active key turns Active (the change check's timer needs it). */
  readonly activationDate?: string | undefined;
  readonly deactivationDate: string | undefined;
}

export type ParsedCmKey = { readonly ok: true; readonly key: CmKey } | { readonly ok: false; readonly id: string | undefined; readonly problem: string };

export function parseCmKey(value: unknown): ParsedCmKey {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, id: undefined, problem: 'not a JSON object' };
  const resource = value as Record<string, unknown>;
  const id = typeof resource.id === 'string' && resource.id !== '' ? resource.id : undefined;
  if (id === undefined) return { ok: false, id: undefined, problem: 'no id' };
  if (typeof resource.state !== 'string') return { ok: false, id, problem: 'no state' };
  if (typeof resource.objectType !== 'string') return { ok: false, id, problem: 'no objectType' };
  if (typeof resource.algorithm !== 'string') return { ok: false, id, problem: 'no algorithm' };
  const version = resource.version ?? 0;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) return { ok: false, id, problem: 'malformed version' };
  const usageMask = resource.usageMask ?? 0;
  if (typeof usageMask !== 'number' || !Number.isSafeInteger(usageMask) || usageMask < 0) {
    return { ok: false, id, problem: 'malformed usageMask' };
  }
  return {
    ok: true,
    key: {
      id,
      name: typeof resource.name === 'string' ? resource.name : '',
      version,
      algorithm: resource.algorithm,
      size: typeof resource.size === 'number' ? resource.size : undefined,
      curveid: optionalString(resource.curveid),
      usageMask,
      objectType: resource.objectType,
      state: resource.state,
      labels: stringLabels(resource.labels),
      publickey: optionalString(resource.publickey),
      updatedAt: typeof resource.updatedAt === 'string' ? resource.updatedAt : '',
      activationDate: optionalString(resource.activationDate),
      deactivationDate: optionalString(resource.deactivationDate),
    },
  };
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function stringLabels(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}
