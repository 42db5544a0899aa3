// Bundles what the runtime image runs into dist/bundle/, with every production dependency
// inlined, so the image needs no node_modules. Run after `tsc -p .` (npm run build): it bundles
// tsc's output.
//
//   dist/bundle/main.cjs                 the image's CMD: picks the function named by FUNCTION_TARGET
//   dist/bundle/functions/<name>.cjs     one function on the lean host (functions/<name>/server.ts)
//   dist/bundle/jwks-refresh.cjs         the CLI (CronJob, operators)
//   dist/bundle/chunks/<program>/        what a program loads only on first use
//
// Why this shape (issue 6, cold start): a start pays for every file it loads, and a function
// bundled whole into one file loads one file of its code. Each program is bundled on its own,
// so nothing is shared between them at run time; within a program, the S3 store (the AWS SDK)
// and prom-client's process metrics stay in chunks loaded on first use (import() + splitting),
// so jwks-get on a file store never loads the AWS SDK.
//
// CommonJS, not ES modules: Node 20 started a CommonJS file about 10 ms sooner than the same code
// as ES modules (measured with bench/; not yet re-measured on Node 24). Splitting still pays on
// Node 24: one file per program costs jwks-get's start about 50 ms of CPU more, 16-19 ms with a
// warm compile cache (bench/README.md, "Node 24"). esbuild splits code only in ES module output, so each
// program is bundled as ES modules in memory, then every file is rewritten to CommonJS
// (import/export become require/exports, import() a deferred require). Top-level await has no
// CommonJS form: the rewrite refuses it, and the build fails. "use strict" keeps the semantics
// the code had as ES modules. Not minified: a stack trace at 3 a.m. must be readable.
import { build, transform } from 'esbuild';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath, URL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/bundle`;

/** Output name (under dist/bundle, without .cjs) -> tsc output it is bundled from. */
const FUNCTIONS = ['jwks-get', 'jwk-get', 'key-rotated', 'event-dead-letter', 'event-relay'];
const PROGRAMS = {
  main: 'dist/functions/main.js',
  ...Object.fromEntries(FUNCTIONS.map((name) => [`functions/${name}`, `dist/functions/${name}/server.js`])),
  'jwks-refresh': 'dist/bin/jwks-refresh.js',
};

/**
 * main.js loads a function's server module with import('./<name>/server.js'): in the bundle that
 * is the function's own bundle, not code to inline into main.
 */
/** @type {import('esbuild').Plugin} */
const functionBundlesStayOutOfMain = {
  name: 'function-bundles-stay-out-of-main',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^\.\/[\w-]+\/server\.js$/ }, (args) => {
      const name = args.path.slice(2, -'/server.js'.length);
      if (!args.importer.endsWith('/dist/functions/main.js') || !FUNCTIONS.includes(name)) return undefined;
      return { path: `./functions/${name}.cjs`, external: true };
    });
  },
};

/** Lint findings in the dependencies' code, not constructs the rewrite cannot carry. */
const BENIGN_WARNINGS = new Set(['impossible-typeof']);

/**
 * @param {string} name output name under dist/bundle, without .cjs
 * @param {string} entry the tsc output it is bundled from
 * @returns {Promise<import('esbuild').Metafile>}
 */
async function bundleProgram(name, entry) {
  const result = await build({
    absWorkingDir: root,
    entryPoints: { [name]: entry },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    outExtension: { '.js': '.cjs' },
    chunkNames: `chunks/${name.replace('functions/', '')}/[name]-[hash]`,
    plugins: name === 'main' ? [functionBundlesStayOutOfMain] : [],
    legalComments: 'eof',
    metafile: true,
    write: false,
    logLevel: 'warning',
  });
  for (const file of result.outputFiles) {
    const commonJs = await transform(file.text, {
      format: 'cjs',
      platform: 'node',
      target: 'node24',
      supported: { 'dynamic-import': false },
      banner: '"use strict";',
      sourcefile: file.path,
      logLevel: 'silent',
    });
    // Any other warning is a construct with no CommonJS equivalent (import.meta, say): refuse it.
    const refused = commonJs.warnings.filter((warning) => !BENIGN_WARNINGS.has(warning.id));
    if (refused.length > 0) {
      throw new Error(`${file.path}: ${refused.map((warning) => `${warning.id}: ${warning.text}`).join('; ')}`);
    }
    await mkdir(dirname(file.path), { recursive: true });
    await writeFile(file.path, commonJs.code);
  }
  return result.metafile;
}

await rm(outdir, { recursive: true, force: true });
/** @type {import('esbuild').Metafile[]} */
const metafiles = [];
for (const [name, entry] of Object.entries(PROGRAMS)) metafiles.push(await bundleProgram(name, entry));
// Which input went into which output (outside the bundle, so not in the image): test/deploy
// checks that the file-store path stays free of the AWS SDK.
/** @type {import('esbuild').Metafile} */
const merged = { inputs: {}, outputs: {} };
for (const meta of metafiles) {
  Object.assign(merged.inputs, meta.inputs);
  Object.assign(merged.outputs, meta.outputs);
}
await writeFile(`${root}dist/bundle-meta.json`, JSON.stringify(merged));
