/**
 * Partners' JOSE libraries as Debian 12 ships them, each encrypting to a key it fetches from /jwks:
 * Authlib and python-jose (test/clients/python_jose_encrypt.py, Debian's /usr/bin/python3) and
 * Crypt::JWT (test/clients/crypt_jwt_encrypt.pl, /usr/bin/perl).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { systemPython } from './partner-clients.js';

export type JoseLibrary = 'authlib' | 'python-jose' | 'Crypt::JWT';

const systemPerl = '/usr/bin/perl';
const pythonClient = fileURLToPath(new URL('../clients/python_jose_encrypt.py', import.meta.url));
const perlClient = fileURLToPath(new URL('../clients/crypt_jwt_encrypt.pl', import.meta.url));

export const JOSE_LIBRARIES_INSTALL = 'apt-get install python3-authlib python3-jose libcrypt-jwt-perl';

/** What the library made, and which version made it. */
export interface LibraryJwes {
  readonly library: string;
  readonly version: string;
  readonly jwes: readonly string[];
}

export interface EncryptRequest {
  readonly jwksUrl: string;
  readonly kid: string;
  readonly alg: string;
  readonly enc: string;
  readonly count: number;
  readonly plaintext: string;
}

/** `count` compact JWEs from the library to the published key `kid` (asynchronous: /jwks may be served by this process). */
export function encryptWith(library: JoseLibrary, request: EncryptRequest): Promise<LibraryJwes> {
  const { jwksUrl, kid, alg, enc, count, plaintext } = request;
  const [executable, args] =
    library === 'Crypt::JWT'
      ? [systemPerl, [perlClient, jwksUrl, kid, alg, enc, String(count), plaintext]]
      : // name=value: a kid may begin with '-' (base64url), which argparse would take for an option.
        [systemPython, [pythonClient, `--library=${library}`, `--jwks-url=${jwksUrl}`, `--kid=${kid}`, `--alg=${alg}`, `--enc=${enc}`, `--count=${count}`, `--plaintext=${plaintext}`]];
  return new Promise((done, fail) => {
    // Only PATH: no proxy variables, no PYTHONPATH or PERL5LIB from the developer's shell.
    execFile(executable, args, { env: { PATH: '/usr/bin:/bin' }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) fail(new Error(`${library} could not encrypt (${alg} / ${enc}): ${error.message}\n${stderr}`));
      else done(JSON.parse(stdout) as LibraryJwes);
    });
  });
}

/** [] when the three libraries can run here; otherwise the Debian packages missing. */
export function joseLibrariesMissing(): string[] {
  const python = existsSync(systemPython)
    ? spawnSync(systemPython, ['-c', 'import importlib.util as u\nfor m, p in (("authlib", "python3-authlib"), ("jose", "python3-jose")):\n    u.find_spec(m) or print(p)'], {
        encoding: 'utf8',
        timeout: 10_000,
        env: { PATH: '/usr/bin:/bin' },
      })
    : undefined;
  const missingPython = python === undefined ? ['python3-authlib', 'python3-jose'] : python.status === 0 ? python.stdout.split('\n').filter((line) => line !== '') : [`${systemPython} (${python.error?.message ?? python.stderr.trim()})`];
  const perl = existsSync(systemPerl) ? spawnSync(systemPerl, ['-MCrypt::JWT', '-e', '1'], { timeout: 10_000, env: { PATH: '/usr/bin:/bin' }, stdio: 'ignore' }) : undefined;
  return [...missingPython, ...(perl?.status === 0 ? [] : ['libcrypt-jwt-perl'])];
}
