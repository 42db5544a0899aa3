/**
 * The SBOM of what the image carries: npm's CycloneDX document of the production dependency tree
 * (`npm sbom --omit dev --sbom-format cyclonedx`), cut down to the packages esbuild put into the
 * bundle (bundle-packages.ts). The image holds dist/bundle and no node_modules, so a scanner
 * looking into it finds no npm package on its own: this document is what names them.
 */
import type { BundledPackage } from './bundle-packages.js';
import type { DeclaredLicence } from './licence-policy.js';

/** The parts of a CycloneDX 1.5 component this build reads. */
export interface CycloneDxComponent {
  readonly 'bom-ref'?: string;
  readonly type: string;
  readonly name: string;
  readonly version?: string;
  readonly purl?: string;
  readonly licenses?: readonly ({ readonly license: { readonly id?: string; readonly name?: string } } | { readonly expression: string })[];
  readonly [field: string]: unknown;
}

export interface CycloneDxDocument {
  readonly bomFormat: 'CycloneDX';
  readonly specVersion: string;
  readonly serialNumber?: string;
  readonly version?: number;
  readonly metadata?: { readonly component?: CycloneDxComponent; readonly [field: string]: unknown };
  readonly components: readonly CycloneDxComponent[];
  readonly dependencies?: readonly { readonly ref: string; readonly dependsOn?: readonly string[] }[];
}

export interface ApplicationManifest {
  readonly name: string;
  readonly version: string;
  readonly description?: string;
}

/** The licence a component declares, as one SPDX expression (several entries must all hold). */
export function componentLicence(component: CycloneDxComponent): string | undefined {
  const parts = (component.licenses ?? [])
    .map((entry) => ('expression' in entry ? entry.expression : (entry.license.id ?? entry.license.name)))
    .filter((part): part is string => part !== undefined && part.trim() !== '');
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : parts.map((part) => `(${part})`).join(' AND ');
}

export function declaredLicences(components: readonly CycloneDxComponent[]): DeclaredLicence[] {
  return components.map((component) => ({ name: component.name, version: component.version ?? '(no version)', licence: componentLicence(component) }));
}

const reference = (component: CycloneDxComponent): string => `${component.name}@${component.version ?? ''}`;

/**
 * The image's SBOM, and a finding for every bundled package npm's production tree does not list
 * (a devDependency or an extraneous package imported by runtime code, say).
 */
export function imageSbom(
  production: CycloneDxDocument,
  bundled: readonly BundledPackage[],
  application: ApplicationManifest,
): { sbom: CycloneDxDocument; findings: string[] } {
  const byReference = new Map(production.components.map((component) => [reference(component), component]));
  const findings: string[] = [];
  const carried = new Map<string, CycloneDxComponent>();
  for (const { path, name, version } of bundled) {
    const component = byReference.get(`${name}@${version}`);
    if (component === undefined) {
      findings.push(`${name}@${version} (${path}) is in the bundle but not among the production dependencies npm lists: declare it in "dependencies", or keep it out of runtime code`);
      continue;
    }
    carried.set(reference(component), component);
  }
  const refs = new Set([...carried.values()].map((component) => component['bom-ref']).filter((ref) => ref !== undefined));
  const root = production.metadata?.component?.['bom-ref'];
  const rootComponent: CycloneDxComponent = {
    ...(root === undefined ? {} : { 'bom-ref': root }),
    type: 'application',
    name: application.name,
    version: application.version,
    ...(application.description === undefined ? {} : { description: application.description }),
    purl: `pkg:npm/${encodeURIComponent(application.name)}@${application.version}`,
    properties: [
      { name: 'hsm-jwks-publisher:sbom:scope', value: 'the npm packages bundled into dist/bundle (esbuild metafile); no node_modules in the image' },
      { name: 'hsm-jwks-publisher:sbom:runtime', value: 'Node.js and the OS packages come from the base image, described by its own SBOM' },
    ],
  };
  const sbom: CycloneDxDocument = {
    ...production,
    metadata: { ...production.metadata, component: rootComponent },
    components: [...carried.values()].sort((a, b) => reference(a).localeCompare(reference(b))),
    dependencies: (production.dependencies ?? [])
      .filter((entry) => entry.ref === root || refs.has(entry.ref))
      .map((entry) => ({ ref: entry.ref, dependsOn: (entry.dependsOn ?? []).filter((ref) => refs.has(ref)) })),
  };
  return { sbom, findings };
}
