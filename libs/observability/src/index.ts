// @keyless/observability: logs, traces and metrics set up the same way in every service.
export { loggerOptions } from './logger-options.js';
export type { LoggerOptions } from './logger-options.js';
export { startTelemetry } from './telemetry.js';
export type { Telemetry, TelemetryOptions } from './telemetry.js';
export { httpTracing } from './http-tracing.js';
export { HealthController, HealthModule, Public, publicRouteKey } from './health.controller.js';
export { applicationInsightsAllowance } from './azure-monitor.js';
