/**
 * The alerts and the dashboard in a real Prometheus: key-rotated, jwks-get and jwk-get run in their
 * own processes against the CipherTrust Manager emulator and a file store; a Prometheus on loopback
 * (its own configuration and data, test/support/prometheus.ts) scrapes them every 500 ms and
 * evaluates knative/base/prometheusrule.yaml's rules, shortened by shortenDurations (one hour of
 * production is 15 s here; nothing else changes). The emulator's faults and a foreign write drive
 * the alerts; recovery resolves them. Then every query of knative/monitoring/dashboard.json is
 * evaluated over the same run and must return data.
 *
 * DASHBOARD_DATA=<file> also writes each panel's answers there, which scripts/render-dashboard.ts
 * draws as docs/dashboard.png (`npm run dashboard:render`).
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CmKeyResource } from '../../emulator/index.js';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { hasData, loadDashboard, panelTargets, testQuery, variableNames, type DashboardData } from '../support/dashboard.js';
import { describeIfInstalled } from '../support/dependencies.js';
import { eventually, rawRequest } from '../support/http.js';
import { PROMETHEUS_INSTALL, prometheusMissing, ruleGroupsFromManifest, shortenDurations, startPrometheus, type ActiveAlert, type RunningPrometheus } from '../support/prometheus.js';
import { startPublisherStack, type PublisherStack } from '../support/publisher-stack.js';
import { certificateFor, testAuthority } from '../support/certificates.js';
import { PUBLISH, SIGN, startServing } from '../faults/support.js';

/** One hour of production is 3600 / FACTOR = 15 s here (for: and range windows alike). */
const FACTOR = 240;
const INTERVAL = '500ms';

describeIfInstalled('alerts and dashboard in a real Prometheus scraping the functions', prometheusMissing(), PROMETHEUS_INSTALL, () => {
  let stack: PublisherStack;
  let serving: Awaited<ReturnType<typeof startServing>>;
  let prometheus: RunningPrometheus;
  let traffic: { stop(): Promise<void> };
  let keys: CmKeyResource[];
  let ca: Awaited<ReturnType<typeof testAuthority>>;
  const startedAt = Date.now() / 1000;

  beforeAll(async () => {
    // A bank PKI, so one key is published with its certificate (the certificate expiry panel).
    ca = await testAuthority();
    stack = await startPublisherStack('file', { env: { JWKS_CERT_TRUST_ANCHORS: join(ca.dir, 'root.pem') } });
    keys = [0, 1, 2, 3].map((index) => stack.emulator.keys.create({ name: `live-${index}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH }));
    stack.emulator.keys.importCertificate({ name: 'live-issuing-ca', material: ca.issuingPem, labels: PUBLISH });
    const certified = await certificateFor(ca, createPublicKey(keys[0]!.publickey!));
    stack.emulator.keys.importCertificate({ name: 'live-0-certificate', material: certified, labels: { ...PUBLISH, 'jwks-key': 'live-0' } });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', keys: 4 } });
    serving = await startServing(stack.backend.env);
    prometheus = await startPrometheus({
      targets: [
        { job: 'key-rotated', address: new URL(stack.keyRotated.url).host },
        { job: 'jwks-get', address: new URL(serving.jwks.url).host },
        { job: 'jwk-get', address: new URL(serving.jwk.url).host },
      ],
      groups: shortenDurations(ruleGroupsFromManifest(), FACTOR, INTERVAL),
      scrapeInterval: INTERVAL,
      evaluationInterval: INTERVAL,
    });
    traffic = partnerTraffic();
    // Every target up before anything happens.
    await eventually(async () => (await prometheus.query('up == 1')).length === 3, 15_000);
  }, 60_000);

  afterAll(async () => {
    await traffic?.stop();
    await prometheus?.stop();
    await serving?.stop();
    await stack?.close();
    await ca?.remove();
  });

  /** Partners asking for the set (plain and conditional) and a key, every 50 ms, on both functions. */
  function partnerTraffic(): { stop(): Promise<void> } {
    let running = true;
    const loop = (async () => {
      while (running) {
        const set = await rawRequest(serving.jwks.url, '/jwks');
        const etag = set.headers.etag;
        if (typeof etag === 'string') await rawRequest(serving.jwks.url, '/jwks', { headers: { 'if-none-match': etag } });
        const kid = (JSON.parse(set.body.toString()) as { keys: { kid: string }[] }).keys[0]?.kid;
        if (kid !== undefined) await rawRequest(serving.jwk.url, `/jwk/${kid}`);
        await rawRequest(serving.jwk.url, '/jwk/unknown-kid');
        await new Promise((done) => setTimeout(done, 50));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
      },
    };
  }

  const firing = async (name: string): Promise<ActiveAlert[]> =>
    (await prometheus.alerts()).filter((alert) => alert.labels.alertname === name && alert.state === 'firing');

  /** Waits until the alert fires (with at least `instances` instances) and returns its firing instances. */
  async function expectFires(name: string, instances = 1, timeoutMs = 20_000): Promise<ActiveAlert[]> {
    try {
      await eventually(async () => (await firing(name)).length >= instances, timeoutMs);
    } catch {
      throw new Error(`${name} did not fire within ${timeoutMs} ms; active alerts: ${JSON.stringify(await prometheus.alerts())}\n${prometheus.output()}`);
    }
    return firing(name);
  }

  const LIVE_ALERTS = ['JwksPublicationFailing', 'JwksGuardRefusedPublication', 'JwksPrivateKeyMaterial'];

  it('no alert is active while everything works', async () => {
    // Two evaluations after every target is up, so rules have seen the scraped series.
    await new Promise((done) => setTimeout(done, 1500));
    expect(await prometheus.alerts()).toEqual([]);
  });

  it('a stored private key fires JwksPrivateKeyMaterial (per serving function), naming no secret', async () => {
    const published = (await stack.publishedBytes())!;
    const set = JSON.parse(published.toString()) as { keys: Record<string, unknown>[] };
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const d = (privateKey.export({ format: 'jwk' }) as { d: string }).d;
    // Another writer puts a private member into the stored set, in place.
    await writeFile(join(stack.backend.directory!, KEY_SET_OBJECT), JSON.stringify({ keys: [{ ...set.keys[0], d }, ...set.keys.slice(1)] }));
    try {
      const alerts = await expectFires('JwksPrivateKeyMaterial', 2);
      expect(alerts.map((alert) => alert.labels.function).sort()).toEqual(['jwk-get', 'jwks-get']);
      expect(alerts[0]).toMatchObject({ labels: { severity: 'critical', reason: 'private_key_material' }, annotations: { runbook: 'docs/operations.md#jwksprivatekeymaterial' } });
      expect(JSON.stringify(await prometheus.alerts())).not.toContain(d);
    } finally {
      // The next publication replaces the set (the later tests need a readable one).
      expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published' } });
    }
  });

  it('CipherTrust Manager down for three cycles fires JwksPublicationFailing', async () => {
    await stack.emulator.down();
    try {
      for (let cycle = 0; cycle < 3; cycle++) expect((await stack.ping()).body).toMatchObject({ outcome: 'failed' });
      const [alert] = await expectFires('JwksPublicationFailing');
      expect(alert).toMatchObject({ labels: { severity: 'warning', outcome: 'failed', job: 'key-rotated' }, annotations: { runbook: 'docs/operations.md#jwkspublicationfailing' } });
    } finally {
      await stack.emulator.up();
    }
  });

  it('a mass removal refused by the guard fires JwksGuardRefusedPublication, naming the guard', async () => {
    for (const key of keys.slice(1)) stack.emulator.keys.patch(key.id, { labels: {} });
    try {
      expect((await stack.ping()).body).toMatchObject({ guard: 'mass_removal' });
      const [alert] = await expectFires('JwksGuardRefusedPublication');
      expect(alert).toMatchObject({
        labels: { severity: 'critical', guard: 'mass_removal' },
        annotations: { summary: 'A publication was refused by the mass_removal guard; the current set is kept', runbook: 'docs/operations.md#jwksguardrefusedpublication' },
      });
    } finally {
      for (const key of keys.slice(1)) stack.emulator.keys.patch(key.id, { labels: PUBLISH });
    }
  });

  it('recovery resolves them: publications succeed, the stored set is clean, and every alert clears', async () => {
    expect(await stack.ping()).toMatchObject({ status: 200, body: { keys: 4 } });
    expect((JSON.parse((await stack.publishedBytes())!.toString()) as { keys: object[] }).keys.every((key) => !('d' in key))).toBe(true);
    await eventually(async () => (await prometheus.alerts()).length === 0, 30_000).catch(async () => {
      throw new Error(`alerts still active: ${JSON.stringify(await prometheus.alerts())}`);
    });
    for (const name of LIVE_ALERTS) expect(await firing(name)).toEqual([]);
  }, 40_000);

  it('every dashboard panel\'s query returns data from this run', async () => {
    const dashboard = loadDashboard();
    const end = Date.now() / 1000;
    const step = 0.5;
    const panels = await Promise.all(
      panelTargets(dashboard).map(async (target) => {
        const query = testQuery(target.expr, variableNames(dashboard), FACTOR);
        return { ...target, query, result: await prometheus.queryRange(query, startedAt, end, step) };
      }),
    );
    const output = process.env.DASHBOARD_DATA;
    if (output !== undefined && output !== '') await writeFile(output, JSON.stringify({ start: startedAt, end, step, factor: FACTOR, panels } satisfies DashboardData));
    expect(panels.length).toBeGreaterThanOrEqual(10);
    expect(panels.filter((panel) => !hasData(panel.result)).map((panel) => `${panel.panel}: ${panel.query}`)).toEqual([]);
  });

  it('a panel query with a typo returns no data, and is caught', async () => {
    const [first] = panelTargets(loadDashboard());
    const query = testQuery(first!.expr.replace('jwks_publisher_keys_published', 'jwks_publisher_key_published'), variableNames(loadDashboard()), FACTOR);
    expect(hasData(await prometheus.queryRange(query, startedAt, Date.now() / 1000, 0.5))).toBe(false);
  });
});
