import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { EnvReader, type Env } from '../shared/config/env.js';
import type { TokenOptions } from './token-session.js';

/**
 * The module's settings from the environment:
 *   PKCS11_LIBRARY      absolute path of the PKCS#11 library (libcadp_pkcs11.so in production)
 *   PKCS11_TOKEN_LABEL  the token (partition) label
 *   PKCS11_PIN          the user PIN, or
 *   PKCS11_PIN_FILE     a file holding it (a mounted Secret), one of the two
 * Throws ConfigError naming every variable that is wrong; never echoes the PIN.
 */
export function tokenOptionsFromEnv(env: Env = process.env): TokenOptions {
  const reader = new EnvReader(env);
  const libraryPath = reader.raw('PKCS11_LIBRARY');
  if (libraryPath === undefined) reader.problem('PKCS11_LIBRARY', 'is required (the PKCS#11 library, e.g. /usr/safenet/lunaclient/lib/libcadp_pkcs11.so)');
  else if (!isAbsolute(libraryPath)) reader.problem('PKCS11_LIBRARY', 'must be an absolute path (a bare name would be searched for on the library path)');
  const tokenLabel = reader.raw('PKCS11_TOKEN_LABEL');
  if (tokenLabel === undefined) reader.problem('PKCS11_TOKEN_LABEL', 'is required');
  const pin = readPin(reader);
  reader.finish();
  return { libraryPath: libraryPath!, tokenLabel: tokenLabel!, pin: pin! };
}

function readPin(reader: EnvReader): string | undefined {
  const pin = reader.secret('PKCS11_PIN');
  const pinFile = reader.raw('PKCS11_PIN_FILE');
  if (pin !== undefined && pinFile !== undefined) {
    reader.problem('PKCS11_PIN', 'and PKCS11_PIN_FILE are both set; set one');
    return undefined;
  }
  if (pinFile === undefined) {
    if (pin === undefined) reader.problem('PKCS11_PIN', 'or PKCS11_PIN_FILE is required');
    return pin;
  }
  try {
    // A trailing newline is how editors and `echo` leave a file; it is not part of the PIN.
    const fromFile = readFileSync(pinFile, 'utf8').replace(/\r?\n$/, '');
    if (fromFile === '') reader.problem('PKCS11_PIN_FILE', 'names an empty file');
    return fromFile;
  } catch (error) {
    reader.problem('PKCS11_PIN_FILE', `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}
