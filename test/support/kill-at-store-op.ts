/**
 * Preloaded into a publisher process (`NODE_OPTIONS=--import .../kill-at-store-op.js`) to SIGKILL
 * it at one exact step of a file-store write, from outside the production code:
 *
 *   KILL_STORE_DIR  the store directory; only operations on files in it count
 *   KILL_AT         write:N       the Nth file written in it: killed once the file is open, empty
 *                   write:N:half  ... after half of its bytes are written and synced
 *                   rename:N      before the Nth rename into it (the new file written and synced)
 *                   unlink:N      before the Nth removal in it
 *
 * It wraps node:fs/promises (open, rename, unlink and FileHandle#writeFile) and republishes the
 * wrappers to ES module importers (syncBuiltinESMExports). Before dying it writes one line to
 * stderr naming the step, so a test can tell that the kill happened where it meant it to.
 */
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { basename, dirname, resolve } from 'node:path';

type Operation = 'write' | 'rename' | 'unlink';

interface MutableFsPromises {
  open(path: fs.PathLike, ...rest: unknown[]): Promise<FileHandle>;
  rename(from: fs.PathLike, to: fs.PathLike): Promise<void>;
  unlink(path: fs.PathLike): Promise<void>;
}

export const KILL_MARKER = 'kill-at-store-op: SIGKILL at';

const spec = process.env.KILL_AT;
const storeDir = process.env.KILL_STORE_DIR;
if (spec !== undefined && storeDir !== undefined) await install(spec, resolve(storeDir));

async function install(killAt: string, root: string): Promise<void> {
  const [operation, nth, how] = killAt.split(':') as [Operation, string, string | undefined];
  const target = Number(nth);
  const counts: Record<Operation, number> = { write: 0, rename: 0, unlink: 0 };
  const inStore = (path: fs.PathLike): boolean => dirname(resolve(String(path))) === root;
  /** Counts one operation in the store; true when it is the one to die at. */
  const reached = (op: Operation): boolean => ++counts[op] === target && op === operation;
  const die = (step: string): Promise<never> => {
    fs.writeSync(2, `${KILL_MARKER} ${step}\n`);
    process.kill(process.pid, 'SIGKILL');
    return new Promise(() => undefined);
  };

  const promises = fs.promises as unknown as MutableFsPromises;
  const handles = new WeakMap<FileHandle, string>();
  const open = promises.open.bind(promises);
  promises.open = async (path, ...rest) => {
    const handle = await open(path, ...rest);
    if (inStore(path)) handles.set(handle, basename(String(path)));
    return handle;
  };
  const rename = promises.rename.bind(promises);
  promises.rename = async (from, to) => {
    if (inStore(to) && reached('rename')) await die(`rename #${target} (${basename(String(to))})`);
    return rename(from, to);
  };
  const unlink = promises.unlink.bind(promises);
  promises.unlink = async (path) => {
    if (inStore(path) && reached('unlink')) await die(`unlink #${target} (${basename(String(path))})`);
    return unlink(path);
  };

  const probe = await open(process.execPath, 'r');
  const prototype = Object.getPrototypeOf(probe) as { writeFile: FileHandle['writeFile'] };
  await probe.close();
  const writeFile = prototype.writeFile;
  prototype.writeFile = async function (this: FileHandle, data, options) {
    const name = handles.get(this);
    if (name !== undefined && reached('write')) {
      if (how === 'half') {
        const bytes = Buffer.from(data as Uint8Array);
        await this.write(bytes.subarray(0, bytes.length >> 1));
        await this.sync();
      }
      await die(`write #${target} (${name}${how === 'half' ? ', half written' : ''})`);
    }
    return writeFile.call(this, data, options);
  };
  syncBuiltinESMExports();
}
