// Where a process's CPU time goes, per stage of the chain, from V8 CPU profiles (`--cpu-prof`).
//
//   npx node bench/gateway-similar.bench.ts --requests 1500 --cpu-prof /tmp/profiles 2> /tmp/bench.err
//   npx node bench/profile-stages.ts --window "$(grep 'profile window chain' /tmp/bench.err | cut -d' ' -f4-)" /tmp/profiles/*.cpuprofile
//
// `--window "<from> <to>"` (µs on the monotonic clock, as the benches print it) keeps only the samples taken
// during one measurement. Each sample is attributed to the first frame, from the leaf up, that names a stage
// (zod or contracts → validation, jose or the caller guard → caller authentication, @azure/service-bus or rhea →
// AMQP, …); frames of Node itself are passed through to their caller. V8 samples wall time: on a busy machine a
// process waiting for a core looks busy, so compare shares, not milliseconds. Prints a table per profile and one
// JSON line.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals: files } = parseArgs({ allowPositionals: true, options: { window: { type: 'string' } } });
const [from, to] = (values.window ?? `0 ${Number.MAX_SAFE_INTEGER}`).trim().split(/\s+/).map(Number) as [number, number];

/** Stages by the frame's function name and script URL, first match wins. */
const stages: [RegExp, string][] = [
  [/^\(garbage collector\) /, 'GC'],
  [/^\(program\) /, 'V8 and runtime'],
  [/^\(idle\) /, 'idle'],
  [/caller-token|caller-auth|tenant-signing|\/jose\//, 'caller authentication'],
  [/\/zod\/|request-validation|libs\/contracts|dispatch\.js|reply\.js/, 'validation'],
  [/@opentelemetry|tracing\.js|metrics\.js|telemetry\.js|http-tracing/, 'spans and metrics'],
  [/pino|logger/, 'logging'],
  [/local-azure\/dist\/(servicebus|rbac|guard)/, 'broker'],
  [/local-azure\/dist\/openai|gpt-tokenizer/, 'local OpenAI (explanation)'],
  [/local-azure\/dist\//, 'local Azure, other'],
  [/vector-index|recommender\.service|catalog\.store|catalog\/postgres/, 'ranking'],
  [/explanations\.service|embeddings\.service|\/openai\/|undici|@azure\/identity|libs\/auth/, 'explanation (OpenAI client)'],
  [/libs\/messaging\/dist\/server/, 'server dispatch'],
  [/libs\/messaging\/dist\/client/, 'bus client'],
  [/@azure\/service-bus|@azure\/core-amqp|rhea|@azure\/core/, 'AMQP (SDK, rhea)'],
  [/products\.controller|recommendation\.handlers/, 'handler'],
  [/express|\/router\/|body-parser|finalhandler|on-finished|accepts|node:_http|problem-details|client-address/, 'HTTP'],
  [/@nestjs|rxjs|reflect-metadata/, 'Nest pipeline'],
];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const summary: Record<string, { busyInMs: number; shares: Record<string, number> }> = {};
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const stageOf = new Map<number, string>();
  const classify = (id: number): string => {
    let stage = stageOf.get(id);
    if (stage) return stage;
    stage = 'sockets, timers, event loop';
    for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
      const { functionName, url } = nodes.get(at)!.callFrame;
      const match = stages.find(([pattern]) => pattern.test(`${functionName} ${url}`));
      if (match) {
        stage = match[1];
        break;
      }
    }
    stageOf.set(id, stage);
    return stage;
  };
  const totals = new Map<string, number>();
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i]!;
    if (time < from || time > to) continue;
    const stage = classify(profile.samples[i]!);
    totals.set(stage, (totals.get(stage) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  const all = [...totals.values()].reduce((a, b) => a + b, 0);
  const busy = all - (totals.get('idle') ?? 0);
  totals.delete('idle');
  const rows = [...totals].sort((a, b) => b[1] - a[1]);
  process.stdout.write(`${basename(file)}: busy ${(busy / 1000).toFixed(0)} ms of ${(all / 1000).toFixed(0)} ms (${((100 * busy) / all).toFixed(0)} % of a core)\n`);
  for (const [stage, us] of rows) process.stdout.write(`  ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${stage}\n`);
  summary[basename(file)] = { busyInMs: Math.round(busy / 1000), shares: Object.fromEntries(rows.map(([stage, us]) => [stage, Math.round((1000 * us) / busy) / 1000])) };
}
process.stdout.write(`${JSON.stringify(summary)}\n`);
