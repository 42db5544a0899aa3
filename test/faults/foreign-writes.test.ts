/**
 * Another process writes into the file store, in place and not atomically as a careless tool
 * would: a truncated jwks.json, a jwks.json holding a private key, a jwk-<kid>.json holding one.
 * jwks-get and jwk-get (own processes) must keep answering 200 with their last good set and never
 * serve or log the secret; the next publication by key-rotated must put the store back as it was.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { serializeKey } from '../../shared/jwks/serialize.js';
import { validateSingleJwk, type PublicJwk } from '../../shared/jwks/validate.js';
import { KEY_SET_OBJECT, keyObjectName, type ObjectName } from '../../shared/store/store.js';
import { watchServing } from '../support/fault-watch.js';
import { eventually, rawRequest } from '../support/http.js';
import { startFunction, type RunningFunction } from '../support/processes.js';
import { startPublisherStack, type PublisherStack } from '../support/publisher-stack.js';
import { ENCRYPT, PUBLISH, SIGN, expectConsistent, publisherReport, startServing } from './support.js';

const CURVES: Record<string, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };

/** A private scalar `d` for a key of this curve: what a leak would put in the store. */
function privateScalar(crv: string): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: CURVES[crv]! });
  return (privateKey.export({ format: 'jwk' }) as { d: string }).d;
}

async function readiness(fn: RunningFunction): Promise<{ status: string; problem: { reason: string } | null }> {
  return JSON.parse((await rawRequest(fn.url, '/readyz')).body.toString()) as { status: string; problem: { reason: string } | null };
}

describe('foreign writes into the file store', () => {
  let stack: PublisherStack | undefined;
  let serving: Awaited<ReturnType<typeof startServing>> | undefined;
  let good: Awaited<ReturnType<typeof expectConsistent>>;

  /** Another process overwrites an object in place: truncate, then write (no temporary, no rename). */
  async function foreignWrite(name: ObjectName, bytes: Buffer): Promise<void> {
    const writer = spawn(process.execPath, ['-e', 'require("fs").writeFileSync(process.argv[1], Buffer.from(process.argv[2], "base64"))', join(stack!.backend.directory!, name), bytes.toString('base64')], {
      stdio: 'inherit',
    });
    expect(await new Promise((done) => writer.on('exit', done))).toBe(0);
  }

  /** A ping republishes exactly the set that was there before the foreign write. */
  async function expectRepairedByPublication(filesWritten: number): Promise<void> {
    expect(await stack!.ping()).toMatchObject({ status: 200, body: { outcome: 'published', keys: good.keys.length } });
    expect(publisherReport(stack!.keyRotated).audits().at(-1)).toMatchObject({ outcome: 'published', filesWritten, filesRemoved: 0 });
    const after = await expectConsistent(stack!.backend.store);
    expect([...after.bytes.entries()]).toEqual([...good.bytes.entries()]);
    for (const fn of [serving!.jwks, serving!.jwk]) await eventually(async () => (await readiness(fn)).status === 'ok', 10_000);
  }

  beforeAll(async () => {
    stack = await startPublisherStack('file');
    stack.emulator.keys.create({ name: 'signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    stack.emulator.keys.create({ name: 'encryption', algorithm: 'ec', curveid: 'secp384r1', usageMask: ENCRYPT, labels: PUBLISH });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', keys: 2 } });
    good = await expectConsistent(stack.backend.store);
    serving = await startServing(stack.backend.env);
  });
  afterAll(async () => {
    await serving?.stop();
    await stack?.close();
  });

  it('a truncated jwks.json: serving keeps its set (200, /readyz degraded), and the next publication restores it', async () => {
    const watcher = watchServing(serving!.jwks, serving!.jwk, { keys: good.keys, sets: [good.setBytes!] });
    try {
      await foreignWrite(KEY_SET_OBJECT, good.setBytes!.subarray(0, good.setBytes!.length - 10));
      for (const fn of [serving!.jwks, serving!.jwk]) {
        await eventually(async () => (await readiness(fn)).problem?.reason === 'malformed_json', 10_000);
      }
    } finally {
      const seen = await watcher.stop();
      expect(seen.problems).toEqual([]);
      expect(seen.rounds).toBeGreaterThan(0);
    }
    await expectRepairedByPublication(1);
    expect(stack!.keyRotated.output()).toMatch(/"event":"published_set_unreadable","reason":"malformed_json"/);
  });

  it('a jwks.json holding a private key: never served, a security event without the secret, replaced by the next publication', async () => {
    const leaky = good.keys[1]!;
    const secret = privateScalar((leaky as { crv: string }).crv);
    const leaked = Buffer.from(JSON.stringify({ keys: [good.keys[0], { ...leaky, d: secret }] }));
    const watcher = watchServing(serving!.jwks, serving!.jwk, { keys: good.keys, sets: [good.setBytes!] });
    try {
      await foreignWrite(KEY_SET_OBJECT, leaked);
      for (const fn of [serving!.jwks, serving!.jwk]) {
        await eventually(() => Promise.resolve(fn.output().includes('"securityEvent":"private_key_material_in_store"')), 10_000);
      }
    } finally {
      const seen = await watcher.stop();
      expect(seen.problems).toEqual([]);
    }
    await expectRepairedByPublication(1);
    expect(stack!.keyRotated.output()).toMatch(/"event":"published_set_unreadable","reason":"private_key_material","security":true/);
    for (const fn of [serving!.jwks, serving!.jwk, stack!.keyRotated]) expect(fn.output()).not.toContain(secret);
  });

  it('a jwk-<kid>.json holding a private key: jwk-get keeps the public key, a new replica never serves the secret, the next publication rewrites the file', async () => {
    const target: PublicJwk = good.keys[0]!;
    const name = keyObjectName(target.kid);
    const secret = privateScalar((target as { crv: string }).crv);
    const watcher = watchServing(serving!.jwks, serving!.jwk, { keys: good.keys, sets: [good.setBytes!] });
    let replica: RunningFunction | undefined;
    try {
      await foreignWrite(name, Buffer.from(JSON.stringify({ ...target, d: secret })));
      // A replica started now reads every per-kid file: it refuses this one and serves the key as jwks.json has it.
      replica = await startFunction({ host: 'lean', target: 'jwk-get', env: { ...stack!.backend.env, JWKS_REVALIDATE_MS: '100' }, waitForReady: true });
      const answer = await rawRequest(replica.url, `/jwk/${target.kid}`);
      expect(answer.status).toBe(200);
      expect(answer.body.toString()).not.toContain(secret);
      expect(validateSingleJwk(answer.body)).toEqual(target);
      // Logged while it started, written once its logger has loaded (after this first answer).
      await eventually(() => Promise.resolve(replica!.output().includes(`"securityEvent":"private_key_material_in_store","object":"${name}"`)), 5_000);
      expect(replica.output()).not.toContain(secret);
    } finally {
      await replica?.stop();
      const seen = await watcher.stop();
      expect(seen.problems).toEqual([]);
    }
    // The file is back to the public key alone, as the publisher serializes it.
    await expectRepairedByPublication(1);
    expect(good.bytes.get(name)).toEqual(serializeKey(target));
    // The publisher reports what it replaced, as a security event without the secret.
    expect(stack!.keyRotated.output()).toContain(`"event":"published_key_file_unsafe","reason":"private_key_material","security":true,"object":"${name}"`);
    expect(stack!.keyRotated.output()).not.toContain(secret);
  });
});
