/**
 * The alerts of knative/base/prometheusrule.yaml as Prometheus itself reads them: `promtool check
 * rules` on the manifest's rule groups, and `promtool test rules` with alert-rules.promtool.yaml,
 * which holds, for every alert, the series that fire it (after its `for:`), a near-miss that must
 * not, and its exact labels and annotations. An alert without both cases fails here, so an alert
 * added later comes with its unit tests.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { describeIfInstalled } from '../support/dependencies.js';
import { repoRoot } from '../support/manifests.js';
import { PROMETHEUS_INSTALL, alertNames, prometheusMissing, promtool, ruleFileText, ruleGroupsFromManifest, type RuleGroup, type ToolResult } from '../support/prometheus.js';

const UNIT_TESTS = join(repoRoot, 'test/observability/alert-rules.promtool.yaml');

interface AlertCase {
  readonly alertname: string;
  readonly exp_alerts?: readonly { exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }[];
}
interface UnitTests {
  readonly rule_files: readonly string[];
  readonly tests: readonly { alert_rule_test?: readonly AlertCase[] }[];
}

const unitTests = (): UnitTests => parse(readFileSync(UNIT_TESTS, 'utf8')) as UnitTests;

/** Runs promtool on these groups written as rules.yaml, beside these unit tests, in a fresh directory. */
async function withRuleFile(groups: readonly RuleGroup[], tests: UnitTests, run: (dir: string) => Promise<ToolResult>): Promise<ToolResult> {
  const dir = await mkdtemp(join(tmpdir(), 'promtool-'));
  try {
    await writeFile(join(dir, 'rules.yaml'), ruleFileText(groups));
    await writeFile(join(dir, 'tests.yaml'), stringify(tests));
    return await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const checkRules = (groups: readonly RuleGroup[]): Promise<ToolResult> => withRuleFile(groups, unitTests(), (dir) => promtool(['check', 'rules', 'rules.yaml'], dir));
const testRules = (groups: readonly RuleGroup[], tests = unitTests()): Promise<ToolResult> =>
  withRuleFile(groups, tests, (dir) => promtool(['test', 'rules', 'tests.yaml'], dir));

/** The manifest's groups with one alert's rule replaced. */
function withAlert(alert: string, change: (rule: RuleGroup['rules'][number]) => RuleGroup['rules'][number]): RuleGroup[] {
  return ruleGroupsFromManifest().map((group) => ({ ...group, rules: group.rules.map((rule) => (rule.alert === alert ? change(rule) : rule)) }));
}

/** Every alert in the manifest lacking a firing case or a near-miss, and every case naming no alert of the manifest. */
function coverageProblems(alerts: readonly string[], tests: UnitTests): string[] {
  const cases = tests.tests.flatMap((test) => test.alert_rule_test ?? []);
  const problems: string[] = [];
  for (const alert of alerts) {
    const own = cases.filter((entry) => entry.alertname === alert);
    if (!own.some((entry) => (entry.exp_alerts ?? []).length > 0)) problems.push(`${alert}: no case where it fires`);
    if (!own.some((entry) => (entry.exp_alerts ?? []).length === 0)) problems.push(`${alert}: no near-miss where it must not fire`);
    for (const fired of own.flatMap((entry) => entry.exp_alerts ?? [])) {
      if (fired.exp_labels?.severity === undefined) problems.push(`${alert}: a firing case without its severity label`);
      if (!/^docs\/operations\.md#\w+/.test(fired.exp_annotations?.runbook ?? '')) problems.push(`${alert}: a firing case without its runbook annotation`);
    }
  }
  for (const name of new Set(cases.map((entry) => entry.alertname))) if (!alerts.includes(name)) problems.push(`${name}: tested, but not in the manifest`);
  return problems;
}

describeIfInstalled('alert rules, as Prometheus reads and evaluates them (promtool)', prometheusMissing(), PROMETHEUS_INSTALL, () => {
  it('promtool check rules accepts every rule group of the PrometheusRule manifest', async () => {
    const groups = ruleGroupsFromManifest();
    const result = await checkRules(groups);
    expect(result.output).toContain(`SUCCESS: ${groups.flatMap((group) => group.rules).length} rules found`);
    expect(result.status).toBe(0);
  });

  it('every alert has a unit test where it fires (with severity and runbook) and a near-miss where it does not', () => {
    const alerts = alertNames(ruleGroupsFromManifest());
    expect(alerts.length).toBeGreaterThan(0);
    expect(unitTests().rule_files).toEqual(['rules.yaml']);
    expect(coverageProblems(alerts, unitTests())).toEqual([]);
  });

  it('promtool test rules: every alert fires on its series with its labels and annotations, and not on its near-miss', async () => {
    const result = await testRules(ruleGroupsFromManifest());
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  describe('fails when the rules are broken', () => {
    it('a broken expression fails promtool check rules', async () => {
      const result = await checkRules(withAlert('JwksPublicationFailing', (rule) => ({ ...rule, expr: 'increase(jwks_publisher_publications_total{outcome="failed"}[1h] >= 3' })));
      expect(result.status).not.toBe(0);
      expect(result.output).toMatch(/JwksPublicationFailing|parse error/);
    });

    it('a renamed metric fails the unit tests of its alert', async () => {
      const result = await testRules(withAlert('JwksGuardRefusedPublication', (rule) => ({ ...rule, expr: rule.expr.replace('jwks_publisher_guard_refusals_total', 'jwks_publisher_guard_refused_total') })));
      expect(result.status).not.toBe(0);
      expect(result.output).toMatch(/alertname: JwksGuardRefusedPublication/);
    });

    it('a changed severity or runbook fails the unit tests', async () => {
      const result = await testRules(withAlert('JwksStorageErrors', (rule) => ({ ...rule, labels: { severity: 'critical' }, annotations: { ...rule.annotations, runbook: 'docs/operations.md#elsewhere' } })));
      expect(result.status).not.toBe(0);
      expect(result.output).toMatch(/alertname: JwksStorageErrors/);
    });

    it('an alert without its unit tests, or a test of an alert that is gone, is flagged', () => {
      const alerts = [...alertNames(ruleGroupsFromManifest()), 'JwksCertificateExpiring'];
      expect(coverageProblems(alerts, unitTests())).toEqual(['JwksCertificateExpiring: no case where it fires', 'JwksCertificateExpiring: no near-miss where it must not fire']);
      expect(coverageProblems(alerts.filter((alert) => alert !== 'JwksServedSetOld' && alert !== 'JwksCertificateExpiring'), unitTests())).toEqual(['JwksServedSetOld: tested, but not in the manifest']);
    });
  });
});
