/**
 * The anchor of the serving functions' throughput targets (issue 16): a bare node:http server that
 * answers every request with one captured answer of a serving function (captured-response.ts):
 * the same status, header lines (order and case kept), body and keep-alive timeout, so the same
 * bytes go out, sent the ordinary way. What Node.js costs to send our answer, without our code.
 * Run as `node dist/bench/lib/same-response-server.js` with ANCHOR_RESPONSE (a file holding
 * serializeCapturedResponse's output), PORT and HOST.
 */
import { readFileSync } from 'node:fs';
import { createSameResponseServer, parseCapturedResponse } from './captured-response.js';

const captured = parseCapturedResponse(readFileSync(process.env.ANCHOR_RESPONSE ?? 'response.json', 'utf8'));
createSameResponseServer(captured).listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1');
