/**
 * Issue 7: the production dependencies carry no high or critical advisory.
 *
 *   npm run build && node dist/scripts/audit-check.js
 *
 * Runs `npm audit --omit=dev --audit-level=high --json` in the repository (or reads such a report
 * from the file named by NPM_AUDIT_REPORT, for tests) and exits:
 *   0  no high or critical advisory in the dependencies the image ships
 *   1  at least one: each vulnerable package is listed with its advisories
 *   2  the audit could not be done (the registry refused or could not be reached): that proves
 *      nothing, so it fails, unless AUDIT_UNAVAILABLE=warn, which prints a warning and exits 0.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export type AuditVerdict =
  | { readonly kind: 'clean'; readonly summary: string }
  | { readonly kind: 'findings'; readonly summary: string; readonly findings: readonly string[] }
  | { readonly kind: 'unavailable'; readonly reason: string };

const BLOCKING = new Set(['high', 'critical']);

interface AuditReport {
  readonly message?: string;
  readonly error?: { readonly summary?: string; readonly detail?: string };
  readonly vulnerabilities?: Record<string, { readonly severity?: string; readonly range?: string; readonly via?: readonly (string | AuditAdvisory)[] }>;
  readonly metadata?: { readonly vulnerabilities?: Record<string, number>; readonly dependencies?: { readonly prod?: number } };
}

interface AuditAdvisory {
  readonly title?: string;
  readonly url?: string;
  readonly severity?: string;
}

/** Judges the JSON npm audit printed (format of npm 7 and later). */
export function judgeAuditReport(text: string): AuditVerdict {
  let report: AuditReport;
  try {
    report = JSON.parse(text) as AuditReport;
  } catch {
    return { kind: 'unavailable', reason: `npm audit printed no JSON report: ${text.trim().slice(0, 300) || '(nothing)'}` };
  }
  const counts = report.metadata?.vulnerabilities;
  if (counts === undefined || report.error !== undefined) {
    const reason = [report.message, report.error?.summary, report.error?.detail].filter((part) => part !== undefined && part !== '').join(': ');
    return { kind: 'unavailable', reason: reason || 'npm audit gave no vulnerability counts' };
  }
  const summary =
    `npm audit --omit=dev: ${report.metadata?.dependencies?.prod ?? '?'} production dependencies; ` +
    ['critical', 'high', 'moderate', 'low', 'info'].map((severity) => `${counts[severity] ?? 0} ${severity}`).join(', ');
  const findings = Object.entries(report.vulnerabilities ?? {})
    .filter(([, entry]) => BLOCKING.has(entry.severity ?? ''))
    .map(([name, entry]) => `${name} ${entry.range ?? ''} (${entry.severity}): ${describeVia(entry.via ?? [])}`);
  // The counts are the authority; the list may be shorter if npm changes its format.
  if ((counts.high ?? 0) + (counts.critical ?? 0) > 0 || findings.length > 0) return { kind: 'findings', summary, findings };
  return { kind: 'clean', summary };
}

/** An advisory is an object; a string names the vulnerable dependency it comes through. */
function describeVia(via: readonly (string | AuditAdvisory)[]): string {
  return via.map((item) => (typeof item === 'string' ? `through ${item}` : `${item.title ?? 'advisory'} ${item.url ?? ''}`.trim())).join('; ');
}

function runAudit(): string {
  const repo = fileURLToPath(new URL('../..', import.meta.url));
  const result = spawnSync('npm', ['audit', '--omit=dev', '--audit-level=high', '--json'], { cwd: repo, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error !== undefined) return JSON.stringify({ message: `npm could not be run: ${result.error.message}` });
  // npm exits non-zero both for findings and for a failed audit: the report says which.
  return result.stdout;
}

function main(): number {
  const reportFile = process.env.NPM_AUDIT_REPORT;
  const verdict = judgeAuditReport(reportFile === undefined || reportFile === '' ? runAudit() : readFileSync(reportFile, 'utf8'));
  switch (verdict.kind) {
    case 'clean':
      console.log(`${verdict.summary}: no high or critical advisory`);
      return 0;
    case 'findings':
      console.error(`${verdict.summary}: high or critical advisories:\n${verdict.findings.map((finding) => `  ${finding}`).join('\n')}`);
      return 1;
    case 'unavailable':
      if (process.env.AUDIT_UNAVAILABLE === 'warn') {
        console.error(`*** WARNING: the dependency audit could not be done, nothing was checked: ${verdict.reason} ***`);
        return 0;
      }
      console.error(`the dependency audit could not be done (AUDIT_UNAVAILABLE=warn lets this pass): ${verdict.reason}`);
      return 2;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main();
