// The gateway fuzz, long version: 10,000 requests generated from the gateway's OpenAPI document (valid and broken)
// plus hostile ones (huge, malformed, mistyped bodies, unicode, path traversal, header floods, multipart abuse,
// missing and forged tokens, raw bytes), against the whole system. Prints JSON; exits 1 on any 5xx or if the
// gateway is not healthy afterwards.
//
//   npx nx run-many -t build && npx node bench/chaos/fuzz.bench.ts [--requests 10000] [--seed 1] [--concurrency 16]
import { parseArgs } from 'node:util';

// The benches run against the built suite (./dist), typed by its source.
const { ChaosSystem, fuzzGateway } = (await import(new URL('./dist/index.js', import.meta.url).href)) as typeof import('./src/index.js');

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' }, concurrency: { type: 'string', default: '16' } },
});
const log = (line: string): void => void process.stderr.write(`[fuzz] ${line}\n`);
const chaos = await ChaosSystem.start({ onNotableLine: () => undefined });
let report;
try {
  report = await fuzzGateway({
    gatewayUrl: chaos.system.gatewayUrl,
    token: () => chaos.gateway.bearer(),
    imageUrl: chaos.images.url('fuzz'),
    requests: Number(values.requests),
    seed: Number(values.seed),
    concurrency: Number(values.concurrency),
    log,
  });
  const gateway = chaos.system.processes.get('gateway')!.child;
  Object.assign(report, { gatewayAlive: gateway.exitCode === null && gateway.signalCode === null });
} finally {
  await chaos.stop();
}
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
process.exitCode = report.serverErrorCount === 0 && report.healthyAfter ? 0 : 1;
