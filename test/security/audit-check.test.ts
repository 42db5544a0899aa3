/**
 * Issue 7: `node dist/scripts/audit-check.js` fails on a high or critical advisory in the
 * production dependencies, and on an audit that could not be done. Judged here on reports in
 * npm audit's JSON format, through the real script (NPM_AUDIT_REPORT), without the network.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { judgeAuditReport } from '../../scripts/audit-check.js';

const script = fileURLToPath(new URL('../../dist/scripts/audit-check.js', import.meta.url));

function report(counts: Partial<Record<'info' | 'low' | 'moderate' | 'high' | 'critical', number>>, vulnerabilities: Record<string, unknown> = {}): string {
  const full = { info: 0, low: 0, moderate: 0, high: 0, critical: 0, ...counts };
  const total = Object.values(full).reduce((sum, count) => sum + count, 0);
  return JSON.stringify({
    auditReportVersion: 2,
    vulnerabilities,
    metadata: { vulnerabilities: { ...full, total }, dependencies: { prod: 131, dev: 0, optional: 0, peer: 0, peerOptional: 0, total: 131 } },
  });
}

const HIGH = report(
  { high: 2 },
  {
    'fast-xml-parser': {
      name: 'fast-xml-parser',
      severity: 'high',
      isDirect: false,
      via: [{ source: 1, name: 'fast-xml-parser', title: 'ReDoS in attribute parsing', url: 'https://github.com/advisories/GHSA-test-0001', severity: 'high', range: '<4.4.1' }],
      effects: ['@aws-sdk/core'],
      range: '<4.4.1',
      nodes: ['node_modules/fast-xml-parser'],
      fixAvailable: true,
    },
    '@aws-sdk/core': { name: '@aws-sdk/core', severity: 'high', isDirect: false, via: ['fast-xml-parser'], effects: [], range: '*', nodes: [], fixAvailable: true },
  },
);
/** What this workplace's registry answers: it refuses the audit endpoint (npm's own JSON). */
const REFUSED = JSON.stringify({
  message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
  method: 'POST',
  statusCode: 405,
  body: '',
  error: { summary: '', detail: '' },
});

describe('judging an npm audit report', () => {
  it('passes a report with nothing above moderate', () => {
    expect(judgeAuditReport(report({}))).toEqual({ kind: 'clean', summary: expect.stringContaining('0 critical, 0 high') as string });
    expect(judgeAuditReport(report({ moderate: 1, low: 2 }))).toMatchObject({ kind: 'clean', summary: expect.stringContaining('1 moderate, 2 low') as string });
  });

  it('fails on a high advisory, naming the package, the advisory and what pulls it in', () => {
    const verdict = judgeAuditReport(HIGH);
    expect(verdict.kind).toBe('findings');
    expect(verdict.kind === 'findings' && verdict.findings).toEqual([
      'fast-xml-parser <4.4.1 (high): ReDoS in attribute parsing https://github.com/advisories/GHSA-test-0001',
      '@aws-sdk/core * (high): through fast-xml-parser',
    ]);
  });

  it('fails on a critical count even when the list of packages is missing', () => {
    expect(judgeAuditReport(report({ critical: 1 })).kind).toBe('findings');
  });

  it('calls an audit it could not do unavailable, never clean', () => {
    expect(judgeAuditReport(REFUSED)).toEqual({ kind: 'unavailable', reason: expect.stringContaining('405 Method Not Allowed') as string });
    expect(judgeAuditReport('npm error network ETIMEDOUT').kind).toBe('unavailable');
    expect(judgeAuditReport('{}').kind).toBe('unavailable');
  });
});

describe('the audit-check script', () => {
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'audit-check-'));
  });
  afterAll(() => rm(directory, { recursive: true, force: true }));

  async function run(reportText: string, env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
    const file = join(directory, `report-${Math.random()}.json`);
    await writeFile(file, reportText);
    const child = spawn(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', NPM_AUDIT_REPORT: file, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    return { code, output };
  }

  it('exits 0 when clean, 1 with findings listed, 2 when the audit could not be done', async () => {
    expect(await run(report({ low: 1 }))).toEqual({ code: 0, output: expect.stringContaining('no high or critical advisory') as string });
    const findings = await run(HIGH);
    expect(findings.code).toBe(1);
    expect(findings.output).toContain('fast-xml-parser <4.4.1 (high)');
    const refused = await run(REFUSED);
    expect(refused.code).toBe(2);
    expect(refused.output).toContain('405 Method Not Allowed');
  });

  it('lets an unavailable audit pass with a warning only when told to (AUDIT_UNAVAILABLE=warn), never findings', async () => {
    expect(await run(REFUSED, { AUDIT_UNAVAILABLE: 'warn' })).toEqual({ code: 0, output: expect.stringContaining('WARNING: the dependency audit could not be done') as string });
    expect((await run(HIGH, { AUDIT_UNAVAILABLE: 'warn' })).code).toBe(1);
  });
});
