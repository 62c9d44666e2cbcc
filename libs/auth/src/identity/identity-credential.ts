import type { TokenCredential } from '@azure/core-auth';
import { AzureCliCredential, AzureDeveloperCliCredential, ManagedIdentityCredential } from '@azure/identity';
import { localAzureCommand, type ResolvedAuthOptions } from '../auth-options.js';
import { TokenAcquisitionError, type CredentialMode, type TokenAcquisitionErrorCode, type TokenRequestContext } from '../errors.js';
import { IdentityEndpointObserver, type IdentityExchange } from './identity-endpoint.observer.js';

/** Thrown into a token request that exceeded its time budget (`tokenRequestTimeoutInMs`). */
export class TokenRequestDeadlineError extends Error {
  override readonly name = 'TokenRequestDeadlineError';

  constructor(readonly timeoutInMs: number) {
    super(`no token within ${timeoutInMs} ms`);
  }
}

/** The one SDK credential of the process, and what is needed to explain its failures. */
export interface IdentityBinding {
  mode: CredentialMode;
  /** Client id of the user-assigned identity (managed-identity mode; logged only in developer modes). */
  clientId?: string;
  /** The SDK credential. Callers use the cached credential built on it, never this one directly. */
  credential: TokenCredential;
  /** The identity endpoint the SDK called last (managed-identity mode). */
  endpoint(): string | undefined;
  /** Requests sent so far for `resource` (pass it to {@link explain} to ignore older exchanges). */
  attempts(resource: string): number;
  /**
   * Turns an SDK failure for `resource` into a {@link TokenAcquisitionError} naming identity and
   * endpoint; `attemptsBefore` is {@link attempts} taken before the failed request.
   */
  explain(error: unknown, resource: string, attemptsBefore: number): TokenAcquisitionError;
  /** One line for the startup log. */
  describe(): string;
}

/**
 * Bindings of this process by mode and identity. MSAL keeps the managed-identity source — endpoint,
 * HTTP client, retry policy — and the token cache in statics: the first credential that requests a
 * token sets them for every later one. So the process gets one binding per identity, created once.
 */
const processBindings = new Map<string, IdentityBinding>();

/**
 * The process's credential for the chosen mode (created on first use, then shared). Managed identity:
 * `ManagedIdentityCredential` bound to the user-assigned identity's client id (no probing, no
 * fallback), with bounded retries and a timeout on every attempt. Developer modes: the Azure CLI or
 * azd login, chosen explicitly. Retry and timeout options of the first binding stay in effect.
 *
 * @param onSecondIdentity called when the process already has a binding for another identity.
 */
export function createIdentityBinding(options: ResolvedAuthOptions, onSecondIdentity?: (existing: string) => void): IdentityBinding {
  const key = `${options.mode}|${options.clientId ?? ''}|${options.tenantId ?? ''}`;
  const existing = processBindings.get(key);
  if (existing) return existing;
  const [other] = processBindings.values();
  if (other) onSecondIdentity?.(other.describe());
  const binding = options.mode === 'managed-identity' ? managedIdentityBinding(options) : developerBinding(options);
  processBindings.set(key, binding);
  return binding;
}

function developerBinding(options: ResolvedAuthOptions): IdentityBinding {
  const processTimeoutInMs = options.tokenRequestTimeoutInMs;
  const tenant = options.tenantId ? { tenantId: options.tenantId } : {};
  const credential =
    options.mode === 'azure-cli'
      ? new AzureCliCredential({ ...tenant, processTimeoutInMs })
      : new AzureDeveloperCliCredential({ ...tenant, processTimeoutInMs });
  const tool = options.mode === 'azure-cli' ? 'Azure CLI (az login)' : 'Azure Developer CLI (azd auth login)';
  const context = (resource: string): TokenRequestContext => ({ mode: options.mode, ...(options.clientId ? { clientId: options.clientId } : {}), resource });
  return {
    mode: options.mode,
    ...(options.clientId ? { clientId: options.clientId } : {}),
    credential,
    endpoint: () => undefined,
    attempts: () => 0,
    describe: () =>
      `developer mode, ${tool}: tokens are the signed-in developer's, not the managed identity's` +
      `${options.clientId ? ` (${options.clientId}, used when deployed)` : ''}; role assignments must name the developer`,
    explain: (error, resource) =>
      error instanceof TokenAcquisitionError
        ? error
        : new TokenAcquisitionError(
            'DeveloperLoginFailed',
            `Developer mode (${tool}) could not get a token for ${resource}: ${error instanceof TokenRequestDeadlineError ? `the tool did not answer within ${error.timeoutInMs} ms.` : (error as Error).message} ` +
              `Check that the tool is installed and logged in to the right tenant${options.tenantId ? ` (${options.tenantId})` : ''}.`,
            context(resource),
            { cause: error },
          ),
  };
}

/** One per process, like MSAL's identity source that ends up using it. */
let processObserver: IdentityEndpointObserver | undefined;

function managedIdentityBinding(options: ResolvedAuthOptions): IdentityBinding {
  const clientId = options.clientId!;
  processObserver ??= new IdentityEndpointObserver(options.tokenRequestTimeoutInMs);
  const observer = processObserver;
  const credential = new ManagedIdentityCredential({
    clientId,
    // `maxRetries` bounds both the core retry policy (5xx/408/429/network) and the SDK's extra 404/410
    // policy, whose defaults (3 and 5 retries) can keep a caller waiting ~20 s on a missing identity.
    retryOptions: { maxRetries: options.maxRetries, retryDelayInMs: 300, maxRetryDelayInMs: 2_000 },
    httpClient: observer.httpClient(),
  });
  return {
    mode: 'managed-identity',
    clientId,
    credential,
    endpoint: () => observer.endpoint,
    attempts: (resource) => observer.lastExchange(resource)?.attempts ?? 0,
    describe: () => `managed identity, user-assigned, client id ${clientId}`,
    explain: (error, resource, attemptsBefore) => {
      const exchange = observer.lastExchange(resource);
      const fresh = exchange && exchange.attempts > attemptsBefore ? exchange : undefined;
      return explainManagedIdentityFailure(error, {
        clientId,
        resource,
        exchange: fresh,
        endpoint: observer.endpoint,
        attemptsBefore,
        ...(options.localAzureHome ? { localAzureHome: options.localAzureHome } : {}),
        ...(options.localAzureComposeService ? { localAzureComposeService: options.localAzureComposeService } : {}),
      });
    },
  };
}

interface FailureFacts {
  clientId: string;
  resource: string;
  exchange: IdentityExchange | undefined;
  endpoint: string | undefined;
  /** The exchange's attempt count before this request (to count this request's attempts). */
  attemptsBefore?: number;
  /** The local Azure home the local command names (see `AuthModuleOptions.localAzureHome`). */
  localAzureHome?: string;
  /** The compose service running the local Azure the local command names (see `AuthModuleOptions.localAzureComposeService`). */
  localAzureComposeService?: string;
}

/** What to check when the identity endpoint fails, in Azure and locally. */
function checkPlatform(facts: FailureFacts): string {
  return (
    'On App Service the platform sets IDENTITY_ENDPOINT and IDENTITY_HEADER; locally they come from the host\'s env file ' +
    `of a running local Azure (${localAzureCommand(facts, 'npm run local-azure')}).`
  );
}

/**
 * Classifies a `ManagedIdentityCredential` failure. Since @azure/identity 4.x nearly every failure is a
 * `CredentialUnavailableError` whose text depends on MSAL, so the decision rests on what the endpoint
 * answered (recorded by {@link IdentityEndpointObserver}), with the SDK's error kept as `cause`.
 */
export function explainManagedIdentityFailure(error: unknown, facts: FailureFacts): TokenAcquisitionError {
  if (error instanceof TokenAcquisitionError) return error;
  const { clientId, resource, exchange } = facts;
  const endpoint = exchange?.endpoint ?? facts.endpoint;
  const context: TokenRequestContext = { mode: 'managed-identity', clientId, resource, ...(endpoint ? { endpoint } : {}) };
  const at = endpoint ? `identity endpoint ${endpoint}` : 'the identity endpoint';
  const subject = `token for ${resource} (identity ${clientId})`;
  const answered = exchange?.bodyStart ? `: ${oneLine(exchange.bodyStart)}` : '';
  const sdkMessage = (error as Error)?.message ?? String(error);
  const make = (code: TokenAcquisitionErrorCode, message: string) => new TokenAcquisitionError(code, message, context, { cause: error });

  if (error instanceof TokenRequestDeadlineError || exchange?.timedOut) {
    const budget = error instanceof TokenRequestDeadlineError ? ` within ${error.timeoutInMs} ms` : ' in time';
    const last = exchange?.status !== undefined ? ` (its last answer: ${exchange.status}${answered})` : exchange?.transportError && !exchange.timedOut ? ` (last attempt: ${exchange.transportError})` : '';
    return make('IdentityEndpointTimeout', `No ${subject}: ${at} gave no token${budget}${last}. ${checkPlatform(facts)}`);
  }
  if (exchange?.transportError || (!exchange && /network|unreachable|ECONNREFUSED/i.test(sdkMessage))) {
    return make(
      'IdentityEndpointUnreachable',
      `No ${subject}: ${at} is unreachable (${exchange?.transportError ?? 'network error'}). ${checkPlatform(facts)}`,
    );
  }
  const status = exchange?.status;
  const body = exchange?.bodyStart ?? '';
  if (status !== undefined && status >= 400 && /Unable to load the proper Managed Identity|Identity not found/i.test(body)) {
    return make(
      'IdentityNotAssigned',
      `No ${subject}: ${at} answered ${status}${answered}. The user-assigned identity ${clientId} is not assigned to this host. ` +
        'Assign it to the App Service (Identity → User assigned), and check that AZURE_CLIENT_ID is the identity\'s client id, not its object (principal) id.',
    );
  }
  if (status !== undefined && status >= 400 && /AADSTS500011/.test(body)) {
    return make(
      'AudienceNotRegistered',
      `No ${subject}: ${at} answered ${status}${answered}. No application in the tenant has the identifier ${resource}; check the audience.`,
    );
  }
  if (status === 429) {
    // IMDS sends no Retry-After, so the SDK does not retry: the token cache retries with its own backoff.
    return make(
      'IdentityEndpointThrottled',
      `No ${subject}: ${at} throttled the host (429)${answered}. The host's processes asked for tokens too often ` +
        '(IMDS allows a VM 20 requests per second and 5 at once): keep one credential per process and reuse its tokens.',
    );
  }
  if (status !== undefined && status >= 500) {
    return make('IdentityEndpointError', `No ${subject}: ${at} answered ${status} after ${exchange!.attempts - (facts.attemptsBefore ?? 0)} attempt(s)${answered}. ${checkPlatform(facts)}`);
  }
  if (status !== undefined && status >= 400) {
    return make('TokenRequestRejected', `No ${subject}: ${at} refused the request with ${status}${answered}. ${checkPlatform(facts)}`);
  }
  if ((status !== undefined && status < 300) || (error as Error)?.name === 'AuthenticationRequiredError') {
    return make(
      'IdentityEndpointInvalidResponse',
      `No ${subject}: ${at} answered ${status ?? ''} ${exchange?.contentType ?? ''} that is not a token response${answered}. ` +
        'Is IDENTITY_ENDPOINT pointing at the platform\'s managed-identity endpoint?',
    );
  }
  return make('TokenRequestFailed', `No ${subject} from ${at}: ${sdkMessage}`);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
