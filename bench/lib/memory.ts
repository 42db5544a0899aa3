/**
 * Resident memory of a process (issue 6: at most 100 MB per function under load): VmRSS from
 * /proc/<pid>/status sampled every 200 ms, and the kernel's own high-water mark VmHWM as a check
 * on what the samples missed. MB here are MiB (kB / 1024), as `ps` and `top` count them.
 */
import { readFileSync } from 'node:fs';

/** Issue 6's 100 MB per function read strictly, as 10^8 bytes: 95.4 MiB (the figures are MiB). */
export const MEMORY_LIMIT_MIB = Math.round((100e6 / 2 ** 20) * 10) / 10;

export interface RssFigures {
  /** Highest VmRSS seen by the samples. */
  readonly peakMb: number;
  /** VmHWM when stopped: the peak since the process started, warm-up and start-up included. */
  readonly highWaterMarkMb: number;
  readonly lastMb: number;
  readonly samples: number;
}

export interface RssSampler {
  /** Highest VmRSS seen so far, in MiB; the sampler keeps running. */
  peakSoFarMb(): number;
  stop(): RssFigures;
}

export function sampleRss(pid: number, intervalMs = 200): RssSampler {
  let peak = 0;
  let last = 0;
  let samples = 0;
  const sample = (): void => {
    const kilobytes = statusField(pid, 'VmRSS');
    if (kilobytes === undefined) return;
    last = kilobytes;
    peak = Math.max(peak, kilobytes);
    samples++;
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    peakSoFarMb: () => mib(peak),
    stop() {
      clearInterval(timer);
      sample();
      return { peakMb: mib(peak), highWaterMarkMb: mib(statusField(pid, 'VmHWM') ?? 0), lastMb: mib(last), samples };
    },
  };
}

/** A `kB` field of /proc/<pid>/status; undefined when the process is gone or has no such field. */
function statusField(pid: number, field: string): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return match === null ? undefined : Number(match[1]);
}

function mib(kilobytes: number): number {
  return Math.round((kilobytes / 1024) * 10) / 10;
}
