/**
 * A partner's long-running Node service using auth0 jwks-rsa, in its own process (jwks-rsa is
 * CommonJS requiring jose 6, which jest's module system cannot load), so that its signing-key cache
 * lives as long as in real life.
 *
 *   node dist/test/clients/jwks-rsa-partner.js --jwks-url URL --lifespan-ms N
 *
 * One jwksRsa client for the process's life ({ cache: true, cacheMaxAge: N, rateLimit: false }).
 * JSON lines, as test/clients/python_partner.py: one command per stdin line, one answer per stdout
 * line, "id" echoed, failures as {"ok": false, "error": "Name: message"}; commands run one at a time.
 *   {"op": "verify", "token": T, "algorithms": [...]?}  -> {"ok": true, "kid": K, "claims": {...}}
 *   {"op": "load_set"}  (a new client with cache: false) -> {"ok": true, "kids": [...], "count": N}
 *   {"op": "quit"} or end of stdin -> exit 0
 * "client", when present, must be "jwks-rsa".
 */
import { decodeProtectedHeader, jwtVerify } from 'jose';
import jwksRsa from 'jwks-rsa';
import { createPublicKey } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

type Command = Record<string, unknown>;
type Answer = Record<string, unknown>;

const { values } = parseArgs({ options: { 'jwks-url': { type: 'string' }, 'lifespan-ms': { type: 'string', default: '600000' } } });
const jwksUri = values['jwks-url'] ?? '';
const cacheMaxAge = Number(values['lifespan-ms']);
if (jwksUri === '' || !Number.isFinite(cacheMaxAge) || cacheMaxAge <= 0) {
  console.error('usage: jwks-rsa-partner.js --jwks-url URL --lifespan-ms N (N > 0)');
  process.exit(2);
}
const client = jwksRsa({ jwksUri, cache: true, cacheMaxAge, rateLimit: false });

function text(command: Command, name: string): string {
  const value = command[name];
  if (typeof value !== 'string' || value === '') throw new Error(`"${name}" must be a non-empty string`);
  return value;
}

async function run(command: Command): Promise<Answer> {
  if (command.client !== undefined && command.client !== 'jwks-rsa') throw new Error(`"client" must be "jwks-rsa", not ${JSON.stringify(command.client)}`);
  switch (command.op) {
    case 'verify': {
      const token = text(command, 'token');
      const { kid } = decodeProtectedHeader(token);
      const signingKey = await client.getSigningKey(kid);
      const algorithms = Array.isArray(command.algorithms) ? command.algorithms.map(String) : undefined;
      const { payload } = await jwtVerify(token, createPublicKey(signingKey.getPublicKey()), algorithms === undefined ? {} : { algorithms });
      return { kid: signingKey.kid, claims: payload };
    }
    case 'load_set': {
      const kids = (await jwksRsa({ jwksUri, cache: false, rateLimit: false }).getSigningKeys()).map((key) => key.kid);
      return { kids, count: kids.length };
    }
    default:
      throw new Error(`unknown op ${JSON.stringify(command.op)}`);
  }
}

async function answer(line: string): Promise<{ reply: Answer; done: boolean }> {
  let command: unknown;
  try {
    command = JSON.parse(line);
  } catch (error) {
    return { reply: { ok: false, error: describe(error) }, done: false };
  }
  if (typeof command !== 'object' || command === null || Array.isArray(command)) {
    return { reply: { ok: false, error: 'CommandError: a command is a JSON object' }, done: false };
  }
  const echo: Answer = 'id' in command ? { id: (command as Command).id } : {};
  if ((command as Command).op === 'quit') return { reply: { ...echo, ok: true }, done: true };
  try {
    return { reply: { ...echo, ok: true, ...(await run(command as Command)) }, done: false };
  } catch (error) {
    return { reply: { ...echo, ok: false, error: describe(error) }, done: false };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

// One command at a time, in order, as the Python partner does.
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line.trim() === '') continue;
  const { reply, done } = await answer(line);
  process.stdout.write(`${JSON.stringify(reply)}\n`);
  if (done) break;
}
process.exit(0);
