// Jest runs the TypeScript tests as native ES modules (jose and node-fetch are ESM-only) through
// ts-jest's ESM preset. Type checking is done once by `tsc` in `npm test`, so ts-jest only
// transpiles (isolatedModules in tsconfig.json). Node needs --experimental-vm-modules for this;
// the npm scripts set it.
import { createDefaultEsmPreset } from 'ts-jest';

/** @type {import('jest').Config} */
export default {
  ...createDefaultEsmPreset({ tsconfig: 'tsconfig.json' }),
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Sources import './x.js' (NodeNext); jest resolves the .ts file behind it.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 30_000,
  // Suites start servers on loopback; two workers suit the 2-core machines this runs on.
  maxWorkers: 2,
  // The SoftHSM2 token directory of the run (test/softhsm-global.js).
  globalSetup: '<rootDir>/test/softhsm-global-setup.js',
  globalTeardown: '<rootDir>/test/softhsm-global-teardown.js',
};
