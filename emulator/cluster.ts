/**
 * Cluster mode: N nodes over one state, as a CipherTrust Manager cluster whose nodes replicate one
 * database and any of which answers any operation (thalesdocs, clusters-and-nodes, H). Each node
 * is an HTTPS server on its own port (same CA) with its own faults, request record and outage
 * (`down()` / `up()`), plus replication lag: a lagging node answers 404 for, and leaves out of its
 * listings, keys created (a new version is a new key) less than `lagMs` ago.
 *
 * Whether one node honours a JWT another node issued is not documented (L). `sharedTokens: true`
 * (the default) is the friendly case: any node accepts any node's JWT. `false`: a node accepts
 * only JWTs it issued itself, and answers another node's with CM's 401; users and refresh tokens
 * stay cluster-wide (they live in the replicated database).
 */
import { invalidParam, unauthorized, notFound } from './errors.js';
import { FaultController } from './faults.js';
import { createEmulatorCore, startEmulatorNode, type EmulatorCore, type EmulatorNodeHandle } from './assembly.js';
import type { TokenService } from './auth.js';
import type { ListingShape } from './key-query.js';
import type { KeyRegistry, LookupType } from './objects.js';
import { issueClientCertificate } from './tls.js';
import type { CmKeyResource, EmulatorFaults, EmulatorKeys, EmulatorOptions, RecordedRequest } from './types.js';

export interface EmulatorClusterOptions extends EmulatorOptions {
  /** How many nodes (1 to 16). `port`, when not 0, is the first node's; the others follow it. */
  nodes: number;
  /** Default true: every node accepts a JWT any node issued. False: only its own. */
  sharedTokens?: boolean;
}

export interface EmulatorNode {
  readonly index: number;
  readonly url: string;
  readonly faults: EmulatorFaults;
  readonly requests: readonly RecordedRequest[];
  clearRequests(): void;
  /** This node is down: connections refused, open ones dropped. The other nodes keep serving. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Replication lag: keys created less than `ms` ago are not on this node yet (0 = none). */
  setLag(ms: number): void;
}

export interface RunningEmulatorCluster {
  /** Every node's URL, in node order. */
  readonly urls: readonly string[];
  /** The node list as CIPHERTRUST_URL takes it: the URLs, comma-separated. */
  readonly url: string;
  readonly caFile: string;
  readonly caPem: string;
  issueClientCertificate(commonName: string): Promise<{ certFile: string; keyFile: string }>;
  /** The one key state every node serves. */
  readonly keys: EmulatorKeys;
  readonly nodes: readonly EmulatorNode[];
  setEventSink(url: string | undefined): void;
  close(): Promise<void>;
}

const MAX_NODES = 16;
/** JWTs a node remembers issuing (per-node tokens): far more than any test or local stack logs in. */
const MAX_REMEMBERED_TOKENS = 10_000;

export async function startEmulatorCluster(options: EmulatorClusterOptions): Promise<RunningEmulatorCluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > MAX_NODES) {
    throw new Error(`nodes must be an integer from 1 to ${MAX_NODES}, got ${options.nodes}`);
  }
  const core = await createEmulatorCore(options);
  const firstPort = options.port ?? 9443;
  const nodes: EmulatorNode[] = [];
  const handles: EmulatorNodeHandle[] = [];
  try {
    for (let index = 0; index < options.nodes; index++) {
      const lag = { ms: 0 };
      const tokens = options.sharedTokens === false ? nodeOwnTokens(core.tokens) : core.tokens;
      const faults = new NodeFaults(core.registry, tokens, core.listing, lag);
      const handle = await startEmulatorNode(core, firstPort === 0 ? 0 : firstPort + index, { registry: laggingView(core, lag), tokens, faults });
      handles.push(handle);
      nodes.push(clusterNode(index, handle, faults));
    }
  } catch (error) {
    await Promise.all(handles.map((handle) => handle.close()));
    throw error;
  }
  const urls = nodes.map((node) => node.url);
  core.logger.info({ event: 'listening', urls, caFile: core.tls.caFile, sharedTokens: options.sharedTokens !== false }, 'ciphertrust emulator cluster listening');
  let closing: Promise<void> | undefined;
  return {
    urls,
    url: urls.join(','),
    caFile: core.tls.caFile,
    caPem: core.tls.caPem,
    issueClientCertificate: (commonName) => issueClientCertificate(options.tlsDir, commonName),
    keys: core.registry,
    nodes,
    setEventSink: (sink) => core.notifier.setSink(sink),
    close: () => {
      core.scheduler.stop();
      closing ??= Promise.all([...handles.map((handle) => handle.close()), core.notifier.close()]).then(() =>
        core.logger.info({ event: 'shutdown' }, 'ciphertrust emulator cluster closed'),
      );
      return closing;
    },
  };
}

function clusterNode(index: number, handle: EmulatorNodeHandle, faults: NodeFaults): EmulatorNode {
  return {
    index,
    url: handle.url,
    faults: handle.faults,
    requests: handle.requests,
    clearRequests: () => {
      handle.requests.length = 0;
    },
    down: () => handle.down(),
    up: () => handle.up(),
    setLag: (ms) => faults.setLag(ms),
  };
}

/**
 * A node's faults: the usual ones plus replication lag, which `POST /emulator/v1/faults` sets on
 * that node with `{"lagMs": 2000}` (the local stack) and `clear()` ends with the rest.
 */
class NodeFaults extends FaultController {
  constructor(
    registry: KeyRegistry,
    tokens: TokenService,
    listing: ListingShape,
    private readonly lag: { ms: number },
  ) {
    super(registry, tokens, listing);
  }

  setLag(ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw invalidParam('lagMs must be a non-negative number of milliseconds');
    this.lag.ms = ms;
  }

  override apply(body: Record<string, unknown>): void {
    // Validated before anything is applied, as every other fault.
    const lagMs = body.lagMs;
    if (lagMs !== undefined && (typeof lagMs !== 'number' || !Number.isFinite(lagMs) || lagMs < 0)) throw invalidParam('lagMs must be a non-negative number of milliseconds');
    super.apply(body);
    if (typeof lagMs === 'number') this.setLag(lagMs);
  }

  override clear(): void {
    super.clear();
    this.lag.ms = 0;
  }

  override describe(): Record<string, unknown> {
    return { ...super.describe(), lagMs: this.lag.ms };
  }
}

/**
 * The registry as a lagging node serves it: reads leave out keys created less than `lag.ms` ago
 * (404 for one key, absent from listings); everything else is the shared registry itself.
 */
function laggingView(core: EmulatorCore, lag: { ms: number }): KeyRegistry {
  const { registry } = core;
  const replicated = (key: CmKeyResource): boolean => lag.ms === 0 || core.now().getTime() - Date.parse(key.createdAt) >= lag.ms;
  const visible = (key: CmKeyResource): CmKeyResource => {
    if (!replicated(key)) throw notFound();
    return key;
  };
  const overrides: Partial<Record<keyof KeyRegistry, unknown>> = {
    list: () => registry.list().filter(replicated),
    find: (ref: string, type?: LookupType, version?: number) => visible(registry.find(ref, type, version)),
    resolveId: (ref: string, type?: LookupType, version?: number) => visible(registry.find(ref, type, version)).id,
  };
  return overridden(registry, overrides);
}

/** Logins as a node with its own JWT signing key sees them: it honours only the JWTs it issued. */
function nodeOwnTokens(shared: TokenService): TokenService {
  const issued = new Set<string>();
  return overridden(shared, {
    issue: async (...args: Parameters<TokenService['issue']>) => {
      const answer = await shared.issue(...args);
      issued.add(answer.jwt);
      if (issued.size > MAX_REMEMBERED_TOKENS) issued.delete(issued.values().next().value as string);
      return answer;
    },
    verify: async (authorization: string | undefined) => {
      const principal = await shared.verify(authorization);
      const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
      if (token === undefined || !issued.has(token)) throw unauthorized('Token is invalid');
      return principal;
    },
  });
}

/** `target` with some methods replaced; every other member is the target's own, bound to it. */
function overridden<T extends object>(target: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(object, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T];
      const value: unknown = Reflect.get(object, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(object) : value;
    },
  });
}
