/**
 * CipherTrust Manager's key-rotation scheduler (`ksctl scheduler configs create key-rotation`,
 * REST `/api/v1/scheduler/job-configs`, operation `key_rotation`): a job rotates the keys its key
 * query selects on a schedule. Like CM, a scheduled rotation posts no event (M): only the key's
 * resources change. What a run does (sources in docs/research/ciphertrust-api.md):
 * - a new version of each selected key (its latest version is "the replaced key");
 * - with `offset` seconds, the new version starts Pre-Active with activationDate = run + offset
 *   and turns Active when that date passes (a date-driven transition, no event either);
 * - with a delay (`change_state_after_time`, or `deactivate_replaced_key`, seconds), the replaced
 *   version gets `replaced_key_state` (default Deactivated) that long after the run. For
 *   Deactivated this is a deactivationDate (L: how CM schedules it is not documented), so the
 *   transition is date-driven as well.
 *
 * Runs are driven by the injected clock: `runDue()` does whatever is due at `now()`. The emulator
 * calls it every second (EmulatorOptions.schedulerTickMs); tests move the clock and call it.
 */
import { randomUUID } from 'node:crypto';
import { invalidParam, notFound } from './errors.js';
import type { KeyRegistry } from './objects.js';
import { applyKeyQuery, parseKeyQuery } from './query-keys.js';
import type { CmKeyResource, KeyRotationJob, KeyRotationJobInput } from './types.js';

/** Every replaced-key state the emulator can apply. */
const REPLACED_KEY_STATES: readonly string[] = ['Deactivated', 'ProtectStop'];
const UNLIMITED = { defaultPageSize: Number.MAX_SAFE_INTEGER, maxPageSize: Number.MAX_SAFE_INTEGER };

interface JobRecord {
  readonly job: Omit<KeyRotationJob, 'nextRunAt' | 'runs'>;
  nextRunAt: number;
  runs: number;
}

export class KeyRotationScheduler {
  private readonly jobs = new Map<string, JobRecord>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: KeyRegistry,
    private readonly now: () => Date,
  ) {}

  create(input: KeyRotationJobInput): KeyRotationJob {
    const job = validateJob(input);
    if ([...this.jobs.values()].some((record) => record.job.name === job.name)) throw invalidParam(`a job configuration named ${job.name} already exists`);
    const record: JobRecord = { job: { ...job, id: randomUUID() }, nextRunAt: this.now().getTime() + job.everySeconds * 1000, runs: 0 };
    this.jobs.set(record.job.id, record);
    return view(record);
  }

  list(): KeyRotationJob[] {
    return [...this.jobs.values()].map(view);
  }

  get(id: string): KeyRotationJob {
    const record = this.jobs.get(id);
    if (record === undefined) throw notFound();
    return view(record);
  }

  remove(id: string): void {
    if (!this.jobs.delete(id)) throw notFound();
  }

  /** Runs one job now, whatever its schedule (as CM's "run now"); returns the new versions. */
  runNow(id: string): CmKeyResource[] {
    const record = this.jobs.get(id);
    if (record === undefined) throw notFound();
    return this.run(record);
  }

  /** Does what is due at now(): job runs, then replaced versions' state changes. Returns the new versions. */
  runDue(): CmKeyResource[] {
    const now = this.now().getTime();
    const created: CmKeyResource[] = [];
    for (const record of this.jobs.values()) {
      if (record.nextRunAt > now) continue;
      created.push(...this.run(record));
      // A clock that jumped several periods runs the job once, as a cron scheduler would.
      const period = record.job.everySeconds * 1000;
      record.nextRunAt += Math.max(1, Math.ceil((now - record.nextRunAt + 1) / period)) * period;
    }
    return created;
  }

  /** Real time: runDue() every `intervalMs` (the timer does not keep the process alive). */
  start(intervalMs: number): void {
    this.stop();
    this.timer = setInterval(() => {
      try {
        this.runDue();
      } catch {
        // A key removed under a job: the next run tries again; the emulator keeps serving.
      }
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private run(record: JobRecord): CmKeyResource[] {
    const { job } = record;
    const at = this.now().getTime();
    record.runs++;
    const selected = applyKeyQuery(this.registry.list(), parseKeyQuery(job.keyQuery, UNLIMITED)).resources as CmKeyResource[];
    const names = [...new Set(selected.map((key) => key.name))];
    const created: CmKeyResource[] = [];
    for (const name of names) {
      const replaced = this.registry.find(name, 'name');
      // Destroyed or compromised keys are not rotated (L: CM's exact selection is not documented).
      if (!['Active', 'Pre-Active', 'Deactivated'].includes(replaced.state)) continue;
      const activationDate = job.offsetSeconds > 0 ? new Date(at + job.offsetSeconds * 1000).toISOString() : undefined;
      created.push(this.registry.rotateScheduled(replaced.id, activationDate));
      if (job.changeStateAfterSeconds !== undefined) this.changeReplaced(replaced, job.replacedKeyState, at + job.changeStateAfterSeconds * 1000);
    }
    return created;
  }

  /**
   * The replaced version's future state, as a date the registry applies when it passes, like any
   * other: Deactivated by a deactivationDate, ProtectStop by a protectStopDate (the key enters the
   * protect-stop state then; its string is the registry's, see key-states.ts).
   */
  private changeReplaced(replaced: CmKeyResource, state: string, at: number): void {
    if (replaced.state !== 'Active' && replaced.state !== 'Pre-Active') return;
    const date = new Date(at).toISOString();
    this.registry.scheduledChange(replaced.id, state === 'Deactivated' ? { deactivationDate: date } : { protectStopDate: date });
  }
}

function validateJob(input: KeyRotationJobInput): Omit<KeyRotationJob, 'id' | 'nextRunAt' | 'runs'> {
  if (typeof input.name !== 'string' || input.name.trim() === '') throw invalidParam('name is required');
  if (typeof input.keyQuery !== 'object' || input.keyQuery === null || Array.isArray(input.keyQuery)) throw invalidParam('key_query must be a JSON object');
  // Validated now, so a bad query is refused at creation, not at the first run.
  parseKeyQuery(input.keyQuery, UNLIMITED);
  const seconds = (value: unknown, field: string, minimum: number): number | undefined => {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) throw invalidParam(`${field} must be an integer of at least ${minimum} (seconds)`);
    return value;
  };
  const everySeconds = seconds(input.everySeconds, 'everySeconds', 1);
  if (everySeconds === undefined) throw invalidParam('a schedule is required');
  const replacedKeyState = input.replacedKeyState ?? 'Deactivated';
  if (!REPLACED_KEY_STATES.includes(replacedKeyState)) throw invalidParam(`replaced_key_state must be one of ${REPLACED_KEY_STATES.join(', ')}`);
  const changeStateAfterSeconds = seconds(input.changeStateAfterSeconds, 'change_state_after_time', 0);
  return {
    name: input.name,
    keyQuery: input.keyQuery,
    everySeconds,
    offsetSeconds: seconds(input.offsetSeconds, 'offset', 0) ?? 0,
    replacedKeyState,
    ...(changeStateAfterSeconds !== undefined && { changeStateAfterSeconds }),
  };
}

function view(record: JobRecord): KeyRotationJob {
  return { ...record.job, nextRunAt: new Date(record.nextRunAt).toISOString(), runs: record.runs };
}
