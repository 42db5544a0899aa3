/**
 * Load for the serving tests of issue 7: autocannon, in this process, at a fixed number of
 * connections. Each connection alternates an unconditional GET and a conditional one
 * (If-None-Match: the ETag it was last sent), so both paths are under load. autocannon counts the
 * statuses; every answer is also checked here: a 200's ETag must be its body's digest, a 304's the
 * tag asked about. Each distinct 200 body is kept (by digest) for the test to validate afterwards.
 */
import { createHash } from 'node:crypto';
import autocannon from 'autocannon';

export interface CheckedLoad {
  /** Answers received. */
  readonly requests: number;
  /** Answers by status, from autocannon. */
  readonly statuses: Readonly<Record<string, number>>;
  /** Answers other than 200 and 304. */
  readonly badStatuses: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  readonly notModified: number;
  /** Answers whose ETag is not what it must be; the first few described in etagProblems. */
  readonly etagMismatches: number;
  readonly etagProblems: readonly string[];
  /** Every distinct 200 body, by its digest. */
  readonly bodies: ReadonlyMap<string, Buffer>;
}

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
}

/**
 * The strong ETag a served body must carry: `"<base64url SHA-256 of the bytes>"`. Computed here
 * rather than with shared/serving/representation.ts, so a change there is caught, not copied.
 */
export function entityTagOf(bytes: Buffer): string {
  return `"${createHash('sha256').update(bytes).digest('base64url')}"`;
}

export async function loadWithEtagChecks(options: LoadOptions): Promise<CheckedLoad> {
  const bodies = new Map<string, Buffer>();
  const etagProblems: string[] = [];
  let etagMismatches = 0;
  let notModified = 0;
  const mismatch = (problem: string): void => {
    etagMismatches++;
    if (etagProblems.length < 10) etagProblems.push(problem);
  };
  const onResponse = (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>): void => {
    const etag = header(headers, 'etag');
    if (status === 200) {
      // Bodies are ASCII JSON: the string autocannon assembled is the bytes sent.
      const bytes = Buffer.from(body, 'utf8');
      const expected = entityTagOf(bytes);
      if (etag !== expected) mismatch(`200 with ETag ${String(etag)} for a body whose digest is ${expected}`);
      if (!bodies.has(expected)) bodies.set(expected, bytes);
      context.etag = etag;
    } else if (status === 304) {
      notModified++;
      if (etag !== context.asked) mismatch(`304 with ETag ${String(etag)} to If-None-Match ${String(context.asked)}`);
    }
  };
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.seconds,
    timeout: 10,
    requests: [
      { method: 'GET', onResponse },
      {
        method: 'GET',
        // The context is per connection; the first request of the pair has just filled it.
        setupRequest: (request, context) => {
          context.asked = context.etag;
          return typeof context.etag === 'string' ? { ...request, headers: { ...request.headers, 'if-none-match': context.etag } } : request;
        },
        onResponse,
      },
    ],
  });
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, stats]) => [status, Number(stats.count)]));
  return {
    requests: Object.values(statuses).reduce((sum, count) => sum + count, 0),
    statuses,
    badStatuses: Object.entries(statuses)
      .filter(([status]) => status !== '200' && status !== '304')
      .reduce((sum, [, count]) => sum + count, 0),
    errors: result.errors,
    notModified,
    etagMismatches,
    etagProblems,
    bodies,
  };
}

function header(headers: Record<string, string | string[]>, name: string): string | string[] | undefined {
  const key = Object.keys(headers).find((candidate) => candidate.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}
