// Embeddings throughput and latency of the local Azure OpenAI for a 10,000-product catalog, through the
// unmodified openai SDK with managed-identity tokens, against the real CLI (`local-azure start`) running in
// its own process. Build first: `npx nx run-many -t build`, then `npx node bench/openai-embeddings.bench.ts`.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBearerTokenProvider, ManagedIdentityCredential } from '@azure/identity';
import { AzureOpenAI } from 'openai';
import { LocalAzureProcess, trustCa } from '@keyless/local-azure/testing';

const catalogSize = 10_000;
const runs = [
  { batchSize: 16, concurrency: 1 },
  { batchSize: 100, concurrency: 1 },
  { batchSize: 100, concurrency: 4 },
  { batchSize: 500, concurrency: 2 },
];

const nouns = ['running shoe', 'trail sneaker', 'hiking boot', 'rain jacket', 'fleece hoodie', 'coffee grinder', 'espresso machine', 'ceramic mug', 'yoga mat', 'water bottle', 'backpack', 'headphones', 'desk lamp', 'wool socks', 'camping tent'];
const adjectives = ['lightweight', 'waterproof', 'insulated', 'breathable', 'compact', 'premium', 'recycled', 'wireless', 'stainless', 'handmade'];
const colours = ['red', 'blue', 'green', 'black', 'white', 'yellow', 'gray', 'orange'];
const categories = ['footwear', 'apparel', 'kitchen', 'outdoor', 'electronics', 'home', 'fitness'];

/** A deterministic catalog: name, category and a one-line description per product. */
function catalog(): string[] {
  return Array.from({ length: catalogSize }, (_, i) => {
    const noun = nouns[i % nouns.length]!;
    const adjective = adjectives[(i * 7) % adjectives.length]!;
    const colour = colours[(i * 3) % colours.length]!;
    return `${adjective} ${colour} ${noun} #${i}. Category: ${categories[i % categories.length]}. A ${adjective} ${noun} in ${colour}, made for everyday use; tags: ${noun.split(' ')[0]}, ${colour}, ${adjective}.`;
  });
}

async function startLocalAzure(home: string): Promise<{ env: Record<string, string>; stop: () => Promise<void> }> {
  const azure = new LocalAzureProcess({
    home,
    config: { resources: { openAi: { name: 'oai-keyless-local', deployments: { 'text-embedding-3-small': { model: 'text-embedding-3-small', tokensPerMinute: 1_000_000_000 } } } } },
  });
  // Resolves once `status` says it runs (the local Azure's ready signal).
  await azure.start();
  return { env: azure.hostEnv('recommendation'), stop: () => azure.stop() };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'bench-openai-'));
  const azure = await startLocalAzure(home);
  try {
    Object.assign(process.env, azure.env);
    trustCa(readFileSync(azure.env.NODE_EXTRA_CA_CERTS!, 'utf8'));
    const credential = new ManagedIdentityCredential({ clientId: azure.env.AZURE_CLIENT_ID! });
    const client = new AzureOpenAI({ azureADTokenProvider: getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default'), maxRetries: 0 });
    const deployment = azure.env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT!;
    const texts = catalog();
    await client.embeddings.create({ model: deployment, input: texts.slice(0, 50) }); // warm-up: token, tokenizer, JIT

    console.log(`Local Azure OpenAI embeddings, ${catalogSize} products (${deployment}, 1536 dimensions, base64 on the wire as the SDK sends by default)`);
    console.log('batch  concurrency  requests/s  embeddings/s  p50 ms  p99 ms  total s');
    for (const { batchSize, concurrency } of runs) {
      const batches: string[][] = [];
      for (let i = 0; i < texts.length; i += batchSize) batches.push(texts.slice(i, i + batchSize));
      const latencies: number[] = [];
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < batches.length) {
            const batch = batches[next++]!;
            const t0 = performance.now();
            const response = await client.embeddings.create({ model: deployment, input: batch });
            latencies.push(performance.now() - t0);
            if (response.data.length !== batch.length) throw new Error('short response');
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      latencies.sort((a, b) => a - b);
      console.log(
        [
          String(batchSize).padStart(5),
          String(concurrency).padStart(11),
          (batches.length / seconds).toFixed(1).padStart(10),
          (texts.length / seconds).toFixed(0).padStart(12),
          percentile(latencies, 50).toFixed(1).padStart(6),
          percentile(latencies, 99).toFixed(1).padStart(6),
          seconds.toFixed(2).padStart(7),
        ].join('  '),
      );
    }
  } finally {
    await azure.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

await main();
