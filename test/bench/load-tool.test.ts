/**
 * The benchmark's measuring instruments (bench/lib/load.ts, bench/lib/memory.ts). Its "zero
 * errors" targets are only as good as the counts they read: a status hook that counted nothing, or
 * a POST that went out as a GET, would make every such target pass. Here each load tool runs
 * against a server that keeps its own count of what it answered, and the tool's figures must agree.
 * No speed is asserted (speed lives in `npm run bench`).
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runLoad, type LoadRequest, type LoadTool } from '../../bench/lib/load.js';
import { sampleRss } from '../../bench/lib/memory.js';
import { findExecutable } from '../../bench/lib/process.js';
import { describeIfInstalled } from '../support/dependencies.js';

/** Few connections, so that what is in flight when the tool stops is a small, known bound. */
const CONNECTIONS = 4;

interface Counts {
  answered: number;
  /** Answers other than 200 and 304 (GET) or 202 (POST). */
  bad: number;
  /** 4xx and 5xx: what wrk and autocannon count without a status hook. */
  errors: number;
  /** POSTs that did not arrive as sent (method, headers, body). */
  malformed: number;
}

/**
 * GET: 200, 304 and 500 in turn (a third each); 500s count as bad. POST: 202 when the request is
 * exactly `request`, else 400; `postStatus` overrides the 202 to test okStatuses.
 */
async function startCountingServer(request: LoadRequest, postStatus = 202): Promise<{ url: string; counts: Counts; server: Server }> {
  const counts: Counts = { answered: 0, bad: 0, errors: 0, malformed: 0 };
  let turn = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      let status: number;
      if (req.method === 'POST') {
        const asSent = body === request.body && Object.entries(request.headers).every(([name, value]) => req.headers[name.toLowerCase()] === value);
        if (!asSent) counts.malformed++;
        status = asSent ? postStatus : 400;
      } else {
        status = [200, 304, 500][turn++ % 3]!;
      }
      counts.answered++;
      if (![200, 304, 202].includes(status) || (req.method === 'POST' && status !== 202)) counts.bad++;
      if (status >= 400) counts.errors++;
      res.writeHead(status, status === 304 ? {} : { 'Content-Length': '2' });
      res.end(status === 304 ? undefined : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, counts, server };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** The tool saw at most what the server answered, and no fewer than that less what was in flight when it stopped. */
function expectAgrees(toolCount: number, serverCount: number): void {
  expect(toolCount).toBeLessThanOrEqual(serverCount);
  expect(toolCount).toBeGreaterThanOrEqual(serverCount - CONNECTIONS);
}

const EVENT: LoadRequest = {
  method: 'POST',
  headers: { 'ce-specversion': '1.0', 'ce-id': 'bench-1', 'ce-source': '/bench', 'ce-type': 'com.example.key.rotated', 'content-type': 'application/json' },
  body: '{"key":"bench","note":"]] quoted \\" and [brackets]"}',
};

function describeTool(tool: LoadTool, missing: readonly string[], install: string): void {
  describeIfInstalled(`bench load tool: ${tool}`, missing, install, () => {
    it('with countStatuses, counts every answer other than 200 and 304, and every request', async () => {
      const { url, counts, server } = await startCountingServer(EVENT);
      try {
        const result = await runLoad({ url, connections: CONNECTIONS, seconds: 1, countStatuses: true, tool });
        expect(result.tool).toBe(tool);
        expect(counts.bad).toBeGreaterThan(0);
        expectAgrees(result.requests, counts.answered);
        expectAgrees(result.non2xx, counts.bad);
        expect(result.errors).toBe(0);
        // Latencies in order (autocannon's resolution is 1 ms, so its p50 on loopback may read 0).
        expect(result.p50Ms).toBeGreaterThanOrEqual(tool === 'wrk' ? 0.001 : 0);
        expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
        expect(result.p999Ms).toBeGreaterThanOrEqual(result.p99Ms);
      } finally {
        await close(server);
      }
    });

    it('without countStatuses, counts the 4xx and 5xx answers', async () => {
      const { url, counts, server } = await startCountingServer(EVENT);
      try {
        const result = await runLoad({ url, connections: CONNECTIONS, seconds: 1, tool });
        expect(counts.errors).toBeGreaterThan(0);
        expectAgrees(result.non2xx, counts.errors);
      } finally {
        await close(server);
      }
    });

    it('sends the request given (method, headers, body) on every connection, and okStatuses decides what is bad', async () => {
      const accepted = await startCountingServer(EVENT);
      try {
        const result = await runLoad({ url: accepted.url, connections: CONNECTIONS, seconds: 1, request: EVENT, countStatuses: true, okStatuses: [202], tool });
        expect(accepted.counts.answered).toBeGreaterThan(0);
        expect(accepted.counts.malformed).toBe(0);
        expect(result.non2xx).toBe(0);
        expectAgrees(result.requests, accepted.counts.answered);
      } finally {
        await close(accepted.server);
      }
      // The same POSTs answered 200: not what okStatuses accepts, so every one is bad.
      const refused = await startCountingServer(EVENT, 200);
      try {
        const result = await runLoad({ url: refused.url, connections: CONNECTIONS, seconds: 1, request: EVENT, countStatuses: true, okStatuses: [202], tool });
        expect(refused.counts.malformed).toBe(0);
        expectAgrees(result.non2xx, refused.counts.answered);
      } finally {
        await close(refused.server);
      }
    });
  });
}

describeTool('wrk', findExecutable('wrk') === undefined ? ['wrk'] : [], 'apt-get install wrk (bench/setup.sh does)');
describeTool('autocannon', [], '');

describe('bench memory sampler', () => {
  it("reads a process's resident set: a child that holds 64 MiB shows at least that, and VmHWM at least the sampled peak", async () => {
    const child = spawn(process.execPath, ['-e', 'const b = Buffer.alloc(64 * 1024 * 1024, 1); process.stdout.write("held\\n"); setInterval(() => b[0]++, 50);'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const sampler = sampleRss(child.pid!, 20);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(sampler.peakSoFarMb()).toBeGreaterThanOrEqual(64);
      const figures = sampler.stop();
      expect(figures.samples).toBeGreaterThan(3);
      expect(figures.peakMb).toBeGreaterThanOrEqual(64);
      expect(figures.highWaterMarkMb).toBeGreaterThanOrEqual(figures.peakMb);
    } finally {
      child.kill();
    }
  });
});
