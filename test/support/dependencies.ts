import { spawnSync } from 'node:child_process';

/**
 * Suites that need Debian packages (SoftHSM2, python3-jwt, python3-jwcrypto, python3-authlib, python3-jose,
 * libcrypt-jwt-perl, prometheus, rsyslog). In CI a missing one
 * fails the run, since a skipped suite would read as a pass; on a developer's machine the suite is
 * skipped with a loud message saying what to install.
 */
export function describeIfInstalled(name: string, missing: readonly string[], install: string, body: () => void): void {
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const message = `${name} needs ${missing.join(', ')}: ${install}`;
  if (isCi()) throw new Error(`CI must run this suite: ${message}`);
  // eslint-disable-next-line no-console -- a skipped suite must be loud
  console.warn(`\n*** SKIPPED: ${message} ***\n`);
  describe.skip(name, body);
}

function isCi(): boolean {
  const value = process.env.CI;
  return value !== undefined && value !== '' && value !== 'false';
}

/** One test of a suite that needs something the others do not; the same rules as describeIfInstalled. */
export function itIfInstalled(name: string, missing: readonly string[], install: string, body: () => Promise<void>): void {
  if (missing.length === 0) {
    it(name, body);
    return;
  }
  const message = `${name} needs ${missing.join(', ')}: ${install}`;
  if (isCi()) throw new Error(`CI must run this test: ${message}`);
  // eslint-disable-next-line no-console -- a skipped test must be loud
  console.warn(`\n*** SKIPPED: ${message} ***\n`);
  it.skip(name, body);
}

/**
 * [] when a process running as `uid` can run the compiled functions (dist/ readable along its whole
 * path: a checkout under a private home directory is not); otherwise what is missing.
 */
export function unprivilegedRunMissing(uid: number, file: string): string[] {
  const probe = spawnSync(process.execPath, ['-e', 'require("fs").accessSync(process.argv[1], require("fs").constants.R_OK)', file], {
    uid,
    gid: uid,
    stdio: 'ignore',
  });
  return probe.status === 0 ? [] : [`${file} readable by uid ${uid}, and permission to run as that uid`];
}
