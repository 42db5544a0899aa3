/**
 * The cold-start baseline (issue 6): the least a Node.js process can do to serve the key set. It
 * reads JWKS_FILE once at start and answers every request 200 with those bytes. No validation,
 * caching, logging or routing: whatever jwks-get's lean host takes beyond this is its own cost.
 * Run as `node dist/bench/lib/cold-bare-server.js` with JWKS_FILE, PORT and HOST.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const body = readFileSync(process.env.JWKS_FILE ?? 'jwks.json');
const headers = { 'Content-Type': 'application/jwk-set+json', 'Content-Length': String(body.length) };

createServer((_request, response) => response.writeHead(200, headers).end(body)).listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1');
