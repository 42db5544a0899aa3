/**
 * nginx serving the key set's bytes as a static file, the anchor of the throughput target
 * (issue 6): one worker, access log off, keep-alive on, from a generated nginx.conf in a temporary
 * prefix, in the foreground (`daemon off;`). The error log is given with -e, so nginx never opens
 * its compiled-in /var/log path, and it listens on a free loopback port only.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/support/processes.js';
import { findExecutable, startServer, type BenchServer } from './process.js';

export interface NginxOptions {
  /** Served at exactly this path (default /jwks). */
  readonly path?: string;
  readonly contentType?: string;
}

/** Undefined when nginx is not installed. */
export function nginxPath(): string | undefined {
  return findExecutable('nginx');
}

export async function startNginx(body: Buffer, options: NginxOptions = {}): Promise<BenchServer> {
  const nginx = nginxPath();
  if (nginx === undefined) throw new Error('nginx is not installed (apt-get install nginx-light)');
  const path = options.path ?? '/jwks';
  const prefix = await mkdtemp(join(tmpdir(), 'jwks-bench-nginx-'));
  try {
    const port = await freePort();
    // Readable by the worker, which runs as nobody when nginx is started as root.
    await chmod(prefix, 0o755);
    await mkdir(join(prefix, 'html'), { mode: 0o755 });
    await mkdir(join(prefix, 'temp'), { mode: 0o755 });
    await writeFile(join(prefix, 'html', 'jwks.json'), body, { mode: 0o644 });
    await writeFile(join(prefix, 'nginx.conf'), nginxConf(prefix, port, path, options.contentType ?? 'application/jwk-set+json'));
    const server = await startServer({
      subject: 'nginx (static file, 1 worker)',
      command: nginx,
      args: ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log'), '-g', 'daemon off;'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      port,
      readyPath: path,
    });
    return {
      ...server,
      async stop() {
        await server.stop();
        await rm(prefix, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(prefix, { recursive: true, force: true });
    throw error;
  }
}

function nginxConf(prefix: string, port: number, path: string, contentType: string): string {
  const temp = (name: string): string => `${join(prefix, 'temp', name)}`;
  return `worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  client_body_temp_path ${temp('client')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  server {
    listen 127.0.0.1:${port};
    location = ${path} {
      types { }
      default_type ${contentType};
      alias ${join(prefix, 'html', 'jwks.json')};
    }
  }
}
`;
}
