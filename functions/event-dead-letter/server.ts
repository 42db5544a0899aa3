/** event-dead-letter on the lean host: what the runtime image runs for FUNCTION_TARGET=event-dead-letter (through main.ts). */
import { serveOnLeanHost } from '../lean-host.js';
import { handler, logger } from './handler.js';

serveOnLeanHost('event-dead-letter', handler, logger);
