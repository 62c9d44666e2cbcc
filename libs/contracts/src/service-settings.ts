import { z } from 'zod';

/** A GUID setting (client, tenant and app ids). */
export const guidSetting = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a GUID');

/**
 * Defaults of a service's HTTP listener limits, the settings `HTTP_HEADERS_TIMEOUT_MS`, `HTTP_REQUEST_TIMEOUT_MS` and
 * `HTTP_KEEP_ALIVE_TIMEOUT_MS` (Node's own are 60 s, 300 s and 5 s).
 */
export const serviceHttpDefaults = {
  /** A browser or SDK sends its headers in one write; 10 s leaves room for a slow mobile link. */
  headersTimeoutInMs: 10_000,
  /** The largest body the gateway takes (an inline image, 160 KiB) arrives in 30 s over a link of 50 kbit/s. */
  requestTimeoutInMs: 30_000,
  /**
   * Longer than the idle time a proxy in front commonly keeps a pooled connection to the app (60 s is a usual default):
   * a server that closes an idle connection first races the proxy's reuse of it, and the request that loses the race
   * fails with 502. Node's own 5 s is known for exactly that.
   */
  keepAliveTimeoutInMs: 65_000,
};

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
    /**
     * Longest a client may take to send a request's headers, in ms, before 408 and the connection closed: a client
     * that trickles its headers holds a connection only this long.
     */
    HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(serviceHttpDefaults.headersTimeoutInMs),
    /**
     * Longest a client may take to send a whole request (headers and body), in ms, before 408 and the connection
     * closed. It bounds receiving only: a request being answered is not cut by it.
     */
    HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(serviceHttpDefaults.requestTimeoutInMs),
    /** How long a keep-alive connection may sit idle between requests, in ms, before it is closed. */
    HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(serviceHttpDefaults.keepAliveTimeoutInMs),
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
    /**
     * The local Azure home (`$LOCAL_AZURE_HOME`) whose CLI the service's local fix hints name, e.g.
     * `LOCAL_AZURE_HOME='/tmp/my copy' npm run local-azure -- role assignment create …`; unset: the default home
     * (`.local-azure/`), whose commands need no prefix. `npm start` sets it for any other home; unset in Azure.
     */
    LOCAL_AZURE_HOME: z.string().optional(),
    /**
     * The docker compose service that runs the local Azure (docker-compose.yml sets it for the services it runs): the
     * local fix hints then name what works there, e.g. `docker compose exec local-azure node
     * tools/local-azure/dist/main.js role assignment create …`, instead of `npm run local-azure …`. Unset under
     * `npm start` and in Azure.
     */
    LOCAL_AZURE_COMPOSE_SERVICE: z.string().optional(),
  };
}

/**
 * `settings` with the rule between two {@link serviceSettings} that neither variable's own schema can state, when it
 * holds both: `HTTP_HEADERS_TIMEOUT_MS` is at most `HTTP_REQUEST_TIMEOUT_MS`. The headers are part of the request, so
 * Node cuts a longer headers timeout short at the request timeout without a word (and refuses such a pair given as
 * `createServer` options). `settingsSchema` applies it to every process's schema.
 */
export function withServiceSettingRules<Settings extends z.ZodObject>(settings: Settings): Settings {
  if (!('HTTP_HEADERS_TIMEOUT_MS' in settings.shape && 'HTTP_REQUEST_TIMEOUT_MS' in settings.shape)) return settings;
  type Timeouts = { HTTP_HEADERS_TIMEOUT_MS: number; HTTP_REQUEST_TIMEOUT_MS: number };
  return settings.refine((env) => (env as Timeouts).HTTP_HEADERS_TIMEOUT_MS <= (env as Timeouts).HTTP_REQUEST_TIMEOUT_MS, {
    path: ['HTTP_HEADERS_TIMEOUT_MS'],
    error: (issue) => {
      const request = (issue.input as Timeouts).HTTP_REQUEST_TIMEOUT_MS;
      return `at most HTTP_REQUEST_TIMEOUT_MS (${request}): the headers are part of the request; lower HTTP_HEADERS_TIMEOUT_MS or raise HTTP_REQUEST_TIMEOUT_MS`;
    },
    // Also when another variable is invalid (every invalid one is reported), but only once both timeouts are valid numbers.
    when: (payload) => !payload.issues.some((issue) => ['HTTP_HEADERS_TIMEOUT_MS', 'HTTP_REQUEST_TIMEOUT_MS'].includes(String(issue.path?.[0]))),
  });
}

/** The parsed {@link serviceSettings}. */
export type ServiceSettings = z.output<z.ZodObject<ReturnType<typeof serviceSettings>>>;

/** The part of a service's configuration namespace that {@link serviceSettings} make. */
export interface ServiceConfiguration {
  http: { port: number; host: string; healthDetailsPort?: number; limits: HttpServerLimits };
  identity: { clientId: string };
  serviceBus: { fullyQualifiedNamespace: string; resourceId?: string };
  logLevel: ServiceSettings['LOG_LEVEL'];
  applicationInsights: string | undefined;
  /** The local Azure home the local fix hints name (`LOCAL_AZURE_HOME`); absent: the default home. */
  localAzureHome?: string;
  /** The docker compose service running the local Azure the local fix hints name (`LOCAL_AZURE_COMPOSE_SERVICE`). */
  localAzureComposeService?: string;
}

/** How long an HTTP listener waits for a client (see {@link serviceHttpDefaults}). */
export interface HttpServerLimits {
  headersTimeoutInMs: number;
  requestTimeoutInMs: number;
  keepAliveTimeoutInMs: number;
}

/** The longest interval between Node's looks for clients past their limits, in ms. */
const maxCheckingIntervalInMs = 1_000;

/**
 * The options of Node's `http.createServer` / `https.createServer` that enforce `limits`; before the server listens
 * they can also be assigned to it. Node answers 408 and closes the connection of a client that has not sent its headers
 * within `headersTimeout`, or its whole request within `requestTimeout`, but it looks only every
 * `connectionsCheckingInterval` (30 s by default, read when the server starts listening): a limit of 10 s held a
 * trickling client up to 40 s. The interval is a quarter of the shorter limit, at most 1 s (each check walks only the
 * connections still receiving a request).
 *
 * `joinDuplicateHeaders` is on: by default Node keeps the first of two `Authorization` (or `Content-Type`, `Host`, …)
 * headers and drops the other without a trace, so a request with two tokens was served as the first one's caller
 * while a proxy or log in front may have read the other. Joined (`Bearer a, Bearer b`), the value is no token, and
 * the request is refused as an invalid one.
 */
export function httpServerOptions(limits: HttpServerLimits): {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
  joinDuplicateHeaders: true;
} {
  return {
    joinDuplicateHeaders: true,
    headersTimeout: limits.headersTimeoutInMs,
    requestTimeout: limits.requestTimeoutInMs,
    keepAliveTimeout: limits.keepAliveTimeoutInMs,
    connectionsCheckingInterval: Math.min(maxCheckingIntervalInMs, Math.ceil(Math.min(limits.headersTimeoutInMs, limits.requestTimeoutInMs) / 4)),
  };
}

/** The common part of a service's configuration namespace, from its parsed settings. */
export function serviceConfiguration(env: ServiceSettings): ServiceConfiguration {
  return {
    http: {
      port: env.PORT,
      host: env.HOST,
      ...(env.HEALTH_DETAILS_PORT !== undefined ? { healthDetailsPort: env.HEALTH_DETAILS_PORT } : {}),
      limits: { headersTimeoutInMs: env.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutInMs: env.HTTP_REQUEST_TIMEOUT_MS, keepAliveTimeoutInMs: env.HTTP_KEEP_ALIVE_TIMEOUT_MS },
    },
    identity: { clientId: env.AZURE_CLIENT_ID },
    serviceBus: {
      fullyQualifiedNamespace: env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE,
      ...(env.SERVICEBUS_NAMESPACE_RESOURCE_ID ? { resourceId: env.SERVICEBUS_NAMESPACE_RESOURCE_ID } : {}),
    },
    logLevel: env.LOG_LEVEL,
    applicationInsights: env.APPLICATIONINSIGHTS_CONNECTION_STRING,
    ...(env.LOCAL_AZURE_HOME ? { localAzureHome: env.LOCAL_AZURE_HOME } : {}),
    ...(env.LOCAL_AZURE_COMPOSE_SERVICE ? { localAzureComposeService: env.LOCAL_AZURE_COMPOSE_SERVICE } : {}),
  };
}
