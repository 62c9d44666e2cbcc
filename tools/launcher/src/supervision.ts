import type { ManagedProcess } from './processes.js';
import type { RunningSystem } from './system.js';

/** Defaults of {@link superviseSystem}'s crash-loop guard. */
export const supervisionDefaults = {
  /** A process that exits this soon after it (again) ran counts as crashing at start, in ms. */
  quickExitInMs: 10_000,
  /**
   * Crashes at start in a row after which a process is left stopped: one that fails the same way each time (a bad
   * setting, a corrupt file) would otherwise be started again for ever, two console lines and a start-up's CPU each
   * time, burying the line that says why.
   */
  maxQuickExits: 5,
};

/** What the system under supervision must offer (a {@link RunningSystem}; a double in the unit spec). */
export type SupervisedSystem = Pick<RunningSystem, 'processes' | 'restartLocalAzure' | 'restartService'>;

/**
 * What `npm start` does when one of its processes exits by itself (killed, crashed — not stopped by Ctrl-C), as docker
 * compose's `restart: unless-stopped` does: it starts that process again and says so. The local Azure comes back on
 * the same home (same endpoints, tenant and keys), so the running services reconnect by themselves; a service instance
 * comes back on its port. A process that cannot be started again, or that exits within
 * {@link supervisionDefaults.quickExitInMs} of running {@link supervisionDefaults.maxQuickExits} times in a row, is
 * reported and left stopped (no restart loop); the others keep running.
 *
 * @param say where the lines go (the console)
 * @param stopping whether the system is being stopped on purpose: its processes' exits are then expected
 */
export function superviseSystem(system: SupervisedSystem, say: (line: string) => void, stopping: () => boolean, guard = supervisionDefaults): void {
  for (const name of system.processes.keys()) watch(system, name, say, stopping, guard, 0);
}

function watch(system: SupervisedSystem, name: string, say: (line: string) => void, stopping: () => boolean, guard: typeof supervisionDefaults, quickExits: number): void {
  const running = system.processes.get(name)!;
  const since = performance.now();
  void running.exited.then(async () => {
    if (stopping()) return;
    const quick = performance.now() - since < guard.quickExitInMs ? quickExits + 1 : 0;
    if (quick >= guard.maxQuickExits) {
      say(`✗ ${name} exited (${exitOf(running)}) ${quick} times in a row within ${guard.quickExitInMs / 1000} s of starting: it is left stopped; its log: ${running.logFile}\nThe other processes keep running; Ctrl-C stops them.`);
      return;
    }
    say(`${name} exited (${howItExited(running)}); starting it again${name === 'local-azure' ? ' on the same home (the services reconnect by themselves)' : ''}…`);
    const started = performance.now();
    try {
      if (name === 'local-azure') await system.restartLocalAzure();
      else await system.restartService(name);
    } catch (error) {
      if (!stopping()) say(`✗ ${name} did not start again: ${(error as Error).message}\nThe other processes keep running; Ctrl-C stops them.`);
      return;
    }
    if (stopping()) return;
    say(`✓ ${name} runs again (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    watch(system, name, say, stopping, guard, quick);
  });
}

function howItExited(running: ManagedProcess): string {
  return running.child.signalCode ? exitOf(running) : `${exitOf(running)}; its log: ${running.logFile}`;
}

function exitOf(running: ManagedProcess): string {
  return running.child.signalCode ? `signal ${running.child.signalCode}` : `code ${running.child.exitCode}`;
}
