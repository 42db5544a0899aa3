// jest globalSetup/globalTeardown: one SoftHSM2 token directory for the whole run. SoftHSM2 reads
// SOFTHSM2_CONF from the C environment at C_Initialize, which a test file cannot set (jest gives
// it a copy of process.env); set here, the workers inherit it. Tests never touch the machine's
// own tokens (/var/lib/softhsm), whatever SOFTHSM2_CONF the developer has.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function setup() {
  const directory = mkdtempSync(join(tmpdir(), 'softhsm-tests-'));
  mkdirSync(join(directory, 'tokens'));
  const conf = join(directory, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${join(directory, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  process.env.JWKS_TEST_SOFTHSM_DIR = directory;
}

export function teardown() {
  const directory = process.env.JWKS_TEST_SOFTHSM_DIR;
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
}
