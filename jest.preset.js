// Shared Jest setup for every project.
//
// How the workspace handles ES modules (decided once, here): NestJS 12, jose 6, @azure/identity and
// @azure/core-amqp ship as ES modules, so the workspace itself is ESM ("type": "module") and Jest runs
// in its native ESM mode (`node --experimental-vm-modules`, set by the `test` target in nx.json).
// TypeScript is compiled by swc with the same .swcrc as the build; node_modules are loaded as-is, so
// no test ever needs a per-package transform or mock to load a dependency.
import { readFileSync } from 'node:fs';

const swcrc = JSON.parse(readFileSync(new URL('./.swcrc', import.meta.url), 'utf8'));

/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { ...swcrc, swcrc: false }] },
  // Sources import siblings as './x.js' (Node ESM rules); Jest resolves those to the .ts file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // `@keyless/*` packages export their TypeScript sources under this condition, their build otherwise.
  testEnvironmentOptions: { customExportConditions: ['@keyless/source', 'node', 'node-addons'] },
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  clearMocks: true,
  // Integration tests start a local Azure (and sometimes child processes) in their hooks; on a 2-core machine running
  // two projects at once that can take longer than Jest's 5 s default. A hang still fails, after 30 s.
  testTimeout: 30_000,
};
