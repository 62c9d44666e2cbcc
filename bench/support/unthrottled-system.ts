// The running system as the whole-chain benchmarks start it: every limit that would measure itself out of the way.
import { startSystem, type DemoProduct, type RunningSystem } from '@keyless/launcher';

/**
 * Starts the local Azure and the services (`startSystem`) with the demo image server, with Azure OpenAI's
 * tokens-per-minute quotas lifted (200k by default locally, which a sustained load exhausts within seconds and then
 * waits out as Azure would), the identity endpoint's per-host throttling lifted (instances starting together on one
 * host), and the gateway's rate limits lifted, the per-address one included (every request of a benchmark comes from
 * one address): the benchmarks measure the path, not the limits.
 */
export function startUnthrottledSystem(options: { home: string; gatewayPort: number; catalog: readonly DemoProduct[]; imagePort: number; nodeArgs?: string[] }): Promise<RunningSystem> {
  const deployment = (model: string, capability: 'chat' | 'embeddings') => ({ model, tokensPerMinute: 1_000_000_000, capability });
  return startSystem({
    home: options.home,
    gatewayPort: options.gatewayPort,
    images: { products: options.catalog, port: options.imagePort },
    localAzureConfig: {
      identityEndpoint: { throttling: { requestsPerWindow: 100_000, maxConcurrentRequests: 10_000 } },
      resources: {
        openAi: {
          name: 'oai-keyless-local',
          deployments: { 'gpt-4o-mini': deployment('gpt-4o-mini', 'chat'), 'text-embedding-3-small': deployment('text-embedding-3-small', 'embeddings') },
        },
      },
    },
    serviceEnv: { gateway: { RATE_LIMIT_PER_MINUTE: '1000000', ADDRESS_RATE_LIMIT_PER_MINUTE: '1000000' } },
    ...(options.nodeArgs ? { nodeArgs: options.nodeArgs } : {}),
  });
}
