import { setup } from './softhsm-global.js';
export default setup;
