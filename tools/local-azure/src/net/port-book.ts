import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../config/local-azure-config.js';

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
 * The ports of the local Azure's listeners, kept in `$LOCAL_AZURE_HOME/ports.json` so that a restarted
 * local Azure serves the same endpoints: env files stay true and connected clients find it again.
 *
 * Rules:
 * - A configured port other than 0 wins ({@link choose} → `configured`).
 * - Otherwise the port the listener had at its last start is used again (`kept`).
 * - Otherwise 0: the system picks a free port (`free`).
 * - Whatever port a listener ends up on is recorded under its name ({@link record}) and written with {@link save};
 *   a listener added later (a new data plane) gets its entry the first time it starts.
 */
export class PortBook {
  private readonly ports: Record<string, number>;

  private constructor(readonly file: string, ports: Record<string, number>) {
    this.ports = ports;
  }

  /** Reads the book; a missing or unreadable file is an empty book (every listener picks a free port). */
  static load(file: string): PortBook {
    if (!existsSync(file)) return new PortBook(file, {});
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      const entries = parsed && typeof parsed === 'object' ? Object.entries(parsed as Record<string, unknown>) : [];
      return new PortBook(file, Object.fromEntries(entries.filter((e): e is [string, number] => Number.isInteger(e[1]) && (e[1] as number) > 0 && (e[1] as number) < 65536)));
    } catch {
      return new PortBook(file, {});
    }
  }

  /** The port listener `name` should bind, given its configured port (0 or absent: not configured). */
  choose(name: string, configured: number | undefined): PortChoice {
    if (configured) return { port: configured, source: 'configured' };
    const kept = this.ports[name];
    return kept ? { port: kept, source: 'kept' } : { port: 0, source: 'free' };
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
