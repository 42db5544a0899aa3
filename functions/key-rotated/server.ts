/** key-rotated on the lean host: what the runtime image runs for FUNCTION_TARGET=key-rotated (through main.ts). */
import { serveOnLeanHost } from '../lean-host.js';
import { beforeExit, handler, logger } from './handler.js';

serveOnLeanHost('key-rotated', handler, logger, { beforeExit });
