// Soak: the whole system under a steady load of requests and catalog upserts for 30 minutes or more (not on CI),
// sampling the RSS and open handles of every process; reports each one's growth trend (least-squares slope over
// the second half), the requests by status, the token requests per host and the whole ledger. With
// --token-lifetime 60 the local Azure issues 60-second tokens, so every token is refreshed many times.
//
//   npx nx run-many -t build && npx node bench/chaos/soak.bench.ts [--minutes 30] [--sample-every 10] [--token-lifetime 60] [--replicas 2]
import { parseArgs } from 'node:util';

// The benches run against the built suite (./dist), typed by its source.
const { ChaosSuite } = (await import(new URL('./dist/index.js', import.meta.url).href)) as typeof import('./src/index.js');

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '30' }, 'sample-every': { type: 'string', default: '10' }, 'token-lifetime': { type: 'string' }, replicas: { type: 'string', default: '1' } },
});
const log = (line: string): void => void process.stderr.write(`[soak] ${line}\n`);
const tokenLifetime = values['token-lifetime'];
const suite = await ChaosSuite.start({
  log,
  system: { ...(tokenLifetime ? { localAzureConfig: { tokenLifetimeSeconds: Number(tokenLifetime) } } : {}), replicas: Number(values.replicas), onNotableLine: (line) => log(line) },
});
let report;
try {
  report = await suite.soak(Number(values.minutes), Number(values['sample-every']) * 1000);
} finally {
  await suite.stop();
}
process.stdout.write(`${JSON.stringify({ tokenLifetimeSeconds: tokenLifetime ? Number(tokenLifetime) : 86_400, ...report }, null, 2)}\n`);
process.exitCode = report.ok ? 0 : 1;
