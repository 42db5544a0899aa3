/**
 * The parts of a CM key resource (GET /api/v1/vault/keys2) that publication depends on, read
 * defensively: CM's field set is documented, but some details are only known from third-party
 * clients (see ../shared/reference/ciphertrust-rest-api.md), so nothing is assumed present.
 */

/** CM key states, as CM spells them (H: reference, Thales docs and Go structs). */
export const CM_STATES = ['Pre-Active', 'Active', 'Deactivated', 'Compromised', 'Destroyed', 'Destroyed Compromised'] as const;
export type CmState = (typeof CM_STATES)[number];

/**
 * CM's protect-stop state: the key no longer protects (sign, encrypt) but still processes (verify,
 * decrypt). It exists (H: reactivation reasons ActiveProtectStopToActive and
 * DeactivatedToActiveProtectStop in Thales' Ansible collection and SPIRE plugin; the rotation
 * scheduler's replaced_key_state "ProtectStop", M), but no public source shows the string CM puts
 * in `state` (L). This is our name for it; recogniseState accepts every plausible spelling.
 */
export const PROTECT_STOP = 'Protect Stop';
/** A state this code knows what to do with. */
export type KnownState = CmState | typeof PROTECT_STOP;

/** Spellings, reduced by normalise(), of each known state. */
const SPELLINGS: ReadonlyMap<string, KnownState> = new Map<string, KnownState>([
  ...CM_STATES.map((state): [string, KnownState] => [normalise(state), state]),
  // KMIP's "Destroyed Compromised", written the other way round by some clients (L).
  ['compromiseddestroyed', 'Destroyed Compromised'],
  // Candidates for protect-stop (L): "Active Protect Stop", "ActiveProtectStop", "Protect Stop", "ProtectStop", ...
  ['activeprotectstop', PROTECT_STOP],
  ['protectstop', PROTECT_STOP],
]);

/**
 * The known state a CM state string names, or undefined for a state this code does not know.
 * Tolerant of case, spaces, hyphens and underscores: CM's exact spelling is confirmed for the six
 * KMIP states only, and a spelling we failed to foresee must not look like an unknown state.
 */
export function recogniseState(state: string): KnownState | undefined {
  return SPELLINGS.get(normalise(state));
}

function normalise(state: string): string {
  return state.toLowerCase().replace(/[\s_-]+/g, '');
}

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
  /** When the key stopped (or stops) protecting: entering protect-stop (H: field in Thales' Go structs). */
  readonly protectStopDate: string | undefined;
  /**
   * A `Certificate` object's certificate: `material` (H: the field a certificate is imported with,
   * with `certType` x509-pem or x509-der, Thales' Ansible vault_keys2_save). That a GET answers it
   * there is L: see certificate-material.ts, which reads every plausible encoding.
   */
  readonly material?: string | undefined;
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
      protectStopDate: optionalString(resource.protectStopDate),
      material: optionalString(resource.material),
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
