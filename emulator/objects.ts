/**
 * The key registry: CipherTrust Manager's key objects, their states and versions, and the
 * time-driven transitions (evaluated on every read against the injected clock, so tests move time
 * instead of waiting). Both the REST routes and the programmatic `keys` API go through here, so
 * they share one set of rules.
 *
 * State rules (reference H for the names; the transitions follow KMIP, CM's model; where CM's
 * exact refusal is unknown the emulator answers 400 and says so). PS is protect-stop
 * (key-states.ts; its spelling in answers is unconfirmed):
 *   Pre-Active --activationDate <= now--> Active --protectStopDate <= now--> PS
 *   Pre-Active/Active/PS --deactivationDate <= now / revoke--> Deactivated
 *   Pre-Active/Active/PS/Deactivated --revoke KeyCompromise|CACompromise--> Compromised
 *   reactivate (reason required): Deactivated --DeactivatedToActive--> Active,
 *     Deactivated --DeactivatedToActiveProtectStop--> PS, PS --ActiveProtectStopToActive--> Active
 *   Deactivated --destroy--> Destroyed;  Compromised --destroy--> Destroyed Compromised
 */
import { X509Certificate, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { badRequest, invalidParam, keyAlreadyExists, notFound } from './errors.js';
import { fingerprints, publicKeyPem, resolveSpec, specOf, type KeyMaterial, type KeySpec } from './key-material.js';
import { generateForRequest, type KeyIdentity, type KeyMaterialSource } from './key-material-source.js';
import { COMPROMISE_REASONS, PROTECT_STOP_STATE, REACTIVATIONS, REVOCATION_REASONS, StateSpellings } from './key-states.js';
import type { CertificateInput, CmKeyResource, CreateKeyInput, EmulatorKeys, KeyChanges, StateDates } from './types.js';

export type KeyEventKind = 'created' | 'rotated' | 'state-changed' | 'destroyed';

/** Optional parts of a key resource that CM answers only when `fields` names them (reference, H). */
export type OptionalFields = ReadonlySet<string>;
const NO_OPTIONAL_FIELDS: OptionalFields = new Set();

// Fixed strings seen in CM key resources (L: taken from public examples, not from a live system).
const ACCOUNT = 'kylo:kylo:admin:accounts:kylo';
const APPLICATION = 'ncryptify:gemalto:admin:apps:kylo';

interface KeyRecord {
  readonly id: string;
  readonly uuid: string;
  readonly muid: string;
  readonly name: string;
  readonly version: number;
  readonly algorithm: 'RSA' | 'EC' | 'AES';
  readonly size: number;
  readonly curveid: string | undefined;
  readonly objectType: 'Private Key' | 'Public Key' | 'Symmetric Key' | 'Certificate';
  readonly createdAt: string;
  updatedAt: string;
  usageMask: number;
  state: string;
  labels: Record<string, string>;
  activationDate?: string;
  deactivationDate?: string;
  protectStopDate?: string;
  compromiseDate?: string;
  compromiseOccurrenceDate?: string;
  destroyDate?: string;
  revocationReason?: string;
  revocationMessage?: string;
  /** Set by the forceState fault: the state answered instead of the modelled one, until cleared. */
  stateOverride?: string;
  /** Public half only; undefined for AES and once destroyed. */
  publicKey: KeyObject | undefined;
  /** False for a 'Public Key' copy of another key's material: the source never heard of it. */
  readonly fromSource: boolean;
  readonly fingerprints: { readonly sha1: string; readonly sha256: string } | undefined;
  /** Set by test backdoors and faults: replaces the real PEM (undefined = no publickey at all). */
  pemOverride?: { readonly pem: string | undefined };
  /** The public key's PEM, exported once: a list renders every key, and 10,000 exports take seconds. */
  pem?: string;
  /** A Certificate object's certificate, PEM; answered as `material` by GET, not in listings (L). */
  certificatePem?: string;
}

export interface RegistryOptions {
  readonly now: () => Date;
  readonly rsaPublicKeyFormat: 'pkcs1' | 'spki';
  /** Where new keys' material comes from, and is destroyed. */
  readonly keyMaterial: KeyMaterialSource;
  /** Told about every change made through the API (not the test backdoors). */
  readonly onChange: (kind: KeyEventKind, resource: CmKeyResource) => void;
  /**
   * Whether a date-driven transition (activationDate or deactivationDate passing) moves updatedAt
   * to the transition date. Default true. Whether CM does is unknown (L, see
   * docs/research/ciphertrust-api.md): tests run both ways.
   */
  readonly dateTransitionsMoveUpdatedAt?: boolean;
}

/** A create request that passed validation and waits for its key material. */
export interface PreparedCreate {
  readonly spec: KeySpec;
  readonly name: string;
  readonly usageMask: number;
  readonly labels: Record<string, string>;
  readonly state: 'Pre-Active' | 'Active';
  readonly activationDate: string | undefined;
  readonly deactivationDate: string | undefined;
  readonly objectType: 'Private Key' | 'Public Key' | 'Symmetric Key';
  /** For a 'Public Key' object duplicating another key's material. */
  readonly copyOf: KeyObject | undefined;
}

/**
 * How a path's key reference is read: `?type=id|name|uri`, or inferred when `type` is absent (CM
 * infers id, uri, name, slug or alias, H: Thales' Go structs; in what order is unknown, L). The
 * emulator tries the name first, so a client that means an id must say `type=id`.
 */
export type LookupType = 'id' | 'name' | 'uri' | 'inferred';

export class KeyRegistry implements EmulatorKeys {
  private readonly records = new Map<string, KeyRecord>();
  /** Owner shown in `meta.ownerId`, as CM records the creating user (L). */
  private readonly ownerId = `local|${randomUUID()}`;
  /** How states are spelled in answers (the spellState fault). */
  readonly spellings = new StateSpellings();

  constructor(private readonly options: RegistryOptions) {}

  // ---- programmatic API (EmulatorKeys) -------------------------------------------------------

  create(input: CreateKeyInput): CmKeyResource {
    const prepared = this.prepareCreate(input, true);
    // A copy duplicates material the emulator already has: nothing to ask the source for.
    if (prepared.copyOf !== undefined) return this.insertCreated(prepared, { publicKey: prepared.copyOf });
    return this.insertCreated(prepared, this.options.keyMaterial.generate(prepared.spec, createdIdentity(prepared)));
  }

  /**
   * A `Certificate` object (objectType "Certificate", certType x509-pem/x509-der, the certificate
   * in `material`: H, Thales' Ansible vault_keys2_save). Its algorithm is its key's (L).
   */
  importCertificate(input: CertificateInput): CmKeyResource {
    const name = input.name;
    if (typeof name !== 'string' || name.trim() === '') throw invalidParam('name is required');
    this.assertNameFree(name);
    const certificate = parseCertificateMaterial(input.material, input.certType);
    const type = certificate.publicKey.asymmetricKeyType;
    const spec = type === 'rsa' ? specOf('RSA', certificate.publicKey.asymmetricKeyDetails?.modulusLength ?? 2048, undefined) : specOf('EC', 0, curveIdOf(certificate.publicKey));
    const now = this.nowIso();
    const record = this.newRecord(name, 0, spec, 'Certificate', { material: {}, fromSource: false }, now);
    record.labels = input.labels === undefined ? {} : parseLabels(input.labels);
    record.usageMask = input.usageMask === undefined ? 0 : parseUsageMask(input.usageMask);
    record.certificatePem = certificate.toString();
    record.activationDate = now;
    this.records.set(record.id, record);
    return this.notify('created', record);
  }

  rotate(id: string): CmKeyResource {
    const next = this.nextVersion(id);
    return this.insertVersion(id, this.options.keyMaterial.generate(next.spec, next.identity));
  }

  /** `compromiseOccurrenceDate` counts for a compromise only (ignored otherwise, as CM documents). */
  revoke(id: string, reason: string, details: { message?: string; compromiseOccurrenceDate?: string } = {}): CmKeyResource {
    const record = this.require(id);
    if (!REVOCATION_REASONS.includes(reason)) throw invalidParam(`invalid revocation reason ${String(reason)}`);
    const compromise = COMPROMISE_REASONS.includes(reason);
    const occurred = compromise && details.compromiseOccurrenceDate !== undefined ? parseDate(details.compromiseOccurrenceDate, 'compromiseOccurrenceDate') : undefined;
    const allowed = compromise ? ['Pre-Active', 'Active', PROTECT_STOP_STATE, 'Deactivated'] : ['Pre-Active', 'Active', PROTECT_STOP_STATE];
    // CM's exact refusal for these is not documented: 400 with a CM body.
    if (!allowed.includes(record.state)) throw badRequest(`cannot revoke a key in state ${record.state}`);
    const now = this.nowIso();
    if (compromise) {
      record.state = 'Compromised';
      record.compromiseDate = now;
      // KMIP: the creation date when the caller does not know when it happened (H: Ansible docs).
      record.compromiseOccurrenceDate = occurred ?? record.createdAt;
    } else {
      record.state = 'Deactivated';
      record.deactivationDate = now;
    }
    record.revocationReason = reason;
    if (details.message !== undefined) record.revocationMessage = details.message;
    else delete record.revocationMessage;
    return this.changed(record, 'state-changed');
  }

  /**
   * CM requires a reason (REST answers 400 without one); programmatically it defaults to
   * DeactivatedToActive, the common case in tests.
   */
  reactivate(id: string, reason = 'DeactivatedToActive'): CmKeyResource {
    const record = this.require(id);
    const transition = Object.hasOwn(REACTIVATIONS, reason) ? REACTIVATIONS[reason] : undefined;
    if (transition === undefined) throw invalidParam(`invalid reactivation reason ${reason}: one of ${Object.keys(REACTIVATIONS).join(', ')}`);
    if (record.state !== transition.from) throw badRequest(`cannot reactivate a key in state ${record.state} with reason ${reason}`);
    record.state = transition.to;
    delete record.deactivationDate;
    delete record.revocationReason;
    delete record.revocationMessage;
    // Into protect-stop: it stopped protecting now. Back to Active: a past date would stop it again.
    if (transition.to === PROTECT_STOP_STATE) record.protectStopDate = this.nowIso();
    else delete record.protectStopDate;
    return this.changed(record, 'state-changed');
  }

  destroy(id: string): CmKeyResource {
    const record = this.require(id);
    // Whether CM refuses to destroy an Active key (or deactivates it first) is unknown; KMIP
    // refuses, and so does the emulator, so clients cannot rely on destroy-while-active.
    const destroyed = record.state === 'Deactivated' ? 'Destroyed' : record.state === 'Compromised' ? 'Destroyed Compromised' : undefined;
    if (destroyed === undefined) throw badRequest(`cannot destroy a key in state ${record.state}: key must be deactivated first`);
    // The material goes once the transition is known to be allowed, and before the record changes:
    // a source that fails to destroy it leaves the key as it was, and the caller gets the error.
    if (record.fromSource) this.options.keyMaterial.destroy?.({ name: record.name, version: record.version, usageMask: record.usageMask });
    record.state = destroyed;
    record.destroyDate = this.nowIso();
    // The material is gone: no publickey from now on (fingerprints stay, as metadata).
    record.publicKey = undefined;
    delete record.pemOverride;
    return this.changed(record, 'destroyed');
  }

  patch(id: string, changes: KeyChanges | Record<string, unknown>): CmKeyResource {
    const record = this.require(id);
    const input = changes as Record<string, unknown>;
    let changed = false;
    if (input.labels !== undefined) {
      record.labels = parseLabels(input.labels);
      changed = true;
    }
    if (input.usageMask !== undefined) {
      record.usageMask = parseUsageMask(input.usageMask);
      changed = true;
    }
    if (input.activationDate !== undefined) {
      // KMIP lets the activation date change only before activation; the emulator does the same.
      if (record.state !== 'Pre-Active') throw badRequest(`activationDate cannot be changed in state ${record.state}`);
      setOptionalDate(record, 'activationDate', input.activationDate);
      changed = true;
    }
    if (input.protectStopDate !== undefined) {
      // Like the activation date: only ahead of the state it leads to.
      if (record.state !== 'Pre-Active' && record.state !== 'Active') throw badRequest(`protectStopDate cannot be changed in state ${record.state}`);
      setOptionalDate(record, 'protectStopDate', input.protectStopDate);
      changed = true;
    }
    if (input.deactivationDate !== undefined) {
      if (['Deactivated', 'Compromised', 'Destroyed', 'Destroyed Compromised'].includes(record.state)) {
        throw badRequest(`deactivationDate cannot be changed in state ${record.state}`);
      }
      setOptionalDate(record, 'deactivationDate', input.deactivationDate);
      changed = true;
    }
    if (!changed) return this.render(this.settle(record));
    return this.changed(record, 'state-changed');
  }

  setState(id: string, state: string, dates: StateDates = {}): CmKeyResource {
    const record = this.require(id, false);
    record.state = state;
    for (const field of ['deactivationDate', 'protectStopDate', 'compromiseDate'] as const) {
      const date = dates[field];
      if (date !== undefined) record[field] = parseDate(date, field);
    }
    record.updatedAt = this.nowIso();
    return this.render(this.settle(record));
  }

  setPublicKeyPem(id: string, pem: string | undefined): void {
    const record = this.require(id, false);
    record.pemOverride = { pem };
    record.updatedAt = this.nowIso();
  }

  /** Undoes setPublicKeyPem (used when faults are cleared). */
  restorePublicKeyPem(id: string): void {
    const record = this.records.get(id);
    if (record !== undefined) delete record.pemOverride;
  }

  /** The forceState fault: answered in `state` until restoreState (the model is unchanged). */
  forceState(id: string, state: string): void {
    const record = this.require(id, false);
    record.stateOverride = state;
    record.updatedAt = this.nowIso();
  }

  /** Undoes forceState (used when faults are cleared). */
  restoreState(id: string): void {
    const record = this.records.get(id);
    if (record !== undefined) delete record.stateOverride;
  }

  get(id: string, fields: OptionalFields = NO_OPTIONAL_FIELDS): CmKeyResource | undefined {
    const record = this.records.get(id);
    return record === undefined ? undefined : this.render(this.settle(record), fields, true);
  }

  list(fields: OptionalFields = NO_OPTIONAL_FIELDS): CmKeyResource[] {
    return [...this.records.values()]
      .map((record) => this.render(this.settle(record), fields))
      .sort((a, b) => (a.createdAt === b.createdAt ? compare(a.id, b.id) : compare(a.createdAt, b.createdAt)));
  }

  remove(id: string): void {
    if (!this.records.delete(id)) throw notFound();
  }

  // ---- used by the REST routes ---------------------------------------------------------------

  /** REST create: validated, then generated (off the event loop for the default source), then stored. */
  async createFromRequest(body: Record<string, unknown>): Promise<CmKeyResource> {
    if (body.objectType === 'Certificate') return this.importCertificate(body as unknown as CertificateInput);
    const prepared = this.prepareCreate(body, false);
    return this.insertCreated(prepared, await generateForRequest(this.options.keyMaterial, prepared.spec, createdIdentity(prepared)));
  }

  /** REST new version, generated like createFromRequest. */
  async rotateFromRequest(id: string): Promise<CmKeyResource> {
    const next = this.nextVersion(id);
    return this.insertVersion(id, await generateForRequest(this.options.keyMaterial, next.spec, next.identity));
  }

  // ---- used by the key-rotation scheduler (scheduler.ts): CM posts no event for these ------------

  /**
   * A new version made by the scheduler: Pre-Active until `activationDate` when one is given in the
   * future (the job's offset), Active otherwise. No onChange: CM emits nothing for a scheduled run.
   */
  rotateScheduled(id: string, activationDate?: string): CmKeyResource {
    const next = this.nextVersion(id);
    const record = this.storeVersion(id, this.options.keyMaterial.generate(next.spec, next.identity));
    if (activationDate !== undefined && Date.parse(activationDate) > this.options.now().getTime()) {
      record.state = 'Pre-Active';
      record.activationDate = parseDate(activationDate, 'activationDate');
    }
    return this.render(this.settle(record));
  }

  /** The scheduler's change to a replaced version (its state and dates), without an event. */
  scheduledChange(id: string, change: { deactivationDate?: string; protectStopDate?: string }): CmKeyResource {
    const record = this.require(id);
    if (change.deactivationDate !== undefined) record.deactivationDate = parseDate(change.deactivationDate, 'deactivationDate');
    if (change.protectStopDate !== undefined) record.protectStopDate = parseDate(change.protectStopDate, 'protectStopDate');
    record.updatedAt = this.nowIso();
    return this.render(this.settle(record));
  }

  /** Finds a key the way CM's `{id}` path segment does: by id (default), name (+version) or uri. */
  find(ref: string, type: LookupType = 'id', version?: number, fields: OptionalFields = NO_OPTIONAL_FIELDS): CmKeyResource {
    return this.render(this.settle(this.lookup(ref, type, version)), fields, true);
  }

  /** The record's id for a lookup, for the mutating calls (which take ids). */
  resolveId(ref: string, type: LookupType = 'id', version?: number): string {
    return this.lookup(ref, type, version).id;
  }

  // ---- internals -----------------------------------------------------------------------------

  /** Validates a create request (REST body or programmatic input) before any key is generated. */
  private prepareCreate(input: CreateKeyInput | Record<string, unknown>, programmatic: boolean): PreparedCreate {
    const body = input as Record<string, unknown>;
    const name = body.name;
    if (typeof name !== 'string' || name.trim() === '') throw invalidParam('name is required');
    this.assertNameFree(name);
    let copyOf: KeyObject | undefined;
    let spec: KeySpec;
    let objectType: PreparedCreate['objectType'];
    if (programmatic && body.publicKeyOf !== undefined) {
      if (typeof body.publicKeyOf !== 'string') throw invalidParam('publicKeyOf must be a key id');
      const source = this.require(body.publicKeyOf, false);
      if (source.publicKey === undefined) throw invalidParam('publicKeyOf must name a key with public material');
      copyOf = source.publicKey;
      spec = specOf(source.algorithm, source.size, source.curveid);
      // A second key pair object over the same pair (imported twice), or its public half alone.
      objectType = body.objectType === 'Private Key' ? 'Private Key' : 'Public Key';
    } else {
      spec = resolveSpec(body.algorithm, body.size, body.curveid);
      objectType = spec.algorithm === 'AES' ? 'Symmetric Key' : programmatic && body.objectType === 'Public Key' ? 'Public Key' : 'Private Key';
    }
    const state = body.state;
    if (state !== undefined && state !== 'Pre-Active' && state !== 'Active') throw invalidParam(`invalid state ${JSON.stringify(state)}`);
    const activationDate = body.activationDate === undefined ? undefined : parseDate(body.activationDate, 'activationDate');
    const deactivationDate = body.deactivationDate === undefined ? undefined : parseDate(body.deactivationDate, 'deactivationDate');
    const future = activationDate !== undefined && Date.parse(activationDate) > this.options.now().getTime();
    return {
      spec,
      name,
      // CM's default mask when none is given is not documented (L): sign|verify for key pairs,
      // encrypt|decrypt for AES, so a key created without one is at least usable.
      usageMask: body.usageMask === undefined ? (spec.algorithm === 'AES' ? 12 : 3) : parseUsageMask(body.usageMask),
      labels: body.labels === undefined ? {} : parseLabels(body.labels),
      state: state === 'Pre-Active' || future ? 'Pre-Active' : 'Active',
      activationDate,
      deactivationDate,
      objectType,
      copyOf,
    };
  }

  private insertCreated(prepared: PreparedCreate, material: KeyMaterial): CmKeyResource {
    // Checked again: another create may have taken the name while this key was generated.
    this.assertNameFree(prepared.name);
    const now = this.nowIso();
    const record = this.newRecord(prepared.name, 0, prepared.spec, prepared.objectType, { material, fromSource: prepared.copyOf === undefined }, now);
    record.usageMask = prepared.usageMask;
    record.labels = { ...prepared.labels };
    record.state = prepared.state;
    if (prepared.activationDate !== undefined) record.activationDate = prepared.activationDate;
    else if (prepared.state === 'Active') record.activationDate = now;
    if (prepared.deactivationDate !== undefined) record.deactivationDate = prepared.deactivationDate;
    this.records.set(record.id, record);
    return this.notify('created', record);
  }

  /** The algorithm parameters and identity of a key's next version (the source key's usage mask). */
  private nextVersion(id: string): { spec: KeySpec; identity: KeyIdentity } {
    const source = this.require(id);
    return {
      spec: specOf(source.algorithm, source.size, source.curveid),
      identity: { name: source.name, version: this.versionAfter(source.name), usageMask: source.usageMask },
    };
  }

  private versionAfter(name: string): number {
    return Math.max(...[...this.records.values()].filter((record) => record.name === name).map((record) => record.version)) + 1;
  }

  /** A new version of the key named by `id`: new id and material, same metadata, state Active. */
  private insertVersion(id: string, material: KeyMaterial): CmKeyResource {
    return this.notify('rotated', this.storeVersion(id, material));
  }

  private storeVersion(id: string, material: KeyMaterial): KeyRecord {
    const source = this.require(id);
    // Computed again: with the default source another version may have been stored meanwhile.
    const version = this.versionAfter(source.name);
    const now = this.nowIso();
    const record = this.newRecord(source.name, version, specOf(source.algorithm, source.size, source.curveid), source.objectType, { material, fromSource: true }, now);
    record.usageMask = source.usageMask;
    record.labels = { ...source.labels };
    record.state = 'Active';
    record.activationDate = now;
    this.records.set(record.id, record);
    return record;
  }

  private newRecord(
    name: string,
    version: number,
    spec: KeySpec,
    objectType: KeyRecord['objectType'],
    { material, fromSource }: { material: KeyMaterial; fromSource: boolean },
    now: string,
  ): KeyRecord {
    const uuid = randomUUID();
    return {
      id: randomBytes(32).toString('hex'),
      uuid,
      // CM's muid is a uuid followed by more hex (L); nothing should parse it.
      muid: uuid + randomBytes(16).toString('hex'),
      name,
      version,
      algorithm: spec.algorithm,
      size: spec.size,
      curveid: spec.algorithm === 'EC' ? spec.curveid : undefined,
      objectType,
      createdAt: now,
      updatedAt: now,
      usageMask: 0,
      state: 'Active',
      labels: {},
      publicKey: material.publicKey,
      fromSource,
      fingerprints: material.publicKey === undefined ? undefined : fingerprints(material.publicKey),
    };
  }

  private lookup(ref: string, type: LookupType, version?: number): KeyRecord {
    if (type === 'inferred') {
      const named = [...this.records.values()].some((record) => record.name === ref);
      return named ? this.lookup(ref, 'name', version) : this.records.has(ref) ? this.lookup(ref, 'id', version) : this.lookup(ref, 'uri', version);
    }
    if (type === 'id') return this.require(ref, false);
    const candidates = [...this.records.values()].filter((record) =>
      type === 'name' ? record.name === ref : `kylo:kylo:vault:keys:${record.name}-v${record.version}` === ref,
    );
    const chosen =
      version === undefined
        ? candidates.reduce<KeyRecord | undefined>((latest, record) => (latest === undefined || record.version > latest.version ? record : latest), undefined)
        : candidates.find((record) => record.version === version);
    if (chosen === undefined) throw notFound();
    return chosen;
  }

  private require(id: string, settle = true): KeyRecord {
    const record = this.records.get(id);
    if (record === undefined) throw notFound();
    return settle ? this.settle(record) : record;
  }

  private assertNameFree(name: string): void {
    for (const record of this.records.values()) {
      if (record.name === name) throw keyAlreadyExists(name);
    }
  }

  /**
   * Applies the transitions whose date has passed. updatedAt becomes the transition date (not the
   * read time), so what a client sees does not depend on when it happened to look.
   */
  private settle(record: KeyRecord): KeyRecord {
    const now = this.options.now().getTime();
    const due = (date: string | undefined): date is string => date !== undefined && Date.parse(date) <= now;
    const moves = this.options.dateTransitionsMoveUpdatedAt ?? true;
    if (record.state === 'Pre-Active' && due(record.activationDate)) {
      record.state = 'Active';
      if (moves) record.updatedAt = later(record.updatedAt, record.activationDate);
    }
    if (record.state === 'Active' && due(record.protectStopDate)) {
      record.state = PROTECT_STOP_STATE;
      record.updatedAt = later(record.updatedAt, record.protectStopDate);
    }
    if ((record.state === 'Active' || record.state === 'Pre-Active' || record.state === PROTECT_STOP_STATE) && due(record.deactivationDate)) {
      record.state = 'Deactivated';
      if (moves) record.updatedAt = later(record.updatedAt, record.deactivationDate);
    }
    return record;
  }

  private changed(record: KeyRecord, kind: KeyEventKind): CmKeyResource {
    record.updatedAt = this.nowIso();
    return this.notify(kind, record);
  }

  private notify(kind: KeyEventKind, record: KeyRecord): CmKeyResource {
    const resource = this.render(this.settle(record));
    this.options.onChange(kind, resource);
    return resource;
  }

  private nowIso(): string {
    return this.options.now().toISOString();
  }

  /** `single`: the answer to a GET of one object, which alone carries a certificate's material. */
  private render(record: KeyRecord, fields: OptionalFields = NO_OPTIONAL_FIELDS, single = false): CmKeyResource {
    const resource: CmKeyResource = {
      id: record.id,
      uri: `kylo:kylo:vault:keys:${record.name}-v${record.version}`,
      account: ACCOUNT,
      application: APPLICATION,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      name: record.name,
      version: record.version,
      algorithm: record.algorithm,
      size: record.size,
      usageMask: record.usageMask,
      objectType: record.objectType,
      state: record.stateOverride ?? this.spellings.spell(record.state),
      labels: { ...record.labels },
      unexportable: false,
      undeletable: false,
      neverExported: true,
      neverExportable: false,
      aliases: [],
      uuid: record.uuid,
      muid: record.muid,
    };
    if (fields.has('links')) resource.links = [];
    if (record.certificatePem !== undefined) {
      resource.certType = 'x509-pem';
      if (single) resource.material = record.certificatePem;
    }
    if (fields.has('meta')) resource.meta = { ownerId: this.ownerId };
    if (record.curveid !== undefined) resource.curveid = record.curveid;
    if (record.publicKey !== undefined) record.pem ??= pemOf(record.publicKey, this.options.rsaPublicKeyFormat);
    const pem = record.pemOverride !== undefined ? record.pemOverride.pem : record.publicKey === undefined ? undefined : record.pem;
    if (pem !== undefined) resource.publickey = pem;
    if (record.fingerprints !== undefined) {
      resource.sha1Fingerprint = record.fingerprints.sha1;
      resource.sha256Fingerprint = record.fingerprints.sha256;
    }
    for (const field of [
      'activationDate',
      'protectStopDate',
      'deactivationDate',
      'compromiseOccurrenceDate',
      'compromiseDate',
      'destroyDate',
      'revocationReason',
      'revocationMessage',
    ] as const) {
      const value = record[field];
      if (value !== undefined) resource[field] = value;
    }
    return resource;
  }
}

function createdIdentity(prepared: PreparedCreate): KeyIdentity {
  return { name: prepared.name, version: 0, usageMask: prepared.usageMask };
}

function pemOf(publicKey: KeyObject | undefined, format: 'pkcs1' | 'spki'): string | undefined {
  return publicKey === undefined ? undefined : publicKeyPem(publicKey, format);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function later(a: string, b: string): string {
  return Date.parse(b) > Date.parse(a) ? b : a;
}

/** ISO 8601 in, normalised ISO 8601 with `Z` out. */
function parseDate(value: unknown, field: string): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw invalidParam(`${field} must be an ISO 8601 date`);
  return new Date(value).toISOString();
}

/** PATCH: a date, or null to clear it (the emulator's choice; CM's way to clear is unknown). */
function setOptionalDate(record: KeyRecord, field: 'activationDate' | 'protectStopDate' | 'deactivationDate', value: unknown): void {
  if (value === null) delete record[field];
  else record[field] = parseDate(value, field);
}

function parseUsageMask(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw invalidParam('usageMask must be a non-negative integer');
  return value;
}

function parseLabels(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidParam('labels must be an object');
  const labels: Record<string, string> = {};
  for (const [key, label] of Object.entries(value)) {
    if (key === '' || typeof label !== 'string') throw invalidParam('labels must map names to strings');
    labels[key] = label;
  }
  return labels;
}

/** A certificate import's material: PEM for x509-pem (or no certType), base64 DER for x509-der. */
function parseCertificateMaterial(material: unknown, certType: unknown): X509Certificate {
  if (typeof material !== 'string' || material.trim() === '') throw invalidParam('material is required for a Certificate object');
  if (certType !== undefined && certType !== 'x509-pem' && certType !== 'x509-der') throw invalidParam(`invalid certType ${JSON.stringify(certType)}`);
  try {
    return new X509Certificate(certType === 'x509-der' ? Buffer.from(material, 'base64') : material);
  } catch {
    throw invalidParam('material is not an X.509 certificate');
  }
}

const CM_CURVE_BY_NODE_CURVE: Readonly<Record<string, string>> = { prime256v1: 'prime256v1', secp384r1: 'secp384r1', secp521r1: 'secp521r1' };

function curveIdOf(publicKey: KeyObject): string {
  const curve = publicKey.asymmetricKeyDetails?.namedCurve ?? '';
  const id = CM_CURVE_BY_NODE_CURVE[curve];
  if (id === undefined) throw invalidParam(`certificate key curve ${curve || publicKey.asymmetricKeyType || 'unknown'} is not supported`);
  return id;
}
