/**
 * Issue 6, memory (6), for the two eventing functions: event-relay (rotation CloudEvents from
 * outside the cluster, checked and forwarded to the Broker) and event-dead-letter (the Triggers'
 * dead-letter sink, one audit record per event). Each runs on the lean host, as deployed, under
 * the same load as the serving functions (50 connections), every request one rotation CloudEvent;
 * its resident memory is sampled throughout. The relay's Broker is a node:http server in this
 * process that accepts everything.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ROTATION_EVENT_TYPES } from '../../shared/events/rotation-events.js';
import { defaultLoadTool, runLoad, type LoadRequest, type LoadResult } from '../lib/load.js';
import { MEMORY_LIMIT_MIB, sampleRss, type RssFigures } from '../lib/memory.js';
import { startLeanFunction, type BenchServer } from '../lib/process.js';
import { check, type BenchOptions, type MeasuredRow, type ScenarioResult, type TargetCheck } from '../lib/result.js';

type EventingTarget = 'event-relay' | 'event-dead-letter';

/** What both functions answer an accepted event with. */
const ACCEPTED = 202;

export async function runEventing(options: BenchOptions): Promise<ScenarioResult[]> {
  const broker = await startBroker();
  const secret = randomBytes(32).toString('base64url');
  const event: Record<string, string> = {
    'ce-specversion': '1.0',
    'ce-id': 'bench-rotation-1',
    'ce-source': '/bench/eventing',
    'ce-type': ROTATION_EVENT_TYPES[0]!,
    'content-type': 'application/json',
  };
  const subjects: { target: EventingTarget; env: Record<string, string>; request: LoadRequest }[] = [
    {
      target: 'event-relay',
      env: { K_SINK: broker.url, EVENT_RELAY_SHARED_SECRET: secret },
      request: { method: 'POST', headers: { ...event, authorization: `Bearer ${secret}` }, body: '{"key":"bench"}' },
    },
    {
      target: 'event-dead-letter',
      env: {},
      request: { method: 'POST', headers: { ...event, 'ce-knativeerrorcode': '502', 'ce-knativeerrordest': 'http://key-rotated.jwks.svc.cluster.local' }, body: '{"key":"bench"}' },
    },
  ];
  const rows: MeasuredRow[] = [];
  const targets: TargetCheck[] = [];
  try {
    for (const subject of subjects) {
      const { load, memory } = await measure(subject.target, subject.env, subject.request, options);
      rows.push({
        subject: `${subject.target} (lean host)`,
        figures: {
          req_per_s: load.requestsPerSecond,
          p99_ms: load.p99Ms,
          requests: load.requests,
          not_202: load.non2xx,
          socket_errors: load.errors,
          peak_rss_mb: memory.peakMb,
          vm_hwm_mb: memory.highWaterMarkMb,
          rss_samples: memory.samples,
        },
      });
      targets.push(check(`${subject.target} (lean host): peak RSS under load`, Math.max(memory.peakMb, memory.highWaterMarkMb), '<=', MEMORY_LIMIT_MIB, 'MiB'));
      targets.push(check(`${subject.target}: answers other than ${ACCEPTED} and socket errors`, load.non2xx + load.errors, '<=', 0, 'count'));
    }
  } finally {
    await new Promise((resolve) => broker.server.close(resolve));
  }
  return [
    {
      scenario: 'memory, eventing functions',
      rows,
      targets,
      notes: [
        `${defaultLoadTool()}, ${options.connections} connections, ${options.loadSeconds} s each; every request a binary-mode rotation CloudEvent (${ROTATION_EVENT_TYPES[0]}); event-relay forwards each one to a Broker in the bench process that answers 202, event-dead-letter writes an audit record for each`,
        `peak RSS target: the larger of the sampled VmRSS peak and VmHWM at the end, <= ${MEMORY_LIMIT_MIB} MiB (100 MB = 10^8 bytes)`,
        `broker received ${broker.received} events`,
      ],
    },
  ];
}

async function measure(target: EventingTarget, env: Record<string, string>, request: LoadRequest, options: BenchOptions): Promise<{ load: LoadResult; memory: RssFigures }> {
  const server: BenchServer = await startLeanFunction(target, env, '/healthz');
  try {
    // Warm-up: the code the load runs is compiled before it is measured.
    await runLoad({ url: `${server.url}/`, connections: options.connections, seconds: options.quick ? 1 : 2, request });
    const sampler = sampleRss(server.pid);
    const load = await runLoad({ url: `${server.url}/`, connections: options.connections, seconds: options.loadSeconds, request, countStatuses: true, okStatuses: [ACCEPTED] });
    return { load, memory: sampler.stop() };
  } catch (error) {
    throw new Error(`${target}: ${(error as Error).message}\n${server.output()}`);
  } finally {
    await server.stop();
  }
}

/** The Broker event-relay forwards to: accepts every event with 202, counts them. */
async function startBroker(): Promise<{ url: string; server: Server; received: number }> {
  const broker = { url: '', server: undefined as unknown as Server, received: 0 };
  broker.server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      broker.received++;
      res.writeHead(ACCEPTED, { 'Content-Length': '0' }).end();
    });
  });
  await new Promise<void>((resolve) => broker.server.listen(0, '127.0.0.1', resolve));
  broker.url = `http://127.0.0.1:${(broker.server.address() as AddressInfo).port}/jwks/jwks`;
  return broker;
}
