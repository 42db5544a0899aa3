/**
 * The jest side of the partner clients: real JWKS client libraries, each in a long-running process
 * of its own so that their caches behave as in real life, driven over JSON lines (one command per
 * stdin line, one answer per stdout line, matched by "id"). The partners themselves:
 * test/clients/python_partner.py (PyJWT and jwcrypto) and test/clients/jwks-rsa-partner.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Debian's Python: the python3 first on PATH may be another one, without the packages. */
export const systemPython = '/usr/bin/python3';
const pythonPartner = fileURLToPath(new URL('../clients/python_partner.py', import.meta.url));
const jwksRsaPartner = fileURLToPath(new URL('../../dist/test/clients/jwks-rsa-partner.js', import.meta.url));

const requestTimeoutMs = 15_000;
const quitGraceMs = 2000;

export type ClientName = 'pyjwt' | 'jwcrypto' | 'jwks-rsa';

export type PartnerAnswer = { readonly ok: boolean; readonly id?: unknown; readonly error?: string } & Readonly<Record<string, unknown>>;
export type Failed = { readonly ok: false; readonly error: string };
export type Verified = { readonly ok: true; readonly kid: string; readonly claims: Record<string, unknown> } | Failed;
/** kids: the keys the library loaded; PyJWT also gives signing_kids, those it would verify with. */
export type LoadedSet = { readonly ok: true; readonly kids: string[]; readonly count: number; readonly signing_kids?: string[] } | Failed;
export type Encrypted = { readonly ok: true; readonly jwe: string } | Failed;

/** A partner process; every request is answered, rejected on timeout, or rejected when it exits. */
export interface PartnerProcess {
  readonly name: string;
  readonly pid: number | undefined;
  request(command: Record<string, unknown>): Promise<PartnerAnswer>;
  /** What the process wrote to stderr so far (and stdout lines that were not answers). */
  stderr(): string;
  /** Sends quit, kills after a grace period; resolves once the process is gone. */
  close(): Promise<void>;
}

/** One client library inside a partner process. */
export interface PartnerClient {
  readonly partner: PartnerProcess;
  readonly name: ClientName;
}

export function startPythonPartner(options: { jwksUrl: string; lifespanSeconds: number }): PartnerProcess {
  const args = [pythonPartner, '--jwks-url', options.jwksUrl, '--lifespan', String(options.lifespanSeconds)];
  return startPartner('python partner (PyJWT, jwcrypto)', systemPython, args);
}

export function startJwksRsaPartner(options: { jwksUrl: string; lifespanMs: number }): PartnerProcess {
  const args = [jwksRsaPartner, '--jwks-url', options.jwksUrl, '--lifespan-ms', String(options.lifespanMs)];
  return startPartner('jwks-rsa partner', process.execPath, args);
}

export function verify(client: PartnerClient, token: string, algorithms?: string[]): Promise<Verified> {
  return client.partner.request({ op: 'verify', client: client.name, token, ...(algorithms === undefined ? {} : { algorithms }) }) as Promise<Verified>;
}

export function loadSet(client: PartnerClient): Promise<LoadedSet> {
  return client.partner.request({ op: 'load_set', client: client.name }) as Promise<LoadedSet>;
}

/** A compact JWE to the published key `kid` (jwcrypto only); alg defaults to the key's, enc to A256GCM. */
export function encrypt(client: PartnerClient, options: { kid: string; plaintext: Uint8Array; alg?: string; enc?: string }): Promise<Encrypted> {
  const { kid, plaintext, alg, enc } = options;
  const command = { op: 'encrypt', client: client.name, kid, alg, enc, plaintext_b64: Buffer.from(plaintext).toString('base64') };
  return client.partner.request(command) as Promise<Encrypted>;
}

/** The answer when it is ok; otherwise throws with the partner's error, for a clear test failure. */
export async function succeeded<T extends { readonly ok: boolean; readonly error?: string }>(answer: Promise<T>): Promise<Extract<T, { ok: true }>> {
  const settled = await answer;
  if (!settled.ok) throw new Error(`the partner answered ok:false: ${settled.error ?? JSON.stringify(settled)}`);
  return settled as Extract<T, { ok: true }>;
}

/** The error of an answer that must be ok:false; throws when the partner said ok. */
export async function failed(answer: Promise<{ readonly ok: boolean; readonly error?: string }>): Promise<string> {
  const settled = await answer;
  if (settled.ok || settled.error === undefined) throw new Error(`the partner was expected to refuse, but answered ${JSON.stringify(settled)}`);
  return settled.error;
}

/** Whether the Python partner can run here: Debian's python3 with PyJWT and jwcrypto. */
export function partnerDependencies(): { ok: true } | { ok: false; missing: string[]; install: string } {
  const install = 'apt-get install python3-jwt python3-jwcrypto';
  if (!existsSync(systemPython)) return { ok: false, missing: [systemPython, 'python3-jwt', 'python3-jwcrypto'], install };
  const probe = 'import importlib.util as u\nfor m, p in (("jwt", "python3-jwt"), ("jwcrypto", "python3-jwcrypto")):\n    u.find_spec(m) or print(p)';
  const result = spawnSync(systemPython, ['-c', `${probe}\nimport jwt, jwcrypto`], { encoding: 'utf8', timeout: 10_000, env: { PATH: '/usr/bin:/bin' } });
  if (result.status === 0) return { ok: true };
  const missing = result.stdout.split('\n').filter((line) => line !== '');
  const why = result.error?.message ?? (result.stderr.trim().split('\n').pop() || `exit ${String(result.status ?? result.signal)}`);
  return { ok: false, missing: missing.length > 0 ? missing : [`${systemPython} -c "import jwt, jwcrypto" (${why})`], install };
}

function startPartner(name: string, executable: string, args: string[]): PartnerProcess {
  // Only PATH: no proxy variables (urllib honours them), no PYTHONPATH from a pyenv shell.
  const child = spawn(executable, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['pipe', 'pipe', 'pipe'] });
  const pending = new Map<number, { done: (answer: PartnerAnswer) => void; fail: (error: Error) => void; timer: NodeJS.Timeout }>();
  let stderr = '';
  let ended: string | undefined;
  let nextId = 1;

  const failAll = (reason: string): void => {
    ended ??= reason;
    for (const [id, waiting] of pending) {
      clearTimeout(waiting.timer);
      pending.delete(id);
      waiting.fail(new Error(`${name}: ${reason} before answering request ${id}; stderr:\n${stderr}`));
    }
  };
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on('error', () => undefined); // EPIPE when it has exited: the exit handler reports it
  child.on('error', (error) => failAll(`could not run ${executable}: ${error.message}`));
  const exited = new Promise<void>((done) => {
    child.once('close', (code, signal) => {
      failAll(`exited (code ${String(code)}, signal ${String(signal)})`);
      done();
    });
  });
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
    let answer: PartnerAnswer | undefined;
    try {
      answer = JSON.parse(line) as PartnerAnswer;
    } catch {
      // not an answer: kept for the error messages
    }
    const waiting = typeof answer?.id === 'number' ? pending.get(answer.id) : undefined;
    if (answer === undefined || waiting === undefined) {
      stderr += `[stdout, unmatched] ${line}\n`;
      return;
    }
    clearTimeout(waiting.timer);
    pending.delete(answer.id as number);
    waiting.done(answer);
  });

  const request = (command: Record<string, unknown>): Promise<PartnerAnswer> => {
    const id = nextId++;
    if (ended !== undefined) return Promise.reject(new Error(`${name}: ${ended}; stderr:\n${stderr}`));
    return new Promise((done, fail) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        fail(new Error(`${name}: no answer to ${String(command.op)} (id ${id}) within ${requestTimeoutMs / 1000} s; stderr:\n${stderr}`));
      }, requestTimeoutMs);
      pending.set(id, { done, fail, timer });
      child.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  };

  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && ended === undefined) {
      child.stdin.end(`${JSON.stringify({ op: 'quit' })}\n`);
      const timer = setTimeout(() => child.kill('SIGKILL'), quitGraceMs);
      await exited;
      clearTimeout(timer);
    }
    await exited;
  };

  return { name, pid: child.pid, request, stderr: () => stderr, close };
}
