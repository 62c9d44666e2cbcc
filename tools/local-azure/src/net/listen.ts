import type { AddressInfo, Server } from 'node:net';

/** Where a listener binds. */
export interface BindOptions {
  /** Port; 0 picks a free one. Default: 0. */
  port?: number;
  /**
   * `loopback` binds 127.0.0.1 and ::1 on the same port (so `localhost` works whichever family it
   * resolves to); `all` binds every interface (containers). Default: `loopback`.
   */
  bind?: 'loopback' | 'all';
}

/** A bound listener: one or two servers sharing a port. */
export interface BoundListener {
  port: number;
  close(): Promise<void>;
}

/**
 * Binds servers created by `create` as described by `options`. With `loopback`, the IPv4 server
 * picks the port and the IPv6 one joins it; if IPv6 loopback is missing, IPv4 alone is kept.
 */
export async function listen(create: () => Server, options: BindOptions = {}): Promise<BoundListener> {
  const wanted = options.port ?? 0;
  if (options.bind === 'all') {
    const server = create();
    await listenOn(server, wanted, '::');
    return bound([server]);
  }
  // With port 0, the IPv6 port may already be taken by someone else: retry with a new port.
  for (let attempt = 0; ; attempt++) {
    const v4 = create();
    await listenOn(v4, wanted, '127.0.0.1');
    const port = (v4.address() as AddressInfo).port;
    const v6 = create();
    try {
      await listenOn(v6, port, '::1');
      return bound([v4, v6]);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') return bound([v4]);
      await closeServer(v4);
      if (code !== 'EADDRINUSE' || wanted !== 0 || attempt >= 20) throw error;
    }
  }
}

function bound(servers: Server[]): BoundListener {
  return {
    port: (servers[0]!.address() as AddressInfo).port,
    close: async () => {
      await Promise.all(servers.map(closeServer));
    },
  };
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen({ port, host, ipv6Only: host === '::1' }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    // Keep-alive HTTP connections would hold close() open; drop them.
    (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
  });
}
