import { teardown } from './softhsm-global.js';
export default teardown;
