import type { ChildProcess } from 'node:child_process';
import type { ManagedProcess } from './processes.js';
import { superviseSystem, type SupervisedSystem } from './supervision.js';

/** A process that has already exited with `code` (what a service crashing at start looks like to the launcher). */
function exitedProcess(name: string, code: number): ManagedProcess {
  return { name, child: { exitCode: code, signalCode: null } as unknown as ChildProcess, logFile: `/tmp/logs/${name}.log`, exited: Promise.resolve(code), tail: () => '' };
}

/** A system whose `name` crashes at once every time it is started again. */
function crashingSystem(name: string): { system: SupervisedSystem; restarts: () => number } {
  let restarts = 0;
  const processes = new Map<string, ManagedProcess>([[name, exitedProcess(name, 1)]]);
  const system = {
    processes,
    restartLocalAzure: async () => {
      restarts++;
      processes.set(name, exitedProcess(name, 1));
    },
    restartService: async () => {
      restarts++;
      processes.set(name, exitedProcess(name, 1));
    },
  } as unknown as SupervisedSystem;
  return { system, restarts: () => restarts };
}

describe('superviseSystem', () => {
  it.each(['gateway', 'local-azure'])('leaves %s stopped, and says why, once it crashes at start several times in a row', async (name) => {
    const { system, restarts } = crashingSystem(name);
    const lines: string[] = [];
    const gaveUp = new Promise<void>((resolve) =>
      superviseSystem(
        system,
        (line) => {
          lines.push(line);
          if (line.startsWith('✗')) resolve();
        },
        () => false,
        { quickExitInMs: 60_000, maxQuickExits: 3 },
      ),
    );
    await gaveUp;
    expect(restarts()).toBe(2);
    expect(lines.at(-1)).toBe(`✗ ${name} exited (code 1) 3 times in a row within 60 s of starting: it is left stopped; its log: /tmp/logs/${name}.log\nThe other processes keep running; Ctrl-C stops them.`);
  });

  it('starts again a process that ran past the quick-exit window, however often it dies', async () => {
    const { system, restarts } = crashingSystem('vision');
    const lines: string[] = [];
    const restart = system.restartService.bind(system);
    const tenth = new Promise<void>((resolve) => {
      system.restartService = async (name) => {
        await restart(name);
        if (restarts() === 10) resolve();
      };
    });
    // Every exit counts as one after a long run; stopping after the tenth restart ends the supervision.
    superviseSystem(system, (line) => lines.push(line), () => restarts() >= 10, { quickExitInMs: 0, maxQuickExits: 3 });
    await tenth;
    expect(lines.filter((line) => line.startsWith('✗'))).toEqual([]);
  });
});
