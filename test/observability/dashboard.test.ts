/**
 * The operators' dashboard as deployed: knative/monitoring builds to one ConfigMap that OpenShift's
 * console picks up (namespace openshift-config-managed, label console.openshift.io/dashboard), and
 * holds dashboard.json byte for byte (the same JSON imports into Grafana). Its queries are evaluated
 * against a real Prometheus in live-prometheus.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { DASHBOARD_FILE, loadDashboard, panelTargets, variableNames } from '../support/dashboard.js';
import { buildKustomization, knativeDir, promqlMetricNames, schemaProblems } from '../support/manifests.js';

const REQUIRED_PANELS = [
  /published keys/i,
  /age of the served set/i,
  /publications by outcome/i,
  /guard refusals/i,
  /CipherTrust Manager latency/i,
  /CipherTrust Manager errors/i,
  /partner requests/i,
  /304/,
  /latency p99/i,
  /storage errors/i,
];

describe('the dashboard (knative/monitoring)', () => {
  it('builds to one ConfigMap the OpenShift console loads, holding dashboard.json as is', async () => {
    const objects = await buildKustomization(join(knativeDir, 'monitoring'));
    expect(objects).toHaveLength(1);
    const configMap = objects[0]!;
    expect(schemaProblems(configMap)).toEqual([]);
    expect(configMap).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'openshift-config-managed', labels: { 'console.openshift.io/dashboard': 'true' } } });
    const data = (configMap as unknown as IConfigMap).data ?? {};
    expect(Object.values(data)).toEqual([readFileSync(DASHBOARD_FILE, 'utf8')]);
  });

  it('has a panel for each thing on-call looks at, each with a query, and only known variables', () => {
    const dashboard = loadDashboard();
    const titles = dashboard.panels.map((panel) => panel.title);
    expect(REQUIRED_PANELS.filter((wanted) => !titles.some((title) => wanted.test(title))).map(String)).toEqual([]);
    expect(dashboard.panels.filter((panel) => (panel.targets ?? []).length === 0).map((panel) => panel.title)).toEqual([]);
    expect(variableNames(dashboard)).toEqual(['datasource', 'namespace']);
    for (const target of panelTargets(dashboard)) {
      expect({ panel: target.panel, metrics: promqlMetricNames(target.expr).every((name) => name.startsWith('jwks_')) }).toEqual({ panel: target.panel, metrics: true });
      expect({ panel: target.panel, scoped: target.expr.includes('namespace=~"$namespace"') }).toEqual({ panel: target.panel, scoped: true });
    }
  });
});
