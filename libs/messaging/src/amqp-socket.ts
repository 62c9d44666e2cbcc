// How the Service Bus client's AMQP socket writes. The SDK (@azure/service-bus → rhea-promise → rhea) offers no
// option for it, so this is the one place that reaches into the SDK's internals; it checks each step of the shape
// it expects and, where something differs (another SDK version, the WebSocket transport), leaves the client as it is.
//
// The shape (@azure/service-bus 7.9, @azure/core-amqp 4, rhea-promise 3, rhea 3): the client's `_connectionContext`
// holds the AMQP connection as `connection` (a rhea-promise Connection), replaced by a new one on every reconnect
// (`refreshConnection`); that wraps rhea's Connection as `_connection`, whose `init(socket)` takes the TLS socket
// when it connects.

import type { ServiceBusClient } from '@azure/service-bus';

/** A socket as rhea holds it: a TLS socket for the SDK's AMQP transport. */
interface WritableSocket {
  write(chunk: Uint8Array): boolean;
  cork?(): void;
  uncork?(): void;
  setNoDelay?(noDelay?: boolean): unknown;
}

interface RheaConnection {
  socket?: WritableSocket;
  init(socket: WritableSocket): unknown;
}

/** The clients already watched, and the sockets already changed. */
const watchedClients = new WeakSet<object>();
const changedSockets = new WeakSet<object>();

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * Makes the client's AMQP connection — the current one and each one it reconnects with — write the frames of one
 * event-loop turn together, in one TLS record and one system call, with Nagle's algorithm off (`TCP_NODELAY`).
 * Returns whether it could: false (and the client unchanged) when the SDK's internals are not shaped as expected.
 *
 * Why: rhea writes each AMQP frame with a `socket.write` of its own, which over TLS is a record and a `write`
 * system call apiece, and the SDK's sockets keep Nagle's algorithm on, so a small frame written while an earlier
 * one is unacknowledged waits for the peer's (possibly delayed) TCP acknowledgement. The local broker does the
 * same on its side (tools/local-azure, `coalesceWrites`).
 */
export function writeFramesTogether(client: ServiceBusClient): boolean {
  if (watchedClients.has(client)) return true;
  const context = (client as unknown as { _connectionContext?: unknown })._connectionContext;
  if (!isObject(context)) return false;
  const descriptor = Object.getOwnPropertyDescriptor(context, 'connection');
  if (!descriptor || !('value' in descriptor) || !descriptor.writable || !descriptor.configurable) return false;
  if (!watchConnection(descriptor.value)) return false;
  let connection: unknown = descriptor.value;
  Object.defineProperty(context, 'connection', {
    configurable: true,
    enumerable: descriptor.enumerable,
    get: () => connection,
    set: (next: unknown) => {
      connection = next;
      watchConnection(next);
    },
  });
  watchedClients.add(client);
  return true;
}

/** Changes the socket of a rhea-promise connection now if it has one, or when it connects. */
function watchConnection(connection: unknown): boolean {
  const rhea = isObject(connection) ? connection._connection : undefined;
  if (!isObject(rhea) || typeof rhea.init !== 'function') return false;
  const target = rhea as unknown as RheaConnection;
  if (target.socket) {
    changeSocket(target.socket);
    return true;
  }
  const init = target.init;
  target.init = function (this: RheaConnection, socket: WritableSocket) {
    changeSocket(socket);
    return init.call(this, socket);
  };
  return true;
}

/** Nagle off, and the writes of one turn corked until the turn's end (one TLS record, one system call). */
function changeSocket(socket: WritableSocket): void {
  if (changedSockets.has(socket) || typeof socket.cork !== 'function' || typeof socket.uncork !== 'function') return;
  changedSockets.add(socket);
  socket.setNoDelay?.(true);
  const write = socket.write.bind(socket);
  const uncork = (): void => {
    corked = false;
    socket.uncork!();
  };
  let corked = false;
  socket.write = (chunk: Uint8Array): boolean => {
    if (!corked) {
      corked = true;
      socket.cork!();
      process.nextTick(uncork);
    }
    return write(chunk);
  };
}
