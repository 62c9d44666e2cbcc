import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP pass-through in front of a server, that a test can cut and restore: what a client sees when the network
 * or the server goes away (connections reset, new ones refused) and comes back on the same address. Bytes pass
 * untouched, so TLS and authentication are the real server's.
 *
 * @example
 * const gate = await TcpGate.open({ host: '127.0.0.1', port: Number(env.PGPORT) });
 * // point the client at 127.0.0.1:gate.port; then:
 * await gate.cut();      // open connections reset, new ones refused (ECONNREFUSED)
 * await gate.restore();  // accepting again on the same port
 */
export class TcpGate {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private boundPort = 0;

  private constructor(private readonly target: { host: string; port: number }) {}

  /** Opens a gate to `target` on a free port (or `port`) of 127.0.0.1. */
  static async open(target: { host: string; port: number }, port = 0): Promise<TcpGate> {
    const gate = new TcpGate(target);
    gate.boundPort = await gate.listen(port);
    return gate;
  }

  /** The gate's port on 127.0.0.1. */
  get port(): number {
    return this.boundPort;
  }

  /** Whether connections pass now. */
  get isOpen(): boolean {
    return this.server !== undefined;
  }

  /** Resets every open connection and stops accepting new ones (clients get ECONNREFUSED). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Accepts connections again, on the same port. */
  async restore(): Promise<void> {
    if (!this.server) await this.listen(this.port);
  }

  /** Cuts for good. */
  close(): Promise<void> {
    return this.cut();
  }

  private listen(port: number): Promise<number> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => (socket === client ? upstream : client).destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
  }
}
