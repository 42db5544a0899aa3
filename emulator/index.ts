/**
 * CipherTrust Manager emulator: a stand-in for CM's REST API (tokens and vault keys2) over HTTPS,
 * with fault injection and CloudEvent notifications. Used by tests and the local dev stack only;
 * never part of the runtime image.
 */
import { createEmulatorCore, startEmulatorNode } from './assembly.js';
import { issueClientCertificate } from './tls.js';
import type { EmulatorOptions, RunningEmulator } from './types.js';

export type {
  CmKeyResource,
  ClientRegistration,
  CreateKeyInput,
  EmulatorFaults,
  EmulatorKeys,
  EmulatorLogins,
  EmulatorOptions,
  EmulatorUser,
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
export { PROTECT_STOP_STATE, REACTIVATIONS } from './key-states.js';
export { seedDemoCertificates, seedDemoKeys } from './seed.js';
export { createCertificateAuthority, issueCertificate, type CertificateAuthority } from './certificate-authority.js';
export { startEmulatorCluster, type EmulatorClusterOptions, type EmulatorNode, type RunningEmulatorCluster } from './cluster.js';

export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  const core = await createEmulatorCore(options);
  const { logger, tls, registry, notifier, tokens } = core;
  const node = await startEmulatorNode(core, options.port ?? 9443);
  const url = node.url;
  logger.info({ event: 'listening', url, caFile: tls.caFile }, 'ciphertrust emulator listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    caFile: tls.caFile,
    caPem: tls.caPem,
    issueClientCertificate: (commonName) => issueClientCertificate(options.tlsDir, commonName),
    keys: registry,
    scheduler: core.scheduler,
    faults: node.faults,
    logins: tokens,
    requests: node.requests,
    clearRequests: () => {
      node.requests.length = 0;
    },
    setEventSink: (sink) => notifier.setSink(sink),
    down: () => node.down(),
    up: () => node.up(),
    close: () => {
      core.scheduler.stop();
      closing ??= Promise.all([node.close(), notifier.close()]).then(() => logger.info({ event: 'shutdown' }, 'ciphertrust emulator closed'));
      return closing;
    },
  };
}
