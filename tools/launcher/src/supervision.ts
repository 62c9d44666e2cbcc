import type { ManagedProcess } from './processes.js';
import type { RunningSystem } from './system.js';

/**
 * What `npm start` does when one of its processes exits by itself (killed, crashed — not stopped by Ctrl-C), as docker
 * compose's `restart: unless-stopped` does: it starts that process again and says so. The local Azure comes back on
 * the same home (same endpoints, tenant and keys), so the running services reconnect by themselves; a service instance
 * comes back on its port. A process that cannot be started again is reported and left stopped (no restart loop); the
 * others keep running.
 *
 * @param say where the lines go (the console)
 * @param stopping whether the system is being stopped on purpose: its processes' exits are then expected
 */
export function superviseSystem(system: RunningSystem, say: (line: string) => void, stopping: () => boolean): void {
  for (const name of system.processes.keys()) watch(system, name, say, stopping);
}

function watch(system: RunningSystem, name: string, say: (line: string) => void, stopping: () => boolean): void {
  const running = system.processes.get(name)!;
  void running.exited.then(async () => {
    if (stopping()) return;
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
    watch(system, name, say, stopping);
  });
}

function howItExited(running: ManagedProcess): string {
  return running.child.signalCode ? `signal ${running.child.signalCode}` : `code ${running.child.exitCode}; its log: ${running.logFile}`;
}
