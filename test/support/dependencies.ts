/**
 * Suites that need Debian packages (SoftHSM2, python3-jwt, python3-jwcrypto). In CI a missing one
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
