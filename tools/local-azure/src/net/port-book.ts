import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../config/local-azure-config.js';
import type { BindOptions } from './listen.js';
import { pickStablePort, waitUntilBindable } from './stable-port.js';

const defaults = {
  /**
   * How long a configured or kept port may be busy before the start fails: a client that tried to reach the
   * stopped local Azure may hold it for a moment as the local end of its own connection.
   */
  busyPortWaitInMs: 3_000,
};

/** Where a listener's port came from: the configuration, an earlier start, or the system (a free port). */
export type PortSource = 'configured' | 'kept' | 'free';

/** The port a listener binds, and why. */
export interface PortChoice {
  port: number;
  source: PortSource;
}

/**
 * A listener's port is taken by another process. The message names the listener, the port, where the
 * port came from and what to do.
 */
export class PortInUseError extends ConfigError {
  constructor(
    readonly listener: string,
    readonly port: number,
    readonly source: PortSource,
    file: string,
    options?: { cause?: unknown },
  ) {
    const where =
      source === 'configured'
        ? `network.ports.${listener} in the configuration`
        : `kept in ${file} since an earlier start, so that env files and running clients keep their endpoints`;
    const fix =
      source === 'configured'
        ? `Stop the process that holds it (\`lsof -i :${port}\` names it), or configure another port (0 picks a free one).`
        : `Stop the process that holds it (\`lsof -i :${port}\` names it), or set network.ports.${listener} in a configuration file (--config), ` +
          `or delete ${file} to pick new free ports (the env files then change: restart the services that read them).`;
    super(`Port ${port} of the ${listener} listener (${where}) is in use by another process. ${fix}`, options);
  }
}

/**
 * How a listener with neither a configured nor a kept port gets one: `stable` — a free port below the OS's range for
 * outgoing connections ({@link pickStablePort}), which a restart can bind again; `system` — port 0, the OS picks.
 */
export type NewPortChoice = 'stable' | 'system';

/**
 * The ports of the local Azure's listeners, kept in `$LOCAL_AZURE_HOME/ports.json` so that a restarted
 * local Azure serves the same endpoints: env files stay true and connected clients find it again.
 *
 * Rules:
 * - A configured port other than 0 wins ({@link choose} → `configured`).
 * - Otherwise the port the listener had at its last start is used again (`kept`).
 * - Otherwise a free port (`free`), picked below the OS's range for outgoing connections ({@link reserve}), so
 *   that no client's connection can take it while the local Azure is stopped (or by the OS, when the book was
 *   loaded with `newPorts: 'system'`).
 * - A configured or kept port that is busy is waited for a moment, then refused with {@link PortInUseError}.
 * - Whatever port a listener ends up on is recorded under its name ({@link record}) and written with {@link save};
 *   a listener added later (a new data plane) gets its entry the first time it starts.
 */
export class PortBook {
  private readonly ports: Record<string, number>;

  private constructor(
    readonly file: string,
    ports: Record<string, number>,
    private readonly newPorts: NewPortChoice,
  ) {
    this.ports = ports;
  }

  /**
   * Reads the book; a missing or unreadable file is an empty book (every listener picks a free port, the
   * `newPorts` way: see {@link NewPortChoice}).
   */
  static load(file: string, newPorts: NewPortChoice = 'stable'): PortBook {
    if (!existsSync(file)) return new PortBook(file, {}, newPorts);
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      const entries = parsed && typeof parsed === 'object' ? Object.entries(parsed as Record<string, unknown>) : [];
      return new PortBook(file, Object.fromEntries(entries.filter((e): e is [string, number] => Number.isInteger(e[1]) && (e[1] as number) > 0 && (e[1] as number) < 65536)), newPorts);
    } catch {
      return new PortBook(file, {}, newPorts);
    }
  }

  /** The port listener `name` should bind, given its configured port (0 or absent: not configured). */
  choose(name: string, configured: number | undefined): PortChoice {
    if (configured) return { port: configured, source: 'configured' };
    const kept = this.ports[name];
    return kept ? { port: kept, source: 'kept' } : { port: 0, source: 'free' };
  }

  /**
   * The port listener `name` binds now: as {@link choose} says, with a free port picked ({@link pickStablePort})
   * and a configured or kept one waited for while busy.
   *
   * @throws {PortInUseError} when a configured or kept port stays busy.
   */
  async reserve(name: string, configured: number | undefined, bind: BindOptions['bind']): Promise<PortChoice> {
    const choice = this.choose(name, configured);
    if (choice.source === 'free') return { port: this.newPorts === 'stable' ? await pickStablePort(bind) : 0, source: 'free' };
    if (!(await waitUntilBindable(choice.port, bind, defaults.busyPortWaitInMs))) throw new PortInUseError(name, choice.port, choice.source, this.file);
    return choice;
  }

  /** Notes the port listener `name` is bound to. */
  record(name: string, port: number): void {
    this.ports[name] = port;
  }

  /** Every recorded port, by listener name. */
  entries(): Record<string, number> {
    return { ...this.ports };
  }

  /** Writes the book (atomically). */
  save(): void {
    writeFileSync(`${this.file}.tmp`, `${JSON.stringify(this.ports, null, 2)}\n`);
    renameSync(`${this.file}.tmp`, this.file);
  }
}
