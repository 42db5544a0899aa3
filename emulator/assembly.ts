/**
 * The parts of an emulator: a core every node shares (key registry, logins, TLS material, event
 * notifier) and the nodes that serve it, each an HTTPS server with its own port, faults and request
 * record. `startEmulator` is one node over a core; `startEmulatorCluster` is several.
 */
import { pino, type Logger } from 'pino';
import { Accounts } from './accounts.js';
import { TokenService } from './auth.js';
import { EventNotifier } from './events.js';
import { FaultController } from './faults.js';
import { nodeCryptoKeyMaterial } from './key-material-source.js';
import { KeyRegistry } from './objects.js';
import { KeyRotationScheduler } from './scheduler.js';
import { EmulatorServer } from './server.js';
import type { ListingShape } from './key-query.js';
import { createTlsMaterial, type TlsMaterial } from './tls.js';
import type { EmulatorOptions, RecordedRequest } from './types.js';

export interface EmulatorCore {
  readonly host: string;
  readonly now: () => Date;
  readonly logger: Logger;
  readonly tls: TlsMaterial;
  readonly notifier: EventNotifier;
  readonly registry: KeyRegistry;
  readonly tokens: TokenService;
  /** CM's key-rotation scheduler: cluster-wide, over the one key state; the node or cluster stops it on close. */
  readonly scheduler: KeyRotationScheduler;
  readonly paging: { readonly defaultPageSize: number; readonly maxPageSize: number };
  readonly includePublicKeyInList: boolean;
  /** How listings are shaped, cluster-wide (a CM version's behaviour); the listingShape fault changes it in place. */
  readonly listing: ListingShape;
}

export async function createEmulatorCore(options: EmulatorOptions): Promise<EmulatorCore> {
  const host = options.host ?? '127.0.0.1';
  const now = options.now ?? ((): Date => new Date());
  const logger = options.logger ?? pino({ level: 'silent' });
  const paging = {
    defaultPageSize: positiveInteger(options.defaultPageSize ?? 10, 'defaultPageSize'),
    maxPageSize: positiveInteger(options.maxPageSize ?? 1000, 'maxPageSize'),
  };
  const durationSeconds = positiveInteger(options.tokenDurationSeconds ?? 300, 'tokenDurationSeconds');

  const tls = await createTlsMaterial(options.tlsDir, host);
  const notifier = new EventNotifier(options.eventSink, now, logger);
  const registry = new KeyRegistry({
    now,
    rsaPublicKeyFormat: options.rsaPublicKeyFormat ?? 'pkcs1',
    keyMaterial: options.keyMaterial ?? nodeCryptoKeyMaterial,
    onChange: (kind, key) => notifier.publish(kind, key),
    dateTransitionsMoveUpdatedAt: options.dateTransitionsMoveUpdatedAt ?? true,
  });
  const scheduler = new KeyRotationScheduler(registry, now);
  const schedulerTickMs = options.schedulerTickMs ?? 1000;
  if (schedulerTickMs > 0) scheduler.start(schedulerTickMs);
  const refreshTokenLifetimeMinutes =
    options.refreshTokenLifetimeMinutes === undefined ? undefined : positiveInteger(options.refreshTokenLifetimeMinutes, 'refreshTokenLifetimeMinutes');
  const accounts = new Accounts(options.users ?? { admin: 'admin' }, options.clients);
  const tokens = new TokenService({ accounts, durationSeconds, refreshTokenLifetimeMinutes, now });
  const listing: ListingShape = { emptyResources: options.emptyListing ?? 'null', queryMessages: options.queryMessages ?? true, ignoredParameters: [] };
  return { host, now, logger, tls, notifier, registry, tokens, scheduler, paging, includePublicKeyInList: options.includePublicKeyInList ?? false, listing };
}

export interface EmulatorNodeHandle {
  readonly url: string;
  readonly faults: FaultController;
  readonly requests: RecordedRequest[];
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** One HTTPS server over the core; `view` replaces the registry, logins or faults it serves (a cluster node's). */
export async function startEmulatorNode(
  core: EmulatorCore,
  port: number,
  view: { registry?: KeyRegistry; tokens?: TokenService; faults?: FaultController } = {},
): Promise<EmulatorNodeHandle> {
  const registry = view.registry ?? core.registry;
  const tokens = view.tokens ?? core.tokens;
  const faults = view.faults ?? new FaultController(core.registry, tokens, core.listing);
  const server = new EmulatorServer(core.tls, { registry, scheduler: core.scheduler, tokens, faults, paging: core.paging, includePublicKeyInList: core.includePublicKeyInList, listing: core.listing }, core.logger);
  const bound = await server.listen(core.host, port);
  let listening = true;
  return {
    url: `https://${urlHost(core.host)}:${bound}`,
    faults,
    requests: server.requests,
    down: async () => {
      listening = false;
      await server.stopListening();
    },
    // Idempotent, so a test can bring every node up after each case whatever it did.
    up: async () => {
      if (listening) return;
      await server.listen(core.host, bound);
      listening = true;
    },
    close: () => server.close(),
  };
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
  return value;
}

/** A host clients can reach and the server certificate names (wildcard binds become loopback). */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
