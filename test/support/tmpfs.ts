import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A small tmpfs of its own: real ENOSPC when it is full and real EROFS once remounted read-only,
 * from the kernel, not from a mock. Needs root with CAP_SYS_ADMIN (CI runs the tests so).
 */
export interface Tmpfs {
  readonly directory: string;
  /** Fills the file system until only `leaveBytes` are free (a multiple of the page size). */
  fill(leaveBytes: number): Promise<void>;
  /** Frees what fill() took. */
  unfill(): Promise<void>;
  remount(mode: 'ro' | 'rw'): Promise<void>;
  /** Unmounts (also when remounted read-only) and removes the mount point. */
  close(): Promise<void>;
}

/** [] when this process may mount a tmpfs; otherwise what is missing, for describeIfInstalled. */
export function tmpfsMountMissing(): string[] {
  const probe = spawnSync('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; s=$?; rmdir "$d"; exit $s'], {
    stdio: 'ignore',
  });
  return probe.status === 0 ? [] : ['mount -t tmpfs (root with CAP_SYS_ADMIN)'];
}

export async function mountTmpfs(sizeBytes: number): Promise<Tmpfs> {
  const directory = await mkdtemp(join(tmpdir(), 'jwks-tmpfs-'));
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', directory]);
  // Outside any store directory below the mount point, and not an object name either.
  const filler = join(directory, 'filler');
  const free = async (): Promise<number> => {
    const stats = await statfs(directory);
    return stats.bavail * stats.bsize;
  };
  return {
    directory,
    async fill(leaveBytes) {
      await rm(filler, { force: true });
      const size = (await free()) - leaveBytes;
      if (size > 0) await writeFile(filler, Buffer.alloc(size));
      const left = await free();
      if (left !== leaveBytes) throw new Error(`tmpfs has ${left} bytes free after filling, not ${leaveBytes}`);
    },
    unfill: () => rm(filler, { force: true }),
    async remount(mode) {
      await run('mount', ['-o', `remount,${mode}`, directory]);
    },
    async close() {
      await run('umount', [directory]).catch(() => run('umount', ['-l', directory]));
      await rm(directory, { recursive: true, force: true });
    },
  };
}
