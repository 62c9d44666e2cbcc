// Before and after, paired in one run: a benchmark of this checkout ("current") against the same benchmark of an
// earlier commit ("baseline"), alternating rounds (baseline, current, baseline, …) so machine noise hits both
// alike; medians of the rounds.
//
//   npx nx run-many -t build
//   npx node bench/paired.bench.ts --baseline-ref <commit> [--rounds 3] -- <bench file> [its arguments]
//   npx node bench/paired.bench.ts --baseline <folder with a built checkout> -- bench/servicebus.bench.ts --quick
//
// Each round runs `<bench file>` of each tree in a child process (the baseline's own copy of the script, against
// its own build) and reads the last JSON line it prints. `--baseline-ref` exports that commit with `git archive`
// into $TMPDIR/keyless-bench-baseline-<sha>, runs `npm ci` and builds every project there (once; later runs reuse
// it). Prints, for every number in that JSON, the baseline and current medians and current / baseline, then one
// JSON line: { bench, rounds, baseline, current, ratio } with the same shape as the bench's own JSON.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const separator = process.argv.indexOf('--');
if (separator < 0 || !process.argv[separator + 1]) {
  throw new Error('usage: bench/paired.bench.ts (--baseline-ref <commit> | --baseline <folder>) [--rounds N] -- <bench file> [its arguments]');
}
const { values } = parseArgs({
  args: process.argv.slice(2, separator),
  options: { 'baseline-ref': { type: 'string' }, baseline: { type: 'string' }, rounds: { type: 'string', default: '3' } },
});
const [bench, ...benchArgs] = process.argv.slice(separator + 1) as [string, ...string[]];
const rounds = Number(values.rounds);

type Json = number | string | boolean | null | Json[] | { [key: string]: Json };

function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}): void {
  execFileSync(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
}

/** The baseline checkout: `--baseline` as given, or `--baseline-ref` exported, installed and built (once). */
function baselineRoot(): string {
  if (values.baseline) return resolve(values.baseline);
  const ref = values['baseline-ref'];
  if (!ref) throw new Error('give --baseline-ref <commit> or --baseline <built checkout> (see the header of this file)');
  const sha = execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], { cwd: repoRoot, encoding: 'utf8' }).trim();
  const root = join(tmpdir(), `keyless-bench-baseline-${sha.slice(0, 12)}`);
  const built = join(root, '.keyless-bench-built');
  if (!existsSync(built)) {
    process.stderr.write(`preparing the baseline ${sha.slice(0, 12)} in ${root} (npm ci and a build, once)…\n`);
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${sha} | tar -x -C '${root}'`], { cwd: repoRoot, stdio: 'inherit' });
    run('npm', ['ci', '--no-audit', '--no-fund'], root);
    run('npx', ['nx', 'run-many', '-t', 'build', '--skip-nx-cache', '--output-style=static'], root, { NX_DAEMON: 'false' });
    run('touch', [built], root);
  }
  return root;
}

/** Runs the bench of `root` once; its last JSON line. */
function runBench(root: string, name: string): Promise<Json> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [join(root, bench), ...benchArgs], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      const line = output
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      if (code !== 0 || !line) return reject(new Error(`${bench} of the ${name} tree exited with ${code}:\n${output.slice(-2000)}`));
      resolveRun(JSON.parse(line) as Json);
    });
  });
}

const median = (samples: number[]): number => [...samples].sort((a, b) => a - b)[Math.floor((samples.length - 1) / 2)]!;
const round = (value: number, digits = 3): number => Math.round(value * 10 ** digits) / 10 ** digits;

/** The median of each number across `samples` (same shape); non-numbers are taken from the first. */
function medianOf(samples: Json[]): Json {
  const first = samples[0]!;
  if (typeof first === 'number') return round(median(samples as number[]));
  if (Array.isArray(first)) return first.map((_, i) => medianOf(samples.map((s) => (s as Json[])[i]!)));
  if (first && typeof first === 'object') return Object.fromEntries(Object.keys(first).map((key) => [key, medianOf(samples.map((s) => (s as Record<string, Json>)[key]!))]));
  return first;
}

/** current / baseline for every number present in both. */
function ratioOf(baseline: Json, current: Json): Json {
  if (typeof baseline === 'number' && typeof current === 'number') return baseline === 0 ? null : round(current / baseline);
  if (baseline && current && typeof baseline === 'object' && typeof current === 'object' && !Array.isArray(baseline) && !Array.isArray(current)) {
    return Object.fromEntries(Object.keys(current).filter((key) => key in baseline).map((key) => [key, ratioOf(baseline[key]!, current[key]!)]));
  }
  return null;
}

function rows(baseline: Json, current: Json, path = ''): string[] {
  if (typeof current === 'number') {
    // A number the baseline's bench does not print (added since) shows as "–".
    const before = typeof baseline === 'number' ? baseline : undefined;
    const ratio = before === undefined || before === 0 ? '–' : String(round(current / before));
    return [`  ${path.padEnd(60)} baseline ${String(before ?? '–').padStart(10)}  current ${String(current).padStart(10)}  × ${ratio}`];
  }
  if (current && baseline && typeof current === 'object' && typeof baseline === 'object' && !Array.isArray(current)) {
    return Object.keys(current).flatMap((key) => rows((baseline as Record<string, Json>)[key] ?? null, current[key]!, path ? `${path}.${key}` : key));
  }
  return [];
}

const trees = [
  { name: 'baseline', root: baselineRoot() },
  { name: 'current', root: repoRoot },
] as const;
const samples: Record<'baseline' | 'current', Json[]> = { baseline: [], current: [] };
for (let r = 0; r < rounds; r++) {
  for (const tree of trees) {
    process.stderr.write(`round ${r + 1}/${rounds}: ${bench} of the ${tree.name} tree\n`);
    const result = await runBench(tree.root, tree.name);
    process.stderr.write(`${JSON.stringify(result)}\n`);
    samples[tree.name].push(result);
  }
}
const baseline = medianOf(samples.baseline);
const current = medianOf(samples.current);
process.stdout.write(`\n${bench} ${benchArgs.join(' ')}: baseline ${trees[0].root} vs current, median of ${rounds} paired round${rounds === 1 ? '' : 's'}\n`);
process.stdout.write(`${rows(baseline, current).join('\n')}\n\n`);
process.stdout.write(`${JSON.stringify({ bench, args: benchArgs, rounds, baseline, current, ratio: ratioOf(baseline, current) })}\n`);
