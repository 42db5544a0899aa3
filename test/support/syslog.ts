/**
 * The audit records' way to the SIEM, for the tests: a sender doing what OpenShift Logging's
 * collector (Vector) does with knative/examples/clusterlogforwarder-audit-to-siem.yaml (read a
 * pod's stdout lines, keep those whose JSON has `audit: true`, send each line whole as the MSG of an
 * RFC 5424 message, octet-counted over TLS: RFC 5425), a real rsyslog receiving them on loopback,
 * and a parser of the RFC 5424 lines rsyslog writes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { createTlsMaterial } from '../../emulator/tls.js';
import { superviseDaemon } from './daemon.js';
import { eventually } from './http.js';

export const RSYSLOG_INSTALL = 'apt-get install -y --no-install-recommends rsyslog rsyslog-gnutls';
const RSYSLOGD = '/usr/sbin/rsyslogd';
const GTLS_DRIVER = ['/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/rsyslog/lmnsd_gtls.so'];

/** What of rsyslog (with its GnuTLS driver) is missing here ([] when both are installed). */
export function rsyslogMissing(): string[] {
  const missing: string[] = [];
  if (spawnSync(RSYSLOGD, ['-v'], { stdio: 'ignore' }).status !== 0) missing.push('rsyslogd (Debian package rsyslog)');
  if (!GTLS_DRIVER.some((file) => existsSync(file))) missing.push('the rsyslog GnuTLS driver (Debian package rsyslog-gnutls)');
  return missing;
}

/** The lines of a container's stdout the collector keeps: JSON objects with `audit: true`. */
export function auditLines(stdout: string): string[] {
  return stdout.split('\n').filter((line) => {
    try {
      const record = JSON.parse(line) as unknown;
      return typeof record === 'object' && record !== null && (record as { audit?: unknown }).audit === true;
    } catch {
      return false;
    }
  });
}

export interface SyslogHeader {
  /** RFC 5424 facility (auth: 4) and severity (informational: 6), as the ClusterLogForwarder sets them. */
  readonly facility: number;
  readonly severity: number;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
  readonly msgId: string;
}

/** One RFC 5424 message: the header, no structured data, and the line as MSG. */
export function rfc5424Message(line: string, header: SyslogHeader, timestamp = new Date()): string {
  const field = (value: string): string => (value === '' ? '-' : value);
  return `<${header.facility * 8 + header.severity}>1 ${timestamp.toISOString()} ${field(header.hostname)} ${field(header.appName)} ${field(header.procId)} ${field(header.msgId)} - ${line}`;
}

/** RFC 6587 3.4.1 / RFC 5425 4.3 octet counting: the message's length in bytes, a space, the message. */
export function octetCounted(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `), body]);
}

/**
 * Sends the messages over one TLS connection verified against `ca`, each framed by `frame`
 * (octet counting unless a test breaks it); resolves once the connection is closed cleanly.
 */
export function sendOverTls(
  messages: readonly string[],
  target: { host: string; port: number; ca: string },
  frame: (message: string, index: number) => Buffer = octetCounted,
): Promise<void> {
  return new Promise((done, fail) => {
    const socket = connect({ host: target.host, port: target.port, ca: target.ca, servername: 'localhost' }, () => {
      socket.end(Buffer.concat(messages.map((message, index) => frame(message, index))));
    });
    socket.once('error', fail);
    socket.once('close', (hadError) => (hadError ? undefined : done()));
  });
}

export interface ParsedSyslog {
  readonly pri: number;
  readonly version: number;
  readonly timestamp: string;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
  readonly msgId: string;
  readonly structuredData: string;
  readonly msg: string;
}

/** Parses one RFC 5424 line (structured data `-` only, as these messages carry none); throws on anything else. */
export function parseRfc5424(line: string): ParsedSyslog {
  const match = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) (-) (?:\uFEFF)?(.*)$/s.exec(line);
  if (match === null) throw new Error(`not an RFC 5424 message: ${line.slice(0, 120)}`);
  return {
    pri: Number(match[1]),
    version: Number(match[2]),
    timestamp: match[3]!,
    hostname: match[4]!,
    appName: match[5]!,
    procId: match[6]!,
    msgId: match[7]!,
    structuredData: match[8]!,
    msg: match[9]!,
  };
}

export interface RunningRsyslog {
  readonly host: string;
  readonly port: number;
  /** The CA of the receiver's certificate. */
  readonly ca: string;
  /** The lines rsyslog wrote so far, each re-serialized as RFC 5424 (RSYSLOG_SyslogProtocol23Format). */
  received(): Promise<string[]>;
  /** Waits until rsyslog has written at least `count` lines. */
  waitForLines(count: number, timeoutMs?: number): Promise<string[]>;
  output(): string;
  stop(): Promise<void>;
}

/**
 * rsyslogd in the foreground on 127.0.0.1 (a port it picks, read from its port file), TLS through
 * its GnuTLS driver with a certificate made for the test, its own configuration, work directory and
 * pid file in a fresh temporary directory: never the system's service or its configuration. What
 * it receives it writes to a file as RFC 5424 lines, as a SIEM relay would forward them.
 */
export async function startRsyslog(): Promise<RunningRsyslog> {
  const dir = await mkdtemp(join(tmpdir(), 'rsyslog-test-'));
  const tls = await createTlsMaterial(join(dir, 'tls'), '127.0.0.1');
  const certFile = join(dir, 'tls', 'server.pem');
  const keyFile = join(dir, 'tls', 'server-key.pem');
  const portFile = join(dir, 'port');
  const receivedFile = join(dir, 'received.log');
  await writeFile(
    join(dir, 'rsyslog.conf'),
    [
      `global(workDirectory="${dir}" maxMessageSize="256k"`,
      `  defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="${tls.caFile}"`,
      `  defaultNetstreamDriverCertFile="${certFile}" defaultNetstreamDriverKeyFile="${keyFile}")`,
      // TLS only (mode 1); clients are not asked for a certificate (as QRadar's TLS syslog listener by default).
      'module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")',
      `input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="${portFile}" ruleset="siem")`,
      'ruleset(name="siem") {',
      `  action(type="omfile" file="${receivedFile}" template="RSYSLOG_SyslogProtocol23Format")`,
      '}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(RSYSLOGD, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const { output, stop } = superviseDaemon(child, dir);
  let port = 0;
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`rsyslogd exited (${child.exitCode}): ${output()}`);
      port = Number((await readFile(portFile, 'utf8').catch(() => '')).trim());
      return port > 0;
    }, 15_000);
  } catch (error) {
    await stop();
    throw error;
  }
  const received = async (): Promise<string[]> =>
    (await readFile(receivedFile, 'utf8').catch(() => ''))
      .split('\n')
      .filter((line) => line !== '');
  return {
    host: '127.0.0.1',
    port,
    ca: tls.caPem,
    received,
    async waitForLines(count, timeoutMs = 10_000) {
      await eventually(async () => (await received()).length >= count, timeoutMs).catch(async () => {
        throw new Error(`rsyslog wrote ${(await received()).length} of ${count} lines within ${timeoutMs} ms; its output: ${output()}`);
      });
      return received();
    },
    output,
    stop,
  };
}
