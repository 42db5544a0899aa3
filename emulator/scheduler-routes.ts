/**
 * The scheduler's REST shape: `/api/v1/scheduler/job-configs` (H: the Terraform provider's
 * URL_SCHEDULER_JOB_CONFIGS), body `{name, operation, run_at, key_rotation_params}` as for the
 * provider's other operations (`database_backup_params`, ...). The key-rotation parameters follow
 * ksctl's flags in snake case (`key_query`, `offset`, `replaced_key_state`,
 * `change_state_after_time`, `deactivate_replaced_key`, all seconds): L, no Thales sample of this
 * body was found. `run_at` is cron; the emulator understands `* * * * *` and `*\/N * * * *` only,
 * plus its own `emulator_every_seconds` for tests.
 */
import { invalidParam } from './errors.js';
import type { KeyRotationScheduler } from './scheduler.js';
import type { KeyRotationJob, KeyRotationJobInput } from './types.js';

export function createJobConfig(scheduler: KeyRotationScheduler, body: Record<string, unknown>): Record<string, unknown> {
  if (body.operation !== 'key_rotation') throw invalidParam('the emulator schedules operation key_rotation only');
  const params = body.key_rotation_params;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw invalidParam('key_rotation_params is required');
  const p = params as Record<string, unknown>;
  const input: KeyRotationJobInput = {
    name: body.name as string,
    keyQuery: keyQueryOf(p.key_query),
    everySeconds: body.emulator_every_seconds === undefined ? cronPeriodSeconds(body.run_at) : (body.emulator_every_seconds as number),
    offsetSeconds: p.offset as number | undefined,
    replacedKeyState: p.replaced_key_state as string | undefined,
    // change_state_after_time names the delay with replaced_key_state; deactivate_replaced_key is the older flag.
    changeStateAfterSeconds: (p.change_state_after_time ?? p.deactivate_replaced_key) as number | undefined,
  };
  return jobConfigView(scheduler.create(input), body.run_at);
}

export function listJobConfigs(scheduler: KeyRotationScheduler): Record<string, unknown> {
  const resources = scheduler.list().map((job) => jobConfigView(job, undefined));
  return { skip: 0, limit: resources.length, total: resources.length, resources };
}

export function jobConfigView(job: KeyRotationJob, runAt: unknown): Record<string, unknown> {
  return {
    id: job.id,
    name: job.name,
    operation: 'key_rotation',
    run_at: typeof runAt === 'string' ? runAt : `@every ${job.everySeconds}s`,
    disabled: false,
    key_rotation_params: {
      key_query: job.keyQuery,
      offset: job.offsetSeconds,
      replaced_key_state: job.replacedKeyState,
      ...(job.changeStateAfterSeconds !== undefined && { change_state_after_time: job.changeStateAfterSeconds }),
    },
    next_run_at: job.nextRunAt,
    runs: job.runs,
  };
}

/** ksctl takes the key query as JSON text (`--key-query-json`); the REST body may carry either. */
function keyQueryOf(value: unknown): Record<string, unknown> {
  let query = value;
  if (typeof value === 'string') {
    try {
      query = JSON.parse(value);
    } catch {
      throw invalidParam('key_query is not valid JSON');
    }
  }
  if (typeof query !== 'object' || query === null || Array.isArray(query)) throw invalidParam('key_query must be a JSON object');
  return query as Record<string, unknown>;
}

function cronPeriodSeconds(runAt: unknown): number {
  if (typeof runAt !== 'string') throw invalidParam('run_at is required');
  const fields = runAt.trim().split(/\s+/);
  if (fields.length === 5 && fields.slice(1).every((field) => field === '*')) {
    if (fields[0] === '*') return 60;
    const every = /^\*\/([1-9]\d{0,3})$/.exec(fields[0] ?? '');
    if (every !== null) return Number(every[1]) * 60;
  }
  throw invalidParam(`run_at ${JSON.stringify(runAt)}: the emulator understands "* * * * *" and "*/N * * * *" only`);
}
