/**
 * The npm packages esbuild put into the bundle, read from its metafile (dist/bundle-meta.json,
 * written by build/bundle.mjs): every input under node_modules belongs to the package directory
 * nearest to it, whose package.json gives the name and version the bundle carries.
 */

export interface BundleMetafile {
  readonly inputs: Readonly<Record<string, unknown>>;
}

export interface BundledPackage {
  /** Where it was installed, relative to the project root, e.g. node_modules/@smithy/core. */
  readonly path: string;
  readonly name: string;
  readonly version: string;
}

/** The installed package directory an input path belongs to, or undefined for our own code. */
export function packageDirectory(input: string): string | undefined {
  const match = /^(?:.*\/)?node_modules\/(?:@[^/]+\/)?[^/@][^/]*(?=\/)/.exec(input.replace(/\\/g, '/'));
  return match?.[0];
}

/**
 * One entry per installed package directory the bundle draws from, sorted by path.
 * `readManifest` returns the parsed package.json of a directory (relative to the project root).
 */
export function bundledPackages(metafile: BundleMetafile, readManifest: (directory: string) => unknown): BundledPackage[] {
  const directories = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const directory = packageDirectory(input);
    if (directory !== undefined) directories.add(directory);
  }
  return [...directories].sort().map((path) => {
    const manifest = readManifest(path) as { name?: unknown; version?: unknown } | undefined;
    if (typeof manifest?.name !== 'string' || typeof manifest.version !== 'string') {
      throw new Error(`${path}/package.json: no name and version (the bundle contains code from ${path})`);
    }
    return { path, name: manifest.name, version: manifest.version };
  });
}
