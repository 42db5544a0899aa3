import { randomBytes } from 'node:crypto';
import { constants, type BigIntStats } from 'node:fs';
import { open, readdir, realpath, rename, stat, unlink } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { OperationDeadline } from './operation-deadline.js';
import {
  StoreError,
  isObjectName,
  type KeySetStore,
  type ObjectName,
  type ReadOptions,
  type ReadResult,
} from './store.js';

/** Default bound of one store operation (JWKS_FILE_TIMEOUT_MS). */
export const FILE_STORE_TIMEOUT_MS = 5000;

/**
 * A directory on a local or network file system (the PersistentVolume). Change detection is a
 * stat of the file, never inotify: on NFS and similar, events from other nodes never arrive.
 * Every operation has a deadline (OperationDeadline): a hung NFS mount gives timeouts, not a
 * caller that waits for good.
 */
export class FileKeySetStore implements KeySetStore {
  readonly location: string;
  private realRoot: string | undefined;
  private readonly deadline: OperationDeadline;

  constructor(
    private readonly root: string,
    options: { timeoutMs?: number } = {},
  ) {
    this.location = `file://${root}`;
    this.deadline = new OperationDeadline(options.timeoutMs ?? FILE_STORE_TIMEOUT_MS);
  }

  read(name: ObjectName, options: ReadOptions): Promise<ReadResult> {
    return this.deadline.run(`reading ${name}`, () => this.readNow(name, options));
  }

  write(name: ObjectName, body: Buffer): Promise<void> {
    return this.deadline.run(`writing ${name}`, () => this.writeNow(name, body));
  }

  remove(name: ObjectName): Promise<void> {
    return this.deadline.run(`removing ${name}`, () => this.removeNow(name));
  }

  list(): Promise<ObjectName[]> {
    return this.deadline.run('listing the store', () => this.listNow());
  }

  private async readNow(name: ObjectName, options: ReadOptions): Promise<ReadResult> {
    const path = this.pathOf(name);
    if (options.ifChangedFrom !== undefined) {
      const current = await statOrUndefined(path);
      if (current === undefined) return { kind: 'missing' };
      if (versionOf(current) === options.ifChangedFrom) return { kind: 'unchanged' };
    }
    let resolved: string;
    try {
      resolved = await realpath(path);
    } catch (error) {
      if (isNotFound(error)) return { kind: 'missing' };
      throw unavailable(`cannot resolve ${name}`, error);
    }
    // A symlink may stay inside the store (a ConfigMap's ..data), never point out of it.
    if (!resolved.startsWith((await this.resolvedRoot()) + sep)) {
      throw new StoreError('outside_store', `${name} resolves outside the store`);
    }
    let handle;
    try {
      handle = await open(resolved, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      if (isNotFound(error)) return { kind: 'missing' };
      throw unavailable(`cannot open ${name}`, error);
    }
    try {
      const stats = await handle.stat({ bigint: true });
      if (!stats.isFile()) throw new StoreError('not_a_file', `${name} is not a regular file`);
      if (stats.size > BigInt(options.maxBytes)) {
        throw new StoreError('too_large', `${name} is ${stats.size} bytes, over the ${options.maxBytes} limit`);
      }
      const body = await readExactly(handle, Number(stats.size), name);
      return { kind: 'found', object: { body, version: versionOf(stats), lastModified: stats.mtime } };
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw unavailable(`cannot read ${name}`, error);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  private async writeNow(name: ObjectName, body: Buffer): Promise<void> {
    const path = this.pathOf(name);
    // Dot-prefixed temporary names never match an object name, so readers and list() skip them.
    const temporary = join(this.root, `.${name}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await open(temporary, 'wx', 0o644);
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, path);
      await this.syncDirectory();
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw new StoreError('write_failed', `cannot write ${name}: ${describe(error)}`, { cause: error });
    }
  }

  private async removeNow(name: ObjectName): Promise<void> {
    try {
      await unlink(this.pathOf(name));
      await this.syncDirectory();
    } catch (error) {
      if (isNotFound(error)) return;
      throw new StoreError('write_failed', `cannot remove ${name}: ${describe(error)}`, { cause: error });
    }
  }

  private async listNow(): Promise<ObjectName[]> {
    try {
      const entries = await readdir(this.root);
      return entries.filter(isObjectName).sort();
    } catch (error) {
      throw unavailable('cannot list the store', error);
    }
  }

  private pathOf(name: ObjectName): string {
    // Defence in depth: the type already guarantees it, but a cast somewhere must not open a hole.
    if (!isObjectName(name)) throw new StoreError('outside_store', 'refused an invalid object name');
    return join(this.root, name);
  }

  private async resolvedRoot(): Promise<string> {
    this.realRoot ??= await realpath(this.root).catch((error: unknown) => {
      throw unavailable('cannot resolve the store directory', error);
    });
    return this.realRoot;
  }

  /** Makes a rename durable: without it a crash can bring back the old directory entry. */
  private async syncDirectory(): Promise<void> {
    const directory = await open(this.root, constants.O_RDONLY);
    try {
      await directory.sync();
    } catch {
      // Some network file systems refuse fsync on a directory; the rename is still atomic.
    } finally {
      await directory.close();
    }
  }
}

function versionOf(stats: BigIntStats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
}

async function statOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw unavailable('cannot stat the store', error);
  }
}

async function readExactly(handle: Awaited<ReturnType<typeof open>>, size: number, name: string): Promise<Buffer> {
  // One spare byte: a file written in place while we read it is noticed, not served half-done.
  const buffer = Buffer.alloc(size + 1);
  let length = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
    if (bytesRead === 0) break;
    length += bytesRead;
    if (length > size) throw new StoreError('unavailable', `${name} changed while being read`);
  }
  return buffer.subarray(0, length);
}

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function unavailable(message: string, error: unknown): StoreError {
  return new StoreError('unavailable', `${message}: ${describe(error)}`, { cause: error });
}

function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (error instanceof Error ? error.message : String(error));
}
