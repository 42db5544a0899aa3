import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { CmError, type CmKeyResource, type KeyIdentity, type KeyMaterial, type KeyMaterialSource, type KeySpec } from '../../emulator/index.js';
import { call, login, startTestEmulator, type ApiResponse, type TestEmulator } from './support.js';

const KEYS = '/api/v1/vault/keys2';

/** A stand-in for a token: generates with node:crypto, keeps the private halves, records every call. */
class RecordingSource implements KeyMaterialSource {
  readonly generated: { spec: KeySpec; identity: KeyIdentity }[] = [];
  readonly destroyed: KeyIdentity[] = [];
  readonly privateKeys = new Map<string, KeyObject>();
  /** Thrown by generate (after recording the call) while set. */
  failGenerate: Error | undefined;
  /** Thrown by destroy (after recording the call) while set. */
  failDestroy: Error | undefined;

  generate(spec: KeySpec, identity: KeyIdentity): KeyMaterial {
    this.generated.push({ spec, identity });
    if (this.failGenerate !== undefined) throw this.failGenerate;
    if (spec.algorithm === 'AES') return {};
    const pair = spec.algorithm === 'RSA' ? generateKeyPairSync('rsa', { modulusLength: spec.size }) : generateKeyPairSync('ec', { namedCurve: spec.curveid });
    this.privateKeys.set(label(identity), pair.privateKey);
    return { publicKey: pair.publicKey };
  }

  destroy(identity: KeyIdentity): void {
    this.destroyed.push(identity);
    if (this.failDestroy !== undefined) throw this.failDestroy;
    this.privateKeys.delete(label(identity));
  }

  reset(): void {
    this.generated.length = 0;
    this.destroyed.length = 0;
    this.failGenerate = undefined;
    this.failDestroy = undefined;
  }
}

function label(identity: Pick<KeyIdentity, 'name' | 'version'>): string {
  return `${identity.name}/v${identity.version}`;
}

const source = new RecordingSource();
let emulator: TestEmulator;
let token: string;

beforeAll(async () => {
  emulator = await startTestEmulator({ keyMaterial: source });
  token = await login(emulator);
});
afterAll(() => emulator.stop());
afterEach(() => source.reset());

function api(method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return call(emulator, method, path, { token, body });
}

/** The published `publickey` verifies what the source's private half of that version signed. */
function expectPublishedFromSource(resource: CmKeyResource): void {
  const privateKey = source.privateKeys.get(label(resource));
  if (privateKey === undefined) throw new Error(`the source holds no private key for ${label(resource)}`);
  expect(resource.publickey).toEqual(expect.any(String));
  const data = Buffer.from(`signed for ${label(resource)}`);
  expect(verify('sha256', data, createPublicKey(resource.publickey!), sign('sha256', data, privateKey))).toBe(true);
}

const INTERNAL_ERROR = { code: 1, codeDesc: 'NCERRInternalServerError', message: 'Internal server error', requestID: expect.any(String) as unknown };

describe('generation through the plugged source', () => {
  test('programmatic create asks it for version 0, rotate for version 1 with the key’s current mask', () => {
    const created = emulator.keys.create({ name: 'prog-rsa', algorithm: 'rsa', size: 2048, usageMask: 1, labels: { jwks: 'publish' } });
    expect(source.generated).toEqual([{ spec: { algorithm: 'RSA', size: 2048 }, identity: { name: 'prog-rsa', version: 0, usageMask: 1 } }]);
    expectPublishedFromSource(created);

    emulator.keys.patch(created.id, { usageMask: 3 });
    const rotated = emulator.keys.rotate(created.id);
    expect(rotated).toMatchObject({ name: 'prog-rsa', version: 1, usageMask: 3 });
    expect(source.generated[1]).toEqual({ spec: { algorithm: 'RSA', size: 2048 }, identity: { name: 'prog-rsa', version: 1, usageMask: 3 } });
    expectPublishedFromSource(rotated);
    expect(rotated.publickey).not.toBe(created.publickey);
  });

  test('REST create and new version ask it likewise; GET publishes what it returned', async () => {
    const created = await api('POST', KEYS, { name: 'rest-ec', algorithm: 'EC', curveid: 'secp384r1', usageMask: 2 });
    expect(created.status).toBe(201);
    expect(source.generated).toEqual([{ spec: { algorithm: 'EC', curveid: 'secp384r1', size: 384 }, identity: { name: 'rest-ec', version: 0, usageMask: 2 } }]);
    const id = created.json.id as string;
    expectPublishedFromSource((await api('GET', `${KEYS}/${id}`)).json as CmKeyResource);

    const rotated = await api('POST', `${KEYS}/${id}/versions`, {});
    expect(rotated.status).toBe(201);
    expect(rotated.json).toMatchObject({ name: 'rest-ec', version: 1 });
    expect(source.generated[1]).toEqual({ spec: { algorithm: 'EC', curveid: 'secp384r1', size: 384 }, identity: { name: 'rest-ec', version: 1, usageMask: 2 } });
    expectPublishedFromSource((await api('GET', `${KEYS}/rest-ec?type=name&version=1`)).json as CmKeyResource);
  });

  test('AES keys go through it too, and publish nothing', async () => {
    const created = await api('POST', KEYS, { name: 'rest-aes', algorithm: 'aes' });
    expect(created.status).toBe(201);
    expect(created.json.publickey).toBeUndefined();
    expect(source.generated).toEqual([{ spec: { algorithm: 'AES', size: 256 }, identity: { name: 'rest-aes', version: 0, usageMask: 12 } }]);
  });

  test('a publicKeyOf copy does not call it, neither to create nor to destroy', () => {
    const original = emulator.keys.create({ name: 'copied', algorithm: 'ec', usageMask: 1 });
    source.reset();
    const copy = emulator.keys.create({ name: 'copied-public', algorithm: 'ec', objectType: 'Public Key', publicKeyOf: original.id });
    expect(copy).toMatchObject({ objectType: 'Public Key', publickey: original.publickey });
    emulator.keys.revoke(copy.id, 'Unspecified');
    emulator.keys.destroy(copy.id);
    expect(source.generated).toEqual([]);
    expect(source.destroyed).toEqual([]);
    expect(source.privateKeys.has(label(original))).toBe(true);
  });
});

describe('destruction', () => {
  test('programmatic destroy calls destroy with the identity once the key is destroyed', () => {
    const created = emulator.keys.create({ name: 'prog-destroy', algorithm: 'rsa', size: 1024, usageMask: 1 });
    emulator.keys.revoke(created.id, 'Unspecified');
    expect(emulator.keys.destroy(created.id)).toMatchObject({ state: 'Destroyed' });
    expect(source.destroyed).toEqual([{ name: 'prog-destroy', version: 0, usageMask: 1 }]);
    expect(source.privateKeys.has(label(created))).toBe(false);
  });

  test('REST destroy of a version destroys that version only; a refused destroy does not call it', async () => {
    const created = await api('POST', KEYS, { name: 'rest-destroy', algorithm: 'ec', usageMask: 1 });
    const id = created.json.id as string;
    const version1 = (await api('POST', `${KEYS}/${id}/versions`, {})).json.id as string;
    expect((await api('POST', `${KEYS}/${version1}/destroy`, {})).status).toBe(400);
    expect(source.destroyed).toEqual([]);

    expect((await api('POST', `${KEYS}/${version1}/revoke`, { reason: 'KeyCompromise' })).status).toBe(200);
    const destroyed = await api('POST', `${KEYS}/${version1}/destroy`, {});
    expect(destroyed.status).toBe(200);
    expect(destroyed.json).toMatchObject({ state: 'Destroyed Compromised', version: 1 });
    expect(source.destroyed).toEqual([{ name: 'rest-destroy', version: 1, usageMask: 1 }]);
    expect(source.privateKeys.has('rest-destroy/v0')).toBe(true);
    expect(source.privateKeys.has('rest-destroy/v1')).toBe(false);
  });

  test('a source that fails to destroy leaves the key as it was', async () => {
    const created = emulator.keys.create({ name: 'undestroyable', algorithm: 'ec' });
    emulator.keys.revoke(created.id, 'Unspecified');
    source.failDestroy = new Error('token busy');
    const answer = await api('POST', `${KEYS}/${created.id}/destroy`, {});
    expect(answer.status).toBe(500);
    expect(answer.json).toEqual(INTERNAL_ERROR);
    expect(emulator.keys.get(created.id)).toMatchObject({ state: 'Deactivated', publickey: created.publickey });
    expect(emulator.keys.get(created.id)?.destroyDate).toBeUndefined();
  });
});

describe('a source that throws', () => {
  test('REST create answers CM’s 500 and leaves no key; the emulator keeps serving', async () => {
    const before = emulator.keys.list().length;
    source.failGenerate = new Error('token full');
    const answer = await api('POST', KEYS, { name: 'refused', algorithm: 'rsa', size: 2048 });
    expect(answer.status).toBe(500);
    expect(answer.json).toEqual(INTERNAL_ERROR);
    expect(answer.text).not.toContain('token full');
    expect((await api('GET', `${KEYS}/refused?type=name`)).status).toBe(404);
    expect(emulator.keys.list()).toHaveLength(before);

    source.failGenerate = undefined;
    const retried = await api('POST', KEYS, { name: 'refused', algorithm: 'rsa', size: 2048 });
    expect(retried.status).toBe(201);
    expectPublishedFromSource(retried.json as CmKeyResource);
  });

  test('REST new version answers 500 and adds no version', async () => {
    const created = emulator.keys.create({ name: 'no-rotation', algorithm: 'ec' });
    source.failGenerate = new Error('token full');
    expect((await api('POST', `${KEYS}/${created.id}/versions`, {})).status).toBe(500);
    expect((await api('GET', `${KEYS}/no-rotation?type=name&version=1`)).status).toBe(404);
    expect(emulator.keys.list().filter((key) => key.name === 'no-rotation')).toHaveLength(1);
  });

  test('a CmError it throws is answered as is (a source refusing what it cannot hold)', async () => {
    source.failGenerate = new CmError(400, 9, 'NCERRInvalidParamValue: AES keys are not held here', 'AES keys are not held here');
    const answer = await api('POST', KEYS, { name: 'refused-aes', algorithm: 'aes' });
    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({ code: 9, message: 'AES keys are not held here' });
    expect(emulator.keys.list().some((key) => key.name === 'refused-aes')).toBe(false);
  });

  test('programmatic create and rotate throw its error and store nothing', () => {
    const created = emulator.keys.create({ name: 'prog-refused-rotation', algorithm: 'ec' });
    source.failGenerate = new Error('token full');
    expect(() => emulator.keys.create({ name: 'prog-refused', algorithm: 'ec' })).toThrow('token full');
    expect(() => emulator.keys.rotate(created.id)).toThrow('token full');
    expect(emulator.keys.list().filter((key) => key.name.startsWith('prog-refused'))).toEqual([expect.objectContaining({ id: created.id })]);
  });
});
