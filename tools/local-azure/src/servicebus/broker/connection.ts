// An AMQP connection from the accepted socket to its close. SASL: ANONYMOUS (the JS SDK) and MSSBCBS (.NET); neither
// carries credentials, the tokens come later on `$cbs` (cbs.ts). Per connection the broker keeps the tokens put on it,
// the one principal it acts for, its links and its response links. The socket gets two write habits that keep
// request/reply at a millisecond (frames of one turn in one TLS record; an empty frame as a prompt acknowledgement),
// and the connections are closed with `amqp:connection:forced` when the broker stops, so clients reconnect.

import type { Duplex } from 'node:stream';
import rhea from 'rhea';
import type { Connection, Container, link as Link, Sender } from 'rhea';
import type { AmqpMessage, AmqpTyped } from '../amqp/amqp-message.js';
import { BrokerError, messageTooLarge } from '../amqp/broker-error.js';
import { connectionSocket, disconnectOnClose, hasPartialFrame, heldSessionsAndLinks, limitIncoming, maxFrameSizeInBytes } from '../amqp/rhea-internals.js';
import type { BrokerFaults } from './broker-faults.js';
import { ConnectionClaims } from './connection-claims.js';
import { rejectedOutcome, settle } from './settlement.js';

/** Clients must send a frame at least every 120 s (the SDK heartbeats every 30 s); rhea heartbeats at half the client's value. */
const idleTimeoutInMs = 120_000;

/** What one connection may hold: Azure Service Bus's (its open says `channel-max` 4999, and it refuses the 5000th link). */
export const connectionLimits = {
  /** Sessions: channels 0 to 4999. */
  maxSessions: 5000,
  /** Links over all its sessions; one more is refused with `amqp:resource-limit-exceeded` (SDK: `QuotaExceeded`). */
  maxLinks: 4999,
};

/** What the broker holds its client connections to. */
export interface ConnectionLimitOptions {
  /** The namespace's name (Azure's quota refusal names it). */
  namespaceName: string;
  /** Largest message (or batch) accepted, in bytes: a larger delivery is refused without being buffered whole. */
  maxMessageSizeInBytes: number;
  /** Connections open at once; one more is closed once it opens (Azure Standard: 5000 AMQP connections). */
  maxConnections: number;
  linkless: LinklessTimeouts;
}

/** How long a connection may be without a link before the broker closes it, as Azure does. */
export interface LinklessTimeouts {
  /** From the connection's start to its first link, in ms (Azure: 60000). */
  newConnectionInMs: number;
  /** From the close of its last link, in ms (Azure: 300000). */
  afterLastLinkInMs: number;
}

interface MechanismInstance {
  outcome?: boolean;
  username?: string;
  start(): void;
}

/** SASL ANONYMOUS and MSSBCBS: both accept at once (the token follows on `$cbs`). */
export function enableSasl(container: Container): void {
  const mechanisms = container.sasl_server_mechanisms as { enable_anonymous(): void } & Record<string, unknown>;
  mechanisms.enable_anonymous();
  // .NET and other SDKs authenticate the connection with MSSBCBS (the token follows on $cbs).
  mechanisms.MSSBCBS = (): MechanismInstance => ({
    start() {
      this.outcome = true;
    },
  });
}

/** What the broker keeps per client connection. */
export class ConnectionState {
  readonly claims = new ConnectionClaims();
  /**
   * Object id of the principal the connection is authorized for: set by its first accepted put-token. A token
   * for another principal is refused, so no link of the connection ever acts for someone else.
   */
  principalId: string | undefined;
  readonly links = new Set<Link>();
  /** Response links of `$cbs` and `$management` by link name and target address (the requests' reply-to). */
  readonly replyLinks = new Map<string, Sender>();
  expiryTimer: NodeJS.Timeout | undefined;
  /** Runs while the connection has no link: closes it when it fires. */
  linklessTimer: NodeJS.Timeout | undefined;
  /** It came beyond the namespace's connection quota: closed as soon as it opens. */
  overQuota = false;
  hostname = 'localhost';
  closed = false;

  constructor(readonly id: string) {}

  /** The entity's URI as the client addresses it (the real service's error texts name it so). */
  uri(path: string): string {
    return `sb://${this.hostname}/${path.replace(/^\/+/, '')}`;
  }
}

/** The open connections of the broker and their sockets. */
export class BrokerConnections {
  private readonly states = new Map<Connection, ConnectionState>();
  private readonly sockets = new Set<Duplex>();
  private counter = 0;
  private stopped = false;

  constructor(
    private readonly container: Container,
    /** Forgets a link of a closing connection (links.ts). */
    private readonly cleanupLink: (link: Link) => void,
    private readonly faults: BrokerFaults | undefined,
    private readonly limits: ConnectionLimitOptions,
  ) {}

  get size(): number {
    return this.states.size;
  }

  /** The open client connections (the connection faults act on them). */
  openSockets(): Iterable<Duplex> {
    return this.sockets;
  }

  get(connection: Connection): ConnectionState | undefined {
    return this.states.get(connection);
  }

  values(): IterableIterator<ConnectionState> {
    return this.states.values();
  }

  /**
   * Takes a connection whose client speaks AMQP: a TLS socket, or the byte stream of an AMQP WebSocket
   * (the namespace endpoint routes both here).
   */
  accept(socket: Duplex): void {
    // A connection that reaches a stopped broker (an AMQP WebSocket upgraded meanwhile) is closed, not served.
    if (this.stopped) return void socket.destroy();
    if (this.faults && !this.faults.admit(socket)) return;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    coalesceWrites(socket);
    const id = `sb-connection-${++this.counter}`;
    const connection = this.container.create_connection({
      id,
      idle_time_out: idleTimeoutInMs,
      // Azure's: clients split larger transfers into frames of this size, and use channels up to this one.
      max_frame_size: maxFrameSizeInBytes,
      channel_max: connectionLimits.maxSessions - 1,
      properties: { product: 'Keyless local Service Bus' },
    } as unknown as Parameters<Container['create_connection']>[0]);
    const state = new ConnectionState(id);
    state.overQuota = this.states.size >= this.limits.maxConnections;
    this.states.set(connection, state);
    this.watchLinks(connection, state, this.limits.linkless.newConnectionInMs);
    const maxDeliveryBytes = this.limits.maxMessageSizeInBytes;
    limitIncoming(connection, { maxDeliveryBytes, refuse: (delivery, bytes) => settle(delivery, rejectedOutcome(messageTooLarge(bytes, maxDeliveryBytes))) });
    connection.accept(socket as unknown as Parameters<Connection['accept']>[0]);
    disconnectOnClose(connection, socket);
    acknowledgePromptly(socket, () => connection.is_open() && !hasPartialFrame(connection));
  }

  /** The client's open frame names the host it connected to. */
  opened(connection: Connection): void {
    const state = this.states.get(connection);
    if (!state) return;
    state.hostname = connection.hostname ?? 'localhost';
    // The client learns why only once it is open: an AMQP close needs an open before it.
    if (state.overQuota) this.close(connection, 'amqp:resource-limit-exceeded', `ConnectionsQuotaExceeded for namespace ${this.limits.namespaceName}: at most ${this.limits.maxConnections} connections are open at once.`);
  }

  /**
   * The refusal of a link the client attached beyond {@link connectionLimits.maxLinks}, or undefined when it may have
   * it. A client that keeps attaching without answering the refusals' detaches (each holds a link in rhea until it
   * does) has its connection closed at twice the limit.
   */
  admitLink(link: Link): BrokerError | undefined {
    const held = heldSessionsAndLinks(link.connection).links;
    if (held <= connectionLimits.maxLinks) return undefined;
    const refusal = new BrokerError('quota-exceeded', `Cannot allocate more handles. The maximum number of handles is ${connectionLimits.maxLinks}.`);
    if (held > 2 * connectionLimits.maxLinks) this.close(link.connection, 'amqp:resource-limit-exceeded', refusal.message);
    return refusal;
  }

  /**
   * A link of the connection was attached: it is no longer without links — once it has authenticated. Until its first
   * accepted token, its links (`$cbs`, which takes requests without a token) do not keep it: an anonymous client could
   * otherwise hold connections for ever with one `$cbs` link each, until the namespace's quota locked out every real
   * client. The SDK puts its token right after attaching `$cbs`.
   */
  linkAdded(state: ConnectionState): void {
    if (state.principalId === undefined) return;
    clearTimeout(state.linklessTimer);
    state.linklessTimer = undefined;
  }

  /** A link of the connection was closed: if it was the last, the connection has `afterLastLinkInMs` to attach another. */
  linkRemoved(connection: Connection, state: ConnectionState): void {
    if (state.links.size === 0 && !state.closed) this.watchLinks(connection, state, this.limits.linkless.afterLastLinkInMs);
  }

  /**
   * A session began: more than {@link connectionLimits.maxSessions} (rhea neither refuses a channel above the
   * `channel-max` the broker announced, nor a second begin on a channel in use) close the connection.
   */
  sessionOpened(connection: Connection): void {
    if (heldSessionsAndLinks(connection).sessions <= connectionLimits.maxSessions) return;
    this.close(connection, 'amqp:resource-limit-exceeded', `Cannot allocate more sessions: the maximum number of sessions on a connection is ${connectionLimits.maxSessions} (channel-max ${connectionLimits.maxSessions - 1}).`);
  }

  /**
   * Closes a connection with an error and, should the client not answer with its own close, destroys its socket
   * a second later (as rhea does for an idle connection).
   */
  close(connection: Connection, condition: string, description: string): void {
    try {
      connection.close({ condition, description });
    } catch {
      // A connection that cannot write its close frame is destroyed below.
    }
    setTimeout(() => connectionSocket(connection)?.destroy(), 1000).unref();
  }

  /**
   * Closes the connection if it still has no link in `timeoutInMs`, as Azure closes a connection without links — one
   * that never opens or never authenticates included (see {@link linkAdded}), which would otherwise be held until its
   * idle timeout, or for ever by empty frames.
   */
  private watchLinks(connection: Connection, state: ConnectionState, timeoutInMs: number): void {
    clearTimeout(state.linklessTimer);
    state.linklessTimer = setTimeout(() => {
      state.linklessTimer = undefined;
      if (state.closed) return;
      const authenticated = state.principalId !== undefined;
      if (authenticated && state.links.size > 0) return;
      if (!connection.is_open()) {
        connectionSocket(connection)?.destroy();
        return;
      }
      const why = state.links.size > 0 ? 'no token was accepted on it' : 'it did not have any active links';
      this.close(connection, 'amqp:connection:forced', `The connection was closed by container '${this.container.id}' because ${why} in the past ${timeoutInMs} milliseconds.`);
    }, timeoutInMs);
    state.linklessTimer.unref();
  }

  /** The connection closed or dropped: its links are forgotten and its timer stopped. */
  closed(connection: Connection): void {
    const state = this.states.get(connection);
    if (!state) return;
    this.states.delete(connection);
    state.closed = true;
    clearTimeout(state.expiryTimer);
    clearTimeout(state.linklessTimer);
    for (const link of [...state.links]) this.cleanupLink(link);
  }

  /** Closes every connection (`amqp:connection:forced`, so clients reconnect). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const [connection, state] of this.states) {
      clearTimeout(state.expiryTimer);
      clearTimeout(state.linklessTimer);
      try {
        connection.close({ condition: 'amqp:connection:forced', description: 'The local Service Bus is stopping.' });
      } catch {
        // A connection that cannot write its close frame is destroyed below.
      }
    }
    await new Promise<void>((resolve) => setTimeout(resolve, 20));
    for (const socket of this.sockets) socket.destroy();
    for (const connection of this.states.keys()) connectionSocket(connection)?.destroy();
    this.states.clear();
  }
}

/** Sends a response (of `$cbs` or `$management`) to the link named by the request's reply-to, correlated by its message id. */
export function reply(connection: ConnectionState, request: AmqpMessage, properties: Record<string, unknown>, body?: AmqpTyped): void {
  const link = connection.replyLinks.get(String(request.reply_to ?? ''));
  if (connection.closed || !link || !link.is_open()) return;
  link.send({
    // The SDK matches responses by this value in a Map: it must equal the request's message id exactly.
    correlation_id: request.message_id as string,
    to: request.reply_to,
    application_properties: properties,
    body: body ?? null,
  });
}

/** An AMQP int, for the status codes of responses. */
export function amqpInt(value: number): AmqpTyped {
  return rhea.types.wrap_int(value);
}

/**
 * rhea writes every frame with its own `socket.write`: over TLS that is one record and one system call
 * per frame. Corking until the end of the tick sends the frames of one turn together.
 */
function coalesceWrites(socket: Duplex): void {
  const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
  let corked = false;
  socket.write = ((chunk: Buffer) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork();
      });
    }
    return write(chunk);
  }) as Duplex['write'];
}

/** An AMQP empty frame (size 8, doff 2, type 0, channel 0): valid at any time once the connection is open. */
const emptyFrame = Buffer.from([0, 0, 0, 8, 2, 0, 0, 0]);

/**
 * The SDK's client sockets keep Nagle's algorithm on (rhea sets TCP_NODELAY only for servers): a client
 * that writes two small frames in a row (a flow, then a disposition or a reply) holds the second until the
 * first is acknowledged, and a TCP stack that has nothing to send back delays that acknowledgement by up to
 * 40 ms. Measured here: request/reply took 44 ms instead of 1–2 ms. So when the client sent something and
 * the broker wrote nothing back soon after, it answers with an empty frame, which carries the acknowledgement.
 *
 * One check per burst of reads, two event-loop turns later (a send is acknowledged by its disposition once the
 * store commits: in the same turn, later while commits are held), and none while a frame is still arriving
 * (`expectsReply` false). A batch of 100 arrives in three or four TLS records: an empty frame was written after each, a TLS
 * record and a system call apiece, besides the disposition — most of the fifth of the broker's CPU that
 * socket writes took during batched sends.
 */
function acknowledgePromptly(socket: Duplex, expectsReply: () => boolean): void {
  const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
  /** Reads so far, and how many of them a write has answered. */
  let reads = 0;
  let answered = 0;
  /** The check queued in this turn: it covers every read up to `upTo`. */
  let queued: { upTo: number } | undefined;
  socket.write = ((chunk: Buffer) => {
    answered = reads;
    return write(chunk);
  }) as Duplex['write'];
  const check = (upTo: number): void => {
    if (answered >= upTo || socket.destroyed || !expectsReply()) return;
    answered = reads;
    write(emptyFrame);
  };
  socket.on('data', () => {
    reads++;
    if (queued) {
      queued.upTo = reads;
      return;
    }
    const pending = { upTo: reads };
    queued = pending;
    setImmediate(() => {
      queued = undefined;
      setImmediate(() => check(pending.upTo));
    });
  });
}
