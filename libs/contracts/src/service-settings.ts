import { z } from 'zod';

/** A GUID setting (client, tenant and app ids). */
export const guidSetting = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a GUID');

/**
 * The variables every Keyless service reads (HTTP listener, identity, Service Bus namespace, logs, telemetry), to
 * spread into its environment schema beside its own: `settingsSchema({ ...serviceSettings({ port: 3001 }), … })`.
 * There is no key or connection string among them: the identity authenticates (Application Insights' connection
 * string only routes telemetry).
 */
export function serviceSettings(defaults: { port: number }) {
  return {
    /** HTTP port (the API, or a service's health endpoints). */
    PORT: z.coerce.number().int().min(0).max(65535).default(defaults.port),
    /** Address to bind; `0.0.0.0` in containers and App Service. */
    HOST: z.string().min(1).default('127.0.0.1'),
    /**
     * Port of the loopback-only listener with the readiness details (token expiries, links, last errors);
     * unset: no such listener, and the public /health/ready says only up or down per check.
     */
    HEALTH_DETAILS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    /** Client id of the user-assigned managed identity the service runs as. */
    AZURE_CLIENT_ID: guidSetting,
    /** Service Bus namespace host (and port locally). Connection strings are refused. */
    SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: z.string().min(1),
    /** ARM id of the namespace, for exact fix commands in access diagnostics. Optional. */
    SERVICEBUS_NAMESPACE_RESOURCE_ID: z.string().optional(),
    /** Log level (pino): trace, debug, info, warn, error. */
    LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
    /** Application Insights to export traces and metrics to, authenticated with the identity (Azure only). */
    APPLICATIONINSIGHTS_CONNECTION_STRING: z.string().optional(),
  };
}

/** The parsed {@link serviceSettings}. */
export type ServiceSettings = z.output<z.ZodObject<ReturnType<typeof serviceSettings>>>;

/** The part of a service's configuration namespace that {@link serviceSettings} make. */
export interface ServiceConfiguration {
  http: { port: number; host: string; healthDetailsPort?: number };
  identity: { clientId: string };
  serviceBus: { fullyQualifiedNamespace: string; resourceId?: string };
  logLevel: ServiceSettings['LOG_LEVEL'];
  applicationInsights: string | undefined;
}

/** The common part of a service's configuration namespace, from its parsed settings. */
export function serviceConfiguration(env: ServiceSettings): ServiceConfiguration {
  return {
    http: { port: env.PORT, host: env.HOST, ...(env.HEALTH_DETAILS_PORT !== undefined ? { healthDetailsPort: env.HEALTH_DETAILS_PORT } : {}) },
    identity: { clientId: env.AZURE_CLIENT_ID },
    serviceBus: {
      fullyQualifiedNamespace: env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE,
      ...(env.SERVICEBUS_NAMESPACE_RESOURCE_ID ? { resourceId: env.SERVICEBUS_NAMESPACE_RESOURCE_ID } : {}),
    },
    logLevel: env.LOG_LEVEL,
    applicationInsights: env.APPLICATIONINSIGHTS_CONNECTION_STRING,
  };
}
