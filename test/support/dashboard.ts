/**
 * The operators' dashboard (knative/monitoring/dashboard.json, Grafana JSON): its panels' queries,
 * and how a test evaluates them in its own Prometheus.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { knativeDir } from './manifests.js';
import { shortenWindows, type PromSeries } from './prometheus.js';

export const DASHBOARD_FILE = join(knativeDir, 'monitoring/dashboard.json');

export interface PanelTarget {
  readonly panel: string;
  readonly unit: string;
  readonly expr: string;
  readonly legendFormat: string;
}

interface GrafanaPanel {
  title: string;
  yaxes?: { format?: string }[];
  targets?: { expr: string; legendFormat?: string }[];
}

export interface Dashboard {
  title: string;
  templating?: { list: { name: string }[] };
  panels: GrafanaPanel[];
}

export function loadDashboard(file = DASHBOARD_FILE): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/** Every query of every panel, in the dashboard's order. */
export function panelTargets(dashboard: Dashboard): PanelTarget[] {
  return dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ panel: panel.title, unit: panel.yaxes?.[0]?.format ?? 'short', expr: target.expr, legendFormat: target.legendFormat ?? '' })),
  );
}

/**
 * A panel's query as the test's Prometheus runs it: each dashboard variable (`$namespace`) becomes
 * `.*` (the test's series carry no namespace label; `=~".*"` also matches a missing label), and
 * its windows are shortened by the live test's factor, as the alert rules are (shortenWindows).
 */
export function testQuery(expr: string, variables: readonly string[], factor: number): string {
  let query = expr;
  for (const name of variables) query = query.replaceAll(`$${name}`, '.*').replaceAll(`\${${name}}`, '.*');
  if (/\$\w/.test(query)) throw new Error(`a dashboard variable left in ${expr}`);
  return shortenWindows(query, factor);
}

/** The variable names of the dashboard (datasource included). */
export function variableNames(dashboard: Dashboard): string[] {
  return (dashboard.templating?.list ?? []).map((variable) => variable.name);
}

/** True when a range query's answer holds at least one series with a finite value. */
export function hasData(result: readonly PromSeries[]): boolean {
  return result.some((series) => (series.values ?? (series.value === undefined ? [] : [series.value])).some(([, value]) => Number.isFinite(Number(value))));
}

/** What the live test leaves for the picture: every panel query's answers over the whole run (times in seconds). */
export interface DashboardData {
  readonly start: number;
  readonly end: number;
  readonly step: number;
  /** How many times faster than production the run's windows and for: durations are. */
  readonly factor: number;
  readonly panels: readonly (PanelTarget & { readonly query: string; readonly result: readonly PromSeries[] })[];
}
