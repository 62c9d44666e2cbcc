// @keyless/testing: the test support every project's tests share (one copy, so the helpers do not drift apart).
// Tagged `type:testing`: only test files (`*.spec.ts`, `test/**`) may import it (eslint module boundaries).
export { missingAppServiceSettings } from './app-service-settings.js';
export type { EnvironmentSchema } from './app-service-settings.js';
export { undocumentedSettings } from './documented-settings.js';
export type { SettingsSchema } from './documented-settings.js';
export { RecordingLogger } from './recording.logger.js';
export type { LogLevel, RecordedLine } from './recording.logger.js';
export { rejectionOf, waitFor } from './wait-for.js';
export { seededRandom } from './seeded-random.js';
export { slowClient } from './slow-client.js';
export type { SlowClientOptions, SlowClientOutcome } from './slow-client.js';
export { freeAdjacentPorts } from './free-ports.js';
export { npmAsTyped } from './npm-as-typed.js';
export type { NpmInvocation } from './npm-as-typed.js';
