/**
 * Makes s3rver's objects change atomically, as S3's do. s3rver writes an object in place (the file
 * truncated, then filled, its md5 and metadata in files of their own) and reads it in pieces (size,
 * md5, then the bytes), so a reader racing a writer can get an empty or half-written object, or
 * new bytes with the old ETag: something real S3 never serves, and which the kill and fault
 * suites would report as a torn set. Here each object's PUT, GET and DELETE run one at a time, a
 * PUT has written the bytes, md5 and metadata before it answers, and a GET reads the whole object
 * before it answers.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';

interface StoredObject {
  readonly bucket: string;
  readonly key: string;
  content: Buffer | Readable | null;
  readonly metadata: Record<string, unknown>;
}

/** What this patch uses of s3rver 3's FilesystemStore. */
interface FilesystemStore {
  getObject(bucket: string, key: string, options?: unknown): Promise<StoredObject | null>;
  putObject(object: StoredObject): Promise<{ size: number; md5: string }>;
  deleteObject(bucket: string, key: string): Promise<void>;
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, unknown>, md5: string): Promise<void>;
}

/** Patches the store of one s3rver instance (its `store`, set by its constructor). */
export function makeS3rverAtomic(server: object): void {
  const store = (server as { store?: FilesystemStore }).store;
  if (store === undefined) throw new Error('s3rver has no store to patch (another s3rver version?)');
  const queues = new Map<string, Promise<unknown>>();
  const oneAtATime = <T>(bucket: string, key: string, operation: () => Promise<T>): Promise<T> => {
    const name = `${bucket}/${key}`;
    const result = (queues.get(name) ?? Promise.resolve()).then(operation, operation);
    const tail = result.catch(() => undefined);
    queues.set(name, tail);
    void tail.then(() => {
      if (queues.get(name) === tail) queues.delete(name);
    });
    return result;
  };
  const getObject = store.getObject.bind(store);
  const deleteObject = store.deleteObject.bind(store);
  store.putObject = (object) =>
    oneAtATime(object.bucket, object.key, async () => {
      // s3rver's own putObject answers before its write stream has flushed.
      const bytes = await bytesOf(object.content);
      const path = store.getResourcePath(object.bucket, object.key, 'object');
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, bytes);
      const md5 = createHash('md5').update(bytes).digest('hex');
      await store.putMetadata(object.bucket, object.key, object.metadata, md5);
      return { size: bytes.length, md5 };
    });
  store.getObject = (bucket, key, options) =>
    oneAtATime(bucket, key, async () => {
      const object = await getObject(bucket, key, options);
      if (object !== null && object.content !== null) object.content = Readable.from([await bytesOf(object.content)]);
      return object;
    });
  store.deleteObject = (bucket, key) => oneAtATime(bucket, key, () => deleteObject(bucket, key));
}

async function bytesOf(content: Buffer | Readable | null): Promise<Buffer> {
  if (content === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(content)) return content;
  const chunks: Buffer[] = [];
  for await (const chunk of content) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}
