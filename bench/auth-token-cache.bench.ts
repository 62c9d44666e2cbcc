// Benchmark of @keyless/auth's token cache (run against the built packages):
//   npx nx run-many -t build && npx node bench/auth-token-cache.bench.ts
// 1. Cost of one warm token lookup next to handing out a static token (the floor: one resolved promise).
// 2. Token requests per 10,000 calls per audience, in bursts of concurrent callers starting cold, read from
//    the local Azure's sign-in log; next to the SDK's own cache (ManagedIdentityCredential alone) for comparison.
import { ManagedIdentityCredential } from '@azure/identity';
import { AzureIdentityService } from '@keyless/auth';
import { resolveAuthOptions } from '@keyless/auth/diagnostics';
import { startTestAzure } from '@keyless/local-azure/testing';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

const lookups = 1_000_000;
const callsPerAudience = 10_000;
const burst = 100;
const silent = { log: () => undefined, error: () => undefined, warn: () => undefined, debug: () => undefined, verbose: () => undefined, fatal: () => undefined };

async function nsPerCall(call: () => Promise<unknown>, count: number): Promise<number> {
  for (let i = 0; i < 10_000; i++) await call();
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await call();
  return Number(process.hrtime.bigint() - started) / count;
}

async function median(runs: number, measure: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push(await measure());
  return values.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

// The SDK alone sends up to one request per concurrent cold caller (100 at once): a VM's IMDS would throttle it past 5
// at once, and so would the local Azure by default. The count is what this measures, so the limit is lifted.
const test = await startTestAzure({ config: { identityEndpoint: { throttling: { requestsPerWindow: 100_000, maxConcurrentRequests: 10_000 } } } });
try {
  const env = test.enterHost('recommendation');
  const signIns = (resource: string): number => test.azure.auditLog.signIns({ limit: 1_000_000 }).filter((s) => s.resource === resource).length;

  // 2. Token requests per 10,000 calls (first: every audience cold).
  const identity = new AzureIdentityService(resolveAuthOptions({ clientId: env.AZURE_CLIENT_ID, logger: silent }));
  const audiences = [
    ['cognitiveServices', 'https://cognitiveservices.azure.com'],
    ['serviceBus', 'https://servicebus.azure.net/'],
    ['keyVault', 'https://vault.azure.net'],
    ['api://keyless-gateway', 'api://keyless-gateway'],
  ] as const;
  const requests: Record<string, number> = {};
  for (const [audience, resource] of audiences) {
    const provider = identity.tokenProvider(audience);
    for (let done = 0; done < callsPerAudience; done += burst) await Promise.all(Array.from({ length: burst }, () => provider()));
    requests[audience] = signIns(resource);
  }
  // The SDK's own cache on an audience the library has not touched, same load.
  const sdk = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
  for (let done = 0; done < callsPerAudience; done += burst) await Promise.all(Array.from({ length: burst }, () => sdk.getToken('https://storage.azure.com/.default')));
  const sdkRequests = signIns('https://storage.azure.com');

  // 1. Warm lookup vs a static token.
  const token = await identity.tokenProvider('cognitiveServices')();
  const staticProvider = (): Promise<string> => Promise.resolve(token);
  const provider = identity.tokenProvider('cognitiveServices');
  const credential = identity.credential;
  const staticNs = await median(5, () => nsPerCall(staticProvider, lookups));
  const providerNs = await median(5, () => nsPerCall(provider, lookups));
  const credentialNs = await median(5, () => nsPerCall(() => credential.getToken('https://cognitiveservices.azure.com/.default'), lookups));
  const sdkNs = await median(3, () => nsPerCall(() => sdk.getToken('https://storage.azure.com/.default'), 20_000));
  identity.close();

  // Same lookup with a real OpenTelemetry SDK meter provider counting cache hits.
  const metered = new AzureIdentityService(resolveAuthOptions({ clientId: env.AZURE_CLIENT_ID, logger: silent, meterProvider: new MeterProvider() }));
  const meteredProvider = metered.tokenProvider('cognitiveServices');
  await meteredProvider();
  const meteredNs = await median(5, () => nsPerCall(meteredProvider, lookups));
  metered.close();

  const row = (label: string, ns: number): string => `  ${label.padEnd(64)} ${ns.toFixed(0).padStart(7)} ns/op   ${(ns / staticNs).toFixed(2).padStart(6)} × static`;
  console.log(`@keyless/auth token cache — Node ${process.version}, ${lookups.toLocaleString('en')} lookups per run, median of 5 runs`);
  console.log(row('static token (Promise.resolve)', staticNs));
  console.log(row('tokenProvider(), warm (no meter provider)', providerNs));
  console.log(row('tokenProvider(), warm (OpenTelemetry SDK meter provider)', meteredNs));
  console.log(row('credential.getToken(scope), warm (what Azure SDK clients call)', credentialNs));
  console.log(row('ManagedIdentityCredential.getToken, warm (MSAL cache alone)', sdkNs));
  console.log(`Token requests per ${callsPerAudience.toLocaleString('en')} calls (bursts of ${burst} concurrent callers, cold start):`);
  for (const [audience] of audiences) console.log(`  ${audience.padEnd(64)} ${String(requests[audience]).padStart(7)}`);
  console.log(`  ${'ManagedIdentityCredential alone (storage audience)'.padEnd(64)} ${String(sdkRequests).padStart(7)}`);
} finally {
  await test.stop();
}
