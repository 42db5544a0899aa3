/**
 * Issue 16: the SBOM of what the image carries and the licence policy (build/sbom/, run by the
 * Containerfile's build stage and `npm run sbom`). The real script is run on this repository
 * (after `npm run build`, as `npm test` does) and on small fixture projects with a planted fault:
 * a devDependency that runtime code imports, a copyleft licence, no licence at all.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundledPackages, packageDirectory } from '../../build/sbom/bundle-packages.js';
import { componentLicence, imageSbom, type CycloneDxDocument } from '../../build/sbom/image-sbom.js';
import { licenceFindings, parseExpression, parseLicencePolicy } from '../../build/sbom/licence-policy.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const script = join(repo, 'dist/build/sbom/main.js');
const policyFile = join(repo, 'build/licence-policy.json');
const policy = parseLicencePolicy(JSON.parse(readFileSync(policyFile, 'utf8')));

function runSbom(root: string, out: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [script, '--root', root, '--out', out, '--policy', policyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', fail);
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

const exists = (file: string): Promise<boolean> => access(file).then(() => true, () => false);

describe('licence policy', () => {
  const declared = (name: string, licence: string | undefined) => ({ name, version: '1.0.0', licence });

  it('accepts the listed licences, and OR when one side is listed', () => {
    expect(licenceFindings([declared('a', 'MIT'), declared('b', 'Apache-2.0'), declared('c', '(MIT OR CC0-1.0)'), declared('d', 'GPL-3.0-only OR MIT')], policy)).toEqual([]);
  });

  it('refuses an unlisted licence, AND with an unlisted side, a missing licence and a malformed expression, naming each package', () => {
    expect(
      licenceFindings(
        [declared('gpl', 'GPL-3.0-only'), declared('both', 'MIT AND LGPL-2.1-or-later'), declared('none', undefined), declared('empty', ' '), declared('bad', 'MIT OR')],
        policy,
      ),
    ).toEqual([
      'gpl@1.0.0: licence "GPL-3.0-only" is not in build/licence-policy.json',
      'both@1.0.0: licence "MIT AND LGPL-2.1-or-later" is not in build/licence-policy.json',
      'none@1.0.0: declares no licence',
      'empty@1.0.0: declares no licence',
      'bad@1.0.0: licence "MIT OR" is not an SPDX expression (unexpected end)',
    ]);
  });

  it('accepts a package exception only under the licence it was reviewed with', () => {
    expect(licenceFindings([declared('spdx-exceptions', 'CC-BY-3.0')], policy)).toEqual([]);
    expect(licenceFindings([declared('spdx-exceptions', 'CC-BY-SA-4.0')], policy)).toHaveLength(1);
    expect(licenceFindings([declared('another-data-package', 'CC-BY-3.0')], policy)).toHaveLength(1);
  });

  it('parses SPDX precedence: AND binds tighter than OR; WITH is one licence', () => {
    expect(parseExpression('A OR B AND C')).toEqual({
      kind: 'or',
      left: { kind: 'licence', id: 'A' },
      right: { kind: 'and', left: { kind: 'licence', id: 'B' }, right: { kind: 'licence', id: 'C' } },
    });
    expect(parseExpression('(Apache-2.0 WITH LLVM-exception)')).toEqual({ kind: 'licence', id: 'Apache-2.0 WITH LLVM-exception' });
    expect(licenceFindings([declared('x', 'Apache-2.0 WITH LLVM-exception')], policy)).toHaveLength(1);
  });

  it('refuses a policy without reasons', () => {
    expect(() => parseLicencePolicy({ allowed: { MIT: '' } })).toThrow(/allowed/);
    expect(() => parseLicencePolicy({ allowed: { MIT: 'ok' }, packageExceptions: { x: { licence: 'Y' } } })).toThrow(/packageExceptions\.x/);
  });
});

describe('the packages in the bundle, from esbuild metafile inputs', () => {
  it('maps each input to its nearest installed package directory, scoped and nested included', () => {
    expect(packageDirectory('node_modules/pino/lib/tools.js')).toBe('node_modules/pino');
    expect(packageDirectory('node_modules/@smithy/core/dist-cjs/index.js')).toBe('node_modules/@smithy/core');
    expect(packageDirectory('node_modules/a/node_modules/@b/c/x.js')).toBe('node_modules/a/node_modules/@b/c');
    expect(packageDirectory('dist/shared/store/file-store.js')).toBeUndefined();
  });

  it('fails when a bundled directory has no package.json name and version', () => {
    expect(() => bundledPackages({ inputs: { 'node_modules/x/i.js': {} } }, () => ({ name: 'x' }))).toThrow(/node_modules\/x\/package\.json/);
  });

  it('a bundled package npm does not list as a production dependency is a finding, not a silent omission', () => {
    const production: CycloneDxDocument = {
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      metadata: { component: { 'bom-ref': 'app@1.0.0', type: 'library', name: 'app' } },
      components: [{ 'bom-ref': 'ok@1.0.0', type: 'library', name: 'ok', version: '1.0.0', licenses: [{ license: { id: 'MIT' } }] }],
      dependencies: [{ ref: 'app@1.0.0', dependsOn: ['ok@1.0.0', 'other@1.0.0'] }],
    };
    const manifests: Record<string, unknown> = {
      'node_modules/ok': { name: 'ok', version: '1.0.0' },
      'node_modules/planted': { name: 'planted', version: '6.6.6' },
    };
    const bundled = bundledPackages({ inputs: { 'dist/app.js': {}, 'node_modules/ok/index.js': {}, 'node_modules/planted/index.js': {} } }, (directory) => manifests[directory]);
    const { sbom, findings } = imageSbom(production, bundled, { name: 'app', version: '1.0.0' });
    expect(findings).toEqual([expect.stringMatching(/^planted@6\.6\.6 \(node_modules\/planted\) is in the bundle but not among the production dependencies/)]);
    expect(sbom.components.map((component) => component['bom-ref'])).toEqual(['ok@1.0.0']);
    expect(sbom.dependencies).toEqual([{ ref: 'app@1.0.0', dependsOn: ['ok@1.0.0'] }]);
    expect(componentLicence(sbom.components[0]!)).toBe('MIT');
  });
});

describe('npm run sbom (build/sbom/main.ts) on this repository', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'jwks-sbom-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('lists every package esbuild put into the bundle, with its version and licence, and nothing else', async () => {
    const out = join(directory, 'sbom.cdx.json');
    const run = await runSbom(repo, out);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const sbom = JSON.parse(await readFile(out, 'utf8')) as CycloneDxDocument;
    expect(sbom).toMatchObject({ bomFormat: 'CycloneDX', specVersion: expect.stringMatching(/^1\.\d+$/) as string });
    expect(sbom.metadata?.component).toMatchObject({ type: 'application', name: 'hsm-jwks-publisher' });

    // What the bundle contains, read here from the metafile and each package's package.json.
    const meta = JSON.parse(readFileSync(join(repo, 'dist/bundle-meta.json'), 'utf8')) as { inputs: Record<string, unknown> };
    const expected = new Set<string>();
    for (const input of Object.keys(meta.inputs)) {
      const segments = input.split('/');
      const last = segments.lastIndexOf('node_modules');
      if (last < 0) continue;
      const packagePath = segments.slice(0, last + (segments[last + 1]!.startsWith('@') ? 3 : 2)).join('/');
      const manifest = JSON.parse(readFileSync(join(repo, packagePath, 'package.json'), 'utf8')) as { name: string; version: string };
      expected.add(`${manifest.name}@${manifest.version}`);
    }
    expect(expected.size).toBeGreaterThan(20);
    for (const name of ['jose', 'pino', 'prom-client', '@aws-sdk/client-s3']) expect([...expected].some((entry) => entry.startsWith(`${name}@`))).toBe(true);
    expect(sbom.components.map((component) => `${component.name}@${component.version}`).sort()).toEqual([...expected].sort());
    for (const component of sbom.components) {
      expect(component.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(component.purl).toMatch(/^pkg:npm\//);
      expect(componentLicence(component)).toEqual(expect.stringMatching(/\S/));
    }
    // Not carried, so not listed: functions-framework and express (the development host only).
    expect(sbom.components.filter((component) => ['@google-cloud/functions-framework', 'express'].includes(component.name))).toEqual([]);
  }, 60_000);
});

describe('npm run sbom on a fixture project with a planted fault: fails, names it, writes nothing', () => {
  let root: string;

  async function fixture(options: { bundled: string[]; packages: Record<string, { license?: string; dev?: boolean }> }): Promise<string> {
    root = await mkdtemp(join(tmpdir(), 'jwks-sbom-fixture-'));
    const dependencies: Record<string, string> = {};
    const devDependencies: Record<string, string> = {};
    for (const [name, { license, dev }] of Object.entries(options.packages)) {
      (dev === true ? devDependencies : dependencies)[name] = '1.0.0';
      await mkdir(join(root, 'node_modules', name), { recursive: true });
      await writeFile(join(root, 'node_modules', name, 'package.json'), JSON.stringify({ name, version: '1.0.0', ...(license === undefined ? {} : { license }) }));
      await writeFile(join(root, 'node_modules', name, 'index.js'), 'module.exports = 1;\n');
    }
    const manifest = { name: 'fixture', version: '1.0.0', dependencies, devDependencies };
    await writeFile(join(root, 'package.json'), JSON.stringify(manifest));
    const locked = Object.entries(options.packages).map(([name, { license, dev }]): [string, Record<string, unknown>] => [
      `node_modules/${name}`,
      { version: '1.0.0', ...(dev === true ? { dev: true } : {}), ...(license === undefined ? {} : { license }) },
    ]);
    await writeFile(join(root, 'package-lock.json'), JSON.stringify({ ...manifest, lockfileVersion: 3, requires: true, packages: { '': manifest, ...Object.fromEntries(locked) } }));
    await mkdir(join(root, 'dist'));
    const inputs = Object.fromEntries(['dist/functions/main.js', ...options.bundled.map((name) => `node_modules/${name}/index.js`)].map((input) => [input, { bytes: 1 }]));
    await writeFile(join(root, 'dist/bundle-meta.json'), JSON.stringify({ inputs, outputs: {} }));
    return root;
  }

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('passes the same fixture with nothing planted (so the failures below are the plants)', async () => {
    await fixture({ bundled: ['good'], packages: { good: { license: 'MIT' }, tool: { license: 'MIT', dev: true } } });
    const run = await runSbom(root, 'dist/sbom.cdx.json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const sbom = JSON.parse(await readFile(join(root, 'dist/sbom.cdx.json'), 'utf8')) as CycloneDxDocument;
    expect(sbom.components.map((component) => component['bom-ref'])).toEqual(['good@1.0.0']);
  }, 30_000);

  it('a devDependency imported by runtime code (in the bundle, not a production dependency)', async () => {
    await fixture({ bundled: ['good', 'tool'], packages: { good: { license: 'MIT' }, tool: { license: 'MIT', dev: true } } });
    const run = await runSbom(root, 'dist/sbom.cdx.json');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('tool@1.0.0 (node_modules/tool) is in the bundle but not among the production dependencies');
    expect(await exists(join(root, 'dist/sbom.cdx.json'))).toBe(false);
  }, 30_000);

  it('a production dependency under a licence the policy does not list, bundled or not', async () => {
    await fixture({ bundled: ['good'], packages: { good: { license: 'MIT' }, copyleft: { license: 'AGPL-3.0-only' } } });
    const run = await runSbom(root, 'dist/sbom.cdx.json');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('copyleft@1.0.0: licence "AGPL-3.0-only" is not in build/licence-policy.json');
    expect(await exists(join(root, 'dist/sbom.cdx.json'))).toBe(false);
  }, 30_000);

  it('a bundled package that declares no licence', async () => {
    await fixture({ bundled: ['good', 'anonymous'], packages: { good: { license: 'MIT' }, anonymous: {} } });
    const run = await runSbom(root, 'dist/sbom.cdx.json');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('anonymous@1.0.0: declares no licence');
  }, 30_000);
});
