import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What `npm` was started with by a command typed into a shell: its arguments and the variables asked about. */
export interface NpmInvocation {
  /** npm's arguments (`['run', '-s', 'token']`). */
  args: string[];
  /** Each variable asked about, as npm's environment had it (undefined when unset). */
  env: Record<string, string | undefined>;
}

/**
 * Runs `command` — one a program printed for its user to run next, e.g. `LOCAL_AZURE_HOME='/tmp/a b' npm run -s token`
 * — in a POSIX shell (`/bin/sh -c`), exactly as printed, with `npm` on the PATH replaced by a stub that records what
 * it was started with and does nothing else. It shows that the printed command reaches npm with the arguments and
 * settings meant, however the shell reads quotes, spaces and `$`, without running npm's script. `variables` are
 * left out of the shell's own environment, so only what the command sets reaches npm.
 *
 * @throws {Error} when the shell fails (a syntax error in the command) or npm is not started.
 * @example
 * const { args, env } = npmAsTyped("LOCAL_AZURE_HOME='/tmp/a b' npm start", ['LOCAL_AZURE_HOME']);
 * // args: ['start'], env: { LOCAL_AZURE_HOME: '/tmp/a b' }
 */
export function npmAsTyped(command: string, variables: readonly string[]): NpmInvocation {
  const bin = mkdtempSync(join(tmpdir(), 'npm-as-typed-'));
  try {
    const record = join(bin, 'invocation.json');
    // The stub hands its arguments and environment to Node, which writes them as JSON: no shell quoting to get wrong.
    const stub = join(bin, 'npm');
    writeFileSync(stub, `#!/bin/sh\nexec "${process.execPath}" -e 'require("fs").writeFileSync(process.env.NPM_AS_TYPED_RECORD, JSON.stringify({ args: process.argv.slice(1), env: process.env }))' -- "$@"\n`);
    chmodSync(stub, 0o755);
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !variables.includes(name)));
    execFileSync('/bin/sh', ['-c', command], { env: { ...env, PATH: `${bin}:${process.env.PATH ?? ''}`, NPM_AS_TYPED_RECORD: record }, stdio: 'pipe' });
    if (!existsSync(record)) throw new Error(`the command did not start npm: ${command}`);
    const invocation = JSON.parse(readFileSync(record, 'utf8')) as { args: string[]; env: Record<string, string> };
    return { args: invocation.args, env: Object.fromEntries(variables.map((name) => [name, invocation.env[name]])) };
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}
