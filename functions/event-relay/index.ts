/**
 * event-relay for functions-framework hosts: registers the handler under its name. The image's lean
 * host (functions/main.ts) loads handler.js directly, without functions-framework and express.
 */
import * as functions from '@google-cloud/functions-framework';
import { handler } from './handler.js';

functions.http('event-relay', handler);
