/**
 * The runtime image, checked without a container engine. The Containerfile is parsed
 * (test/support/containerfile.ts) and its rules asserted; then the runtime stage's file layout is
 * rebuilt in a temporary directory exactly as its COPY lines say (the bundle from this
 * repository's dist/bundle, which `npm test` builds first; no node_modules anywhere up the tree)
 * and run with the image's CMD, its ENV and nothing else.
 *
 * Not covered here (it needs an engine and the registry): that the pinned base images exist and
 * carry Node 24, the ownership and modes the image really ends up with, the base image's own
 * environment beyond HOME.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, cp, copyFile, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import { openBackend, publish } from '../support/backends.js';
import {
  finalStage,
  ignoreMatcher,
  parseContainerfile,
  stageNamed,
  type CopyInstruction,
  type Stage,
} from '../support/containerfile.js';
import { eventually, rawRequest } from '../support/http.js';
import { freePort, manifestNodeOptionsEnv } from '../support/processes.js';
import { ecKey, rsaKey, type TestKey } from '../support/keys.js';
import { describeIfInstalled } from '../support/dependencies.js';
import { asOpenShiftRuns, openShiftRunMissing, randomOpenShiftUid } from '../support/openshift-run.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const containerfile = parseContainerfile(readFileSync(join(repo, 'Containerfile'), 'utf8'));
const runtime = finalStage(containerfile);
const packageJson = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  engines: { node: string };
};

const APP_ROOT = '/opt/app-root/src';
/** What the runtime stage may hold, relative to the app root; nothing else. */
const RUNTIME_CONTENT = ['dist/bundle', 'dist/sbom.cdx.json'];
/** One bundle per function (build/bundle.mjs), under dist/bundle/. */
const FUNCTION_BUNDLES = ['jwks-get', 'jwk-get', 'key-rotated', 'event-dead-letter', 'event-relay'].map((name) => `functions/${name}`);
const NEVER_IN_IMAGE = ['emulator', 'scripts', 'test'];
/** `<version>-<build>`, e.g. 9.7-1778604817: a release tag, unlike `latest`, `1` or `9.7`. */
const RELEASE_TAG = /^\d+(\.\d+)*-\d+$/;

/** Where a COPY source lives in this repository: context paths as they are, stage paths relative to that stage's WORKDIR. */
function repositoryPath(copy: CopyInstruction, source: string): string {
  if (copy.from === undefined) return posix.normalize(source).replace(/^\.\/|\/$/g, '');
  const stage = stageNamed(containerfile, copy.from);
  if (stage.workdir === undefined) throw new Error(`stage ${copy.from} sets no WORKDIR`);
  const path = posix.relative(stage.workdir, posix.resolve(stage.workdir, source));
  if (path.startsWith('..')) throw new Error(`line ${copy.line}: ${source} is outside stage ${copy.from}'s WORKDIR`);
  return path;
}

/** Where a COPY lands, relative to the runtime app root (each source's own path for a directory destination). */
function landingPaths(copy: CopyInstruction): string[] {
  if (copy.resolvedDestination === undefined) throw new Error(`line ${copy.line}: COPY before any WORKDIR`);
  const intoDirectory = copy.destination.endsWith('/') || copy.destination === '.' || copy.sources.length > 1;
  return copy.sources.map((source) =>
    posix.relative(APP_ROOT, intoDirectory ? posix.join(copy.resolvedDestination!, posix.basename(source)) : copy.resolvedDestination!),
  );
}

/** Copies as COPY does: a directory's contents into the destination, a file to it (or into it). */
async function copyLikeContainerfile(copy: CopyInstruction, source: string, target: string): Promise<void> {
  const intoDirectory = copy.destination.endsWith('/') || copy.destination === '.' || copy.sources.length > 1;
  if ((await lstat(source)).isDirectory()) {
    await cp(source, target, { recursive: true, verbatimSymlinks: true });
    return;
  }
  const file = intoDirectory ? join(target, basename(source)) : target;
  await mkdir(dirname(file), { recursive: true });
  await copyFile(source, file);
}

function stageRunning(pattern: RegExp): Stage {
  const stage = containerfile.stages.find((candidate) => candidate.runs.some((run) => pattern.test(run)));
  if (stage === undefined) throw new Error(`no stage runs ${pattern}`);
  return stage;
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runToExit(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Exit> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', fail);
    child.once('close', (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

/** Every entry under `root` with its size, mode and mtime: to prove a run wrote nothing there. */
async function listing(root: string): Promise<Record<string, string>> {
  const entries: Record<string, string> = {};
  for (const name of await readdir(root, { recursive: true })) {
    const stats = await lstat(join(root, name));
    entries[name] = `${stats.mode}:${stats.size}:${stats.mtimeMs}`;
  }
  return entries;
}

describe('Containerfile parser', () => {
  const sample = [
    '# syntax=docker/dockerfile:1',
    'ARG BASE=registry.example:5000/team/node:20.1-3',
    'FROM ${BASE} AS Builder',
    'WORKDIR /src',
    'ENV A=1 B="two words" \\',
    '    C=${A}x',
    'COPY --chown=1001:0 a.json b.json ./',
    'RUN make \\',
    '  # a comment inside a continuation',
    '  && make install',
    'FROM builder AS child',
    'WORKDIR sub',
    'COPY --from=builder ["/src/out dir", "rel/"]',
    'ENV LEGACY value with spaces',
    'USER 1001:0',
    'EXPOSE 8080 9090/tcp',
    'CMD node server.js',
    'ENTRYPOINT ["tini", "--"]',
    'FROM docker.io/library/busybox@sha256:abc',
  ].join('\n');

  it('reads stages, bases, WORKDIR, ENV, COPY, RUN, USER, EXPOSE, CMD and ENTRYPOINT', () => {
    const [builder, child, last] = parseContainerfile(sample).stages;
    expect(builder).toMatchObject({
      name: 'builder',
      base: { kind: 'image', image: { name: 'registry.example:5000/team/node', tag: '20.1-3' } },
      workdir: '/src',
      // One ENV instruction sees the values from before it, as in Docker: C does not see this A.
      env: { A: '1', B: 'two words', C: 'x' },
      copies: [{ chown: '1001:0', sources: ['a.json', 'b.json'], destination: './', resolvedDestination: '/src' }],
    });
    expect(builder!.runs).toEqual([expect.stringMatching(/^make\s+&& make install$/)]);
    expect(child).toMatchObject({
      base: { kind: 'stage', stage: 'builder' },
      workdir: '/src/sub',
      env: { A: '1', LEGACY: 'value with spaces' },
      copies: [{ from: 'builder', sources: ['/src/out dir'], resolvedDestination: '/src/sub/rel' }],
      user: '1001:0',
      expose: ['8080', '9090/tcp'],
      cmd: { form: 'shell', command: 'node server.js' },
      entrypoint: { form: 'exec', argv: ['tini', '--'] },
    });
    expect(last!.base).toEqual({ kind: 'image', image: { name: 'docker.io/library/busybox', digest: 'sha256:abc' } });
  });

  it('refuses what it cannot read faithfully instead of guessing', () => {
    expect(() => parseContainerfile('FROM a:1\nRUN <<EOF\necho hi\nEOF')).toThrow(/heredoc/);
    expect(() => parseContainerfile('FROM a:1\nCOPY --parents src/ /app/')).toThrow(/--parents/);
    expect(() => parseContainerfile('WORKDIR /x\nFROM a:1')).toThrow(/before the first FROM/);
  });

  it('matches ignore files as moby does: parent directories, ** and exceptions', () => {
    const ignored = ignoreMatcher('# comment\nnode_modules\n**/*.pem\ndist\n!dist/keep\n/data/');
    expect(['node_modules', 'node_modules/jest/x.js', 'c.pem', 'a/b/c.pem', 'dist/x.js', 'data/jwks.json'].filter((path) => !ignored(path))).toEqual([]);
    expect(['src/a.ts', 'dist/keep', 'pem', 'a/node_modules2'].filter(ignored)).toEqual([]);
  });
});

describe('Containerfile', () => {
  it('pins every base image to a release tag, never latest', () => {
    const images = containerfile.stages.flatMap((stage) => (stage.base.kind === 'image' ? [stage.base.image] : []));
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) {
      expect(image.tag).toBeDefined();
      expect(image.tag).not.toBe('latest');
      expect(image.tag).toMatch(RELEASE_TAG);
    }
  });

  it('compiles and runs on ubi9/nodejs-24-minimal (Node 24 LTS), the same pinned base for both stages', () => {
    expect(packageJson.scripts.build).toBe('tsc -p . && node build/bundle.mjs');
    const build = stageRunning(/\bnpm run build\b/);
    const base = { kind: 'image', image: { name: 'registry.access.redhat.com/ubi9/nodejs-24-minimal' } };
    expect(build.base).toMatchObject(base);
    expect(runtime.base).toMatchObject(base);
    expect(build.base).toEqual(runtime.base);
    expect(runtime.workdir).toBe(APP_ROOT);
    expect(runtime.labels['io.openshift.tags']?.split(',')).toContain('nodejs24');
    // The engines range says the same Node the image carries.
    expect(packageJson.engines.node).toMatch(/^>=24\.\d+\.\d+ <25$/);
  });

  it('CI installs a Node 24 within engines, and this test run is on one', () => {
    const [minimum] = /\d+\.\d+\.\d+/.exec(packageJson.engines.node) ?? [];
    const atLeast = (version: string, floor: string): boolean => {
      const [a, b] = [version, floor].map((text) => text.split('.').map(Number));
      const index = a!.findIndex((part, at) => part !== b![at]);
      return index < 0 || a![index]! > b![index]!;
    };
    const pinned = /^NODE_24_VERSION=(\d+\.\d+\.\d+)$/m.exec(readFileSync(join(repo, '.ci/run'), 'utf8'))?.[1];
    expect(pinned).toMatch(/^24\./);
    expect(atLeast(pinned!, minimum!)).toBe(true);
    // .ci/run puts it first on PATH; a run on an unsupported Node fails here instead of passing.
    expect(process.versions.node).toMatch(/^24\./);
    expect(atLeast(process.versions.node, minimum!)).toBe(true);
  });

  it('runs as a numeric non-root USER, so runAsNonRoot can be verified and any UID in group 0 works', () => {
    expect(runtime.user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(runtime.user!.split(':')[0])).toBeGreaterThan(0);
    expect(runtime.user).toBe('1001');
  });

  it('starts node on the lean host in exec form: no shell, no npm, no ENTRYPOINT in front', () => {
    // One V8 flag, --no-maglev (memory on Node 24; not accepted in NODE_OPTIONS): see the Containerfile.
    expect(runtime.cmd).toEqual({ form: 'exec', argv: ['node', '--no-maglev', 'dist/bundle/main.cjs'] });
    if (runtime.cmd?.form === 'exec') expect(runtime.cmd.argv.filter((arg) => /\bnpm\b/.test(arg))).toEqual([]);
    expect(runtime.entrypoint).toBeUndefined();
  });

  it('sets NODE_ENV=production, exposes 8080 and carries OCI labels', () => {
    expect(runtime.env.NODE_ENV).toBe('production');
    expect(runtime.expose.map((port) => port.replace(/\/tcp$/, ''))).toContain('8080');
    for (const label of ['title', 'description', 'version', 'revision', 'base.name']) {
      expect(runtime.labels[`org.opencontainers.image.${label}`]).toEqual(expect.stringMatching(/\S/));
    }
    expect(runtime.labels['org.opencontainers.image.base.name']).toBe(
      `${(runtime.base as { image: { name: string } }).image.name}:${(runtime.base as { image: { tag: string } }).image.tag}`,
    );
  });

  it('copies dist/bundle and its SBOM alone, to the same place', () => {
    const copied = runtime.copies.flatMap((copy) => copy.sources.map((source) => repositoryPath(copy, source)));
    expect([...copied].sort()).toEqual(RUNTIME_CONTENT);
    expect(runtime.copies.flatMap(landingPaths).sort()).toEqual(RUNTIME_CONTENT);
    for (const path of copied) for (const excluded of NEVER_IN_IMAGE) expect(path.split('/')).not.toContain(excluded);
    expect(runtime.copies.filter((copy) => copy.keyword !== 'COPY')).toEqual([]);
  });

  it('never copies the emulator, scripts or tests into any stage', () => {
    for (const stage of containerfile.stages) {
      for (const copy of stage.copies) {
        for (const source of copy.sources) {
          const path = repositoryPath(copy, source);
          expect(path).not.toMatch(/^\.?$/); // never the whole context
          expect(path.split('/').filter((segment) => NEVER_IN_IMAGE.includes(segment))).toEqual([]);
        }
      }
    }
  });

  it('owns every runtime file as 1001:0, made group-readable in the stage it comes from', () => {
    for (const copy of runtime.copies) {
      expect(copy.chown).toBe('1001:0');
      expect(copy.from).toBeDefined();
      const source = stageNamed(containerfile, copy.from!);
      expect(source.runs.some((run) => /chmod\s+-R\s+\S*g\w*(=u|[=+]r)/.test(run))).toBe(true);
    }
  });

  it('carries no node_modules: the bundle holds every production dependency', () => {
    const copied = runtime.copies.flatMap((copy) => copy.sources.map((source) => repositoryPath(copy, source)));
    expect(copied.filter((path) => path.split('/').includes('node_modules'))).toEqual([]);
    expect(containerfile.stages.flatMap((stage) => stage.runs).filter((run) => /--omit=dev/.test(run))).toEqual([]);
  });

  it('.containerignore keeps secrets, local state and non-runtime code out of the context, and nothing a stage copies', () => {
    const ignored = ignoreMatcher(readFileSync(join(repo, '.containerignore'), 'utf8'));
    const contextSources = containerfile.stages.flatMap((stage) =>
      stage.copies.filter((copy) => copy.from === undefined).flatMap((copy) => copy.sources.map((source) => repositoryPath(copy, source))),
    );
    expect(contextSources.length).toBeGreaterThan(0);
    expect(contextSources.filter(ignored)).toEqual([]);
    const mustBeIgnored = [
      '.git/config',
      'node_modules/jest/package.json',
      'dist/functions/main.js',
      'coverage/lcov.info',
      'data/jwks.json',
      '.local/ciphertrust-emulator/ca-key.pem',
      'shared/some/test-key.pem',
      'functions/client.key',
      '.env',
      'emulator/server.ts',
      'scripts/local-stack.ts',
      'test/support/keys.ts',
    ];
    expect(mustBeIgnored.filter((path) => !ignored(path))).toEqual([]);
  });

  it('the build stage compiles and bundles from what it copies alone, into dist/bundle', async () => {
    const build = stageRunning(/\bnpm run build\b/);
    const context = await mkdtemp(join(tmpdir(), 'jwks-image-build-'));
    try {
      for (const copy of build.copies.filter((candidate) => candidate.from === undefined)) {
        const landing = posix.relative(build.workdir!, copy.resolvedDestination!);
        for (const source of copy.sources) await copyLikeContainerfile(copy, join(repo, repositoryPath(copy, source)), join(context, landing));
      }
      // The stage's `npm ci --include=dev` installs this same lockfile.
      await symlink(join(repo, 'node_modules'), join(context, 'node_modules'), 'dir');
      const tsc = await runToExit(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', '.'], {
        cwd: context,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      });
      expect(tsc.stdout + tsc.stderr).toBe('');
      expect(tsc.code).toBe(0);
      const bundle = await runToExit(process.execPath, ['build/bundle.mjs'], { cwd: context, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
      expect(bundle.stdout + bundle.stderr).toBe('');
      expect(bundle.code).toBe(0);
      for (const program of ['main', 'jwks-refresh', ...FUNCTION_BUNDLES]) {
        await expect(lstat(join(context, `dist/bundle/${program}.cjs`))).resolves.toBeDefined();
      }
      // The stage's SBOM command, as its RUN line gives it, from what the stage holds.
      const sbomCommand = build.runs.flatMap((run) => run.split('&&')).map((part) => part.trim()).find((part) => part.includes('dist/build/sbom/main.js'));
      expect(sbomCommand).toBe('node dist/build/sbom/main.js --out dist/sbom.cdx.json');
      expect(packageJson.scripts.sbom).toBe('npm run build && node dist/build/sbom/main.js');
      const sbom = await runToExit(process.execPath, sbomCommand!.split(/\s+/).slice(1), { cwd: context, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
      expect(sbom.stderr).toBe('');
      expect(sbom.code).toBe(0);
      expect((await readdir(join(context, 'dist'))).sort()).toEqual(['bin', 'build', 'bundle', 'bundle-meta.json', 'functions', 'sbom.cdx.json', 'shared']);
      const components = (JSON.parse(await readFile(join(context, 'dist/sbom.cdx.json'), 'utf8')) as { components: { name: string }[] }).components;
      expect(components.map((component) => component.name)).toEqual(expect.arrayContaining(['jose', 'pino', '@aws-sdk/client-s3']));
    } finally {
      await rm(context, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('the runtime stage, rebuilt from its COPY lines and run with its CMD', () => {
  let layout: string;
  let store: string;
  let publisherStore: string;
  let keys: TestKey[];
  let published: Buffer;
  let before: Record<string, string>;
  const children = new Set<ChildProcess>();

  /** The container's environment: the Containerfile's ENV, the base image's HOME (its WORKDIR), PATH, and `extra`. */
  function imageEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    return { ...runtime.env, HOME: layout, PATH: process.env.PATH ?? '/usr/bin:/bin', ...extra };
  }

  async function stop(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const exited =
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    children.delete(child);
    return { code: child.exitCode, signal: child.signalCode };
  }

  /** Runs the image's CMD from the layout (`node` is this test's node) and waits for /healthz. */
  async function start(
    target: string,
    env: Record<string, string>,
    launch: (argv: string[]) => { command: string; args: string[] } = ([command, ...args]) => ({ command: command!, args }),
  ): Promise<{ url: string; child: ChildProcess; output: () => string }> {
    if (runtime.cmd?.form !== 'exec' || runtime.cmd.argv[0] !== 'node') throw new Error('CMD is not exec-form node');
    const port = await freePort();
    const { command, args } = launch([process.execPath, ...runtime.cmd.argv.slice(1)]);
    const child = spawn(command, args, {
      cwd: layout,
      // With the NODE_OPTIONS its Knative manifest sets, as deployed: a flag Node refuses fails here.
      env: imageEnv({ ...manifestNodeOptionsEnv(target), FUNCTION_TARGET: target, PORT: String(port), HOST: '127.0.0.1', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const url = `http://127.0.0.1:${port}`;
    try {
      await eventually(async () => {
        if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
        return (await rawRequest(url, '/healthz').catch(() => undefined))?.status === 200;
      }, 15_000);
    } catch (error) {
      await stop(child);
      throw new Error(`${target} did not start from the image layout: ${String(error)}\n${output}`);
    }
    return { url, child, output: () => output };
  }

  /** The least each function needs to start (key-rotated does not contact CM at start). */
  let minimalEnv: Record<string, Record<string, string>>;

  /** /readyz answers 200 once the set is loaded (asynchronously, after the server listens). */
  async function becomesReady(url: string): Promise<void> {
    await eventually(async () => (await rawRequest(url, '/readyz')).status === 200, 10_000);
    expect((await rawRequest(url, '/readyz')).status).toBe(200);
  }

  beforeAll(async () => {
    layout = await mkdtemp(join(tmpdir(), 'jwks-image-layout-'));
    store = await mkdtemp(join(tmpdir(), 'jwks-image-store-'));
    publisherStore = await mkdtemp(join(tmpdir(), 'jwks-image-publisher-'));
    // `npm test` writes the SBOM before jest (pretest); after a bare `npm run build`, write it here.
    if (!(await lstat(join(repo, 'dist/sbom.cdx.json')).then(() => true, () => false))) {
      const sbom = await runToExit(process.execPath, ['dist/build/sbom/main.js'], { cwd: repo, env: process.env });
      if (sbom.code !== 0) throw new Error(`dist/sbom.cdx.json could not be written: ${sbom.stderr}`);
    }
    for (const copy of runtime.copies) {
      const landing = posix.relative(APP_ROOT, copy.resolvedDestination!);
      for (const source of copy.sources) await copyLikeContainerfile(copy, join(repo, repositoryPath(copy, source)), join(layout, landing));
    }
    // Owned and moded as in the image: the mode of the source stage's `chmod -R`, then COPY
    // --chown=1001:0 (when root can chown); the app root itself is the base image's, searchable.
    await chmod(layout, 0o755);
    for (const copy of runtime.copies) {
      const mode = stageNamed(containerfile, copy.from!).runs.map((run) => /chmod\s+-R\s+(\S+)/.exec(run)?.[1]).find((found) => found !== undefined);
      for (const source of copy.sources) {
        const copied = join(layout, posix.relative(APP_ROOT, posix.join(copy.resolvedDestination!)), copy.destination.endsWith('/') ? posix.basename(source) : '');
        if (mode !== undefined) await runToExit('chmod', ['-R', mode, copied], { cwd: layout, env: process.env });
        if (process.getuid?.() === 0 && copy.chown !== undefined) await runToExit('chown', ['-R', copy.chown, copied], { cwd: layout, env: process.env });
      }
    }

    keys = await Promise.all([ecKey('P-256'), rsaKey('sig')]);
    published = await publish(new FileKeySetStore(store), keys.map((key) => key.jwk));
    minimalEnv = {
      'jwks-get': { JWKS_STORE: `file://${store}` },
      'jwk-get': { JWKS_STORE: `file://${store}` },
      'key-rotated': { CIPHERTRUST_URL: 'https://127.0.0.1:1', CIPHERTRUST_USERNAME: 'u', CIPHERTRUST_PASSWORD: 'p', JWKS_STORE: `file://${publisherStore}` },
      'event-dead-letter': {},
      'event-relay': { K_SINK: 'http://127.0.0.1:1/jwks/jwks', EVENT_RELAY_SHARED_SECRET: 'x'.repeat(32) },
    };
    before = await listing(layout);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...children].map(stop));
    await Promise.all([layout, store, publisherStore].filter((dir) => dir !== undefined).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('holds dist/bundle and its SBOM alone: no node_modules, package.json, emulator, scripts or tests', async () => {
    expect((await readdir(layout)).sort()).toEqual(['dist']);
    expect((await readdir(join(layout, 'dist'))).sort()).toEqual(['bundle', 'sbom.cdx.json']);
    const files = (await readdir(join(layout, 'dist/bundle'), { recursive: true })).map(String);
    expect(files).toEqual(expect.arrayContaining(['main.cjs', 'jwks-refresh.cjs', ...FUNCTION_BUNDLES.map((name) => `${name}.cjs`)]));
    // Code only: CommonJS files, under chunks/<program>/ for what a program loads on first use.
    const directories = ['chunks', 'functions', ...files.filter((file) => /^chunks\/[\w-]+$/.test(file))];
    expect(files.filter((file) => !/^(functions\/|chunks\/[\w-]+\/)?[\w-]+\.cjs$/.test(file) && !directories.includes(file))).toEqual([]);
  });

  it('finds no node_modules up the tree, so a dependency left out of the bundle fails here as in the image', async () => {
    const found: string[] = [];
    for (let directory = layout; ; directory = dirname(directory)) {
      if (await lstat(join(directory, 'node_modules')).then(() => true, () => false)) found.push(directory);
      if (dirname(directory) === directory) break;
    }
    expect(found).toEqual([]);
  });

  it('keeps the AWS SDK out of what jwks-get loads on a file store (a chunk of its own, imported on first use)', () => {
    const meta = JSON.parse(readFileSync(join(repo, 'dist/bundle-meta.json'), 'utf8')) as {
      outputs: Record<string, { inputs: Record<string, unknown>; imports: { path: string; kind: string }[] }>;
    };
    const handlerBundle = Object.keys(meta.outputs).find((output) => Object.hasOwn(meta.outputs[output]!.inputs, 'dist/functions/jwks-get/handler.js'));
    expect(handlerBundle).toBe('dist/bundle/functions/jwks-get.cjs');
    // Everything loaded with it: its static imports, transitively (dynamic imports wait for use).
    const loaded = new Set<string>();
    const visit = (output: string): void => {
      if (loaded.has(output) || meta.outputs[output] === undefined) return;
      loaded.add(output);
      for (const imported of meta.outputs[output].imports) if (imported.kind === 'import-statement') visit(imported.path);
    };
    visit('dist/bundle/main.cjs');
    visit(handlerBundle!);
    const inputs = [...loaded].flatMap((output) => Object.keys(meta.outputs[output]!.inputs));
    expect(inputs).toContain('dist/shared/store/file-store.js');
    expect(inputs.filter((input) => /node_modules\/@(aws-sdk|smithy)\//.test(input))).toEqual([]);
    expect(inputs).not.toContain('dist/shared/store/s3-store.js');
    // ...and the SDK is in the bundle, for S3 stores.
    const all = Object.values(meta.outputs).flatMap((output) => Object.keys(output.inputs));
    expect(all.some((input) => input.includes('node_modules/@aws-sdk/client-s3/'))).toBe(true);
  });

  it('jwks-get: ready on /readyz and serves the published set on /jwks, then exits 0 on SIGTERM', async () => {
    const fn = await start('jwks-get', { JWKS_STORE: `file://${store}` });
    await becomesReady(fn.url);
    const jwks = await rawRequest(fn.url, '/jwks');
    expect(jwks.status).toBe(200);
    expect(jwks.headers['content-type']).toBe('application/jwk-set+json');
    expect(jwks.body.equals(published)).toBe(true);
    expect(await stop(fn.child)).toEqual({ code: 0, signal: null });
    // Its logger is a chunk loaded after the first answer: the lines prove it loads from the layout.
    const events = fn.output().trim().split('\n').map((line) => (JSON.parse(line) as { event: string }).event);
    expect(events).toEqual(['starting', 'listening', 'key_set_loaded', 'shutdown']);
  });

  it('jwk-get: ready on /readyz and serves a published key, then exits 0 on SIGTERM', async () => {
    const fn = await start('jwk-get', { JWKS_STORE: `file://${store}` });
    await becomesReady(fn.url);
    const jwk = await rawRequest(fn.url, `/jwk/${keys[0]!.jwk.kid}`);
    expect(jwk.status).toBe(200);
    expect(JSON.parse(jwk.body.toString())).toEqual(keys[0]!.jwk);
    expect(await stop(fn.child)).toEqual({ code: 0, signal: null });
  });

  it('jwk-get on an S3 store: the AWS SDK chunk loads from the layout and serves a published key', async () => {
    const backend = await openBackend('s3');
    try {
      await publish(backend.store, keys.map((key) => key.jwk));
      const fn = await start('jwk-get', backend.env);
      await becomesReady(fn.url);
      const jwk = await rawRequest(fn.url, `/jwk/${keys[1]!.jwk.kid}`);
      expect(jwk.status).toBe(200);
      expect(JSON.parse(jwk.body.toString())).toEqual(keys[1]!.jwk);
      expect(await stop(fn.child)).toEqual({ code: 0, signal: null });
    } finally {
      await backend.close();
    }
  }, 30_000);

  it('key-rotated: alive on /healthz without contacting CipherTrust Manager at start, then exits 0 on SIGTERM', async () => {
    const fn = await start('key-rotated', minimalEnv['key-rotated']!);
    expect((await rawRequest(fn.url, '/healthz')).status).toBe(200);
    expect(await stop(fn.child)).toEqual({ code: 0, signal: null });
  });

  it('every FUNCTION_TARGET that main.cjs accepts starts from the layout, is alive on /healthz and exits 0 on SIGTERM', async () => {
    const main = readFileSync(join(layout, 'dist/bundle/main.cjs'), 'utf8');
    const table = /FUNCTION_SERVERS\s*=\s*\{([^}]*)\}/.exec(main)?.[1] ?? '';
    const modules = [...table.matchAll(/"([^"]+)":\s*\(\)\s*=>.*?require\("([^"]+)"\)/g)].map(([, target, module]) => ({ target: target!, module: module! }));
    expect(modules.map((entry) => entry.module).sort()).toEqual(FUNCTION_BUNDLES.map((name) => `./${name}.cjs`).sort());
    expect(modules.map((entry) => entry.target)).toEqual(expect.arrayContaining(['jwks-get', 'jwk-get', 'key-rotated']));
    for (const { target, module } of modules) {
      await expect(lstat(join(layout, 'dist/bundle', module))).resolves.toBeDefined();
      const env = minimalEnv[target];
      if (env === undefined) throw new Error(`no minimal environment for FUNCTION_TARGET=${target}: add one to minimalEnv in this test`);
      const fn = await start(target, env);
      expect((await rawRequest(fn.url, '/healthz')).status).toBe(200);
      expect(await stop(fn.child)).toEqual({ code: 0, signal: null });
    }
  }, 60_000);

  it('jwks-refresh (the CronJob command) runs from the layout: --help exits 0', async () => {
    const help = await runToExit(process.execPath, ['dist/bundle/jwks-refresh.cjs', '--help'], { cwd: layout, env: imageEnv({}) });
    expect(help.stderr).toBe('');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: jwks-refresh');
  });

  describeIfInstalled(
    'as OpenShift runs it: a random UID in group 0, no capabilities, the application directory read-only',
    openShiftRunMissing(),
    'run the tests as root (CI does): they need unshare --mount and setpriv',
    () => {
      const uid = randomOpenShiftUid();
      const asOpenShift = (argv: string[]): { command: string; args: string[] } => asOpenShiftRuns(layout, uid, argv);

      beforeAll(async () => {
        // The stores are volumes: readable by anyone (serving), writable by group 0 (key-rotated).
        await chmod(store, 0o755);
        await chmod(publisherStore, 0o770);
      });

      it('the application directory is read-only to it (EROFS, not a permission), and it has no capability', async () => {
        // Tries to write into the app directory, then prints what the kernel says of the process.
        const script = [
          "const fs = require('fs');",
          "try { fs.writeFileSync(process.argv[1], ''); console.log('written'); } catch (error) { console.log(error.code); }",
          "const fields = fs.readFileSync('/proc/self/status', 'utf8').split(String.fromCharCode(10));",
          "console.log(fields.filter((line) => /^(Uid|Gid|Groups|CapEff|CapBnd|NoNewPrivs):/.test(line)).map((line) => line.split(/[ \t]+/).join(' ')).join('|'));",
        ].join(' ');
        const probe = asOpenShift([process.execPath, '-e', script, join(layout, 'probe')]);
        const run = await runToExit(probe.command, probe.args, { cwd: '/', env: imageEnv({}) });
        expect(run.stderr).toBe('');
        const [code, status] = run.stdout.trim().split('\n');
        expect(code).toBe('EROFS');
        expect(status).toBe(`Uid: ${uid} ${uid} ${uid} ${uid}|Gid: 0 0 0 0|Groups: |CapEff: 0000000000000000|CapBnd: 0000000000000000|NoNewPrivs: 1`);
      });

      it('every FUNCTION_TARGET starts, answers /readyz with 200 and exits 0 on SIGTERM', async () => {
        for (const target of FUNCTION_BUNDLES.map((name) => name.replace('functions/', ''))) {
          const env = minimalEnv[target];
          if (env === undefined) throw new Error(`no minimal environment for FUNCTION_TARGET=${target}`);
          const fn = await start(target, env, asOpenShift);
          try {
            const status = readFileSync(`/proc/${fn.child.pid}/status`, 'utf8');
            expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, 'm'));
            await becomesReady(fn.url);
            if (target === 'jwks-get') expect((await rawRequest(fn.url, '/jwks')).body.equals(published)).toBe(true);
          } finally {
            expect(await stop(fn.child)).toEqual({ code: 0, signal: null });
          }
          expect(fn.output()).not.toMatch(/EROFS|EACCES|"level":(50|60)/);
        }
      }, 60_000);
    },
  );

  it('wrote nothing into the application directory (read-only root file system)', async () => {
    expect(await listing(layout)).toEqual(before);
  });
});
