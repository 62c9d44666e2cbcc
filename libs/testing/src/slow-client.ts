import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

/** Options of {@link slowClient}. */
export interface SlowClientOptions {
  /** `http://host:port` or `https://host:port` (TLS trusts the process's CAs, `NODE_EXTRA_CA_CERTS` included). */
  origin: string;
  /** Written at once after connecting (e.g. a request line and some headers). **Default**: nothing. */
  head?: string;
  /** Written one byte at a time, every `everyInMs`, after `head`; the last byte is repeated once it runs out. **Default**: nothing (the client sends nothing more). */
  trickle?: string;
  /** **Default**: 100 ms. */
  everyInMs?: number;
  /** How long the server may keep the connection open before the probe fails. */
  deadlineInMs: number;
}

/** What the server did to a {@link slowClient}. */
export interface SlowClientOutcome {
  /** Everything the server sent before it closed the connection. */
  received: string;
  /** How long the connection lasted, in ms. */
  openForInMs: number;
  /** The client's own port: what the server saw as the remote port. */
  localPort: number | undefined;
}

/**
 * A client that connects and then sends its request one byte at a time, for ever: resolves once the server closes the
 * connection, and rejects if it is still open after `deadlineInMs` (a server without limits on slow clients holds such
 * a connection for minutes, and a few thousand of them exhaust it).
 */
export function slowClient(options: SlowClientOptions): Promise<SlowClientOutcome> {
  const { protocol, hostname, port } = new URL(options.origin);
  const host = hostname.replace(/^\[|\]$/g, '');
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket: Socket = protocol === 'https:' ? connectTls({ host, port: Number(port), servername: host === '127.0.0.1' ? 'localhost' : host }, begin) : connectTcp(Number(port), host, begin);
    let received = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    let localPort: number | undefined;
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server still held the connection after ${options.deadlineInMs} ms (received so far: ${JSON.stringify(received.slice(0, 200))})`));
    }, options.deadlineInMs);
    function begin(): void {
      localPort = socket.localPort;
      if (options.head) socket.write(options.head);
      timer = setInterval(() => {
        if (!socket.writable || !options.trickle) return;
        socket.write(options.trickle[Math.min(sent++, options.trickle.length - 1)]!);
      }, options.everyInMs ?? 100);
    }
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    // A reset after the server's answer (it closes while bytes are still arriving) still ends the probe.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(deadline);
      resolve({ received, openForInMs: Date.now() - started, localPort });
    });
  });
}
