import { createServer, type Server } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { makeS3rverAtomic } from './s3rver-atomic.js';

/** A real S3-protocol server (s3rver) on loopback, with a scratch directory of its own. */
export interface S3TestServer {
  readonly endpoint: string;
  readonly bucket: string;
  /** What a process needs in its environment to reach the bucket. */
  readonly env: Record<string, string>;
  /** Stops the server, keeping its data; the returned function starts it again on the same port. */
  interrupt(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export async function startS3Server(bucket = 'jwks'): Promise<S3TestServer> {
  const directory = await mkdtemp(join(tmpdir(), 's3rver-'));
  const start = async (port: number) => {
    const server = new S3rver({ port, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
    makeS3rverAtomic(server);
    return { server, port: (await server.run()).port };
  };
  let running: Awaited<ReturnType<typeof start>> | undefined = await start(0);
  const endpoint = `http://127.0.0.1:${running.port}`;
  const port = running.port;
  /** The port holder while interrupted; close() releases it if the test never brought S3 back. */
  let blocker: Server | undefined;
  const release = async (): Promise<void> => {
    const held = blocker;
    blocker = undefined;
    if (held !== undefined) await new Promise<void>((resolve) => held.close(() => resolve()));
  };
  return {
    endpoint,
    bucket,
    env: {
      S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    },
    async interrupt() {
      await stop(running?.server);
      running = undefined;
      // Hold the port while "down" (every connection is reset), so that no other process of a
      // loaded test run takes it and the server can come back on the same address.
      const holder = createServer((socket) => socket.destroy());
      blocker = holder;
      await new Promise<void>((resolve, reject) => {
        holder.once('error', reject);
        holder.listen(port, '127.0.0.1', resolve);
      });
      return async () => {
        await release();
        running = await start(port);
      };
    },
    async close() {
      await stop(running?.server);
      running = undefined;
      await release();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * close() alone waits for every keep-alive connection to go quiet, which clients polling every
 * 100 ms never do: drop them, as a crashed server would.
 */
async function stop(server: S3rver | undefined): Promise<void> {
  if (server === undefined) return;
  const closing = server.close();
  (server as unknown as { httpServer?: { closeAllConnections(): void } }).httpServer?.closeAllConnections();
  await closing;
}
