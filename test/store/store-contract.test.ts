import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KEY_SET_OBJECT, StoreError, keyObjectName, type ObjectName } from '../../shared/store/store.js';
import { openBackend, type BackendName, type TestBackend } from '../support/backends.js';

describe.each<BackendName>(['file', 's3'])('%s store', (name) => {
  let backend: TestBackend;

  beforeEach(async () => {
    backend = await openBackend(name);
  });
  afterEach(async () => {
    await backend.close();
  });

  it('reports a missing object as missing, with or without a known version', async () => {
    await expect(backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024 })).resolves.toEqual({ kind: 'missing' });
    await expect(backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024, ifChangedFrom: 'v1' })).resolves.toEqual({ kind: 'missing' });
  });

  it('reads back what it wrote, then answers unchanged for the same version', async () => {
    await backend.store.write(KEY_SET_OBJECT, Buffer.from('{"keys":[]}'));
    const first = await backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024 });
    if (first.kind !== 'found') throw new Error(`expected found, got ${first.kind}`);
    expect(first.object.body.toString()).toBe('{"keys":[]}');
    expect(first.object.version).not.toBe('');
    expect(Math.abs(first.object.lastModified.getTime() - Date.now())).toBeLessThan(60_000);
    await expect(backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024, ifChangedFrom: first.object.version })).resolves.toEqual({ kind: 'unchanged' });
  });

  it('notices a replacement, even of the same size', async () => {
    await backend.store.write(KEY_SET_OBJECT, Buffer.from('{"keys":[1]}'));
    const first = await backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024 });
    if (first.kind !== 'found') throw new Error('expected found');
    await backend.store.write(KEY_SET_OBJECT, Buffer.from('{"keys":[2]}'));
    const second = await backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024, ifChangedFrom: first.object.version });
    expect(second.kind).toBe('found');
    if (second.kind === 'found') expect(second.object.body.toString()).toBe('{"keys":[2]}');
  });

  it('refuses an object over the size limit without returning it', async () => {
    await backend.store.write(KEY_SET_OBJECT, Buffer.alloc(2048, 0x20));
    const error = await backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).failure).toBe('too_large');
  });

  it('lists only names of the scheme, and removes idempotently', async () => {
    const kid = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
    await backend.store.write(keyObjectName(kid), Buffer.from('{}'));
    await backend.store.write(KEY_SET_OBJECT, Buffer.from('{"keys":[]}'));
    if (backend.directory !== undefined) await writeFile(join(backend.directory, 'notes.txt'), 'not ours');
    expect(await backend.store.list()).toEqual([`jwk-${kid}.json`, 'jwks.json']);
    await backend.store.remove(keyObjectName(kid));
    await backend.store.remove(keyObjectName(kid));
    expect(await backend.store.list()).toEqual(['jwks.json']);
  });

  it('refuses a name outside the scheme even when the type system is bypassed', async () => {
    for (const bad of ['../jwks.json', 'jwk-../../etc/passwd.json', 'other.json']) {
      await expect(backend.store.read(bad as ObjectName, { maxBytes: 1024 })).rejects.toThrow(StoreError);
      await expect(backend.store.write(bad as ObjectName, Buffer.from('x'))).rejects.toThrow();
    }
  });

  if (name === 'file') {
    it('leaves no temporary file behind after a write', async () => {
      await backend.store.write(KEY_SET_OBJECT, Buffer.from('{"keys":[]}'));
      expect(await readdir(backend.directory!)).toEqual(['jwks.json']);
    });

    it('refuses a symlink that leads out of the store, and follows one that stays inside', async () => {
      const directory = backend.directory!;
      await mkdir(join(directory, '..data'));
      await writeFile(join(directory, '..data', 'jwks.json'), '{"keys":[]}');
      await symlink(join(directory, '..data', 'jwks.json'), join(directory, 'jwks.json'));
      await expect(backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024 })).resolves.toMatchObject({ kind: 'found' });

      const kid = 'outside';
      await symlink('/etc/hostname', join(directory, `jwk-${kid}.json`));
      const error = await backend.store.read(keyObjectName(kid), { maxBytes: 1024 }).catch((caught: unknown) => caught);
      expect((error as StoreError).failure).toBe('outside_store');
    });

    it('reports a write into a missing directory as a write failure', async () => {
      const { FileKeySetStore } = await import('../../shared/store/file-store.js');
      const store = new FileKeySetStore(join(backend.directory!, 'does-not-exist'));
      const error = await store.write(KEY_SET_OBJECT, Buffer.from('{}')).catch((caught: unknown) => caught);
      expect((error as StoreError).failure).toBe('write_failed');
    });
  }

  if (name === 's3') {
    it('reports an unreachable endpoint as a store error, not a crash', async () => {
      await backend.s3!.interrupt();
      const error = await backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024 }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StoreError);
      expect(['unavailable', 'timeout']).toContain((error as StoreError).failure);
    });
  }
});
