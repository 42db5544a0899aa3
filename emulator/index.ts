/**
 * CipherTrust Manager emulator: a stand-in for CM's REST API (tokens and vault keys2) over HTTPS,
 * with fault injection and CloudEvent notifications. Used by tests and the local dev stack only;
 * never part of the runtime image.
 */
import { pino } from 'pino';
import { TokenService } from './auth.js';
import { EventNotifier } from './events.js';
import { FaultController } from './faults.js';
import { nodeCryptoKeyMaterial } from './key-material-source.js';
import { KeyRegistry } from './objects.js';
import { KeyRotationScheduler } from './scheduler.js';
import { EmulatorServer } from './server.js';
import { createTlsMaterial, issueClientCertificate } from './tls.js';
import type { EmulatorOptions, RunningEmulator } from './types.js';

export type {
  CmKeyResource,
  CreateKeyInput,
  EmulatorFaults,
  EmulatorKeys,
  EmulatorOptions,
  Endpoint,
  FaultEndpoint,
  KeyChanges,
  RecordedRequest,
  RunningEmulator,
} from './types.js';
export type { KeyMaterial, KeySpec } from './key-material.js';
export { nodeCryptoKeyMaterial, type KeyIdentity, type KeyMaterialSource } from './key-material-source.js';
export { CmError } from './errors.js';
export { EVENT_SOURCE, EVENT_TYPE_PREFIX, type KeyEventData } from './events.js';
export { DEFAULT_OVERSIZE_BYTES, MALFORMED_PEM } from './faults.js';
export { seedDemoKeys } from './seed.js';

export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
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
  const tokens = new TokenService({ users: options.users ?? { admin: 'admin' }, durationSeconds, now });
  const faults = new FaultController(registry, tokens);
  const server = new EmulatorServer(tls, { registry, scheduler, tokens, faults, paging, includePublicKeyInList: options.includePublicKeyInList ?? false }, logger);
  const port = await server.listen(host, options.port ?? 9443);
  const url = `https://${urlHost(host)}:${port}`;
  logger.info({ event: 'listening', url, caFile: tls.caFile }, 'ciphertrust emulator listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    caFile: tls.caFile,
    caPem: tls.caPem,
    issueClientCertificate: (commonName) => issueClientCertificate(options.tlsDir, commonName),
    keys: registry,
    scheduler,
    faults,
    requests: server.requests,
    clearRequests: () => {
      server.requests.length = 0;
    },
    setEventSink: (sink) => notifier.setSink(sink),
    down: () => server.stopListening(),
    up: async () => {
      await server.listen(host, port);
    },
    close: () => {
      scheduler.stop();
      closing ??= Promise.all([server.close(), notifier.close()]).then(() => logger.info({ event: 'shutdown' }, 'ciphertrust emulator closed'));
      return closing;
    },
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
