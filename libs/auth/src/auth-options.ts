import type { LoggerService } from '@nestjs/common';
import type { MeterProvider } from '@opentelemetry/api';
import { commandForCompose, commandForHome } from '@keyless/contracts';
import { z } from 'zod';
import { resolveAudience, type Audience, type AudienceName } from './audiences.js';
import { AuthConfigurationError, type AuthConfigurationErrorCode, type CredentialMode } from './errors.js';
import { findSecretInValue } from './secrets/secret-settings.guard.js';

/** Every default of the library, in one place. */
export const authDefaults = {
  mode: 'managed-identity' as CredentialMode,
  /** Time budget of one token request, including the SDK's own retries. */
  tokenRequestTimeoutInMs: 10_000,
  /** SDK retries per token request (5xx, 408, 429, network errors; 404/410 for IMDS). The SDK's own default is 3 (5 for 404). */
  maxRetries: 2,
  /** Time budget of the whole startup access check (all audiences in parallel). */
  startupTimeoutInMs: 15_000,
  startupAccessCheck: true,
  /** First delay after a failed background refresh; doubles per failure. */
  refreshRetryDelayInMs: 5_000,
  maxRefreshRetryDelayInMs: 60_000,
  /** A token that expires within this margin is no longer handed out. */
  expiryMarginInMs: 10_000,
  isGlobal: true,
} as const;

/** Endpoint and ARM id of an Azure resource the app calls. */
export interface AzureResourceOptions {
  /** `https://<name>.openai.azure.com`, `https://<name>.cognitiveservices.azure.com`, … */
  endpoint: string;
  /** ARM id (`/subscriptions/…/providers/Microsoft.CognitiveServices/accounts/<name>`): the scope in fix commands. Optional; without it fix commands show a placeholder. */
  resourceId?: string;
}

/** Azure OpenAI. */
export interface OpenAiResourceOptions extends AzureResourceOptions {
  /** `api-version` query parameter. Default: `openAiApiVersion` of `@keyless/contracts` (the one declaration). */
  apiVersion?: string;
}

/** Azure AI Vision (image analysis). */
export interface VisionResourceOptions extends AzureResourceOptions {
  /** `api-version`. Default: the SDK's (`2023-10-01`). */
  apiVersion?: string;
}

/** Azure Service Bus. A connection string is not accepted. */
export interface ServiceBusResourceOptions {
  /** `<namespace>.servicebus.windows.net` (host name, optionally `:port`). */
  fullyQualifiedNamespace: string;
  /** ARM id of the namespace (`…/providers/Microsoft.ServiceBus/namespaces/<name>`); entity scopes are derived from it. */
  resourceId?: string;
}

/**
 * Azure Database for PostgreSQL flexible server (or any PostgreSQL ≥ 15 that takes Microsoft Entra tokens), in
 * libpq's terms: the app passes its `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER` and `PGSSLMODE`. There is no
 * password setting: the password is the identity's access token for the `postgres` audience.
 */
export interface PostgresResourceOptions {
  /** `PGHOST`: the server's host name (`<server>.postgres.database.azure.com`). */
  host: string;
  /** `PGPORT`. Default: 5432. */
  port?: number;
  /** `PGDATABASE`: the database (`keyless`). */
  database: string;
  /** `PGUSER`: the database principal the identity signs in as, i.e. the managed identity's name (`id-keyless`). */
  user: string;
  /**
   * `PGSSLMODE`. Only `verify-full` is accepted: the password is a bearer token, so it goes only to a server whose
   * certificate chains to a CA the platform trusts and names `host`. Default: `verify-full`.
   */
  sslMode?: 'verify-full';
  /** ARM id of the flexible server (`…/providers/Microsoft.DBforPostgreSQL/flexibleServers/<name>`), for fix commands. Optional. */
  resourceId?: string;
}

/** Options of {@link AuthModule}: passed in by the app from its validated configuration. */
export interface AuthModuleOptions {
  /**
   * Client id of the user-assigned managed identity (the app's `AZURE_CLIENT_ID`, a GUID).
   * Required in `managed-identity` mode; in developer modes it is only logged.
   */
  clientId?: string;
  /**
   * Which credential to run with. `managed-identity` (the only mode for deployed services) or, chosen
   * explicitly by a developer running against a real subscription from a laptop, `azure-cli` /
   * `azure-developer-cli` (the developer's own login). Never chosen by probing. Default: `managed-identity`.
   */
  mode?: CredentialMode;
  /** Tenant for the developer modes. Default: the CLI's current tenant. */
  tenantId?: string;
  /** Audiences the app needs: a token for each is acquired before the app reports ready. Default: none. */
  audiences?: readonly AudienceName[];
  /** Azure resources the app calls (client factories and access diagnostics). */
  resources?: {
    openAi?: OpenAiResourceOptions;
    vision?: VisionResourceOptions;
    serviceBus?: ServiceBusResourceOptions;
    postgres?: PostgresResourceOptions;
  };
  /** Time budget of one token request including the SDK's retries, in ms. Default: 10 000. */
  tokenRequestTimeoutInMs?: number;
  /** SDK retries per token request. Default: 2. */
  maxRetries?: number;
  /** Time budget of the startup access check, in ms. Default: 15 000. */
  startupTimeoutInMs?: number;
  /** Whether to run the startup access check. Default: `true`. */
  startupAccessCheck?: boolean;
  /** First retry delay after a failed background refresh, in ms; doubles per failure. Default: 5 000. */
  refreshRetryDelayInMs?: number;
  /** Upper bound of the refresh retry delay, in ms. Default: 60 000. */
  maxRefreshRetryDelayInMs?: number;
  /** Tokens that expire within this margin are not handed out any more, in ms. Default: 10 000. */
  expiryMarginInMs?: number;
  /** Meter provider for the metrics. Default: the global one (`@opentelemetry/api`). */
  meterProvider?: MeterProvider;
  /** Logger. Default: Nest's `Logger` with context `Auth`. */
  logger?: LoggerService;
  /**
   * The local Azure home (`$LOCAL_AZURE_HOME`) that the local fix commands of errors name: they are printed as
   * `LOCAL_AZURE_HOME=<home> npm run local-azure -- …`, so that they act on that home and not on the default one.
   * Default: none — the commands as they are, for the default home (`.local-azure/`).
   */
  localAzureHome?: string;
  /**
   * The docker compose service that runs the local Azure (`local-azure` in docker-compose.yml), when the service runs
   * under compose: the errors' local commands are then printed as compose runs them —
   * `docker compose exec <service> node tools/local-azure/dist/main.js …` for the CLI, `docker compose up -d --build …`
   * to (re)start it — since the repository's npm scripts are not at hand there. Takes precedence over
   * {@link AuthModuleOptions.localAzureHome}. Default: none — npm commands.
   */
  localAzureComposeService?: string;
}

/** Options with defaults applied and audiences resolved. */
export interface ResolvedAuthOptions {
  mode: CredentialMode;
  clientId?: string;
  tenantId?: string;
  audiences: readonly Audience[];
  resources: NonNullable<AuthModuleOptions['resources']>;
  tokenRequestTimeoutInMs: number;
  maxRetries: number;
  startupTimeoutInMs: number;
  startupAccessCheck: boolean;
  refreshRetryDelayInMs: number;
  maxRefreshRetryDelayInMs: number;
  expiryMarginInMs: number;
  meterProvider?: MeterProvider;
  logger?: LoggerService;
  localAzureHome?: string;
  localAzureComposeService?: string;
}

/**
 * `command` (an `npm run local-azure …` or `npm start` an error tells its reader to run locally) as it must be typed
 * where the local Azure of `options` runs: in its compose service's container (see
 * {@link AuthModuleOptions.localAzureComposeService}), else for its home (see {@link AuthModuleOptions.localAzureHome}).
 */
export function localAzureCommand(options: Pick<ResolvedAuthOptions, 'localAzureHome' | 'localAzureComposeService'>, command: string): string {
  if (options.localAzureComposeService) return commandForCompose(command, options.localAzureComposeService);
  return options.localAzureHome ? commandForHome(command, { root: options.localAzureHome, isDefault: false }) : command;
}

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const noSecret = (field: string) => (value: string, ctx: z.RefinementCtx) => {
  const marker = findSecretInValue(value);
  if (marker) ctx.addIssue({ code: 'custom', message: `holds a secret (${marker}); ${field} takes an endpoint only, the identity authenticates` });
};

const httpsUrl = z
  .string()
  .url('an https URL such as https://<name>.openai.azure.com')
  .refine((value) => /^https:\/\//i.test(value), 'must be an https URL (bearer tokens are only sent over TLS)')
  .superRefine(noSecret('endpoint'));

const armId = z.string().regex(/^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/.+/i, 'an ARM resource id (/subscriptions/…/resourceGroups/…/providers/…)');

const optionsSchema = z.strictObject({
  clientId: z.string().optional(),
  mode: z.enum(['managed-identity', 'azure-cli', 'azure-developer-cli']).default(authDefaults.mode),
  tenantId: z.string().regex(guidPattern, 'a tenant id (GUID)').optional(),
  audiences: z.array(z.string()).default([]),
  resources: z
    .strictObject({
      openAi: z.strictObject({ endpoint: httpsUrl, resourceId: armId.optional(), apiVersion: z.string().min(1).optional() }).optional(),
      vision: z.strictObject({ endpoint: httpsUrl, resourceId: armId.optional(), apiVersion: z.string().min(1).optional() }).optional(),
      serviceBus: z
        .strictObject({
          fullyQualifiedNamespace: z
            .string()
            .superRefine(noSecret('fullyQualifiedNamespace'))
            .refine((v) => /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/i.test(v), 'a namespace host name such as sb-keyless.servicebus.windows.net'),
          resourceId: armId.optional(),
        })
        .optional(),
      postgres: z
        .strictObject({
          host: z
            .string()
            .superRefine(noSecret('host'))
            .refine((v) => !/:\/\//.test(v), 'a host name, not a URL (PGHOST=<server>.postgres.database.azure.com)')
            .refine((v) => /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(v), 'a host name such as psql-keyless.postgres.database.azure.com'),
          port: z.number().int().min(1).max(65535).optional(),
          database: z.string().min(1).superRefine(noSecret('database')),
          user: z.string().min(1).superRefine(noSecret('user')),
          sslMode: z
            .string()
            .refine(
              (v) => v === 'verify-full',
              'must be verify-full: the password is an access token, sent only to a server whose certificate is verified against a trusted CA and the host name',
            )
            .optional(),
          resourceId: armId.optional(),
        })
        .optional(),
    })
    .default({}),
  tokenRequestTimeoutInMs: z.number().int().min(100).default(authDefaults.tokenRequestTimeoutInMs),
  maxRetries: z.number().int().min(0).max(10).default(authDefaults.maxRetries),
  startupTimeoutInMs: z.number().int().min(100).default(authDefaults.startupTimeoutInMs),
  startupAccessCheck: z.boolean().default(authDefaults.startupAccessCheck),
  refreshRetryDelayInMs: z.number().int().min(10).default(authDefaults.refreshRetryDelayInMs),
  maxRefreshRetryDelayInMs: z.number().int().min(10).default(authDefaults.maxRefreshRetryDelayInMs),
  expiryMarginInMs: z.number().int().min(0).default(authDefaults.expiryMarginInMs),
  meterProvider: z.custom<MeterProvider>((v) => typeof v === 'object' && v !== null).optional(),
  logger: z.custom<LoggerService>((v) => typeof v === 'object' && v !== null).optional(),
  localAzureHome: z.string().min(1).optional(),
  localAzureComposeService: z.string().min(1).optional(),
});

/**
 * Validates the options, applies {@link authDefaults} and resolves the audiences.
 *
 * @throws {AuthConfigurationError} listing every problem: `ClientIdMissing`/`ClientIdMalformed` when the
 * client id is the only problem, `AudienceUnknown` when an audience is, `OptionsInvalid` otherwise.
 */
export function resolveAuthOptions(options: AuthModuleOptions): ResolvedAuthOptions {
  const parsed = optionsSchema.safeParse(options);
  const problems: { code: AuthConfigurationErrorCode; text: string }[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({ code: 'OptionsInvalid', text: `${issue.path.map(String).join('.') || '(options)'}: ${issue.message}` });
    }
  }
  const mode = parsed.success ? parsed.data.mode : (options.mode ?? authDefaults.mode);
  const clientId = options.clientId?.trim() || undefined;
  const clientIdProblem = checkClientId(clientId, mode, localAzureCommand(options, 'npm run local-azure -- identity list'));
  if (clientIdProblem) problems.push(clientIdProblem);
  const audiences: Audience[] = [];
  for (const [i, name] of (options.audiences ?? []).entries()) {
    try {
      const audience = resolveAudience(name);
      if (!audiences.some((a) => a.scope === audience.scope)) audiences.push(audience);
    } catch (error) {
      problems.push({ code: 'AudienceUnknown', text: `audiences.${i}: ${(error as Error).message}` });
    }
  }
  if (problems.length || !parsed.success) {
    const codes = new Set(problems.map((p) => p.code));
    const code = codes.size === 1 ? [...codes][0]! : 'OptionsInvalid';
    const texts = problems.map((p) => p.text);
    throw new AuthConfigurationError(code, `Invalid @keyless/auth options:\n  - ${texts.join('\n  - ')}`, texts);
  }
  const data = parsed.data;
  return {
    mode: data.mode,
    ...(clientId ? { clientId: clientId.toLowerCase() } : {}),
    ...(data.tenantId ? { tenantId: data.tenantId } : {}),
    audiences,
    resources: data.resources as ResolvedAuthOptions['resources'],
    tokenRequestTimeoutInMs: data.tokenRequestTimeoutInMs,
    maxRetries: data.maxRetries,
    startupTimeoutInMs: data.startupTimeoutInMs,
    startupAccessCheck: data.startupAccessCheck,
    refreshRetryDelayInMs: data.refreshRetryDelayInMs,
    maxRefreshRetryDelayInMs: Math.max(data.maxRefreshRetryDelayInMs, data.refreshRetryDelayInMs),
    expiryMarginInMs: data.expiryMarginInMs,
    ...(options.meterProvider ? { meterProvider: options.meterProvider } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.localAzureHome ? { localAzureHome: options.localAzureHome } : {}),
    ...(options.localAzureComposeService ? { localAzureComposeService: options.localAzureComposeService } : {}),
  };
}

function checkClientId(clientId: string | undefined, mode: CredentialMode, listIdentities: string): { code: 'ClientIdMissing' | 'ClientIdMalformed'; text: string } | undefined {
  if (!clientId) {
    if (mode !== 'managed-identity') return undefined;
    return {
      code: 'ClientIdMissing',
      text:
        'clientId: missing. Set AZURE_CLIENT_ID to the client id of the user-assigned identity ' +
        `(az identity show -g <group> -n <identity> --query clientId; locally: ${listIdentities}).`,
    };
  }
  if (guidPattern.test(clientId)) return undefined;
  const hint = /\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\//i.test(clientId)
    ? 'that is the identity\'s ARM resource id'
    : /^[a-z][\w-]*$/i.test(clientId)
      ? 'that looks like the identity\'s name'
      : 'it is not a GUID';
  return {
    code: 'ClientIdMalformed',
    text:
      `clientId: "${clientId}" is not a client id (${hint}). AZURE_CLIENT_ID must be the identity's client id, a GUID ` +
      `(az identity show -g <group> -n <identity> --query clientId; locally: ${listIdentities}).`,
  };
}
