// The chaos suite, long version: the whole system (local Azure + services as processes) under a steady load of
// requests and catalog upserts; for each scenario inject the fault, hold it, heal it, and report requests by
// status, the ledger (sent / acknowledged / handled / applied / lost / applied twice), the recovery time and
// whether any process needed a restart. Prints one JSON document; exits 1 if a goal is missed.
//
//   npx nx run-many -t build && npx node bench/chaos/chaos.bench.ts [--hold 15000] [--only "openai 429,SIGKILL vision"] [--burst 10000] [--replicas 2]
import { parseArgs } from 'node:util';
import type { ScenarioReport } from './src/index.js';

// The benches run against the built suite (./dist), typed by its source.
const { allScenarios, ChaosSuite, summarizeScenario } = (await import(new URL('./dist/index.js', import.meta.url).href)) as typeof import('./src/index.js');

const { values } = parseArgs({
  options: {
    hold: { type: 'string', default: '15000' },
    warmup: { type: 'string', default: '3000' },
    only: { type: 'string' },
    burst: { type: 'string', default: '10000' },
    replicas: { type: 'string', default: '1' },
    'keep-home': { type: 'boolean', default: false },
  },
});
const only = values.only?.split(',').map((name) => name.trim());
const scenarios = allScenarios(Number(values.burst)).filter((scenario) => !only || only.some((name) => scenario.name.startsWith(name)));
if (scenarios.length === 0) throw new Error(`no scenario named ${values.only}; known: ${allScenarios().map((s) => s.name).join(', ')}`);

const log = (line: string): void => void process.stderr.write(`[chaos] ${line}\n`);
const suite = await ChaosSuite.start({
  holdInMs: Number(values.hold),
  warmupInMs: Number(values.warmup),
  log,
  system: { keepHome: values['keep-home'], replicas: Number(values.replicas), onNotableLine: (line) => log(line) },
});
const reports: ScenarioReport[] = [];
let total;
try {
  for (const scenario of scenarios) reports.push(await suite.run(scenario));
  total = await suite.finalCheck();
} finally {
  await suite.stop();
}
const failed = reports.filter((r) => !r.ok).map((r) => r.scenario);
if (total.lost > 0 || total.appliedTwice > 0) failed.push('(whole ledger)');
process.stdout.write(`${JSON.stringify({ ok: failed.length === 0, failed, total, summary: reports.map(summarizeScenario), scenarios: reports }, null, 2)}\n`);
process.exitCode = failed.length ? 1 : 0;
