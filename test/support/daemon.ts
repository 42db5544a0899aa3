/**
 * A daemon a test started (Prometheus, rsyslogd) in a directory of its own: its output kept for
 * error messages, and a stop that asks it to exit (SIGTERM, then SIGKILL after 5 s) and removes
 * the directory.
 */
import type { ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';

export interface SupervisedDaemon {
  /** Its stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

export function superviseDaemon(child: ChildProcess, dir: string): SupervisedDaemon {
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  return {
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
