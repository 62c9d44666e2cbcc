import visionPackage, { type ImageAnalysisClient } from '@azure-rest/ai-vision-image-analysis';
import type { ServiceBusClientOptions } from '@azure/service-bus';
import { RetryMode, ServiceBusClient } from '@azure/service-bus';
import { openAiApiVersion } from '@keyless/contracts';
import { Inject, Injectable } from '@nestjs/common';
import { AzureOpenAI, type APIError } from 'openai';
import type { Pool } from 'pg';
import { RESOLVED_AUTH_OPTIONS } from '../auth.module-definition.js';
import { cbsRenewalCredential } from './cbs-renewal.credential.js';
import type { ResolvedAuthOptions } from '../auth-options.js';
import { AzureIdentityService } from '../azure-identity.service.js';
import { AccessDiagnostics, type AccessDenialHint } from '../diagnostics/access-diagnostics.js';
import { AuthConfigurationError, SecretSettingError, type AccessDeniedError } from '../errors.js';
import { findSecretInValue } from '../secrets/secret-settings.guard.js';
import { createPostgresPool, type PostgresFactoryOptions } from './postgres-pool.js';

// @azure-rest/ai-vision-image-analysis is CommonJS: from ESM its default export is module.exports,
// whose `default` is createClient.
const createImageAnalysisClient = visionPackage.default;

/** Defaults of the client factories. */
export const clientDefaults = {
  /** Azure OpenAI GA API version used when none is configured. */
  openAiApiVersion,
  /**
   * Retries of Service Bus clients, tuned so that a client finds a namespace again within seconds after a
   * lost connection (a broker restart, a network blip):
   * - The SDK's default waits a fixed 30 s between attempts, and its receivers re-attach only at that pace.
   *   Exponential from 0.5 s, capped at 15 s, still backs off during a long outage.
   * - An operation in flight when the connection drops is not failed by the SDK; it ends only by its
   *   operation timeout (default 60 s, so a send hangs a minute before its retry). 10 s is far above a
   *   healthy round trip (milliseconds) and bounds that wait.
   */
  serviceBusRetryOptions: { mode: RetryMode.Exponential, maxRetries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 15_000, timeoutInMs: 10_000 },
} as const;

/** Options of `create('serviceBus')`. A connection string is refused. */
export interface ServiceBusFactoryOptions {
  /** Default: `resources.serviceBus.fullyQualifiedNamespace` of the module options. */
  fullyQualifiedNamespace?: string;
  /**
   * Passed to `ServiceBusClient` (retry options, a custom endpoint address for the local broker, …).
   * **Default**: `{ retryOptions: clientDefaults.serviceBusRetryOptions }`; `retryOptions` given here replace it.
   */
  clientOptions?: ServiceBusClientOptions;
}

/** Options of `create('openAi')`. */
export interface OpenAiFactoryOptions {
  /** Deployment inserted into deployment-scoped paths. Default: the request body's `model`. */
  deployment?: string;
  /** Default: `resources.openAi.endpoint`. */
  endpoint?: string;
  /** Default: `resources.openAi.apiVersion`, else `openAiApiVersion` of `@keyless/contracts`. */
  apiVersion?: string;
  /** Retries of 408/409/429/5xx. Default: the SDK's (2). */
  maxRetries?: number;
  /** Request timeout in ms. Default: the SDK's (10 min). */
  timeoutInMs?: number;
}

/** Options of `create('vision')`. */
export interface VisionFactoryOptions {
  /** Default: `resources.vision.endpoint`. */
  endpoint?: string;
  /** Default: `resources.vision.apiVersion`, else the SDK's. */
  apiVersion?: string;
  /** Retry options of the pipeline. Default: the SDK's. */
  retryOptions?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
}

/** The Azure clients the factory builds, by kind. */
export interface AzureClients {
  serviceBus: ServiceBusClient;
  openAi: AzureOpenAI;
  vision: ImageAnalysisClient;
  /** A node-postgres pool signing in with the identity's token; create one per process and share it. */
  postgres: Pool;
}

/** Options per client kind. */
export interface AzureClientOptions {
  serviceBus: ServiceBusFactoryOptions;
  openAi: OpenAiFactoryOptions;
  vision: VisionFactoryOptions;
  postgres: PostgresFactoryOptions;
}

export type AzureClientKind = keyof AzureClients;

/** What a factory entry gets: the shared credential, the diagnostics and the module options. */
interface FactoryContext {
  identity: AzureIdentityService;
  diagnostics: AccessDiagnostics;
  options: ResolvedAuthOptions;
}

/**
 * `AzureOpenAI` whose 401/403 role refusals are thrown as `AccessDeniedError` (the original
 * `APIError` is its `cause`); every other error is the SDK's own.
 */
class DiagnosedAzureOpenAI extends AzureOpenAI {
  accessDiagnostics: AccessDiagnostics | undefined;

  protected override makeStatusError(status: number, error: object, message: string | undefined, headers: Headers): APIError {
    const apiError = super.makeStatusError(status, error, message, headers);
    const denied = this.accessDiagnostics?.explain(apiError, { resource: 'openAi' });
    if (denied) throw denied;
    return apiError;
  }

  override withOptions(options: Parameters<AzureOpenAI['withOptions']>[0]): this {
    const clone = super.withOptions(options);
    clone.accessDiagnostics = this.accessDiagnostics;
    return clone;
  }
}

/**
 * How each kind of client is built from the shared credential. Adding a client (Key Vault's
 * `SecretClient`) is one more entry here plus its line in {@link AzureClients} and {@link AzureClientOptions}.
 */
const factories: { [K in AzureClientKind]: (context: FactoryContext, options: AzureClientOptions[K]) => AzureClients[K] } = {
  serviceBus({ identity, options }, { fullyQualifiedNamespace, clientOptions }) {
    const namespace = fullyQualifiedNamespace ?? options.resources.serviceBus?.fullyQualifiedNamespace;
    if (!namespace) throw missing('serviceBus', 'resources.serviceBus.fullyQualifiedNamespace');
    const marker = findSecretInValue(namespace) ?? (/Endpoint\s*=/i.test(namespace) ? 'Endpoint=' : undefined);
    if (marker) {
      throw new SecretSettingError([
        {
          name: 'fullyQualifiedNamespace',
          reason: `a connection string (contains ${marker})`,
          instead: 'pass the namespace host name (<namespace>.servicebus.windows.net); the managed identity authenticates',
        },
      ]);
    }
    const serviceBusOptions: ServiceBusClientOptions = { retryOptions: { ...clientDefaults.serviceBusRetryOptions }, ...clientOptions };
    // Short-lived tokens would make the SDK renew on $cbs in a tight loop (see cbs-renewal.credential.ts).
    return new ServiceBusClient(namespace, cbsRenewalCredential(identity.credential), serviceBusOptions);
  },

  openAi({ identity, diagnostics, options }, factoryOptions) {
    const endpoint = factoryOptions.endpoint ?? options.resources.openAi?.endpoint;
    if (!endpoint) throw missing('openAi', 'resources.openAi.endpoint');
    const client = new DiagnosedAzureOpenAI({
      // An explicit baseURL: the SDK would otherwise take OPENAI_BASE_URL from the environment.
      baseURL: `${endpoint.replace(/\/+$/, '')}/openai`,
      apiVersion: factoryOptions.apiVersion ?? options.resources.openAi?.apiVersion ?? clientDefaults.openAiApiVersion,
      azureADTokenProvider: identity.tokenProvider('cognitiveServices'),
      ...(factoryOptions.deployment ? { deployment: factoryOptions.deployment } : {}),
      ...(factoryOptions.maxRetries !== undefined ? { maxRetries: factoryOptions.maxRetries } : {}),
      ...(factoryOptions.timeoutInMs !== undefined ? { timeout: factoryOptions.timeoutInMs } : {}),
    });
    client.accessDiagnostics = diagnostics;
    return client;
  },

  vision({ identity, diagnostics, options }, factoryOptions) {
    const endpoint = factoryOptions.endpoint ?? options.resources.vision?.endpoint;
    if (!endpoint) throw missing('vision', 'resources.vision.endpoint');
    const apiVersion = factoryOptions.apiVersion ?? options.resources.vision?.apiVersion;
    const client = createImageAnalysisClient(endpoint.replace(/\/+$/, ''), identity.credential, {
      ...(apiVersion ? { apiVersion } : {}),
      ...(factoryOptions.retryOptions ? { retryOptions: factoryOptions.retryOptions } : {}),
    });
    // Outside the retry and bearer-token policies: sees the final answer of every call.
    client.pipeline.addPolicy({
      name: 'keylessAccessDiagnostics',
      async sendRequest(request, next) {
        const response = await next(request);
        const denied = diagnostics.explainResponse('vision', response.status, response.bodyAsText ?? undefined);
        if (denied) throw denied;
        return response;
      },
    });
    return client;
  },

  postgres: (context, factoryOptions) => createPostgresPool(context, factoryOptions),
};

function missing(kind: AzureClientKind, option: string): AuthConfigurationError {
  return new AuthConfigurationError('OptionsInvalid', `Cannot create the ${kind} client: ${option} is not configured (pass it in the module options or to create()).`);
}

/**
 * Builds Azure clients bound to the process's one credential, so apps never construct credentials
 * or import Azure SDKs. Role refusals of OpenAI and Vision calls arrive as `AccessDeniedError` (their pipelines
 * translate them); a database's refused sign-in as `DatabaseAccessDeniedError`. The Service Bus client is the SDK's
 * own, unwrapped: the SDK has no hook for its errors, so its callers translate refusals where they know the entity,
 * with {@link AzureClientFactory.explainAccessDenied} (the messaging transport does it in its send and receive error
 * paths).
 *
 * @example
 * const openAi = clients.create('openAi', { deployment: 'gpt-4o-mini' });
 * const bus = clients.create('serviceBus');
 * const pool = clients.create('postgres'); // pg.Pool: the password is the identity's token, TLS verify-full
 */
@Injectable()
export class AzureClientFactory {
  private readonly context: FactoryContext;

  constructor(
    @Inject(RESOLVED_AUTH_OPTIONS) options: ResolvedAuthOptions,
    @Inject(AzureIdentityService) identity: AzureIdentityService,
    @Inject(AccessDiagnostics) diagnostics: AccessDiagnostics,
  ) {
    this.context = { identity, diagnostics, options };
  }

  /**
   * A new client of `kind`, authenticated by the shared credential.
   *
   * @throws {AuthConfigurationError} `OptionsInvalid` when the resource's endpoint is not configured.
   * @throws {SecretSettingError} when given a connection string.
   */
  create<K extends AzureClientKind>(kind: K, options?: AzureClientOptions[K]): AzureClients[K] {
    const factory = factories[kind] as (context: FactoryContext, options: AzureClientOptions[K]) => AzureClients[K];
    return factory(this.context, options ?? ({} as AzureClientOptions[K]));
  }

  /**
   * The error boundary for clients whose SDK offers no error hook (Service Bus): the {@link AccessDeniedError} for
   * `error` if it is a data plane's role refusal (naming principal, data action, role, scope and the fix; `error`
   * is its `cause`), else undefined. `hint` says what the caller knows: the entity and whether it sent or received.
   *
   * @example
   * await sender.sendMessages(message).catch((error: unknown) => {
   *   throw clients.explainAccessDenied(error, { resource: 'serviceBus', operation: 'send', entity: { kind: 'queue', name } }) ?? error;
   * });
   */
  explainAccessDenied(error: unknown, hint?: AccessDenialHint): AccessDeniedError | undefined {
    return this.context.diagnostics.explain(error, hint);
  }
}
