/**
 * Issue 7: the serving functions can never hold CipherTrust Manager credentials. jwks-get and
 * jwk-get, as real processes, refuse to start when any CIPHERTRUST_* variable is set (every one
 * the publisher reads, the CM Secret's included), naming it and never echoing its value; their
 * configuration (shared/config/serving-config.ts) keeps nothing else from the environment; and
 * their compiled module graph never reaches the CM client or the publisher's configuration.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { ConfigError } from '../../shared/config/env.js';
import { loadServingConfig } from '../../shared/config/serving-config.js';
import { EXIT_CONFIG } from '../../shared/config/exit-on-config-error.js';
import { mapConcurrently } from '../../shared/util/map-concurrently.js';
import { expectNoSecretsInLogs } from '../support/log-secrets.js';
import { runToExit, type HostKind } from '../support/processes.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const SERVING = ['jwks-get', 'jwk-get'] as const;

/** Every CIPHERTRUST_* variable the publisher reads, from its source, plus the CM Secret's keys. */
async function cipherTrustVariables(): Promise<string[]> {
  // Every module that reads CIPHERTRUST_* variables (the node list has its own).
  const source = (await Promise.all(['ciphertrust-config.ts', 'ciphertrust-nodes.ts'].map((file) => readFile(join(repo, 'shared/config', file), 'utf8')))).join('\n');
  const secrets = parseAllDocuments(await readFile(join(repo, 'knative/examples/secrets.example.yaml'), 'utf8')).map(
    (document) => document.toJS() as { metadata: { name: string }; stringData?: Record<string, string> },
  );
  const credentials = secrets.find((secret) => secret.metadata.name === 'ciphertrust-credentials');
  return [...new Set([...(source.match(/CIPHERTRUST_[A-Z_]+/g) ?? []), ...Object.keys(credentials?.stringData ?? {})])].sort();
}

/** One log line: the refusal of a configuration (exitOnConfigError). */
interface Refusal {
  readonly level: string;
  readonly event: string;
  readonly problems: readonly string[];
}

function refusalOf(output: string): Refusal | undefined {
  const lines = output.trim().split('\n').filter((line) => line.includes('"config_refused"'));
  return lines.length === 1 ? (JSON.parse(lines[0]!) as Refusal) : undefined;
}

describe('serving functions refuse CipherTrust credentials', () => {
  let store: string;
  let variables: string[];

  beforeAll(async () => {
    store = await mkdtemp(join(tmpdir(), 'jwks-serving-refusal-'));
    variables = await cipherTrustVariables();
  });
  afterAll(() => rm(store, { recursive: true, force: true }));

  it('knows the variables that carry CM access (the password, the refresh token, the client key...)', () => {
    expect(variables).toEqual(expect.arrayContaining(['CIPHERTRUST_PASSWORD', 'CIPHERTRUST_REFRESH_TOKEN', 'CIPHERTRUST_USERNAME', 'CIPHERTRUST_URL', 'CIPHERTRUST_CLIENT_KEY_FILE']));
  });

  it.each(SERVING)('%s on the lean host exits 78 for each CIPHERTRUST_* variable, naming it, without its value', async (target) => {
    const results = await mapConcurrently(variables, 2, async (name) => {
      const value = `cm-credential-${name.toLowerCase()}-Zq81`;
      // Everything else valid, and a port of its own: only the CM variable can be refused.
      const { code, output } = await runToExit({ FUNCTION_TARGET: target, JWKS_STORE: `file://${store}`, PORT: '0', HOST: '127.0.0.1', [name]: value });
      expectNoSecretsInLogs(output, { secrets: [value] });
      return { name, code, problems: refusalOf(output)?.problems.map((problem) => problem.split(' ')[0]), listened: output.includes('"event":"listening"') };
    });
    expect(results).toEqual(variables.map((name) => ({ name, code: EXIT_CONFIG, problems: [name], listened: false })));
  });

  it.each(SERVING)('%s under functions-framework refuses the CM password too', async (target) => {
    const value = 'cm-password-under-functions-framework-Zq81';
    const { code, output } = await runToExit({ FUNCTION_TARGET: target, JWKS_STORE: `file://${store}`, CIPHERTRUST_PASSWORD: value }, 'functions-framework' satisfies HostKind);
    expect(code).toBe(EXIT_CONFIG);
    expect(refusalOf(output)).toMatchObject({ level: 'fatal', event: 'config_refused', problems: [expect.stringMatching(/^CIPHERTRUST_PASSWORD /)] });
    expectNoSecretsInLogs(output, { secrets: [value] });
  });

  it('keeps nothing from the environment but its own settings, and refuses any set CIPHERTRUST_* variable', () => {
    const names = fc.oneof(
      fc.constantFrom('CIPHERTRUST_PASSWORD', 'CIPHERTRUST_REFRESH_TOKEN', 'CIPHERTRUST_X', 'CM_PASSWORD', 'CM_EMULATOR_PASSWORD', 'PASSWORD', 'KEY_ROTATED_SHARED_SECRET'),
      fc.stringMatching(/^[A-Z][A-Z0-9_]{0,20}$/).filter((name) => !/^(JWKS_|LOG_LEVEL$|S3_|AWS_)/.test(name)),
    );
    const secret = fc.stringMatching(/^[A-Za-z0-9]{12,24}$/);
    fc.assert(
      fc.property(fc.uniqueArray(names, { minLength: 1, maxLength: 4 }), secret, (extra, value) => {
        const env = { JWKS_STORE: `file://${store}`, ...Object.fromEntries(extra.map((name) => [name, value])) };
        const cipherTrust = extra.filter((name) => name.startsWith('CIPHERTRUST_')).sort();
        try {
          const config = loadServingConfig(env);
          expect(cipherTrust).toEqual([]);
          expect(JSON.stringify(config)).not.toContain(value);
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          expect(error.problems.map((problem) => problem.split(' ')[0])).toEqual(cipherTrust);
          expect(error.message).not.toContain(value);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never loads the CM client or the publisher configuration (compiled module graph)', async () => {
    const entries = ['functions/main.js', ...SERVING.flatMap((target) => ['handler', 'index', 'server'].map((module) => `functions/${target}/${module}.js`))];
    const reached = await moduleGraph(entries.map((entry) => join(repo, 'dist', entry)));
    const relative = [...reached].map((file) => file.slice(join(repo, 'dist').length + 1));
    // The walk did follow the serving code (so an empty graph cannot pass).
    expect(relative).toEqual(expect.arrayContaining(['shared/config/serving-config.js', 'shared/serving/key-set-cache.js', 'shared/store/file-store.js']));
    expect(relative.filter((file) => /^shared\/(ciphertrust|publisher)\/|^shared\/config\/(ciphertrust|publisher)-config\.js$|key-rotated/.test(file))).toEqual([]);
  });
});

/** Every compiled module reachable through relative static imports and literal dynamic imports (but main.js's). */
async function moduleGraph(entries: readonly string[]): Promise<Set<string>> {
  const seen = new Set<string>();
  const pending = [...entries];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const code = await readFile(file, 'utf8');
    // main.js imports the server module FUNCTION_TARGET names, one per process: its dynamic imports
    // are not followed (the serving functions' modules are entries of their own).
    const imports = file.endsWith(`${sep}functions${sep}main.js`) ? /(?:\bfrom\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g : /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g;
    for (const match of code.matchAll(imports)) pending.push(resolve(dirname(file), match[1]!));
  }
  return seen;
}
