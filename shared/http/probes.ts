import type { ServerResponse } from 'node:http';
import type { CacheStatus } from '../serving/key-set-cache.js';
import type { Registry } from 'prom-client';
import { COMMON_HEADERS, sendJson } from './responses.js';

/** /healthz: the process is alive and answering. Nothing else, so a store outage never restarts it. */
export function answerHealth(res: ServerResponse, head: boolean): void {
  sendJson(res, head, 200, { status: 'ok' });
}

/**
 * /readyz: 200 once a valid set is loaded, and for as long as one is (a store outage leaves the
 * last good set in service and shows as "degraded" here); 503 before.
 */
export function answerReadiness(res: ServerResponse, head: boolean, status: CacheStatus, now: Date): void {
  const { snapshot, problem, lastSuccessfulCheck } = status;
  const ready = snapshot !== undefined;
  sendJson(res, head, ready ? 200 : 503, {
    status: !ready ? 'not_ready' : problem !== undefined ? 'degraded' : 'ok',
    keys: snapshot?.keyCount ?? 0,
    etag: snapshot?.set.etag ?? null,
    lastModified: snapshot?.set.lastModified.toISOString() ?? null,
    setAgeSeconds: snapshot ? Math.round((now.getTime() - snapshot.set.lastModified.getTime()) / 1000) : null,
    lastSuccessfulCheck: lastSuccessfulCheck?.toISOString() ?? null,
    problem: problem ? { kind: problem.kind, reason: problem.reason, message: problem.message, since: problem.at.toISOString() } : null,
  });
}

/** /metrics: Prometheus text exposition. Resolves with the status written. */
export async function answerMetrics(res: ServerResponse, head: boolean, registry: Registry): Promise<number> {
  const body = Buffer.from(await registry.metrics());
  res.writeHead(200, {
    ...COMMON_HEADERS,
    'Cache-Control': 'no-store',
    'Content-Type': registry.contentType,
    'Content-Length': String(body.length),
  });
  res.end(head ? undefined : body);
  return 200;
}
