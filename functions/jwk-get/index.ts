/** jwk-get: GET /jwk/{kid}, one published key. Thin adapter; the work is in shared/. */
import * as functions from '@google-cloud/functions-framework';
import { exitOnConfigError } from '../../shared/config/exit-on-config-error.js';
import { startServingFunction } from '../../shared/http/serving-runtime.js';

const runtime = exitOnConfigError('jwk-get', () => startServingFunction('jwk-get', 'key', process.env));

functions.http('jwk-get', runtime.handler);
