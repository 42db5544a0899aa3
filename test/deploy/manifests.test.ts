/**
 * The deployment manifests under knative/: they parse, the overlays build with `kubectl kustomize`,
 * every object validates against its schema, and the policies the code relies on hold on what an
 * overlay actually deploys. Each policy is a function over the built objects; the "flags" tests
 * feed it a deliberately broken copy to prove it can fail.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { IService } from '@kubernetes-models/knative/serving.knative.dev/v1/Service';
import type { ITrigger } from '@kubernetes-models/knative/eventing.knative.dev/v1/Trigger';
import type { IBroker } from '@kubernetes-models/knative/eventing.knative.dev/v1/Broker';
import type { IPingSource } from '@kubernetes-models/knative/sources.knative.dev/v1/PingSource';
import { KnativeServing } from '@kubernetes-models/knative/operator.knative.dev/v1beta1/KnativeServing';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { ICronJob } from 'kubernetes-models/batch/v1/CronJob';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import {
  buildKustomization,
  exposedSeries,
  fromRepo,
  knativeDir,
  metricsDefinedIn,
  nameOf,
  parseManifests,
  parseYamlDocuments,
  promqlMetricNames,
  repoRoot,
  schemaProblems,
  yamlFilesUnder,
  type Manifest,
  type MetricType,
} from '../support/manifests.js';
import { CHANGE_CHECK_EXTENSION, CHANGE_CHECK_EXTENSION_VALUE } from '../../shared/events/rotation-events.js';

// ---------------------------------------------------------------------------------------------
// Builds

type Target = 'pvc' | 'object-storage' | 'partner-routes';
const targetDirs: Record<Target, string> = {
  pvc: join(knativeDir, 'overlays/pvc'),
  'object-storage': join(knativeDir, 'overlays/object-storage'),
  'partner-routes': join(knativeDir, 'partner-routes'),
};
const overlays = ['pvc', 'object-storage'] as const;

const builds = new Map<Target, Promise<Manifest[]>>();
/** The built target, built once per run (a failed build fails every test that needs it). */
function built(target: Target): Promise<Manifest[]> {
  let build = builds.get(target);
  if (build === undefined) {
    build = buildKustomization(targetDirs[target]);
    builds.set(target, build);
  }
  return build;
}

async function brokenCopy(target: Target): Promise<Manifest[]> {
  return structuredClone(await built(target));
}

/** The objects of one YAML file under knative/. */
function knativeDirObjects(file: string): Manifest[] {
  return parseManifests(readFileSync(join(knativeDir, file), 'utf8'), `knative/${file}`);
}

function exampleManifests(): { file: string; objects: Manifest[] }[] {
  const dir = join(knativeDir, 'examples');
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => /\.ya?ml$/.test(name));
  } catch {
    return [];
  }
  return names.sort().map((name) => {
    const file = join(dir, name);
    return { file, objects: parseManifests(readFileSync(file, 'utf8'), fromRepo(file)) };
  });
}

// ---------------------------------------------------------------------------------------------
// Typed views of the built objects (their shapes are checked by the schema tests)

const SERVING = ['jwks-get', 'jwk-get'] as const;
const PUBLISHER = 'key-rotated';
const DEAD_LETTER = 'event-dead-letter';
const KNATIVE_SERVICE = 'serving.knative.dev/v1';

function ofKind<T>(objects: readonly Manifest[], apiVersion: string, kind: string): T[] {
  return objects.filter((object) => object.apiVersion === apiVersion && object.kind === kind) as unknown as T[];
}

const knativeServices = (objects: readonly Manifest[]): IService[] => ofKind<IService>(objects, KNATIVE_SERVICE, 'Service');

function knativeService(objects: readonly Manifest[], name: string): IService | undefined {
  return knativeServices(objects).find((service) => service.metadata?.name === name);
}

/** The Knative Service named, for tests that break it on purpose. */
function mustService(objects: readonly Manifest[], name: string): IService {
  const service = knativeService(objects, name);
  if (service === undefined) throw new Error(`no Knative Service ${name} in the build`);
  return service;
}

function podSpecOf(service: IService): IPodSpec | undefined {
  return service.spec?.template?.spec;
}

/** The user container, for tests that break it on purpose. */
function mainContainer(objects: readonly Manifest[], name: string): IContainer {
  const container = podSpecOf(mustService(objects, name))?.containers[0];
  if (container === undefined) throw new Error(`Knative Service ${name} has no container`);
  return container;
}

/** The object of that kind and name, for tests that break it on purpose. */
function named<T>(objects: readonly Manifest[], kind: string, name: string): T {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind}/${name} in the build`);
  return found as unknown as T;
}

function templateAnnotation(service: IService, key: string): string | undefined {
  return service.spec?.template?.metadata?.annotations?.[key];
}

/** Pod specs of every workload kind these manifests use, with the owner's name for messages. */
function podSpecs(objects: readonly Manifest[]): { owner: string; spec: IPodSpec }[] {
  const specs: { owner: string; spec: IPodSpec | undefined }[] = [
    ...knativeServices(objects).map((service) => ({ owner: `Service/${service.metadata?.name}`, spec: podSpecOf(service) })),
    ...ofKind<IJob>(objects, 'batch/v1', 'Job').map((job) => ({
      owner: `Job/${job.metadata?.name ?? `${job.metadata?.generateName}*`}`,
      spec: job.spec?.template.spec,
    })),
    ...ofKind<ICronJob>(objects, 'batch/v1', 'CronJob').map((cronJob) => ({
      owner: `CronJob/${cronJob.metadata?.name}`,
      spec: cronJob.spec?.jobTemplate.spec?.template.spec,
    })),
  ];
  return specs.flatMap(({ owner, spec }) => (spec === undefined ? [] : [{ owner, spec }]));
}

function envValue(container: IContainer, name: string): string | undefined {
  return container.env?.find((env) => env.name === name)?.value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type Policy = (objects: readonly Manifest[], target: Target) => string[];

// ---------------------------------------------------------------------------------------------
// Schema and shape

/** Route (route.openshift.io/v1) has no schema module: its shape is checked here instead. */
function routeShapeProblems(route: Manifest): string[] {
  const where = nameOf(route);
  const spec = route.spec;
  if (!isPlainObject(spec)) return [`${where}: no spec`];
  const problems: string[] = [];
  const known = new Set(['host', 'subdomain', 'path', 'to', 'alternateBackends', 'port', 'tls', 'wildcardPolicy']);
  for (const key of Object.keys(spec)) if (!known.has(key)) problems.push(`${where}: unknown spec field ${key}`);
  if (typeof spec.host !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/.test(spec.host)) {
    problems.push(`${where}: spec.host must be a DNS name`);
  }
  if (typeof spec.path !== 'string' || !spec.path.startsWith('/')) problems.push(`${where}: spec.path must be an absolute path`);
  const to = spec.to;
  if (!isPlainObject(to) || to.kind !== 'Service' || typeof to.name !== 'string' || to.name === '') {
    problems.push(`${where}: spec.to must name a Service`);
  }
  const tls = spec.tls;
  if (!isPlainObject(tls) || (tls.termination !== 'edge' && tls.termination !== 'reencrypt')) {
    problems.push(`${where}: spec.tls.termination must be edge or reencrypt (TLS at the router, paths routable)`);
  }
  if (!isPlainObject(tls) || tls.insecureEdgeTerminationPolicy !== 'None') {
    problems.push(`${where}: spec.tls.insecureEdgeTerminationPolicy must be None (no plain http, no redirect)`);
  }
  return problems;
}

/** Schema problems, the Route shape check, or a refusal of a kind nothing validates. */
function validationProblems(object: Manifest): string[] {
  const problems = schemaProblems(object);
  if (problems !== undefined) return problems;
  if (object.apiVersion === 'route.openshift.io/v1' && object.kind === 'Route') return routeShapeProblems(object);
  return [`${nameOf(object)}: no schema for ${object.apiVersion} ${object.kind}; add one to test/support/manifests.ts before deploying it`];
}

// ---------------------------------------------------------------------------------------------
// Policies

const isCipherTrust = (name: string): boolean => name.toLowerCase().includes('ciphertrust');

/** The serving functions never get CipherTrust access, only read the store, and stay warm. */
const servingIsolation: Policy = (objects) => {
  const problems: string[] = [];
  const configMaps = ofKind<IConfigMap>(objects, 'v1', 'ConfigMap');
  for (const name of SERVING) {
    const service = knativeService(objects, name);
    if (service === undefined) {
      problems.push(`${name}: missing`);
      continue;
    }
    const spec = podSpecOf(service);
    for (const container of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
      for (const env of container.env ?? []) {
        if (env.name.startsWith('CIPHERTRUST_')) problems.push(`${name}: sets ${env.name}`);
        const ref = env.valueFrom?.secretKeyRef?.name ?? env.valueFrom?.configMapKeyRef?.name;
        if (ref !== undefined && isCipherTrust(ref)) problems.push(`${name}: env ${env.name} reads ciphertrust object ${ref}`);
      }
      for (const from of container.envFrom ?? []) {
        if (from.prefix?.startsWith('CIPHERTRUST_')) problems.push(`${name}: envFrom prefix ${from.prefix}`);
        for (const ref of [from.secretRef?.name, from.configMapRef?.name]) {
          if (ref !== undefined && isCipherTrust(ref)) problems.push(`${name}: envFrom ciphertrust object ${ref}`);
        }
        const configMap = configMaps.find((candidate) => candidate.metadata?.name === from.configMapRef?.name);
        const keys = Object.keys(configMap?.data ?? {}).filter((key) => key.startsWith('CIPHERTRUST_'));
        if (keys.length > 0) problems.push(`${name}: envFrom ConfigMap ${from.configMapRef?.name} sets ${keys.join(', ')}`);
      }
      for (const mount of container.volumeMounts ?? []) {
        if (mount.readOnly !== true) problems.push(`${name}: volumeMount ${mount.name} at ${mount.mountPath} is writable`);
      }
    }
    for (const volume of spec?.volumes ?? []) {
      const secrets = [volume.secret?.secretName, ...(volume.projected?.sources ?? []).map((source) => source.secret?.name)];
      for (const secret of secrets) {
        if (secret !== undefined && isCipherTrust(secret)) problems.push(`${name}: volume ${volume.name} holds ciphertrust Secret ${secret}`);
      }
      if (volume.persistentVolumeClaim !== undefined && volume.persistentVolumeClaim.readOnly !== true) {
        problems.push(`${name}: PVC volume ${volume.name} is writable`);
      }
    }
    const minScale = templateAnnotation(service, 'autoscaling.knative.dev/min-scale');
    if (!(Number(minScale ?? '0') >= 1)) problems.push(`${name}: min-scale ${minScale ?? '(unset, 0)'} is below 1`);
  }
  return problems;
};

/** OpenShift restricted-v2, as knative/func deploys: every Knative Service's containers. */
const restrictedSecurityContext: Policy = (objects) =>
  knativeServices(objects).flatMap((service) =>
    (podSpecOf(service)?.containers ?? []).flatMap((container) => {
      const where = `${service.metadata?.name}/${container.name}`;
      const context = container.securityContext;
      const problems: string[] = [];
      if (context?.runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot is not true`);
      if (context?.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation is not false`);
      if (!(context?.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where}: capabilities.drop lacks ALL`);
      if ((context?.capabilities?.add ?? []).length > 0) problems.push(`${where}: adds capabilities`);
      if (context?.seccompProfile?.type !== 'RuntimeDefault') problems.push(`${where}: seccompProfile is not RuntimeDefault`);
      if (context?.privileged === true) problems.push(`${where}: privileged`);
      if (context?.runAsUser !== undefined) problems.push(`${where}: fixed runAsUser (restricted-v2 assigns the UID)`);
      return problems;
    }),
  );

/** key-rotated and event-dead-letter are reached from inside the cluster only; one key-rotated. */
const clusterLocal: Policy = (objects) => {
  const problems: string[] = [];
  for (const name of [PUBLISHER, DEAD_LETTER]) {
    const service = knativeService(objects, name);
    if (service === undefined) {
      problems.push(`${name}: missing`);
      continue;
    }
    if (service.metadata?.labels?.['networking.knative.dev/visibility'] !== 'cluster-local') {
      problems.push(`${name}: lacks label networking.knative.dev/visibility: cluster-local`);
    }
    const maxScale = templateAnnotation(service, 'autoscaling.knative.dev/max-scale');
    if (name === PUBLISHER && maxScale !== '1') problems.push(`${name}: max-scale ${maxScale ?? '(unset)'} is not "1"`);
  }
  return problems;
};

/** Why an image reference is not pinned, if it is not. */
function imageProblem(image: string): string | undefined {
  const at = image.indexOf('@');
  const name = at >= 0 ? image.slice(0, at) : image;
  const digest = at >= 0 ? image.slice(at + 1) : undefined;
  const lastSegment = name.slice(name.lastIndexOf('/') + 1);
  const tag = lastSegment.includes(':') ? lastSegment.slice(lastSegment.indexOf(':') + 1) : undefined;
  if (tag === 'latest') return 'uses :latest';
  if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)) return `malformed digest ${digest}`;
  if (digest === undefined && (tag === undefined || tag === '')) return 'has neither a digest nor a tag';
  return undefined;
}

const pinnedImages: Policy = (objects) =>
  podSpecs(objects).flatMap(({ owner, spec }) =>
    [...spec.containers, ...(spec.initContainers ?? [])].flatMap((container) => {
      if (container.image === undefined) return [`${owner}/${container.name}: no image`];
      const problem = imageProblem(container.image);
      return problem === undefined ? [] : [`${owner}/${container.name}: image ${container.image} ${problem}`];
    }),
  );

/** A change-check tick: marked with the extension key-rotated looks for (shared/events/rotation-events.ts). */
function isChangeCheck(source: IPingSource): boolean {
  return source.spec?.ceOverrides?.extensions?.[CHANGE_CHECK_EXTENSION] === CHANGE_CHECK_EXTENSION_VALUE;
}

/**
 * Two pings, each a JSON object body with its content type (the functions-framework needs one):
 * the hourly full reconcile, and the change check every minute (a scheduled rotation reaches
 * /jwks within two minutes with no event).
 */
const pingSource: Policy = (objects) => {
  const sources = ofKind<IPingSource>(objects, 'sources.knative.dev/v1', 'PingSource');
  const brokers = new Set(ofKind<IBroker>(objects, 'eventing.knative.dev/v1', 'Broker').map((broker) => broker.metadata?.name));
  if (sources.length === 0) return ['no PingSource'];
  const checks = sources.filter(isChangeCheck).length;
  const counts = [
    ...(checks !== 1 ? [`${checks} change-check PingSources (one expected)`] : []),
    ...(sources.length - checks !== 1 ? [`${sources.length - checks} hourly PingSources (one expected)`] : []),
  ];
  return counts.concat(sources.flatMap((source) => {
    const where = `PingSource/${source.metadata?.name}`;
    const spec = source.spec;
    const problems: string[] = [];
    const schedule = isChangeCheck(source) ? '* * * * *' : '0 * * * *';
    if (spec?.schedule !== schedule) problems.push(`${where}: schedule ${spec?.schedule} is not "${schedule}"`);
    if (spec?.contentType !== 'application/json') problems.push(`${where}: contentType ${spec?.contentType ?? '(unset)'} is not application/json`);
    if (spec?.dataBase64 !== undefined) problems.push(`${where}: dataBase64 instead of data`);
    const data = spec?.data;
    if (data === undefined || data.trim() === '') problems.push(`${where}: data is empty`);
    else {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch {
        problems.push(`${where}: data is not JSON`);
      }
      if (parsed !== undefined && !isPlainObject(parsed)) problems.push(`${where}: data is not a JSON object`);
    }
    const sink = spec?.sink?.ref;
    if (sink?.kind !== 'Broker' || !brokers.has(sink.name)) problems.push(`${where}: sink is not a Broker of this deployment`);
    return problems;
  }));
};

const RESERVED_ENV = new Set(['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION']);
const RESERVED_PORTS = new Set([8012, 8013, 8022, 9090, 9091, 8008]);
const PORT_NAMES = new Set(['', 'http1', 'h2c']);

/** What Knative Serving reserves or refuses in a container. */
const knativeRuntimeContract: Policy = (objects) =>
  knativeServices(objects).flatMap((service) => {
    const name = service.metadata?.name;
    const containers = podSpecOf(service)?.containers ?? [];
    const problems: string[] = [];
    const ports = containers.flatMap((container) => container.ports ?? []);
    if (ports.length > 1) problems.push(`${name}: ${ports.length} container ports; Knative allows one`);
    for (const port of ports) {
      if (RESERVED_PORTS.has(port.containerPort)) problems.push(`${name}: reserved port ${port.containerPort}`);
      if (!PORT_NAMES.has(port.name ?? '')) problems.push(`${name}: port name ${port.name} is not empty, http1 or h2c`);
    }
    for (const env of containers.flatMap((container) => container.env ?? [])) {
      if (RESERVED_ENV.has(env.name)) problems.push(`${name}: sets reserved env ${env.name}`);
    }
    return problems;
  });

/** Knative routes traffic on /readyz and restarts on /healthz; the scheduler needs the sizes. */
const probesAndResources: Policy = (objects) =>
  knativeServices(objects).flatMap((service) =>
    (podSpecOf(service)?.containers ?? []).flatMap((container) => {
      const where = `${service.metadata?.name}/${container.name}`;
      const problems: string[] = [];
      if (container.readinessProbe?.httpGet?.path !== '/readyz') problems.push(`${where}: readinessProbe is not httpGet /readyz`);
      if (container.livenessProbe?.httpGet?.path !== '/healthz') problems.push(`${where}: livenessProbe is not httpGet /healthz`);
      // Knative probes the user port; an explicit other port is refused by its webhook.
      const userPort = container.ports?.[0]?.containerPort ?? 8080;
      for (const probe of [container.readinessProbe, container.livenessProbe]) {
        const port = probe?.httpGet?.port;
        if (port !== undefined && port !== userPort) problems.push(`${where}: probe on port ${port}, not the user port ${userPort}`);
      }
      for (const kind of ['requests', 'limits'] as const) {
        for (const resource of ['cpu', 'memory']) {
          if (container.resources?.[kind]?.[resource] === undefined) problems.push(`${where}: no ${kind}.${resource}`);
        }
      }
      return problems;
    }),
  );

const EVENT_TYPES = [
  'dev.knative.sources.ping',
  'com.thalesgroup.ciphertrust.key.rotated',
  'com.thalesgroup.ciphertrust.key.created',
  'com.thalesgroup.ciphertrust.key.state-changed',
  'com.thalesgroup.ciphertrust.key.destroyed',
];

function triggerType(trigger: ITrigger): string | undefined {
  return trigger.spec?.filter?.attributes?.type ?? trigger.spec?.filters?.find((filter) => filter.exact?.type !== undefined)?.exact?.type;
}

/** One Trigger per event type key-rotated acts on, each retried with backoff, then dead-lettered. */
const triggers: Policy = (objects) => {
  const all = ofKind<ITrigger>(objects, 'eventing.knative.dev/v1', 'Trigger');
  const brokers = new Set(ofKind<IBroker>(objects, 'eventing.knative.dev/v1', 'Broker').map((broker) => broker.metadata?.name));
  const problems: string[] = [];
  for (const type of EVENT_TYPES) {
    const count = all.filter((trigger) => triggerType(trigger) === type).length;
    if (count !== 1) problems.push(`${count} Triggers for ${type}; expected one`);
  }
  for (const trigger of all) {
    const where = `Trigger/${trigger.metadata?.name}`;
    const type = triggerType(trigger);
    if (type === undefined || !EVENT_TYPES.includes(type)) problems.push(`${where}: type ${type ?? '(any)'} is not one key-rotated acts on`);
    if (!brokers.has(trigger.spec?.broker)) problems.push(`${where}: broker ${trigger.spec?.broker} is not in the deployment`);
    const subscriber = trigger.spec?.subscriber.ref;
    if (subscriber?.apiVersion !== KNATIVE_SERVICE || subscriber.kind !== 'Service' || subscriber.name !== PUBLISHER) {
      problems.push(`${where}: subscriber is not the key-rotated Knative Service`);
    }
    const delivery = trigger.spec?.delivery;
    if (!((delivery?.retry ?? 0) >= 1)) problems.push(`${where}: no retry`);
    if (delivery?.backoffPolicy !== 'exponential') problems.push(`${where}: backoffPolicy ${delivery?.backoffPolicy ?? '(unset)'} is not exponential`);
    const deadLetter = delivery?.deadLetterSink?.ref;
    if (deadLetter?.kind !== 'Service' || deadLetter.name !== DEAD_LETTER || knativeService(objects, DEAD_LETTER) === undefined) {
      problems.push(`${where}: deadLetterSink is not the ${DEAD_LETTER} Service`);
    }
  }
  return problems;
};

type LabelSelector = NonNullable<NonNullable<INetworkPolicy['spec']>['podSelector']>;

function selects(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const value = labels[key];
    const matches =
      operator === 'In' ? value !== undefined && values.includes(value)
      : operator === 'NotIn' ? value === undefined || !values.includes(value)
      : operator === 'Exists' ? value !== undefined
      : value === undefined;
    if (!matches) return false;
  }
  return true;
}

/** The labels Knative puts on a Service's pods: the template's, plus its own. */
function podLabels(service: IService): Record<string, string> {
  return { ...service.spec?.template?.metadata?.labels, 'serving.knative.dev/service': service.metadata?.name ?? '' };
}

function egressRules(policy: INetworkPolicy): NonNullable<NonNullable<INetworkPolicy['spec']>['egress']> {
  const types = policy.spec?.policyTypes ?? (policy.spec?.egress !== undefined ? ['Ingress', 'Egress'] : ['Ingress']);
  return types.includes('Egress') ? (policy.spec?.egress ?? []) : [];
}

type EgressRule = ReturnType<typeof egressRules>[number];

const isDnsRule = (rule: EgressRule): boolean =>
  (rule.to ?? []).length > 0 &&
  (rule.ports ?? []).length > 0 &&
  (rule.ports ?? []).every((port) => port.port === 53 || port.port === 5353) &&
  (rule.to ?? []).every((peer) => peer.ipBlock === undefined);

const isHttpsToAddresses = (rule: EgressRule): boolean =>
  (rule.to ?? []).length > 0 &&
  (rule.ports ?? []).length > 0 &&
  (rule.ports ?? []).every((port) => port.port === 443 && (port.protocol ?? 'TCP') === 'TCP') &&
  (rule.to ?? []).every((peer) => peer.ipBlock !== undefined && peer.namespaceSelector === undefined && peer.podSelector === undefined);

/**
 * Default deny; serving pods may only resolve names (and, with object storage, reach the store);
 * key-rotated reaches CipherTrust Manager on 443 through a policy no serving pod is selected by.
 */
const networkPolicies: Policy = (objects, target) => {
  const policies = ofKind<INetworkPolicy>(objects, 'networking.k8s.io/v1', 'NetworkPolicy');
  const problems: string[] = [];
  const defaultDeny = policies.some((policy) => {
    const selector = policy.spec?.podSelector;
    const types = policy.spec?.policyTypes ?? [];
    return (
      selector !== undefined &&
      Object.keys(selector.matchLabels ?? {}).length === 0 &&
      (selector.matchExpressions ?? []).length === 0 &&
      types.includes('Ingress') &&
      types.includes('Egress') &&
      (policy.spec?.ingress ?? []).length === 0 &&
      (policy.spec?.egress ?? []).length === 0
    );
  });
  if (!defaultDeny) problems.push('no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rule)');

  const storeEgress = target === 'object-storage';
  const serving = SERVING.flatMap((name) => knativeService(objects, name) ?? []);
  for (const service of serving) {
    for (const policy of policies.filter((candidate) => selects(candidate.spec?.podSelector ?? {}, podLabels(service)))) {
      for (const rule of egressRules(policy)) {
        if (isDnsRule(rule) || (storeEgress && isHttpsToAddresses(rule))) continue;
        problems.push(`NetworkPolicy/${policy.metadata?.name}: egress of ${service.metadata?.name} beyond DNS${storeEgress ? ' and the store' : ''}`);
      }
    }
  }

  const publisher = knativeService(objects, PUBLISHER);
  const reachesCipherTrust =
    publisher !== undefined &&
    policies.some(
      (policy) =>
        selects(policy.spec?.podSelector ?? {}, podLabels(publisher)) &&
        !serving.some((service) => selects(policy.spec?.podSelector ?? {}, podLabels(service))) &&
        egressRules(policy).some(
          (rule) => (rule.ports ?? []).some((port) => port.port === 443) && (rule.to ?? []).some((peer) => peer.ipBlock !== undefined),
        ),
    );
  if (!reachesCipherTrust) problems.push(`${PUBLISHER}: no egress on 443 to a CipherTrust Manager ipBlock (in a policy of its own)`);
  return problems;
};

/** The store path named by JWKS_STORE is a PVC mount: read-only for serving, writable for key-rotated. */
const pvcStoreWiring: Policy = (objects) => {
  const problems: string[] = [];
  const claims = new Set(ofKind<Manifest>(objects, 'v1', 'PersistentVolumeClaim').map((claim) => claim.metadata.name));
  for (const name of [...SERVING, PUBLISHER]) {
    const service = knativeService(objects, name);
    const container = service === undefined ? undefined : podSpecOf(service)?.containers[0];
    if (service === undefined || container === undefined) {
      problems.push(`${name}: missing`);
      continue;
    }
    const store = envValue(container, 'JWKS_STORE');
    if (store === undefined || !store.startsWith('file:///')) {
      problems.push(`${name}: JWKS_STORE ${store ?? '(unset)'} is not file:///...`);
      continue;
    }
    const path = new URL(store).pathname;
    const mount = container.volumeMounts?.find((candidate) => candidate.mountPath === path);
    const claim = podSpecOf(service)?.volumes?.find((volume) => volume.name === mount?.name)?.persistentVolumeClaim;
    if (mount === undefined || claim === undefined) {
      problems.push(`${name}: JWKS_STORE ${path} is not a PVC mount`);
      continue;
    }
    if (!claims.has(claim.claimName)) problems.push(`${name}: claim ${claim.claimName} is not in the overlay`);
    const writable = mount.readOnly !== true && claim.readOnly !== true;
    const readOnly = mount.readOnly === true && claim.readOnly === true;
    if (name === PUBLISHER && !writable) problems.push(`${name}: the store mount is not writable`);
    if (name !== PUBLISHER && !readOnly) problems.push(`${name}: the store mount or volume is not readOnly`);
  }
  return problems;
};

/** JWKS_STORE comes from the jwks-store ConfigMap; serving reads with the reader, key-rotated writes. */
const objectStoreWiring: Policy = (objects) => {
  const problems: string[] = [];
  const config = ofKind<IConfigMap>(objects, 'v1', 'ConfigMap').find((configMap) => configMap.metadata?.name === 'jwks-store');
  if (!/^s3:\/\/[^/]+/.test(config?.data?.JWKS_STORE ?? '')) problems.push('ConfigMap jwks-store: JWKS_STORE is not s3://bucket/...');
  for (const name of [...SERVING, PUBLISHER]) {
    const service = knativeService(objects, name);
    const container = service === undefined ? undefined : podSpecOf(service)?.containers[0];
    if (service === undefined || container === undefined) {
      problems.push(`${name}: missing`);
      continue;
    }
    if (container.env?.some((env) => env.name === 'JWKS_STORE')) problems.push(`${name}: env JWKS_STORE overrides the jwks-store ConfigMap`);
    const envFrom = container.envFrom ?? [];
    if (!envFrom.some((from) => from.configMapRef?.name === 'jwks-store')) problems.push(`${name}: JWKS_STORE is not from ConfigMap jwks-store`);
    const secrets = envFrom.flatMap((from) => from.secretRef?.name ?? []);
    const [wanted, forbidden] = name === PUBLISHER ? ['jwks-store-writer', 'jwks-store-reader'] : ['jwks-store-reader', 'jwks-store-writer'];
    if (!secrets.includes(wanted)) problems.push(`${name}: does not use ${wanted}`);
    if (secrets.includes(forbidden)) problems.push(`${name}: uses ${forbidden}`);
    if (podSpecOf(service)?.volumes?.some((volume) => volume.persistentVolumeClaim !== undefined)) problems.push(`${name}: mounts a PVC`);
  }
  return problems;
};

const storeWiring: Policy = (objects, target) => (target === 'pvc' ? pvcStoreWiring(objects, target) : objectStoreWiring(objects, target));

const PARTNER_PATHS = ['/jwks', '/jwk/', '/.well-known/openid-configuration'];

/** Only /jwks, /jwk/ and discovery leave the cluster: /metrics, /healthz and /readyz share the port. */
const partnerRoutes: Policy = (objects) => {
  const routes = objects.filter((object) => object.apiVersion === 'route.openshift.io/v1' && object.kind === 'Route');
  const paths = routes.map((route) => {
    const path = isPlainObject(route.spec) ? route.spec.path : undefined;
    return { where: nameOf(route), path: typeof path === 'string' && path !== '' ? path : '/' };
  });
  const problems = paths.filter(({ path }) => !PARTNER_PATHS.includes(path)).map(({ where, path }) => `${where}: exposes ${path}`);
  for (const expected of PARTNER_PATHS) {
    const count = paths.filter(({ path }) => path === expected).length;
    if (count !== 1) problems.push(`${count} routes for ${expected}; expected one`);
  }
  return problems;
};

const SPREAD_KEYS = ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'] as const;

/**
 * The serving replicas spread over zones, then nodes, so a node or a zone loss leaves one serving:
 * a constraint per key, in that order, selecting the Service's own pods, at most one replica apart.
 * Zones are a preference (a single-zone cluster must still schedule); nodes a rule that ignores
 * tainted nodes (a lost node's domain must not hold its replacement back).
 */
const servingSpread: Policy = (objects) =>
  SERVING.flatMap((name) => {
    const service = knativeService(objects, name);
    if (service === undefined) return [`${name}: missing`];
    const constraints = podSpecOf(service)?.topologySpreadConstraints ?? [];
    const keys = constraints.map((constraint) => constraint.topologyKey);
    if (JSON.stringify(keys) !== JSON.stringify(SPREAD_KEYS)) return [`${name}: topologySpreadConstraints on [${keys.join(', ')}], not [${SPREAD_KEYS.join(', ')}]`];
    const problems: string[] = [];
    for (const constraint of constraints) {
      const where = `${name}: spread on ${constraint.topologyKey}`;
      if (constraint.maxSkew !== 1) problems.push(`${where}: maxSkew ${constraint.maxSkew} is not 1`);
      const selector = constraint.labelSelector;
      if (selector === undefined || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0)) {
        problems.push(`${where}: no labelSelector`);
      } else if (!selects(selector, podLabels(service))) problems.push(`${where}: labelSelector does not select its own pods`);
      else {
        const other = knativeServices(objects).find((candidate) => candidate !== service && selects(selector, podLabels(candidate)));
        if (other !== undefined) problems.push(`${where}: labelSelector also selects ${other.metadata?.name}'s pods`);
      }
    }
    const [zone, node] = constraints;
    if (zone?.whenUnsatisfiable !== 'ScheduleAnyway') problems.push(`${name}: the zone spread is not ScheduleAnyway`);
    if (node?.whenUnsatisfiable !== 'DoNotSchedule') problems.push(`${name}: the node spread is not DoNotSchedule`);
    if (node?.nodeTaintsPolicy !== 'Honor') problems.push(`${name}: the node spread does not honour taints (nodeTaintsPolicy)`);
    return problems;
  });

const MINIMUM_ALERTS = [
  ['JwksPublicationStale'],
  ['JwksPublicationFailing'],
  ['JwksChangeCheckFailing'],
  ['JwksGuardRefusedPublication'],
  ['JwksServedSetOld', 'JwksServedSetDiverges'],
  ['JwksServing5xx'],
  ['JwksStorageErrors'],
];
const OPERATIONS_DOC = join(repoRoot, 'docs/operations.md');
const METRIC_SOURCES = ['shared/observability', 'shared/http/dead-letter-handler.ts'];

interface AlertContext {
  /** Series the code exposes (histogram suffixes included). */
  readonly series: ReadonlySet<string>;
  /** Alerts the runbooks name (### headings of the "Alerts" section). */
  readonly documented: readonly string[];
  /** Anchors of the operations guide's headings. */
  readonly anchors: ReadonlySet<string>;
}

function definedMetrics(): Map<string, MetricType> {
  const files = METRIC_SOURCES.flatMap((source) => {
    const path = join(repoRoot, source);
    return source.endsWith('.ts') ? [path] : readdirSync(path).filter((name) => name.endsWith('.ts')).map((name) => join(path, name));
  });
  const metrics = new Map<string, MetricType>();
  for (const file of files) for (const [name, type] of metricsDefinedIn(readFileSync(file, 'utf8'), fromRepo(file))) metrics.set(name, type);
  return metrics;
}

let alertContextCache: AlertContext | undefined;
function alertContext(): AlertContext {
  if (alertContextCache !== undefined) return alertContextCache;
  const doc = readFileSync(OPERATIONS_DOC, 'utf8');
  const headings = [...doc.matchAll(/^(#{1,6})\s+(.+?)\s*$/gm)].map((match) => ({ level: match[1]!.length, text: match[2]! }));
  const alertsAt = headings.findIndex((heading) => heading.level === 2 && heading.text === 'Alerts');
  const documented: string[] = [];
  for (const heading of alertsAt < 0 ? [] : headings.slice(alertsAt + 1)) {
    if (heading.level <= 2) break;
    if (heading.level === 3) documented.push(heading.text);
  }
  const anchors = new Set(headings.map(({ text }) => text.toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
  alertContextCache = { series: exposedSeries(definedMetrics()), documented, anchors };
  return alertContextCache;
}

/** The alerts the runbooks describe exist, select only series the code exposes, and link their runbook. */
function alertsAgainst(context: AlertContext): Policy {
  return (objects) => {
    const rules = ofKind<IPrometheusRule>(objects, 'monitoring.coreos.com/v1', 'PrometheusRule').flatMap((rule) =>
      rule.spec.groups?.flatMap((group) => group.rules ?? []) ?? [],
    );
    const alerts = rules.filter((rule) => rule.alert !== undefined);
    const names = alerts.map((rule) => rule.alert!);
    const problems: string[] = [];
    if (context.documented.length === 0) problems.push(`${fromRepo(OPERATIONS_DOC)}: no alert under "## Alerts"`);
    for (const group of [...MINIMUM_ALERTS, ...context.documented.map((name) => [name])]) {
      if (!group.some((name) => names.includes(name))) problems.push(`no alert ${group.join(' or ')}`);
    }
    for (const name of new Set(names)) if (names.filter((other) => other === name).length > 1) problems.push(`alert ${name} defined twice`);
    for (const alert of alerts) {
      const expr = String(alert.expr);
      const unknown = promqlMetricNames(expr).filter((name) => !context.series.has(name));
      if (unknown.length > 0) problems.push(`${alert.alert}: expr selects ${unknown.join(', ')}, which the code does not expose`);
      const runbook = alert.annotations?.runbook;
      const anchor = runbook?.startsWith('docs/operations.md#') ? runbook.slice('docs/operations.md#'.length) : undefined;
      if (anchor === undefined || !context.anchors.has(anchor)) problems.push(`${alert.alert}: runbook ${runbook ?? '(unset)'} is not a section of docs/operations.md`);
    }
    return problems;
  };
}

const alerts: Policy = (objects, target) => alertsAgainst(alertContext())(objects, target);

const policies: Record<string, { readonly targets: readonly Target[]; readonly check: Policy }> = {
  'serving functions hold no CipherTrust access, read the store only and stay warm': { targets: overlays, check: servingIsolation },
  'containers run under restricted-v2': { targets: overlays, check: restrictedSecurityContext },
  'key-rotated and event-dead-letter are cluster-local, key-rotated has one replica': { targets: overlays, check: clusterLocal },
  'images are pinned': { targets: overlays, check: pinnedImages },
  'the PingSources send JSON objects, hourly and every minute': { targets: overlays, check: pingSource },
  'containers respect what Knative reserves': { targets: overlays, check: knativeRuntimeContract },
  'Knative Services have probes and resources': { targets: overlays, check: probesAndResources },
  'one Trigger per event type, retried then dead-lettered': { targets: overlays, check: triggers },
  'network policies deny by default and restrict egress': { targets: overlays, check: networkPolicies },
  'the store is wired per overlay': { targets: overlays, check: storeWiring },
  'serving replicas spread over zones, then nodes': { targets: overlays, check: servingSpread },
  'partner routes expose /jwks, /jwk/ and discovery only': { targets: ['partner-routes'], check: partnerRoutes },
  'alerts exist and select metrics the code exposes': { targets: overlays, check: alerts },
};

// ---------------------------------------------------------------------------------------------
// Tests

describe('knative/ files', () => {
  it('every YAML file under knative/ parses, every document', () => {
    const files = yamlFilesUnder(knativeDir).map(fromRepo);
    expect(files).toEqual(expect.arrayContaining(['knative/base/kustomization.yaml', 'knative/overlays/pvc/kustomization.yaml', 'knative/partner-routes/routes.yaml']));
    const failures: string[] = [];
    for (const file of files) {
      try {
        const documents = parseYamlDocuments(readFileSync(join(repoRoot, file), 'utf8'), file);
        if (documents.every((document) => document === null)) failures.push(`${file}: no document`);
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
    }
    expect(failures).toEqual([]);
  });

  it('a YAML error is reported, not ignored', () => {
    expect(() => parseYamlDocuments('a: 1\n---\nb: [1, 2\n', 'broken.yaml')).toThrow(/broken\.yaml document 2/);
    expect(() => parseYamlDocuments('a: 1\na: 2\n', 'duplicate.yaml')).toThrow(/duplicate\.yaml document 1/);
    expect(() => parseManifests('- op: add\n', 'patch.yaml')).toThrow(/not a Kubernetes object/);
  });

  it('a failed build is an error naming its cause; a missing kubectl too (never a skip)', async () => {
    await expect(buildKustomization(join(knativeDir, 'base/namespace.yaml'))).rejects.toThrow(/kubectl kustomize knative\/base\/namespace.yaml failed: .+/);
    const path = process.env.PATH;
    process.env.PATH = join(repoRoot, 'no-such-directory');
    try {
      await expect(buildKustomization(targetDirs.pvc)).rejects.toThrow(/kubectl is not on PATH/);
    } finally {
      process.env.PATH = path;
    }
  });

  it.each(Object.keys(targetDirs) as Target[])('%s builds with kubectl kustomize, every object in its namespace', async (target) => {
    const objects = await built(target);
    const namespace = target === 'partner-routes' ? 'knative-serving-ingress' : 'jwks';
    expect(objects.length).toBeGreaterThan(target === 'partner-routes' ? 1 : 20);
    const misplaced = objects.filter((object) => object.kind !== 'Namespace' && object.metadata.namespace !== namespace).map(nameOf);
    expect(misplaced).toEqual([]);
  });
});

describe('schemas', () => {
  it.each(Object.keys(targetDirs) as Target[])('every object %s deploys validates against its schema', async (target) => {
    const objects = await built(target);
    expect(objects.flatMap(validationProblems)).toEqual([]);
  });

  it('the overlays deploy exactly the kinds the tests know', async () => {
    const kinds = async (target: Target) => [...new Set((await built(target)).map((object) => `${object.apiVersion}/${object.kind}`))].sort();
    const base = [
      'eventing.knative.dev/v1/Broker',
      'eventing.knative.dev/v1/Trigger',
      'monitoring.coreos.com/v1/PodMonitor',
      'monitoring.coreos.com/v1/PrometheusRule',
      'networking.k8s.io/v1/NetworkPolicy',
      'serving.knative.dev/v1/Service',
      'sources.knative.dev/v1/PingSource',
      'v1/ConfigMap',
      'v1/Namespace',
      'v1/ServiceAccount',
    ];
    expect(await kinds('pvc')).toEqual([...base, 'v1/PersistentVolumeClaim'].sort());
    expect(await kinds('object-storage')).toEqual(base);
    expect(await kinds('partner-routes')).toEqual(['route.openshift.io/v1/Route']);
  });

  it('every document of knative/examples/*.yaml validates; its workloads follow the generic policies', () => {
    for (const { file, objects } of exampleManifests()) {
      const problems = [
        ...objects.flatMap(validationProblems),
        ...[pinnedImages, restrictedSecurityContext, knativeRuntimeContract, probesAndResources].flatMap((check) => check(objects, 'pvc')),
      ];
      expect({ file: fromRepo(file), problems }).toEqual({ file: fromRepo(file), problems: [] });
    }
  });

  /** An overlay's KnativeServing patch (knative-serving-features.yaml), validated. */
  function servingFeatures(overlay: (typeof overlays)[number]): Record<string, string> | undefined {
    const file = join(targetDirs[overlay], 'knative-serving-features.yaml');
    const [patch] = parseYamlDocuments(readFileSync(file, 'utf8'), fromRepo(file));
    expect(isPlainObject(patch)).toBe(true);
    const serving = new KnativeServing({ metadata: { name: 'knative-serving', namespace: 'knative-serving' }, ...(patch as object) });
    expect(() => serving.validate()).not.toThrow();
    return serving.spec?.config?.features;
  }

  it('the pvc overlay\'s KnativeServing patch validates and enables PVC volumes, writable ones included', () => {
    expect(servingFeatures('pvc')).toMatchObject({
      'kubernetes.podspec-persistent-volume-claim': 'enabled',
      'kubernetes.podspec-persistent-volume-write': 'enabled',
    });
  });

  it.each(overlays)('the %s overlay\'s KnativeServing patch enables topologySpreadConstraints', (overlay) => {
    expect(servingFeatures(overlay)).toMatchObject({ 'kubernetes.podspec-topologyspreadconstraints': 'enabled' });
  });

  it('a ClusterLogForwarder is validated against its vendored CRD schema (no typed model exists)', () => {
    const example = exampleManifests().flatMap(({ objects }) => objects).find((object) => object.kind === 'ClusterLogForwarder');
    expect(example).toBeDefined();
    expect(validationProblems(example!)).toEqual([]);
    const broken = structuredClone(example!) as Manifest & { spec: { serviceAccount?: unknown; outputs: { syslog: { rfc: string } }[] } };
    broken.spec.outputs[0]!.syslog.rfc = 'RFC5425';
    delete broken.spec.serviceAccount;
    expect(validationProblems(broken)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/ClusterLogForwarder\/jwks-audit-to-siem: \/spec\/outputs\/0\/syslog\/rfc must be equal to one of the allowed values/),
        expect.stringMatching(/ClusterLogForwarder\/jwks-audit-to-siem: \/spec must have required property 'serviceAccount'/),
      ]),
    );
  });

  it('the ClusterLogForwarder forwards only this namespace\'s audit records, whole, as RFC 5424 over TLS', () => {
    interface Forwarder {
      spec: {
        inputs: { name: string; type: string; application?: { includes?: { namespace?: string }[] } }[];
        filters: { name: string; type: string; drop?: { test: { field: string; notMatches?: string }[] }[] }[];
        outputs: { name: string; type: string; syslog?: { url: string; rfc: string; payloadKey?: string }; tls?: { ca?: object } }[];
        pipelines: { inputRefs: string[]; filterRefs?: string[]; outputRefs: string[] }[];
      };
    }
    const objects = exampleManifests().flatMap(({ objects }) => objects);
    const { spec } = named<Forwarder>(objects, 'ClusterLogForwarder', 'jwks-audit-to-siem');
    const namespaces = knativeDirObjects('base/namespace.yaml').filter((object) => object.kind === 'Namespace') as unknown as { metadata: { name: string } }[];
    expect(namespaces).toHaveLength(1);
    const namespace = (namespaces[0] as { metadata: { name: string } }).metadata.name;
    for (const pipeline of spec.pipelines) {
      const inputs = spec.inputs.filter((input) => pipeline.inputRefs.includes(input.name));
      expect(inputs.map((input) => ({ type: input.type, namespaces: input.application?.includes?.map((include) => include.namespace) }))).toEqual([{ type: 'application', namespaces: [namespace] }]);
      const filters = (pipeline.filterRefs ?? []).map((name) => spec.filters.find((filter) => filter.name === name));
      expect(filters.map((filter) => filter?.type)).toEqual(['parse', 'drop']);
      expect(filters[1]?.drop).toEqual([{ test: [{ field: '.structured.audit', notMatches: '^true$' }] }]);
      for (const output of spec.outputs.filter((candidate) => pipeline.outputRefs.includes(candidate.name))) {
        expect(output).toMatchObject({ type: 'syslog', syslog: { rfc: 'RFC5424', payloadKey: '{.message}' } });
        expect(output.syslog?.url).toMatch(/^tls:\/\//);
        expect(output.tls?.ca).toBeDefined();
      }
    }
  });

  it('a malformed object fails its schema', () => {
    const configMap: Manifest = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { PORT: 8080 } };
    expect(validationProblems(configMap)).toEqual([expect.stringMatching(/ConfigMap\/x: .*data\/PORT must be string/)]);
    const service: Manifest = {
      apiVersion: KNATIVE_SERVICE,
      kind: 'Service',
      metadata: { name: 'x' },
      spec: { template: { spec: { containers: [{ name: 'x', image: 'x:1', ports: [{ containerPort: 'http' }] }] } } },
    };
    expect(validationProblems(service)).toEqual([expect.stringMatching(/containerPort must be integer/)]);
    const trigger: Manifest = { apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', metadata: { name: 'x' }, spec: { broker: 'jwks' } };
    expect(validationProblems(trigger)).toEqual([expect.stringMatching(/subscriber/)]);
  });

  it('applies only the server defaults the generated schemas miss', () => {
    // A probe without a port gets the user port (Knative's webhook does the same); a wrong one still fails.
    const probed = (port?: unknown): Manifest => ({
      apiVersion: KNATIVE_SERVICE,
      kind: 'Service',
      metadata: { name: 'x' },
      spec: { template: { spec: { containers: [{ name: 'x', image: 'x:1', readinessProbe: { httpGet: { path: '/readyz', port } } }] } } },
    });
    expect(validationProblems(probed())).toEqual([]);
    expect(validationProblems(probed([8080]))).toEqual([expect.stringMatching(/readinessProbe\/httpGet\/port/)]);
    // A SinkBinding's status is the controller's; its spec is still required and checked.
    const binding = (spec?: unknown): Manifest => ({ apiVersion: 'sources.knative.dev/v1', kind: 'SinkBinding', metadata: { name: 'x' }, spec });
    expect(validationProblems(binding({ subject: { apiVersion: 'batch/v1', kind: 'Job' }, sink: { uri: 'http://x' } }))).toEqual([]);
    expect(validationProblems(binding())).toEqual([expect.stringMatching(/must have required property spec/)]);
    expect(validationProblems(binding({ subject: 'Job', sink: { uri: 'http://x' } }))).toEqual([expect.stringMatching(/subject must be object/)]);
  });

  it('a kind with no schema fails, unless it is a Route of the checked shape', async () => {
    const widget: Manifest = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };
    expect(validationProblems(widget)).toEqual([expect.stringContaining('no schema for example.com/v1 Widget')]);
    const ingress: Manifest = { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'i' }, spec: {} };
    expect(validationProblems(ingress)).toEqual([expect.stringContaining('no schema for networking.k8s.io/v1 Ingress')]);

    const [route] = await brokenCopy('partner-routes');
    const spec = route!.spec as Record<string, unknown> & { tls: Record<string, unknown>; to: Record<string, unknown> };
    expect(validationProblems(route!)).toEqual([]);
    spec.tls.insecureEdgeTerminationPolicy = 'Redirect';
    spec.tls.termination = 'passthrough';
    spec.to.kind = 'Pod';
    spec.host = 'not a host';
    spec.pathh = '/jwks';
    delete spec.path;
    const problems = validationProblems(route!);
    for (const expected of [/insecureEdgeTerminationPolicy must be None/, /termination must be edge or reencrypt/, /spec.to must name a Service/, /spec.host/, /unknown spec field pathh/, /spec.path/]) {
      expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(expected)]));
    }
    expect(validationProblems({ ...route!, spec: { host: 'a.example', path: '/jwks', to: { kind: 'Service', name: 'kourier' } } })).toEqual([
      expect.stringMatching(/termination/),
      expect.stringMatching(/insecureEdgeTerminationPolicy/),
    ]);
  });
});

describe('metric names', () => {
  it('are collected from the code with their types', () => {
    const metrics = definedMetrics();
    expect(metrics.get('jwks_http_requests_total')).toBe('Counter');
    expect(metrics.get('jwks_http_request_duration_seconds')).toBe('Histogram');
    expect(metrics.get('jwks_publisher_last_success_timestamp_seconds')).toBe('Gauge');
    expect(metrics.get('jwks_events_dead_lettered_total')).toBe('Counter');
    const series = exposedSeries(metrics);
    expect(series.has('jwks_http_request_duration_seconds_bucket')).toBe(true);
    expect(series.has('jwks_publisher_cycle_duration_seconds_count')).toBe(true);
    expect(series.has('jwks_http_requests_total_bucket')).toBe(false);
    expect(series.has('jwks_http_requests')).toBe(false);
    expect(() => metricsDefinedIn("const g = makeGauge({ name: 'jwks_hidden' });", 'x.ts')).toThrow(/jwks_hidden/);
  });

  it('are read out of PromQL without functions, labels, ranges or keywords', () => {
    expect(promqlMetricNames('time() - max(max_over_time(jwks_a_seconds[3h])) > 7200')).toEqual(['jwks_a_seconds']);
    expect(promqlMetricNames('sum by (function) (increase(jwks_b_total{route=~"jwks|jwk", x="a b"}[10m])) > 0 or up offset 5m')).toEqual([
      'jwks_b_total',
      'up',
    ]);
    expect(promqlMetricNames('histogram_quantile(0.99, sum(rate(jwks_c_bucket[5m])) by (le)) > 1e3')).toEqual(['jwks_c_bucket']);
    expect(promqlMetricNames('a / on (function) group_left b > bool 1')).toEqual(['a', 'b']);
  });
});

describe('policies', () => {
  for (const [name, { targets, check }] of Object.entries(policies)) {
    it.each(targets.map((target) => [target]))(`${name} (%s)`, async (target) => {
      expect(check(await built(target), target)).toEqual([]);
    });
  }

  it('images are checked in Jobs and CronJobs too (the examples)', () => {
    const pod = (image: string) => ({ spec: { restartPolicy: 'Never', containers: [{ name: 'c', image }] } });
    const objects: Manifest[] = [
      { apiVersion: 'batch/v1', kind: 'Job', metadata: { generateName: 'announce-' }, spec: { template: pod('ubi9/ubi-minimal') } },
      { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'refresh' }, spec: { schedule: '0 * * * *', jobTemplate: { spec: { template: pod('x:latest') } } } },
      { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'pinned' }, spec: { template: pod('ubi9/ubi-minimal:9.5') } },
    ];
    expect(objects.flatMap(validationProblems)).toEqual([]);
    expect(pinnedImages(objects, 'pvc')).toEqual([
      'Job/announce-*/c: image ubi9/ubi-minimal has neither a digest nor a tag',
      'CronJob/refresh/c: image x:latest uses :latest',
    ]);
  });

  interface Breakage {
    readonly policy: keyof typeof policies;
    readonly target: Target;
    readonly breaks: (objects: Manifest[]) => void;
    readonly flagged: RegExp;
  }

  const cipherTrustCa = { name: 'ca', secret: { secretName: 'ciphertrust-ca' } };
  const breakages: Record<string, Breakage> = {
    'a CIPHERTRUST_* variable on jwks-get': {
      policy: 'serving functions hold no CipherTrust access, read the store only and stay warm',
      target: 'pvc',
      breaks: (objects) => void mainContainer(objects, 'jwks-get').env!.push({ name: 'CIPHERTRUST_URL', value: 'https://cm' }),
      flagged: /jwks-get: sets CIPHERTRUST_URL/,
    },
    'the CipherTrust credentials Secret in jwk-get envFrom': {
      policy: 'serving functions hold no CipherTrust access, read the store only and stay warm',
      target: 'object-storage',
      breaks: (objects) => void mainContainer(objects, 'jwk-get').envFrom!.push({ secretRef: { name: 'ciphertrust-credentials' } }),
      flagged: /jwk-get: envFrom ciphertrust object ciphertrust-credentials/,
    },
    "key-rotated's ConfigMap (CIPHERTRUST_URL) in jwks-get envFrom": {
      policy: 'serving functions hold no CipherTrust access, read the store only and stay warm',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, 'jwks-get').envFrom = [{ configMapRef: { name: 'jwks-publisher' } }]),
      flagged: /jwks-get: envFrom ConfigMap jwks-publisher sets .*CIPHERTRUST_URL/,
    },
    'a CipherTrust secretKeyRef on jwk-get': {
      policy: 'serving functions hold no CipherTrust access, read the store only and stay warm',
      target: 'pvc',
      breaks: (objects) =>
        void mainContainer(objects, 'jwk-get').env!.push({ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'ciphertrust-credentials', key: 'x' } } }),
      flagged: /jwk-get: env TOKEN reads ciphertrust object/,
    },
    'the CipherTrust CA Secret as a volume of jwks-get': {
      policy: 'serving functions hold no CipherTrust access, read the store only and stay warm',
      target: 'object-storage',
      breaks: (objects) => void (podSpecOf(mustService(objects, 'jwks-get'))!.volumes = [cipherTrustCa]),
      flagged: /jwks-get: volume ca holds ciphertrust Secret ciphertrust-ca/,
    },
    'a writable store volume on jwk-get': {
      policy: 'serving functions hold no CipherTrust access, read the store only and stay warm',
      target: 'pvc',
      breaks: (objects) => void delete podSpecOf(mustService(objects, 'jwk-get'))!.volumes![0]!.persistentVolumeClaim!.readOnly,
      flagged: /jwk-get: PVC volume jwks-store is writable/,
    },
    'a writable store mount on jwks-get': {
      policy: 'serving functions hold no CipherTrust access, read the store only and stay warm',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, 'jwks-get').volumeMounts![0]!.readOnly = false),
      flagged: /jwks-get: volumeMount jwks-store at \/var\/lib\/jwks is writable/,
    },
    'min-scale 0 on jwk-get': {
      policy: 'serving functions hold no CipherTrust access, read the store only and stay warm',
      target: 'pvc',
      breaks: (objects) => void (mustService(objects, 'jwk-get').spec!.template!.metadata!.annotations!['autoscaling.knative.dev/min-scale'] = '0'),
      flagged: /jwk-get: min-scale 0 is below 1/,
    },
    'no min-scale on jwks-get': {
      policy: 'serving functions hold no CipherTrust access, read the store only and stay warm',
      target: 'object-storage',
      breaks: (objects) => void delete mustService(objects, 'jwks-get').spec!.template!.metadata!.annotations!['autoscaling.knative.dev/min-scale'],
      flagged: /jwks-get: min-scale \(unset, 0\) is below 1/,
    },
    'runAsNonRoot dropped from jwks-get': {
      policy: 'containers run under restricted-v2',
      target: 'pvc',
      breaks: (objects) => void delete mainContainer(objects, 'jwks-get').securityContext!.runAsNonRoot,
      flagged: /jwks-get\/jwks-get: runAsNonRoot is not true/,
    },
    'privilege escalation allowed on jwk-get': {
      policy: 'containers run under restricted-v2',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, 'jwk-get').securityContext!.allowPrivilegeEscalation = true),
      flagged: /jwk-get\/jwk-get: allowPrivilegeEscalation is not false/,
    },
    'capabilities kept on key-rotated': {
      policy: 'containers run under restricted-v2',
      target: 'object-storage',
      breaks: (objects) => void (mainContainer(objects, PUBLISHER).securityContext!.capabilities = { drop: ['NET_RAW'] }),
      flagged: /key-rotated\/key-rotated: capabilities.drop lacks ALL/,
    },
    'an unconfined seccomp profile on event-dead-letter': {
      policy: 'containers run under restricted-v2',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, DEAD_LETTER).securityContext!.seccompProfile = { type: 'Unconfined' }),
      flagged: /event-dead-letter\/event-dead-letter: seccompProfile is not RuntimeDefault/,
    },
    'key-rotated without the cluster-local label': {
      policy: 'key-rotated and event-dead-letter are cluster-local, key-rotated has one replica',
      target: 'pvc',
      breaks: (objects) => void delete mustService(objects, PUBLISHER).metadata!.labels!['networking.knative.dev/visibility'],
      flagged: /key-rotated: lacks label networking.knative.dev\/visibility: cluster-local/,
    },
    'key-rotated scaling to 3': {
      policy: 'key-rotated and event-dead-letter are cluster-local, key-rotated has one replica',
      target: 'object-storage',
      breaks: (objects) => void (mustService(objects, PUBLISHER).spec!.template!.metadata!.annotations!['autoscaling.knative.dev/max-scale'] = '3'),
      flagged: /key-rotated: max-scale 3 is not "1"/,
    },
    'event-dead-letter made public': {
      policy: 'key-rotated and event-dead-letter are cluster-local, key-rotated has one replica',
      target: 'pvc',
      breaks: (objects) => void (mustService(objects, DEAD_LETTER).metadata!.labels!['networking.knative.dev/visibility'] = 'public'),
      flagged: /event-dead-letter: lacks label/,
    },
    'an image on :latest': {
      policy: 'images are pinned',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, 'jwks-get').image = 'registry.bank.example/jwks/hsm-jwks-publisher:latest'),
      flagged: /Service\/jwks-get\/jwks-get: image .* uses :latest/,
    },
    'an image with neither tag nor digest': {
      policy: 'images are pinned',
      target: 'object-storage',
      breaks: (objects) => void (mainContainer(objects, PUBLISHER).image = 'registry.bank.example:5000/jwks/hsm-jwks-publisher'),
      flagged: /Service\/key-rotated\/key-rotated: image .* has neither a digest nor a tag/,
    },
    'a truncated digest': {
      policy: 'images are pinned',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, 'jwk-get').image = 'registry.bank.example/jwks/hsm-jwks-publisher@sha256:abc'),
      flagged: /malformed digest sha256:abc/,
    },
    'a PingSource without contentType': {
      policy: 'the PingSources send JSON objects, hourly and every minute',
      target: 'pvc',
      breaks: (objects) => void delete named<IPingSource>(objects, 'PingSource', 'jwks-hourly').spec!.contentType,
      flagged: /contentType \(unset\) is not application\/json/,
    },
    'a PingSource with empty data': {
      policy: 'the PingSources send JSON objects, hourly and every minute',
      target: 'pvc',
      breaks: (objects) => void (named<IPingSource>(objects, 'PingSource', 'jwks-hourly').spec!.data = ''),
      flagged: /data is empty/,
    },
    'a PingSource with text data': {
      policy: 'the PingSources send JSON objects, hourly and every minute',
      target: 'object-storage',
      breaks: (objects) => void (named<IPingSource>(objects, 'PingSource', 'jwks-hourly').spec!.data = 'hourly'),
      flagged: /data is not JSON$/,
    },
    'a PingSource with a JSON array': {
      policy: 'the PingSources send JSON objects, hourly and every minute',
      target: 'pvc',
      breaks: (objects) => void (named<IPingSource>(objects, 'PingSource', 'jwks-hourly').spec!.data = '["hourly"]'),
      flagged: /data is not a JSON object/,
    },
    'a PingSource every five minutes': {
      policy: 'the PingSources send JSON objects, hourly and every minute',
      target: 'pvc',
      breaks: (objects) => void (named<IPingSource>(objects, 'PingSource', 'jwks-hourly').spec!.schedule = '*/5 * * * *'),
      flagged: /schedule \*\/5 \* \* \* \* is not "0 \* \* \* \*"/,
    },
    'no change-check PingSource': {
      policy: 'the PingSources send JSON objects, hourly and every minute',
      target: 'pvc',
      breaks: (objects) => void objects.splice(objects.indexOf(named<Manifest>(objects, 'PingSource', 'jwks-change-check')), 1),
      flagged: /^0 change-check PingSources \(one expected\)$/,
    },
    'a change check every five minutes': {
      policy: 'the PingSources send JSON objects, hourly and every minute',
      target: 'object-storage',
      breaks: (objects) => void (named<IPingSource>(objects, 'PingSource', 'jwks-change-check').spec!.schedule = '*/5 * * * *'),
      flagged: /PingSource\/jwks-change-check: schedule \*\/5 \* \* \* \* is not "\* \* \* \* \*"/,
    },
    'a change check without its extension (an hourly ping every minute)': {
      policy: 'the PingSources send JSON objects, hourly and every minute',
      target: 'pvc',
      breaks: (objects) => void delete named<IPingSource>(objects, 'PingSource', 'jwks-change-check').spec!.ceOverrides,
      flagged: /2 hourly PingSources \(one expected\)/,
    },
    'PORT set on jwks-get': {
      policy: 'containers respect what Knative reserves',
      target: 'pvc',
      breaks: (objects) => void mainContainer(objects, 'jwks-get').env!.push({ name: 'PORT', value: '8080' }),
      flagged: /jwks-get: sets reserved env PORT/,
    },
    'K_REVISION set on key-rotated': {
      policy: 'containers respect what Knative reserves',
      target: 'object-storage',
      breaks: (objects) => void mainContainer(objects, PUBLISHER).env!.push({ name: 'K_REVISION', value: 'x' }),
      flagged: /key-rotated: sets reserved env K_REVISION/,
    },
    'the queue-proxy port 8012': {
      policy: 'containers respect what Knative reserves',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, 'jwk-get').ports![0]!.containerPort = 8012),
      flagged: /jwk-get: reserved port 8012/,
    },
    'a second port': {
      policy: 'containers respect what Knative reserves',
      target: 'pvc',
      breaks: (objects) => void mainContainer(objects, 'jwks-get').ports!.push({ containerPort: 9100, name: 'metrics' }),
      flagged: /jwks-get: 2 container ports; Knative allows one/,
    },
    'a port named http': {
      policy: 'containers respect what Knative reserves',
      target: 'object-storage',
      breaks: (objects) => void (mainContainer(objects, DEAD_LETTER).ports![0]!.name = 'http'),
      flagged: /event-dead-letter: port name http is not empty, http1 or h2c/,
    },
    'readiness on /healthz': {
      policy: 'Knative Services have probes and resources',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, 'jwks-get').readinessProbe!.httpGet!.path = '/healthz'),
      flagged: /jwks-get\/jwks-get: readinessProbe is not httpGet \/readyz/,
    },
    'no liveness probe': {
      policy: 'Knative Services have probes and resources',
      target: 'object-storage',
      breaks: (objects) => void delete mainContainer(objects, PUBLISHER).livenessProbe,
      flagged: /key-rotated\/key-rotated: livenessProbe is not httpGet \/healthz/,
    },
    'a probe on another port': {
      policy: 'Knative Services have probes and resources',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, 'jwk-get').livenessProbe!.httpGet!.port = 9000),
      flagged: /jwk-get\/jwk-get: probe on port 9000, not the user port 8080/,
    },
    'no limits': {
      policy: 'Knative Services have probes and resources',
      target: 'pvc',
      breaks: (objects) => void delete mainContainer(objects, DEAD_LETTER).resources!.limits,
      flagged: /event-dead-letter\/event-dead-letter: no limits.memory/,
    },
    'no memory request': {
      policy: 'Knative Services have probes and resources',
      target: 'pvc',
      breaks: (objects) => void delete mainContainer(objects, 'jwk-get').resources!.requests!.memory,
      flagged: /jwk-get\/jwk-get: no requests.memory/,
    },
    'the destroyed Trigger missing': {
      policy: 'one Trigger per event type, retried then dead-lettered',
      target: 'pvc',
      breaks: (objects) => void objects.splice(objects.findIndex((object) => object.metadata.name === 'key-rotated-destroyed'), 1),
      flagged: /0 Triggers for com.thalesgroup.ciphertrust.key.destroyed/,
    },
    'a second ping Trigger': {
      policy: 'one Trigger per event type, retried then dead-lettered',
      target: 'pvc',
      breaks: (objects) => void objects.push({ ...structuredClone(objects.find((object) => object.metadata.name === 'key-rotated-ping')!), metadata: { name: 'again' } }),
      flagged: /2 Triggers for dev.knative.sources.ping/,
    },
    'a Trigger with linear backoff': {
      policy: 'one Trigger per event type, retried then dead-lettered',
      target: 'object-storage',
      breaks: (objects) => void (named<ITrigger>(objects, 'Trigger', 'key-rotated-rotated').spec!.delivery!.backoffPolicy = 'linear'),
      flagged: /backoffPolicy linear is not exponential/,
    },
    'a Trigger with no retry': {
      policy: 'one Trigger per event type, retried then dead-lettered',
      target: 'pvc',
      breaks: (objects) => void delete named<ITrigger>(objects, 'Trigger', 'key-rotated-state-changed').spec!.delivery!.retry,
      flagged: /: no retry/,
    },
    'a Trigger with no dead-letter sink': {
      policy: 'one Trigger per event type, retried then dead-lettered',
      target: 'pvc',
      breaks: (objects) => void delete named<ITrigger>(objects, 'Trigger', 'key-rotated-ping').spec!.delivery!.deadLetterSink,
      flagged: /Trigger\/key-rotated-ping: deadLetterSink is not the event-dead-letter Service/,
    },
    'a Trigger subscribing jwks-get': {
      policy: 'one Trigger per event type, retried then dead-lettered',
      target: 'pvc',
      breaks: (objects) => void (named<ITrigger>(objects, 'Trigger', 'key-rotated-created').spec!.subscriber.ref!.name = 'jwks-get'),
      flagged: /subscriber is not the key-rotated Knative Service/,
    },
    'no default-deny': {
      policy: 'network policies deny by default and restrict egress',
      target: 'pvc',
      breaks: (objects) => void objects.splice(objects.findIndex((object) => object.metadata.name === 'default-deny'), 1),
      flagged: /no default-deny NetworkPolicy/,
    },
    'a default-deny for ingress only': {
      policy: 'network policies deny by default and restrict egress',
      target: 'object-storage',
      breaks: (objects) => void (networkPolicy(objects, 'default-deny').spec!.policyTypes = ['Ingress']),
      flagged: /no default-deny NetworkPolicy/,
    },
    'serving pods allowed HTTPS anywhere (pvc)': {
      policy: 'network policies deny by default and restrict egress',
      target: 'pvc',
      breaks: (objects) => void networkPolicy(objects, 'egress-dns').spec!.egress!.push({ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ port: 443 }] }),
      flagged: /NetworkPolicy\/egress-dns: egress of jwks-get beyond DNS$/,
    },
    'serving pods allowed every destination (object-storage)': {
      policy: 'network policies deny by default and restrict egress',
      target: 'object-storage',
      breaks: (objects) => void networkPolicy(objects, 'egress-to-object-store').spec!.egress!.push({ ports: [{ port: 443 }] }),
      flagged: /NetworkPolicy\/egress-to-object-store: egress of jwk-get beyond DNS and the store/,
    },
    'the CipherTrust egress widened to serving pods': {
      policy: 'network policies deny by default and restrict egress',
      target: 'pvc',
      breaks: (objects) =>
        void (networkPolicy(objects, 'egress-publisher-to-ciphertrust').spec!.podSelector = { matchLabels: { 'app.kubernetes.io/part-of': 'hsm-jwks-publisher' } }),
      flagged: /egress-publisher-to-ciphertrust: egress of jwks-get beyond DNS/,
    },
    'key-rotated unable to reach CipherTrust Manager on 443': {
      policy: 'network policies deny by default and restrict egress',
      target: 'object-storage',
      breaks: (objects) => void (networkPolicy(objects, 'egress-publisher-to-ciphertrust').spec!.egress![0]!.ports = [{ protocol: 'TCP', port: 8443 }]),
      flagged: /key-rotated: no egress on 443 to a CipherTrust Manager ipBlock/,
    },
    'key-rotated mounting the PVC read-only': {
      policy: 'the store is wired per overlay',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, PUBLISHER).volumeMounts!.find((mount) => mount.name === 'jwks-store')!.readOnly = true),
      flagged: /key-rotated: the store mount is not writable/,
    },
    'a serving PVC volume without readOnly': {
      policy: 'the store is wired per overlay',
      target: 'pvc',
      breaks: (objects) => void delete podSpecOf(mustService(objects, 'jwks-get'))!.volumes![0]!.persistentVolumeClaim!.readOnly,
      flagged: /jwks-get: the store mount or volume is not readOnly/,
    },
    'JWKS_STORE not a file URL on jwk-get (pvc)': {
      policy: 'the store is wired per overlay',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, 'jwk-get').env!.find((env) => env.name === 'JWKS_STORE')!.value = '/var/lib/jwks'),
      flagged: /jwk-get: JWKS_STORE \/var\/lib\/jwks is not file:\/\/\/.../,
    },
    'JWKS_STORE pointing off the mount on key-rotated (pvc)': {
      policy: 'the store is wired per overlay',
      target: 'pvc',
      breaks: (objects) => void (mainContainer(objects, PUBLISHER).env!.find((env) => env.name === 'JWKS_STORE')!.value = 'file:///tmp/jwks'),
      flagged: /key-rotated: JWKS_STORE \/tmp\/jwks is not a PVC mount/,
    },
    'jwks-get holding the writer credential': {
      policy: 'the store is wired per overlay',
      target: 'object-storage',
      breaks: (objects) => void mainContainer(objects, 'jwks-get').envFrom!.push({ secretRef: { name: 'jwks-store-writer' } }),
      flagged: /jwks-get: uses jwks-store-writer/,
    },
    'key-rotated holding the reader credential instead': {
      policy: 'the store is wired per overlay',
      target: 'object-storage',
      breaks: (objects) => void (mainContainer(objects, PUBLISHER).envFrom!.find((from) => from.secretRef?.name === 'jwks-store-writer')!.secretRef!.name = 'jwks-store-reader'),
      flagged: /key-rotated: does not use jwks-store-writer/,
    },
    'jwk-get without the jwks-store ConfigMap': {
      policy: 'the store is wired per overlay',
      target: 'object-storage',
      breaks: (objects) => void (mainContainer(objects, 'jwk-get').envFrom = [{ secretRef: { name: 'jwks-store-reader' } }]),
      flagged: /jwk-get: JWKS_STORE is not from ConfigMap jwks-store/,
    },
    'JWKS_STORE set literally on key-rotated (object-storage)': {
      policy: 'the store is wired per overlay',
      target: 'object-storage',
      breaks: (objects) => void mainContainer(objects, PUBLISHER).env!.push({ name: 'JWKS_STORE', value: 'file:///tmp' }),
      flagged: /key-rotated: env JWKS_STORE overrides the jwks-store ConfigMap/,
    },
    'a partner route on /': {
      policy: 'partner routes expose /jwks, /jwk/ and discovery only',
      target: 'partner-routes',
      breaks: (objects) => void delete named<{ spec: { path?: string } }>(objects, 'Route', 'jwk-get-partners').spec.path,
      flagged: /Route\/jwk-get-partners: exposes \/$/,
    },
    'a partner route on /metrics': {
      policy: 'partner routes expose /jwks, /jwk/ and discovery only',
      target: 'partner-routes',
      breaks: (objects) => void (named<{ spec: { path?: string } }>(objects, 'Route', 'jwks-get-partners').spec.path = '/metrics'),
      flagged: /exposes \/metrics/,
    },
    'no partner route for discovery': {
      policy: 'partner routes expose /jwks, /jwk/ and discovery only',
      target: 'partner-routes',
      breaks: (objects) => void (named<{ spec: { path?: string } }>(objects, 'Route', 'jwks-get-discovery-partners').spec.path = '/jwks'),
      flagged: /0 routes for \/\.well-known\/openid-configuration; expected one/,
    },
    'serving replicas not spread over nodes': {
      policy: 'serving replicas spread over zones, then nodes',
      target: 'pvc',
      breaks: (objects) => void podSpecOf(mustService(objects, 'jwk-get'))!.topologySpreadConstraints!.pop(),
      flagged: /jwk-get: topologySpreadConstraints on \[topology.kubernetes.io\/zone\], not/,
    },
    'a spread that selects another Service\'s pods': {
      policy: 'serving replicas spread over zones, then nodes',
      target: 'object-storage',
      breaks: (objects) => {
        const [zone] = podSpecOf(mustService(objects, 'jwks-get'))!.topologySpreadConstraints!;
        zone!.labelSelector = { matchLabels: { 'app.kubernetes.io/name': 'jwk-get' } };
      },
      flagged: /jwks-get: spread on topology.kubernetes.io\/zone: labelSelector does not select its own pods/,
    },
    'a node spread that blocks on a lost node': {
      policy: 'serving replicas spread over zones, then nodes',
      target: 'pvc',
      breaks: (objects) => void delete podSpecOf(mustService(objects, 'jwks-get'))!.topologySpreadConstraints![1]!.nodeTaintsPolicy,
      flagged: /jwks-get: the node spread does not honour taints/,
    },
    'a documented alert missing': {
      policy: 'alerts exist and select metrics the code exposes',
      target: 'pvc',
      breaks: (objects) => {
        for (const group of ofKind<IPrometheusRule>(objects, 'monitoring.coreos.com/v1', 'PrometheusRule').flatMap((rule) => rule.spec.groups ?? [])) {
          group.rules = group.rules?.filter((rule) => rule.alert !== 'JwksStorageErrors');
        }
      },
      flagged: /no alert JwksStorageErrors/,
    },
    'an alert on a misspelt metric': {
      policy: 'alerts exist and select metrics the code exposes',
      target: 'object-storage',
      breaks: (objects) =>
        void (alertRules(objects).find((rule) => rule.alert === 'JwksPublicationStale')!.expr = 'time() - max(jwks_publisher_last_sucess_timestamp_seconds) > 7200'),
      flagged: /JwksPublicationStale: expr selects jwks_publisher_last_sucess_timestamp_seconds/,
    },
    'an alert on a counter read as a histogram': {
      policy: 'alerts exist and select metrics the code exposes',
      target: 'pvc',
      breaks: (objects) =>
        void (alertRules(objects).find((rule) => rule.alert === 'JwksServing5xx')!.expr = 'histogram_quantile(0.99, sum by (le) (rate(jwks_http_requests_total_bucket[5m]))) > 1'),
      flagged: /JwksServing5xx: expr selects jwks_http_requests_total_bucket/,
    },
    'an alert whose runbook is not in the guide': {
      policy: 'alerts exist and select metrics the code exposes',
      target: 'pvc',
      breaks: (objects) => void (alertRules(objects).find((rule) => rule.alert === 'JwksServedSetOld')!.annotations!.runbook = 'docs/operations.md#nowhere'),
      flagged: /JwksServedSetOld: runbook docs\/operations.md#nowhere is not a section/,
    },
  };

  function networkPolicy(objects: readonly Manifest[], name: string): INetworkPolicy {
    const policy = ofKind<INetworkPolicy>(objects, 'networking.k8s.io/v1', 'NetworkPolicy').find((candidate) => candidate.metadata?.name === name);
    if (policy === undefined) throw new Error(`no NetworkPolicy ${name}`);
    return policy;
  }

  function alertRules(objects: readonly Manifest[]): NonNullable<NonNullable<IPrometheusRule['spec']['groups']>[number]['rules']> {
    return ofKind<IPrometheusRule>(objects, 'monitoring.coreos.com/v1', 'PrometheusRule').flatMap((rule) =>
      (rule.spec.groups ?? []).flatMap((group) => group.rules ?? []),
    );
  }

  it('every policy has a breakage that it flags', () => {
    const covered = new Set(Object.values(breakages).map((breakage) => breakage.policy));
    expect(Object.keys(policies).filter((name) => !covered.has(name))).toEqual([]);
  });

  it.each(Object.entries(breakages))('flags %s', async (_what, { policy, target, breaks, flagged }) => {
    const { check } = policies[policy]!;
    const objects = await brokenCopy(target);
    expect(check(objects, target)).toEqual([]);
    breaks(objects);
    expect(check(objects, target)).toEqual(expect.arrayContaining([expect.stringMatching(flagged)]));
  });
});

describe('ingress and namespace', () => {
  /** The namespaces whose pods may open connections to a Knative Service's pods. */
  function ingressNamespaces(objects: readonly Manifest[], service: string): string[] {
    const labels = podLabels(mustService(objects, service));
    return ofKind<INetworkPolicy>(objects, 'networking.k8s.io/v1', 'NetworkPolicy')
      .filter((policy) => (policy.spec?.policyTypes ?? []).includes('Ingress') && selects(policy.spec?.podSelector ?? {}, labels))
      .flatMap((policy) => policy.spec?.ingress ?? [])
      .flatMap((rule) => rule.from ?? [])
      .map((peer) => {
        // Only whole namespaces by name are expected: an ipBlock or a pod selector would be a hole.
        expect(peer.ipBlock).toBeUndefined();
        expect(peer.podSelector).toBeUndefined();
        return peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] ?? '<any>';
      })
      .sort();
  }

  it.each(overlays)('lets only Knative serving and monitoring reach the serving functions, and eventing only key-rotated (%s)', async (overlay) => {
    const objects = await built(overlay);
    for (const service of SERVING) {
      expect(ingressNamespaces(objects, service)).toEqual(['knative-serving', 'knative-serving-ingress', 'openshift-user-workload-monitoring']);
    }
    expect(ingressNamespaces(objects, PUBLISHER)).toEqual(['knative-eventing', 'knative-serving', 'knative-serving-ingress', 'openshift-user-workload-monitoring']);
  });

  it.each(overlays)('opts the namespace in to SinkBinding (%s)', async (overlay) => {
    const namespaces = ofKind<{ metadata?: { labels?: Record<string, string> } }>(await built(overlay), 'v1', 'Namespace');
    expect(namespaces.map((namespace) => namespace.metadata?.labels?.['bindings.knative.dev/include'])).toEqual(['true']);
  });
});
