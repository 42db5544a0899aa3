import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenOptionsFromEnv } from '../../hsm/config.js';
import { ConfigError } from '../../shared/config/env.js';

const LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';
/** Distinctive enough that finding it in a message can only mean the PIN leaked. */
const PIN = 'Pin-7f3c9e-DO-NOT-LOG';

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'hsm-config-'));
});
afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

function pinFile(name: string, content: string): string {
  const path = join(directory, name);
  writeFileSync(path, content);
  return path;
}

/** The ConfigError tokenOptionsFromEnv throws for `env`; fails the test if it throws anything else or nothing. */
function configError(env: Record<string, string>): ConfigError {
  try {
    tokenOptionsFromEnv(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** The variable each problem is about (its first word). */
const variablesOf = (error: ConfigError): string[] => error.problems.map((problem) => problem.split(' ')[0]!);

describe('tokenOptionsFromEnv', () => {
  it('reads the library, the token label and the PIN from the environment', () => {
    expect(tokenOptionsFromEnv({ PKCS11_LIBRARY: LIBRARY, PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN: PIN })).toEqual({ libraryPath: LIBRARY, tokenLabel: 'payments', pin: PIN });
  });

  it('keeps the PIN from the environment exactly as given (no trimming of a secret)', () => {
    expect(tokenOptionsFromEnv({ PKCS11_LIBRARY: LIBRARY, PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN: ` ${PIN} ` }).pin).toBe(` ${PIN} `);
  });

  it.each([
    ['a newline', `${PIN}\n`],
    ['a CRLF', `${PIN}\r\n`],
    ['no newline', PIN],
  ])('reads the PIN from PKCS11_PIN_FILE ending in %s, without the line end', (_name, content) => {
    const path = pinFile('pin-ok', content);
    expect(tokenOptionsFromEnv({ PKCS11_LIBRARY: LIBRARY, PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN_FILE: path })).toEqual({ libraryPath: LIBRARY, tokenLabel: 'payments', pin: PIN });
  });

  it('strips only one trailing newline and nothing else from the file', () => {
    expect(tokenOptionsFromEnv({ PKCS11_LIBRARY: LIBRARY, PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN_FILE: pinFile('pin-spaces', ` ${PIN}\n\n`) }).pin).toBe(` ${PIN}\n`);
  });

  it('treats a blank PKCS11_PIN as unset, so a PIN file alongside it is used', () => {
    const path = pinFile('pin-blank-env', `${PIN}\n`);
    expect(tokenOptionsFromEnv({ PKCS11_LIBRARY: LIBRARY, PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN: '  ', PKCS11_PIN_FILE: path }).pin).toBe(PIN);
  });

  it('names every missing variable in one ConfigError', () => {
    const error = configError({});
    expect(variablesOf(error)).toEqual(['PKCS11_LIBRARY', 'PKCS11_TOKEN_LABEL', 'PKCS11_PIN']);
    expect(error.message).toContain('PKCS11_LIBRARY is required');
    expect(error.message).toContain('PKCS11_TOKEN_LABEL is required');
    expect(error.message).toContain('PKCS11_PIN or PKCS11_PIN_FILE is required');
  });

  it('counts blank values as missing', () => {
    expect(variablesOf(configError({ PKCS11_LIBRARY: ' ', PKCS11_TOKEN_LABEL: '', PKCS11_PIN: '', PKCS11_PIN_FILE: ' ' }))).toEqual(['PKCS11_LIBRARY', 'PKCS11_TOKEN_LABEL', 'PKCS11_PIN']);
  });

  it('refuses a relative library path, and a PIN set both ways, in the same error', () => {
    const error = configError({ PKCS11_LIBRARY: 'libsofthsm2.so', PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN: PIN, PKCS11_PIN_FILE: pinFile('pin-both', PIN) });
    expect(variablesOf(error)).toEqual(['PKCS11_LIBRARY', 'PKCS11_PIN']);
    expect(error.message).toContain('PKCS11_LIBRARY must be an absolute path');
    expect(error.message).toContain('PKCS11_PIN and PKCS11_PIN_FILE are both set');
    expect(error.message).not.toContain(PIN);
  });

  it('refuses a PIN file that cannot be read, saying why, with the other problems', () => {
    const error = configError({ PKCS11_LIBRARY: './lib/libcadp_pkcs11.so', PKCS11_PIN_FILE: join(directory, 'no-such-file') });
    expect(variablesOf(error)).toEqual(['PKCS11_LIBRARY', 'PKCS11_TOKEN_LABEL', 'PKCS11_PIN_FILE']);
    expect(error.message).toContain('PKCS11_PIN_FILE cannot be read (ENOENT)');
    expect(configError({ PKCS11_LIBRARY: LIBRARY, PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN_FILE: directory }).message).toContain('PKCS11_PIN_FILE cannot be read (EISDIR)');
  });

  it.each([
    ['empty', ''],
    ['only a newline', '\n'],
    ['only a CRLF', '\r\n'],
  ])('refuses a PIN file that is %s', (_name, content) => {
    const error = configError({ PKCS11_LIBRARY: LIBRARY, PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN_FILE: pinFile('pin-empty', content) });
    expect(variablesOf(error)).toEqual(['PKCS11_PIN_FILE']);
    expect(error.message).toContain('PKCS11_PIN_FILE names an empty file');
  });

  it('never puts the PIN in an error, whatever else is wrong', () => {
    const fromFile = pinFile('pin-leak', `${PIN}\n`);
    const envs: Record<string, string>[] = [
      { PKCS11_PIN: PIN },
      { PKCS11_LIBRARY: 'relative.so', PKCS11_PIN: PIN },
      { PKCS11_LIBRARY: LIBRARY, PKCS11_PIN: PIN },
      { PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN: PIN, PKCS11_PIN_FILE: fromFile },
      { PKCS11_PIN_FILE: fromFile },
      { PKCS11_LIBRARY: LIBRARY, PKCS11_PIN_FILE: fromFile },
      { PKCS11_LIBRARY: 'relative.so', PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN_FILE: fromFile },
      { PKCS11_TOKEN_LABEL: 'payments', PKCS11_PIN: PIN, PKCS11_PIN_FILE: join(directory, 'no-such-file') },
    ];
    for (const env of envs) {
      const error = configError(env);
      expect(error.problems.length).toBeGreaterThan(0);
      expect(error.message).not.toContain(PIN);
      expect(error.problems.join('\n')).not.toContain(PIN);
      expect(String(error.stack)).not.toContain(PIN);
    }
  });
});
