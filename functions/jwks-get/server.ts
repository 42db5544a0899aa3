/** jwks-get on the lean host: what the runtime image runs for FUNCTION_TARGET=jwks-get (through main.ts). */
import { serveOnLeanHost } from '../lean-host.js';
import { handler, logger } from './handler.js';

serveOnLeanHost('jwks-get', handler, logger);
