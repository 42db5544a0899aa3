/**
 * Helpers for the manifest tests: build a kustomization with `kubectl kustomize`, parse multi-document
 * YAML, and validate an object against the JSON schema of its apiVersion/kind (kubernetes-models,
 * or a vendored CRD's OpenAPI schema: crd-schema.ts).
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Service as KnativeService } from '@kubernetes-models/knative/serving.knative.dev/v1/Service';
import { Broker } from '@kubernetes-models/knative/eventing.knative.dev/v1/Broker';
import { Trigger } from '@kubernetes-models/knative/eventing.knative.dev/v1/Trigger';
import { PingSource } from '@kubernetes-models/knative/sources.knative.dev/v1/PingSource';
import { SinkBinding } from '@kubernetes-models/knative/sources.knative.dev/v1/SinkBinding';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { crdSchemaProblems } from './crd-schema.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const knativeDir = join(repoRoot, 'knative');

/** A Kubernetes object as read from YAML: typed where every manifest agrees, open elsewhere. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name?: string;
    readonly generateName?: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly [field: string]: unknown;
}

export function isManifest(value: unknown): value is Manifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { apiVersion, kind, metadata } = value as Record<string, unknown>;
  return typeof apiVersion === 'string' && typeof kind === 'string' && typeof metadata === 'object' && metadata !== null;
}

/** `kind/name` (or `kind/generateName*`), for messages. */
export function nameOf(manifest: Manifest): string {
  const name = manifest.metadata.name ?? `${manifest.metadata.generateName ?? '?'}*`;
  return `${manifest.kind}/${name}`;
}

/** Every YAML file under `dir`, recursively, as absolute paths in a stable order. */
export function yamlFilesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...yamlFilesUnder(path));
    else if (/\.ya?ml$/.test(entry.name)) found.push(path);
  }
  return found.sort();
}

/** Path relative to the repository, for messages. */
export function fromRepo(path: string): string {
  return relative(repoRoot, path);
}

/** Parses every document of a YAML stream; throws naming the source on any error or warning. */
export function parseYamlDocuments(text: string, source: string): unknown[] {
  return parseAllDocuments(text).map((document, index) => {
    const problems = [...document.errors, ...document.warnings];
    if (problems.length > 0) {
      throw new Error(`${source} document ${index + 1}: ${problems.map((problem) => problem.message).join('; ')}`);
    }
    return document.toJS() as unknown;
  });
}

/** Parses a YAML stream of Kubernetes objects; null documents (comments only) are dropped. */
export function parseManifests(text: string, source: string): Manifest[] {
  return parseYamlDocuments(text, source)
    .filter((document) => document !== null)
    .map((document, index) => {
      if (!isManifest(document)) throw new Error(`${source} document ${index + 1} is not a Kubernetes object (apiVersion, kind, metadata)`);
      return document;
    });
}

/**
 * `kubectl kustomize <dir>`, parsed. A missing kubectl is an error, never a skip: the overlays are
 * what gets deployed, and only a build proves they compose.
 */
export async function buildKustomization(dir: string): Promise<Manifest[]> {
  let stdout: string;
  try {
    // env given explicitly: the PATH looked up is this (test) process's, as the caller sees it.
    ({ stdout } = await promisify(execFile)('kubectl', ['kustomize', dir], { env: process.env, maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    const { code, stderr } = error as { code?: unknown; stderr?: unknown };
    if (code === 'ENOENT') {
      throw new Error('kubectl is not on PATH: the manifest tests need `kubectl kustomize` to build knative/ (install kubectl)');
    }
    throw new Error(`kubectl kustomize ${fromRepo(dir)} failed: ${typeof stderr === 'string' ? stderr.trim() : String(error)}`);
  }
  return parseManifests(stdout, `kubectl kustomize ${fromRepo(dir)}`);
}

interface Validating {
  validate(): void;
}
type Schema = new (data: never) => Validating;

/** The schema-carrying model of every apiVersion/kind this deployment uses; extend it for a new kind. */
const schemas: ReadonlyMap<string, Schema> = new Map<string, Schema>([
  ['v1/Namespace', Namespace],
  ['v1/ServiceAccount', ServiceAccount],
  ['v1/ConfigMap', ConfigMap],
  ['v1/Secret', Secret],
  ['v1/PersistentVolumeClaim', PersistentVolumeClaim],
  ['networking.k8s.io/v1/NetworkPolicy', NetworkPolicy],
  ['batch/v1/CronJob', CronJob],
  ['batch/v1/Job', Job],
  ['serving.knative.dev/v1/Service', KnativeService],
  ['eventing.knative.dev/v1/Broker', Broker],
  ['eventing.knative.dev/v1/Trigger', Trigger],
  ['sources.knative.dev/v1/PingSource', PingSource],
  ['sources.knative.dev/v1/SinkBinding', SinkBinding],
  ['monitoring.coreos.com/v1/PodMonitor', PodMonitor],
  ['monitoring.coreos.com/v1/PrometheusRule', PrometheusRule],
  ['rbac.authorization.k8s.io/v1/ClusterRoleBinding', ClusterRoleBinding],
]);

interface ProbedContainer {
  ports?: { containerPort?: unknown }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
}
interface Probe {
  httpGet?: { port?: unknown };
  tcpSocket?: { port?: unknown };
  grpc?: { port?: unknown };
}

/**
 * What the API server would hold once defaulted, where the generated schemas are stricter than the
 * real API: Knative's webhook gives a probe without a port the user container's port (the schema,
 * copied from core/v1, requires one), and a SinkBinding's `status` is written by its controller
 * (the generated SinkBinding schema lists it as required). Nothing else is relaxed.
 */
function withServerDefaults(manifest: Manifest): Record<string, unknown> {
  const copy = structuredClone(manifest) as Record<string, unknown>;
  if (manifest.apiVersion === 'serving.knative.dev/v1' && manifest.kind === 'Service') {
    const spec = copy.spec as { template?: { spec?: { containers?: ProbedContainer[] } } } | undefined;
    for (const container of spec?.template?.spec?.containers ?? []) {
      const port = container.ports?.[0]?.containerPort ?? 8080;
      for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
        for (const action of [probe?.httpGet, probe?.tcpSocket, probe?.grpc]) {
          if (action !== undefined && action.port === undefined) action.port = port;
        }
      }
    }
  }
  if (manifest.apiVersion === 'sources.knative.dev/v1' && manifest.kind === 'SinkBinding' && copy.status === undefined) copy.status = {};
  return copy;
}

/**
 * Schema problems of an object: [] when valid, `undefined` when no schema module covers its
 * apiVersion/kind (the caller decides what an unknown kind means).
 */
export function schemaProblems(manifest: Manifest): string[] | undefined {
  const Model = schemas.get(`${manifest.apiVersion}/${manifest.kind}`);
  if (Model === undefined) return crdSchemaProblems(manifest)?.map((problem) => `${nameOf(manifest)}: ${problem}`);
  try {
    new Model(withServerDefaults(manifest) as never).validate();
    return [];
  } catch (error) {
    return [`${nameOf(manifest)}: ${error instanceof Error ? error.message : String(error)}`];
  }
}

export type MetricType = 'Counter' | 'Gauge' | 'Histogram' | 'Summary';

/**
 * The prom-client metrics a TypeScript source defines (`new Counter({ name: 'jwks_...' })`), by name.
 * Throws when a `name: 'jwks_...'` is not the first property of a recognised metric constructor, so
 * a metric defined another way cannot silently drop out of the comparison.
 */
export function metricsDefinedIn(source: string, file: string): Map<string, MetricType> {
  const metrics = new Map<string, MetricType>();
  for (const match of source.matchAll(/new\s+(?:Request)?(Counter|Gauge|Histogram|Summary)\s*(?:<[^>]*>)?\(\s*\{\s*name:\s*'([a-zA-Z_:][a-zA-Z0-9_:]*)'/g)) {
    metrics.set(match[2]!, match[1] as MetricType);
  }
  const named = [...source.matchAll(/name:\s*'(jwks_[a-zA-Z0-9_:]*)'/g)].map((match) => match[1]!);
  const unrecognised = named.filter((name) => !metrics.has(name));
  if (unrecognised.length > 0) throw new Error(`${file}: cannot tell the metric type of ${unrecognised.join(', ')}`);
  return metrics;
}

/** Series names a metric exposes: a histogram adds _bucket/_sum/_count, a summary _sum/_count. */
export function exposedSeries(metrics: ReadonlyMap<string, MetricType>): Set<string> {
  const series = new Set<string>();
  for (const [name, type] of metrics) {
    series.add(name);
    const suffixes = type === 'Histogram' ? ['_bucket', '_sum', '_count'] : type === 'Summary' ? ['_sum', '_count'] : [];
    for (const suffix of suffixes) series.add(name + suffix);
  }
  return series;
}

const promqlKeywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: identifiers left once strings, label matchers,
 * ranges, grouping label lists, function and aggregation calls, keywords and numbers are removed.
 */
export function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const match of stripped.matchAll(/(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = match[0];
    const after = stripped.slice(match.index + name.length).trimStart();
    if (after.startsWith('(') || promqlKeywords.has(name.toLowerCase())) continue;
    names.push(name);
  }
  return [...new Set(names)];
}
