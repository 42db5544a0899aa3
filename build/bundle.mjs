// Bundles what the runtime image runs into dist/bundle/: the lean host (main.mjs) and the
// jwks-refresh CLI (jwks-refresh.mjs), with every production dependency inlined, so the image
// needs no node_modules. Run after `tsc -p .` (npm run build): it bundles tsc's output.
//
// Why: a process that loads one file per module pays for each one at start (about 30 of ours and
// a few hundred of the dependencies'); the bundle is what meets the cold-start target of issue 6.
// Each function's handler, the S3 store (the AWS SDK) and prom-client's process metrics stay in
// chunks of their own (dynamic import() + splitting), so jwks-get on a file store never loads
// the AWS SDK. Not minified: a stack trace at 3 a.m. must be readable.
import { build } from 'esbuild';
import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath, URL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/bundle`;

await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: 'dist/functions/main.js', 'jwks-refresh': 'dist/bin/jwks-refresh.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  // The CommonJS dependencies (pino, prom-client, the AWS SDK) call require() for Node's
  // built-in modules, which an ES module bundle has no binding for.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});
// Which input went into which output (outside the bundle, so not in the image): test/deploy
// checks that the file-store path stays free of the AWS SDK.
await writeFile(`${root}dist/bundle-meta.json`, JSON.stringify(result.metafile));
