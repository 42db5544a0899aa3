/** event-relay on the lean host: what the runtime image runs for FUNCTION_TARGET=event-relay (through main.ts). */
import { serveOnLeanHost } from '../lean-host.js';
import { handler, logger } from './handler.js';

serveOnLeanHost('event-relay', handler, logger);
