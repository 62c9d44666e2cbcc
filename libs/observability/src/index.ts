// @keyless/observability: logs, traces and metrics set up the same way in every service.
export { loggerOptions } from './logger-options.js';
export type { LoggerOptions } from './logger-options.js';
export { HealthController, HealthModule, Public, publicRouteKey } from './health.controller.js';
