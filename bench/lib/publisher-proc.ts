/**
 * What Linux's /proc says about the publisher processes the bench starts: key-rotated's pid (the
 * test helpers that start it do not expose it, so it is found among this process's children by
 * its FUNCTION_TARGET) and the CPU time jwks-refresh runs used.
 */
import { readdir, readFile } from 'node:fs/promises';

/** The pid of a child of this process whose environment holds `name=value`; undefined if none (or no /proc). */
export async function childWithEnv(name: string, value: string): Promise<number | undefined> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  for (const entry of entries.filter((candidate) => /^\d+$/.test(candidate))) {
    try {
      const parent = Number((await statFields(entry))[1]);
      if (parent !== process.pid) continue;
      const environment = (await readFile(`/proc/${entry}/environ`)).toString('utf8').split('\0');
      if (environment.includes(`${name}=${value}`)) return Number(entry);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

/**
 * /proc/<pid>/stat's fields from field 3 (state) on: "pid (comm) state ppid ...", where comm may
 * hold spaces and parentheses, so the split starts after the last ')'.
 */
async function statFields(pid: number | string): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU time (user + system, ms) a running process has used so far; undefined without /proc. */
export async function processCpuMs(pid: number): Promise<number | undefined> {
  try {
    const fields = await statFields(pid);
    // Fields 14 and 15 of stat (utime, stime).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every mainstream Linux build). */
const USER_HZ = 100;

/**
 * CPU time (user + system, ms) of this process's children that have exited and been waited for:
 * the difference across a runRefresh() is that jwks-refresh run's CPU. Undefined without /proc.
 */
export async function exitedChildrenCpuMs(): Promise<number | undefined> {
  try {
    const fields = await statFields('self');
    // Fields 16 and 17 of stat (cutime, cstime).
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}
