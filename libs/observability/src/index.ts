// @keyless/observability: logs, traces and metrics set up the same way in every service.
export { loggerOptions } from './logger-options.js';
export type { LoggerOptions } from './logger-options.js';
export { startServiceTelemetry } from './telemetry.js';
export type { Telemetry } from './telemetry.js';
export { httpTracing } from './http-tracing.js';
export { HealthController, HealthModule, Public, publicRouteKey, ReadinessChecks, withoutDetails } from './health.controller.js';
export { HEALTH_MODULE_OPTIONS } from './health.module-definition.js';
export type { HealthModuleOptions } from './health.module-definition.js';
export { applicationInsightsAllowance } from './azure-monitor.js';
export { createServiceApp, runService } from './service-main.js';
export type { ServiceMainOptions } from './service-main.js';
export { serviceModules } from './service.modules.js';
export type { ServiceModulesOptions } from './service.modules.js';
