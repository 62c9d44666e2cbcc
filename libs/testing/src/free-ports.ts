import { createServer } from 'node:net';

/** Listens on `port` of 127.0.0.1 (0: any free one) and closes again: the port it got, or undefined when it is taken. */
function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => resolve(bound));
    });
  });
}

/** A port the system hands out for port 0 on 127.0.0.1, free a moment ago. */
async function anyFreePort(): Promise<number> {
  const port = await listenOnce(0);
  if (port === undefined) throw new Error('no port of 127.0.0.1 can be listened on');
  return port;
}

/**
 * The first of `count` adjacent ports on 127.0.0.1 (`port`, `port + 1`, …) that were all free a moment ago, for a
 * program that takes one port and uses its neighbours too (`npm start`: the gateway on `PORT`, the demo images on
 * `PORT + 1`). A free port's neighbour is often some connection's own port on a busy machine.
 *
 * Rules:
 * - A candidate is a port free for port 0 (`candidates`); it is taken when it and the `count - 1` ports after it are
 *   at most 65535 and can each be listened on; otherwise the next candidate is tried.
 *
 * @param candidates Where candidates come from. **Default**: ports the system hands out for port 0.
 * @example
 * const port = await freeAdjacentPorts(2); // PORT for `npm start`
 */
export async function freeAdjacentPorts(count: number, candidates: () => Promise<number> = anyFreePort): Promise<number> {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a whole number of ports, at least 1, not ${count}`);
  for (;;) {
    const port = await candidates();
    if (port + count - 1 <= 65_535 && (await allListenable(Array.from({ length: count }, (_, i) => port + i)))) return port;
  }
}

async function allListenable(ports: readonly number[]): Promise<boolean> {
  for (const port of ports) if ((await listenOnce(port)) === undefined) return false;
  return true;
}
