/**
 * Writes the image's SBOM (CycloneDX JSON) and enforces the licence policy; exits 1, writing
 * nothing, on any finding. Run after `npm run build` (it reads dist/bundle-meta.json):
 *
 *   node dist/build/sbom/main.js [--root <project>] [--out <file>] [--policy <file>]
 *
 * Defaults: the current directory, dist/sbom.cdx.json, build/licence-policy.json under it.
 * `npm run sbom` and the Containerfile's build stage run it; so does
 * test/security/sbom-and-licences.test.ts.
 *
 * Checked: every package in the bundle is a production dependency npm lists, with a version and
 * a licence; every production dependency (in the image or not)
 * and every peer dependency (pkcs11js, which internal apps install) is under the policy.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { bundledPackages, type BundleMetafile } from './bundle-packages.js';
import { declaredLicences, imageSbom, type ApplicationManifest, type CycloneDxComponent, type CycloneDxDocument } from './image-sbom.js';
import { licenceFindings, parseLicencePolicy, type DeclaredLicence } from './licence-policy.js';

const readJson = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));

/**
 * npm's CycloneDX document of the tree package-lock.json describes (what `npm ci` installed and
 * esbuild bundled; read from the lockfile, so a node_modules that is a symlink, as in
 * test/deploy's rebuilt build context, reads the same), cut down to production components.
 * Not `npm sbom --omit dev`: it drops a production package that a devDependency also uses
 * (npm/cli#7909, open; here jose, ajv and safe-stable-stringify). npm marks a component
 * development-only with the property cdx:npm:package:development, which is what is read.
 */
function productionSbom(root: string): CycloneDxDocument {
  const npm = spawnSync('npm', ['sbom', '--sbom-format', 'cyclonedx', '--package-lock-only'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  if (npm.error !== undefined || npm.status !== 0) {
    throw new Error(`npm sbom failed in ${root}: ${npm.error?.message ?? `exit ${npm.status}`}\n${npm.stderr}`);
  }
  const parsed = JSON.parse(npm.stdout) as { bomFormat?: unknown; components?: unknown };
  if (parsed.bomFormat !== 'CycloneDX' || !Array.isArray(parsed.components)) throw new Error('npm sbom: not a CycloneDX document');
  const document = parsed as CycloneDxDocument;
  return { ...document, components: document.components.filter((component) => !isDevelopmentOnly(component)) };
}

/** The licence each peer dependency declares in its installed package.json. */
function peerLicences(root: string, peers: readonly string[]): { declared: DeclaredLicence[]; findings: string[] } {
  const declared: DeclaredLicence[] = [];
  const findings: string[] = [];
  for (const name of peers) {
    let manifest: { version?: string; license?: unknown };
    try {
      manifest = readJson(join(root, 'node_modules', name, 'package.json')) as typeof manifest;
    } catch {
      findings.push(`${name}: peer dependency not installed, so its licence cannot be checked (npm ci installs it)`);
      continue;
    }
    declared.push({ name, version: manifest.version ?? '(no version)', licence: typeof manifest.license === 'string' ? manifest.license : undefined });
  }
  return { declared, findings };
}

function isDevelopmentOnly(component: CycloneDxComponent): boolean {
  const properties = Array.isArray(component.properties) ? (component.properties as { name?: unknown; value?: unknown }[]) : [];
  return properties.some((property) => property.name === 'cdx:npm:package:development' && property.value === 'true');
}

function main(): void {
  const { values } = parseArgs({ options: { root: { type: 'string' }, out: { type: 'string' }, policy: { type: 'string' } } });
  const root = resolve(values.root ?? '.');
  const out = resolve(root, values.out ?? 'dist/sbom.cdx.json');
  const policy = parseLicencePolicy(readJson(resolve(root, values.policy ?? 'build/licence-policy.json')));
  const manifest = readJson(join(root, 'package.json')) as ApplicationManifest & { peerDependencies?: Record<string, string> };

  const metafile = readJson(join(root, 'dist/bundle-meta.json')) as BundleMetafile;
  const bundled = bundledPackages(metafile, (directory) => readJson(join(root, directory, 'package.json')));
  const production = productionSbom(root);
  const { sbom, findings } = imageSbom(production, bundled, manifest);
  const peers = peerLicences(root, Object.keys(manifest.peerDependencies ?? {}));
  findings.push(...peers.findings, ...licenceFindings([...declaredLicences(production.components), ...peers.declared], policy));

  if (findings.length > 0) {
    console.error(`sbom: ${findings.length} finding(s); no SBOM written:\n${findings.map((finding) => `  - ${finding}`).join('\n')}`);
    process.exitCode = 1;
    return;
  }
  writeFileSync(out, `${JSON.stringify(sbom, null, 2)}\n`);
  console.log(
    `sbom: ${out}: ${sbom.components.length} packages in the image; ${production.components.length} production and ${peers.declared.length} peer dependencies under the licence policy`,
  );
}

main();
