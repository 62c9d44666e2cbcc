import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { BindOptions } from './listen.js';

/** Defaults of the port choice. */
export const stablePortDefaults = {
  /** Lowest port picked for a listener whose port is kept (below the range the OS uses for outgoing connections). */
  lowestPort: 20_000,
  /** Random candidates tried before falling back to a port the system picks. */
  attempts: 50,
} as const;

/**
 * The range the OS takes local ports of outgoing connections from (Linux: `ip_local_port_range`, default
 * 32768–60999; macOS and Windows: 49152–65535).
 */
export function ephemeralPortRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && high) return [low, high];
  } catch {
    // Not Linux.
  }
  return [49_152, 65_535];
}

/** Whether `port` can be bound right now where a listener with `bind` would bind it. */
export async function canBind(port: number, bind: BindOptions['bind']): Promise<boolean> {
  const hosts = bind === 'all' ? ['::'] : ['127.0.0.1', '::1'];
  for (const host of hosts) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'EADDRNOTAVAIL' || error.code === 'EAFNOSUPPORT'));
      server.listen({ port, host, exclusive: true, ipv6Only: host === '::1' }, () => server.close(() => resolve(true)));
    });
    if (!free) return false;
  }
  return true;
}

/**
 * A free port for a listener whose port will be kept across restarts: picked at random below the OS's range
 * for outgoing connections, so that while the listener is down no client's outgoing connection can take it
 * (a port 0 listener gets one from that very range). 0 — let the system pick — when that range leaves no room
 * below it or no candidate is free.
 */
export async function pickStablePort(bind: BindOptions['bind']): Promise<number> {
  const [ephemeralLow] = ephemeralPortRange();
  const high = Math.min(ephemeralLow, 65_536);
  if (high - stablePortDefaults.lowestPort < 1000) return 0;
  for (let attempt = 0; attempt < stablePortDefaults.attempts; attempt++) {
    const port = randomInt(stablePortDefaults.lowestPort, high);
    if (await canBind(port, bind)) return port;
  }
  return 0;
}

/** Waits up to `timeoutInMs` for `port` to be bindable (a client's short-lived outgoing connection may hold it). */
export async function waitUntilBindable(port: number, bind: BindOptions['bind'], timeoutInMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    if (await canBind(port, bind)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
