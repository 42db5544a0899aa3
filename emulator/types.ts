/**
 * The emulator's public types. Other code (publisher tests, the local stack) depends on these
 * shapes exactly; CmKeyResource mirrors the key resource of CipherTrust Manager's
 * `/api/v1/vault/keys2` (see ../../shared/reference/ciphertrust-rest-api.md).
 */
import type { Logger } from 'pino';
import type { KeyMaterialSource } from './key-material-source.js';

export interface EmulatorOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 9443; 0 = ephemeral. */
  port?: number;
  /** ca.pem, the server certificate and key, issued client certificates. Created if missing. */
  tlsDir: string;
  /** username -> password (a user of the root domain) or a user in another domain; default { admin: 'admin' }. */
  users?: Record<string, string | EmulatorUser>;
  /** Clients registered for the client_credential grant (also: RunningEmulator.logins.registerClient). */
  clients?: ClientRegistration[];
  /** Lifetime of refresh tokens whose login sets none (`refresh_token_lifetime`); default: they never expire, as CM's. */
  refreshTokenLifetimeMinutes?: number;
  /** Default 300 (CM's default). */
  tokenDurationSeconds?: number;
  /** PEM of RSA `publickey`: 'pkcs1' = BEGIN RSA PUBLIC KEY (default), 'spki' = BEGIN PUBLIC KEY. EC is always SPKI. */
  rsaPublicKeyFormat?: 'pkcs1' | 'spki';
  /** Default false: the list omits `publickey`, GET by id includes it. */
  includePublicKeyInList?: boolean;
  /** An empty page as `"resources": null` (default, as CM answers) or `[]`. Switchable by the listingShape fault. */
  emptyListing?: 'null' | 'array';
  /** Default true: a listing names the query parameters CM does not know in `messages`, as CM does. */
  queryMessages?: boolean;
  /** Default 10 (CM's default). */
  defaultPageSize?: number;
  /** Default 1000: a larger `limit` is capped silently. */
  maxPageSize?: number;
  /** When set, key changes POST a binary-mode CloudEvent there. */
  eventSink?: string;
  /**
   * Where new keys' material is generated (create and new versions, programmatic and REST) and
   * destroyed. Default: node:crypto, public halves only. End-to-end tests plug in a PKCS#11 token.
   */
  keyMaterial?: KeyMaterialSource;
  /**
   * How often the key-rotation scheduler looks for due work, in ms (default 1000; 0 = never: the
   * test drives it with `scheduler.runDue()` after moving the injected clock).
   */
  schedulerTickMs?: number;
  /**
   * Whether a date-driven transition moves the key's updatedAt to the transition date (default
   * true). Whether CM does is unknown: the change check must converge either way.
   */
  dateTransitionsMoveUpdatedAt?: boolean;
  /** Injectable clock for state transitions, dates and token lifetimes. */
  now?: () => Date;
  logger?: Logger;
}

/** A CM user: created in `authDomain` (default root), may work there and in `domains`. */
export interface EmulatorUser {
  password: string;
  authDomain?: string;
  domains?: string[];
}

/**
 * A client registered for the client_credential grant, bound to a certificate from the emulator's
 * CA by its CN or its SHA-256 fingerprint (hex, colons allowed). clientId: random when not given.
 */
export interface ClientRegistration {
  clientId?: string;
  commonName?: string;
  certificateFingerprint?: string;
  /** The domain the client works in; default root. */
  domain?: string;
}

/** Logins as the emulator saw them: refresh tokens issued (never the tokens) and client registrations. */
export interface EmulatorLogins {
  /** Every refresh token issued since start (logins and renewals), revoked and expired ones included. */
  readonly refreshTokensIssued: number;
  listRefreshTokens(): { id: string; username: string; domain: string; clientId: string; createdAt: string; expiresAt: string | undefined; revoked: boolean; expired: boolean }[];
  /** Returns the client id. */
  registerClient(registration: ClientRegistration): string;
}

export type Endpoint = 'auth' | 'auth_revoke' | 'list' | 'get' | 'create' | 'version' | 'revoke' | 'reactivate' | 'destroy' | 'patch' | 'faults' | 'query' | 'scheduler' | 'other';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** 0 for a request the emulator was told to hang (never answered). */
  status: number;
  endpoint: Endpoint;
  grantType?: string;
  /** Oversized answers only: body bytes written before the client hung up (or the limit was reached). */
  bytesSent?: number;
}

export interface CreateKeyInput {
  name: string;
  algorithm: 'rsa' | 'ec' | 'aes';
  size?: number;
  curveid?: string;
  usageMask?: number;
  labels?: Record<string, string>;
  state?: 'Pre-Active' | 'Active';
  activationDate?: string;
  deactivationDate?: string;
  /** Programmatic only: 'Public Key' makes a standalone public key object. */
  objectType?: 'Private Key' | 'Public Key';
  /**
   * Programmatic only: this key id's material again, with no new key generated. With objectType
   * 'Public Key' (the default here) the pair's standalone public half; with 'Private Key' a second
   * key pair object holding the same pair, as when the same key is imported into CM twice.
   */
  publicKeyOf?: string;
}

/** A certificate import (REST: POST /vault/keys2 with objectType "Certificate"). */
export interface CertificateInput {
  name: string;
  /** PEM (x509-pem), or base64 DER (x509-der). */
  material: string;
  certType?: 'x509-pem' | 'x509-der';
  labels?: Record<string, string>;
  usageMask?: number;
}

export type CmKeyResource = {
  id: string;
  uri: string;
  account: string;
  application: string;
  createdAt: string;
  updatedAt: string;
  name: string;
  version: number;
  algorithm: string;
  size?: number;
  curveid?: string;
  usageMask: number;
  objectType: string;
  state: string;
  labels: Record<string, string>;
  publickey?: string;
  sha1Fingerprint?: string;
  sha256Fingerprint?: string;
  unexportable: boolean;
  undeletable: boolean;
  neverExported: boolean;
  neverExportable: boolean;
  activationDate?: string;
  protectStopDate?: string;
  deactivationDate?: string;
  compromiseOccurrenceDate?: string;
  compromiseDate?: string;
  destroyDate?: string;
  revocationReason?: string;
  revocationMessage?: string;
  aliases: unknown[];
  /** Only when `fields` asks for it (`?fields=links`). */
  links?: unknown[];
  /** Only when `fields` asks for it (`?fields=meta`). */
  meta?: Record<string, unknown>;
  uuid: string;
  muid: string;
  keyId?: string;
  /** Certificate objects: x509-pem. */
  certType?: string;
  /** Certificate objects, in the GET of one object only: the certificate. */
  material?: string;
};

export type KeyChanges = Partial<Pick<CmKeyResource, 'labels' | 'usageMask' | 'activationDate' | 'protectStopDate' | 'deactivationDate'>>;

/** Dates setState may set with a state. */
export interface StateDates {
  deactivationDate?: string;
  protectStopDate?: string;
  compromiseDate?: string;
}

export interface EmulatorKeys {
  /** Same semantics as REST create. */
  create(input: CreateKeyInput): CmKeyResource;
  /** A Certificate object (as REST create with objectType "Certificate"). */
  importCertificate(input: CertificateInput): CmKeyResource;
  /** New version. */
  rotate(id: string): CmKeyResource;
  revoke(id: string, reason: string, details?: { message?: string; compromiseOccurrenceDate?: string }): CmKeyResource;
  /**
   * `reason` (default DeactivatedToActive): DeactivatedToActive, DeactivatedToActiveProtectStop
   * (into protect-stop), ActiveProtectStopToActive. REST requires it.
   */
  reactivate(id: string, reason?: string): CmKeyResource;
  destroy(id: string): CmKeyResource;
  patch(id: string, changes: KeyChanges): CmKeyResource;
  /** Test backdoor: any state string, even unknown ones. No event. */
  setState(id: string, state: string, dates?: StateDates): CmKeyResource;
  /** Test backdoor (garbage PEM, or undefined to remove it). No event. */
  setPublicKeyPem(id: string, pem: string | undefined): void;
  get(id: string): CmKeyResource | undefined;
  list(): CmKeyResource[];
  /** Test backdoor: the object disappears entirely. No event. */
  remove(id: string): void;
}

/** A key-rotation job as the programmatic API takes it (REST: /api/v1/scheduler/job-configs). */
export interface KeyRotationJobInput {
  name: string;
  /** query-keys criteria selecting the keys to rotate, e.g. `{ names: ['signing'] }` or `{ labels: { jwks: 'publish' } }`. */
  keyQuery: Record<string, unknown>;
  /** Run period. CM schedules with cron (minute granularity); seconds let tests and the bench go faster. */
  everySeconds: number;
  /** Seconds until the new version activates: it starts Pre-Active (CM's `offset`). Default 0. */
  offsetSeconds?: number;
  /** 'Deactivated' (default) or 'ProtectStop'. */
  replacedKeyState?: string;
  /** Seconds after the run the replaced version takes replacedKeyState; absent = it is left as it is. */
  changeStateAfterSeconds?: number;
}

export interface KeyRotationJob extends Required<Omit<KeyRotationJobInput, 'changeStateAfterSeconds'>> {
  readonly id: string;
  readonly changeStateAfterSeconds?: number;
  readonly nextRunAt: string;
  readonly runs: number;
}

/** CM's key-rotation scheduler. None of it posts an event, as in CM. */
export interface EmulatorScheduler {
  create(input: KeyRotationJobInput): KeyRotationJob;
  list(): KeyRotationJob[];
  remove(id: string): void;
  /** Runs the job now, whatever its schedule; returns the new versions. */
  runNow(id: string): CmKeyResource[];
  /** Does whatever is due at the emulator's now(); returns the new versions. */
  runDue(): CmKeyResource[];
}

export type FaultEndpoint = Endpoint | 'any';

export interface EmulatorFaults {
  /** Added to every API response. */
  setLatency(ms: number): void;
  /** The next `count` (default 1) matching requests get a CM-shaped error body with that status. */
  failNext(options: { endpoint?: FaultEndpoint; status: number; count?: number }): void;
  /** The next `count` (default 1) matching requests are accepted and never answered. */
  hangNext(options: { endpoint?: FaultEndpoint; count?: number }): void;
  /** The next `count` (default 1) matching answers keep their status but their body is not JSON. */
  malformNext(options: { endpoint?: FaultEndpoint; count?: number }): void;
  /** The next `count` (default 1) matching answers declare their full length, stop half-way and drop the connection. */
  truncateNext(options: { endpoint?: FaultEndpoint; count?: number }): void;
  /**
   * The next `count` (default 1) matching requests are answered 200 with a key listing that does
   * not end: `bytes` (default 1 GiB) of JSON, streamed as the client reads, until it hangs up.
   */
  oversizeNext(options: { endpoint?: FaultEndpoint; count?: number; bytes?: number }): void;
  /**
   * Programmatic only: `hook` runs before every API request is handled (after latency, before the
   * token is checked), e.g. to change keys between the pages of a listing. Returns its remover;
   * clear() removes every hook.
   */
  onRequest(hook: (request: { endpoint: Endpoint; method: string; path: string; query: Readonly<Record<string, string>> }) => void): () => void;
  /** That key's publickey becomes an invalid PEM (until clear()). */
  malformPublicKey(id: string): void;
  /**
   * That key is answered in `state` (until clear()): a state CM may have that the emulator does
   * not model. Its real state is kept and comes back on clear(). Moves updatedAt, as a change does.
   */
  forceState(id: string, state: string): void;
  /**
   * Every key in a modelled state (e.g. 'Active Protect Stop', 'Deactivated') is answered with
   * `spelling` instead (until clear()): CM's protect-stop spelling is unconfirmed.
   */
  spellState(state: string, spelling: string): void;
  /**
   * How listings are shaped (until clear(), which restores the EmulatorOptions): an empty page as
   * null or [], messages for unknown parameters, and parameters not understood at all (an older
   * CM: not applied, and named in messages).
   */
  setListingShape(shape: { emptyResources?: 'null' | 'array'; queryMessages?: boolean; ignoredParameters?: readonly string[] }): void;
  /** For new tokens. */
  setTokenDuration(seconds: number): void;
  /** Every JWT issued so far gets 401 (refresh tokens stay valid). */
  revokeAllTokens(): void;
  clear(): void;
}

export interface RunningEmulator {
  readonly url: string;
  readonly caFile: string;
  readonly caPem: string;
  issueClientCertificate(commonName: string): Promise<{ certFile: string; keyFile: string }>;
  readonly keys: EmulatorKeys;
  readonly scheduler: EmulatorScheduler;
  readonly faults: EmulatorFaults;
  readonly logins: EmulatorLogins;
  readonly requests: readonly RecordedRequest[];
  clearRequests(): void;
  setEventSink(url: string | undefined): void;
  /** CM is down: stops listening (connections are refused) and drops open connections. Keys are kept. */
  down(): Promise<void>;
  /** CM is back, on the same address and port. */
  up(): Promise<void>;
  close(): Promise<void>;
}
