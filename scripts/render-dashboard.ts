/**
 * Draws docs/dashboard.png from real data: the answers a real Prometheus gave to every panel query
 * of knative/monitoring/dashboard.json during test/observability/live-prometheus.test.ts (which
 * writes them to the file named by DASHBOARD_DATA). Each panel becomes an SVG (dashboard-svg.ts),
 * laid out as the dashboard's gridPos says, and headless Chromium (Debian's `chromium`) takes the
 * screenshot.
 *
 *   npm run dashboard:render        (runs the live test, then this)
 *   node dist/scripts/render-dashboard.js <data.json> <out.png>
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DashboardData } from '../test/support/dashboard.js';
import { panelSvg } from './dashboard-svg.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PAGE_WIDTH = 1360;

/** The page: a header saying what the data is, then the panels two by two, in the dashboard's order. */
export function dashboardHtml(data: DashboardData, title: string): string {
  const byPanel = new Map<string, DashboardData['panels'][number][]>();
  for (const target of data.panels) byPanel.set(target.panel, [...(byPanel.get(target.panel) ?? []), target]);
  const panels = [...byPanel.values()].map((targets) =>
    panelSvg(
      {
        title: targets[0]!.panel,
        unit: targets[0]!.unit,
        legendFormat: targets[0]!.legendFormat,
        series: targets.flatMap((target) => target.result),
      },
      data.start,
      data.end,
    ),
  );
  const taken = new Date(data.end * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  return [
    '<!doctype html><html><head><meta charset="utf-8"><style>',
    `body{margin:0;padding:16px;background:#111217;color:#d8d9da;font-family:Helvetica,Arial,sans-serif;width:${PAGE_WIDTH - 32}px}`,
    'h1{font-size:18px;margin:0 0 4px}p{font-size:12px;color:#8e8e8e;margin:0 0 12px}',
    '.grid{display:grid;grid-template-columns:660px 660px;gap:8px}',
    '</style></head><body>',
    `<h1>${title}</h1>`,
    `<p>Real data: a Prometheus on loopback scraping key-rotated, jwks-get and jwk-get during the live alert test (${taken}, ${Math.round(data.end - data.start)} s). ` +
      `Windows are shortened ${data.factor}× as in the test (1 h = ${3600 / data.factor} s). Events: a private key written into the store, CipherTrust Manager down for three cycles, a guard refusal, recovery.</p>`,
    `<div class="grid">${panels.join('\n')}</div>`,
    '</body></html>',
  ].join('\n');
}

function main(args: readonly string[]): number {
  const [dataFile, output] = args;
  if (dataFile === undefined || output === undefined) {
    process.stderr.write('usage: render-dashboard <data.json> <out.png>\n');
    return 2;
  }
  const data = JSON.parse(readFileSync(dataFile, 'utf8')) as DashboardData;
  const dashboard = JSON.parse(readFileSync(resolve('knative/monitoring/dashboard.json'), 'utf8')) as { title: string };
  const rows = Math.ceil(new Set(data.panels.map((panel) => panel.panel)).size / 2);
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-render-'));
  try {
    const page = join(dir, 'dashboard.html');
    writeFileSync(page, dashboardHtml(data, dashboard.title));
    const result = spawnSync(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--hide-scrollbars',
        `--user-data-dir=${join(dir, 'profile')}`,
        `--window-size=${PAGE_WIDTH},${90 + rows * 308}`,
        `--screenshot=${resolve(output)}`,
        pathToFileURL(page).href,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (result.status !== 0) {
      process.stderr.write(`chromium failed (${result.status ?? result.error?.message}): ${result.stderr}\n`);
      return 1;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${output}\n`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main(process.argv.slice(2));
