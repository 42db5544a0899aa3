/**
 * Prometheus for the tests: the rule groups of knative/base/prometheusrule.yaml as Prometheus reads
 * them, the one documented transformation that shortens their durations for a live test, promtool,
 * and a real Prometheus on loopback with its own configuration and data directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { superviseDaemon } from './daemon.js';
import { eventually } from './http.js';
import { fromRepo, knativeDir, parseManifests } from './manifests.js';
import { freePort } from './processes.js';

export const PROMETHEUS_RULE_FILE = join(knativeDir, 'base/prometheusrule.yaml');
export const PROMETHEUS_INSTALL = 'apt-get install -y --no-install-recommends prometheus (Debian: promtool and prometheus)';

export interface AlertRule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

export interface RuleGroup {
  readonly name: string;
  readonly interval?: string;
  readonly rules: readonly AlertRule[];
}

/** What of promtool and prometheus is missing on this machine ([] when both run). */
export function prometheusMissing(): string[] {
  return ['promtool', 'prometheus'].filter((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0);
}

/** The rule groups of the PrometheusRule manifest (its spec.groups), as a rule file holds them. */
export function ruleGroupsFromManifest(file = PROMETHEUS_RULE_FILE): RuleGroup[] {
  const rules = parseManifests(readFileSync(file, 'utf8'), fromRepo(file)).filter(
    (object) => object.apiVersion === 'monitoring.coreos.com/v1' && object.kind === 'PrometheusRule',
  );
  if (rules.length !== 1) throw new Error(`${fromRepo(file)}: ${rules.length} PrometheusRule objects; expected one`);
  const groups = (rules[0]!.spec as { groups?: RuleGroup[] } | undefined)?.groups;
  if (groups === undefined || groups.length === 0) throw new Error(`${fromRepo(file)}: no spec.groups`);
  return groups;
}

/** Every alert name the groups define, in order. */
export function alertNames(groups: readonly RuleGroup[]): string[] {
  return groups.flatMap((group) => group.rules.flatMap((rule) => (rule.alert === undefined ? [] : [rule.alert])));
}

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

/** A Prometheus duration (`1h30m`, `15m`, `500ms`) in milliseconds. */
export function durationMs(text: string): number {
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text) throw new Error(`not a Prometheus duration: ${text}`);
  return parts.reduce((total, part) => total + Number(part[1]) * UNITS_MS[part[2]!]!, 0);
}

/** Milliseconds as a Prometheus duration; whole milliseconds, at least 1 ms. */
export function formatDuration(ms: number): string {
  return `${Math.max(1, Math.round(ms))}ms`;
}

/**
 * The live test's only change to the rules: every duration that measures time (each `for:` and
 * every range or subquery window `[...]` in an expression) is divided by `factor`, and the groups are
 * evaluated every `interval`. Thresholds and everything else stay as written, so what fires in an
 * hour in production fires in 3600/factor seconds here, and a renamed metric or broken expression
 * breaks the test as it would the deployment. Constants that are durations in seconds (the 7200 of
 * JwksPublicationStale, the 100 days of JwksServedSetOld) are not scaled: those alerts are proven by
 * the promtool unit tests instead.
 */
export function shortenDurations(groups: readonly RuleGroup[], factor: number, interval: string): RuleGroup[] {
  return groups.map((group) => ({
    ...group,
    interval,
    rules: group.rules.map((rule) => ({
      ...rule,
      expr: shortenWindows(rule.expr, factor),
      ...(rule.for === undefined ? {} : { for: formatDuration(durationMs(rule.for) / factor) }),
    })),
  }));
}

/** A PromQL expression with every `[range]` and `[range:step]` divided by `factor`. */
export function shortenWindows(expr: string, factor: number): string {
  return expr.replace(/\[(\w+)(?::(\w*))?\]/g, (_all, range: string, step: string | undefined) => {
    const shortRange = formatDuration(durationMs(range) / factor);
    if (step === undefined) return `[${shortRange}]`;
    return `[${shortRange}:${step === '' ? '' : formatDuration(durationMs(step) / factor)}]`;
  });
}

/** A rule file's text, as `rule_files` reads it. */
export function ruleFileText(groups: readonly RuleGroup[]): string {
  return stringify({ groups });
}

export interface ToolResult {
  readonly status: number | null;
  readonly output: string;
}

/** Runs promtool with these arguments in `cwd`; stdout and stderr together. */
export function promtool(args: readonly string[], cwd: string): Promise<ToolResult> {
  return new Promise((done, fail) => {
    const child = spawn('promtool', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', fail);
    child.once('close', (status) => done({ status, output }));
  });
}

export interface ScrapeTarget {
  /** The `job` label Prometheus gives the target's series (the function's name here). */
  readonly job: string;
  /** `host:port` of the /metrics endpoint. */
  readonly address: string;
}

export interface PromSeries {
  readonly metric: Record<string, string>;
  readonly values?: [number, string][];
  readonly value?: [number, string];
}

export interface ActiveAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly state: 'pending' | 'firing';
}

export interface RunningPrometheus {
  readonly url: string;
  /** An instant query's result (a vector or matrix), now. */
  query(expr: string): Promise<PromSeries[]>;
  /** A range query's matrix. Times in seconds. */
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<PromSeries[]>;
  /** Alerts pending or firing now. */
  alerts(): Promise<ActiveAlert[]>;
  /** Prometheus's own output so far. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * A Prometheus on 127.0.0.1 (a free port), with its own configuration and data directory in a fresh
 * temporary directory: never the system's service, its port or its data. Scrapes every target and
 * evaluates the rule groups given.
 */
export async function startPrometheus(options: {
  targets: readonly ScrapeTarget[];
  groups: readonly RuleGroup[];
  scrapeInterval: string;
  evaluationInterval: string;
}): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'prometheus-test-'));
  await writeFile(join(dir, 'rules.yaml'), ruleFileText(options.groups));
  const jobs = [...new Set(options.targets.map((target) => target.job))];
  await writeFile(
    join(dir, 'prometheus.yaml'),
    stringify({
      global: { scrape_interval: options.scrapeInterval, scrape_timeout: options.scrapeInterval, evaluation_interval: options.evaluationInterval },
      rule_files: ['rules.yaml'],
      scrape_configs: jobs.map((job) => ({
        job_name: job,
        static_configs: [{ targets: options.targets.filter((target) => target.job === job).map((target) => target.address) }],
      })),
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yaml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.console.templates=/nonexistent',
      '--web.console.libraries=/nonexistent',
      '--log.level=warn',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const { output, stop } = superviseDaemon(child, dir);

  async function api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const response = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params).toString()}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.error ?? response.status}`);
    return body.data;
  }

  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${output()}`);
      try {
        return (await fetch(`${url}/-/ready`)).ok;
      } catch {
        return false;
      }
    }, 20_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    query: async (expr) => (await api<{ result: PromSeries[] }>('query', { query: expr })).result,
    queryRange: async (expr, start, end, step) =>
      (await api<{ result: PromSeries[] }>('query_range', { query: expr, start: String(start), end: String(end), step: String(step) })).result,
    alerts: async () => (await api<{ alerts: ActiveAlert[] }>('alerts')).alerts,
    output,
    stop,
  };
}
