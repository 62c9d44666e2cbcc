import { ChaosSystem, fuzzGateway } from '../src/index.js';

// The gateway fuzz, short version (the long one, 10,000 requests: bench/chaos/fuzz.bench.ts). Requests generated
// from the gateway's OpenAPI document, valid and broken, plus hostile ones, against the running system.
describe('The gateway under fuzzed requests (short)', () => {
  let chaos: ChaosSystem;

  beforeAll(async () => {
    chaos = await ChaosSystem.start();
  }, 180_000);

  afterAll(async () => {
    await chaos?.stop();
  }, 60_000);

  it('answers 1,500 generated and hostile requests without a single 5xx, and stays healthy', async () => {
    const report = await fuzzGateway({
      gatewayUrl: chaos.system.gatewayUrl,
      token: () => chaos.gateway.bearer(),
      imageUrl: chaos.images.url('fuzz'),
      requests: 1_500,
      seed: 15,
      concurrency: 8,
    });
    process.stderr.write(`[fuzz] ${JSON.stringify({ seed: report.seed, requests: report.requests, byStatus: report.byStatus, healthyAfter: report.healthyAfter })}\n`);
    expect({ serverErrors: report.serverErrors, count: report.serverErrorCount }).toEqual({ serverErrors: [], count: 0 });
    expect(report.requests).toBe(1_500);
    expect(report.healthyAfter).toBe(true);
    const gateway = chaos.system.processes.get('gateway')!.child;
    expect({ exitCode: gateway.exitCode, signal: gateway.signalCode }).toEqual({ exitCode: null, signal: null });
  }, 300_000);
});
