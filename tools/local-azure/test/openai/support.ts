// Set-up of the Azure OpenAI integration tests: a local Azure serving Azure OpenAI with the deployments a spec names,
// this process entered as the recommendation host (the service that calls OpenAI), and the unmodified AzureOpenAI
// client with that host's managed identity, built as the recommendation service builds its own.
import { getBearerTokenProvider, ManagedIdentityCredential } from '@azure/identity';
import { AzureOpenAI, type AzureClientOptions } from 'openai';
import type { LocalAzureConfigInput } from '../../src/config/local-azure-config.js';
import type { DataPlane } from '../../src/data-plane.js';
import { openAiDataPlane } from '../../src/openai/openai-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

/** A deployment as the configuration takes it: `model`, `tokensPerMinute`, and optionally `capability` and `backend`. */
export type TestDeployment = NonNullable<NonNullable<LocalAzureConfigInput['resources']>['openAi']>['deployments'][string];

/** The scope of Azure OpenAI tokens (Cognitive Services), as the SDK samples and the services request it. */
export const cognitiveServicesScope = 'https://cognitiveservices.azure.com/.default';

/** Options of {@link startOpenAi}. */
export interface StartOpenAiOptions {
  /**
   * The deployments of the OpenAI resource, by name, in place of the built-in ones. The first of each capability is
   * the one the env files name. **Default**: the built-in ones (gpt-4o-mini and text-embedding-3-small, local quotas).
   */
  deployments?: Record<string, TestDeployment>;
  /** Data planes to run beside OpenAI's (Vision, for a test across both). **Default**: none. */
  otherDataPlanes?: readonly DataPlane[];
  /** Retries and per-request timeout of {@link TestOpenAi.openAi}. **Default**: no retries (`maxRetries: 0`), the SDK's timeout. */
  client?: Pick<AzureClientOptions, 'maxRetries' | 'timeout'>;
}

/** A local Azure serving Azure OpenAI, and a client of it with the recommendation host's identity. */
export interface TestOpenAi {
  test: TestAzure;
  /** The recommendation host's env file: the endpoint, the deployment names, the api-version, the client id. */
  env: Record<string, string>;
  /** The host's managed identity (`AZURE_CLIENT_ID` of {@link env}). */
  credential: ManagedIdentityCredential;
  /** Bearer tokens of that identity for Azure OpenAI. */
  tokenProvider: () => Promise<string>;
  /** The unmodified SDK client with those tokens; its endpoint and api-version come from the env file, as in Azure. */
  openAi: AzureOpenAI;
}

/**
 * Starts a local Azure with the Azure OpenAI data plane (and `otherDataPlanes`) and enters the recommendation host
 * (call it before the test file's first token request: `@azure/identity` picks its managed-identity source once per
 * process). Stop it with `test.stop()`.
 *
 * @example
 * ({ test, openAi } = await startOpenAi({ deployments: { 'gpt-4o-mini': { model: 'gpt-4o-mini', tokensPerMinute: 1_000_000 } } }));
 */
export async function startOpenAi(options: StartOpenAiOptions = {}): Promise<TestOpenAi> {
  const test = await startTestAzure({
    dataPlanes: [openAiDataPlane, ...(options.otherDataPlanes ?? [])],
    // The resource keeps the built-in name: the env files' endpoint and resource id are derived from it.
    ...(options.deployments ? { config: { resources: { openAi: { name: 'oai-keyless-local', deployments: options.deployments } } } } : {}),
  });
  const env = test.enterHost('recommendation');
  const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
  const tokenProvider = getBearerTokenProvider(credential, cognitiveServicesScope);
  const openAi = new AzureOpenAI({ azureADTokenProvider: tokenProvider, maxRetries: 0, ...options.client });
  return { test, env, credential, tokenProvider, openAi };
}
