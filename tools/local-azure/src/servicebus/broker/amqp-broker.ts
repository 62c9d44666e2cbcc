import type { Duplex } from 'node:stream';
import rhea from 'rhea';
import type { Connection, Container, Delivery, EventContext, link as Link, Receiver, Sender } from 'rhea';
import type { AuditLog } from '../../audit/audit-log.js';
import type { ConsoleLog } from '../../data-plane.js';
import type { Directory } from '../../entra/directory.js';
import type { Caller, ResourceGuard } from '../../guard/resource-guard.js';
import { dataActions } from '../../rbac/built-in-roles.js';
import { batchMessageFormat, decodeBatch, dotNetTicks, encodeMessage, outcomes, ownBody, type AmqpMessage, type AmqpTyped, type IncomingMessage } from '../amqp/amqp-message.js';
import { BrokerError, entityNotFound, toBrokerError } from '../amqp/broker-error.js';
import type { BrokerFaults } from './broker-faults.js';
import { audiencePath, ConnectionClaims, type Claim } from './connection-claims.js';
import { missingRoleText } from '../access-refusal.js';
import { LinkConsumer } from './link-consumer.js';
import { messageTooLarge, runManagementOperation } from './management-operations.js';
import type { MessageLock } from '../queue/locks.js';
import type { MessageQueue } from '../queue/message-queue.js';
import type { SessionQueue } from '../queue/sessions.js';
import { answerDrainsAtZeroCredit, connectionSocket, disconnectOnClose, encodeIntoReusedBuffer, hasPartialFrame, holdAttach, isDraining, localAttach, markRemoteSettled, releaseAttach } from '../amqp/rhea-internals.js';
import type { AnyEntity, EntityNode, QueueEntity, ServiceBusNamespace, TopicEntity } from '../entities/service-bus-namespace.js';

const defaults = {
  /** Token audience Service Bus accepts for Entra ID tokens. */
  audience: 'https://servicebus.azure.net/',
  /** Clients must send a frame at least every 120 s (the SDK heartbeats every 30 s); rhea heartbeats at half the client's value. */
  idleTimeoutInMs: 120_000,
  /**
   * A revoked sender is detached at its next transfer (refused, with the detach in the same write) or this
   * long after the revocation, whichever comes first. Part of the documented bound.
   */
  revokedSenderDetachDelayInMs: 1000,
  /** Server-side wait for the next available session when the client gives no `com.microsoft:timeout`. */
  acceptSessionTimeoutInMs: 60_000,
  /** Answer an accept-next-session this much before the client's own timeout. */
  acceptSessionMarginInMs: 50,
  /** Link credit the broker grants senders (topped up as messages arrive). */
  senderCreditWindow: 500,
};

/** AMQP names Service Bus uses on links and messages. */
const names = {
  sessionFilter: 'com.microsoft:session-filter',
  lockedUntilUtc: 'com.microsoft:locked-until-utc',
  timeout: 'com.microsoft:timeout',
  deadLetterCondition: 'com.microsoft:dead-letter',
  sasTokenType: 'servicebus.windows.net:sastoken',
  jwtTokenType: 'jwt',
} as const;

const maxTimerDelayInMs = 2 ** 31 - 1;

/** Options of {@link AmqpBroker}. */
export interface AmqpBrokerOptions {
  namespace: ServiceBusNamespace;
  guard: ResourceGuard;
  directory: Directory;
  /** Largest message (or batch) accepted, in bytes. */
  maxMessageSizeInBytes: number;
  /**
   * Every open link and cached `$management` decision is re-checked at this interval (besides at once on
   * each role assignment change and at each put-token): the bound on how long a revoked role keeps working.
   */
  reauthorizationIntervalInMs: number;
  /** The authorization log, for refusals that happen before any role is checked (a token for another principal). */
  auditLog: AuditLog;
  log: ConsoleLog;
  /** Called for every message sent or settled (the idle memory reducer watches it). */
  onActivity?(): void;
  /** Injected faults (broker-faults.ts); none when omitted. */
  faults?: BrokerFaults;
}

class ConnectionState {
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
  hostname = 'localhost';
  closed = false;

  constructor(readonly id: string) {}
}

interface LinkStateBase {
  connection: ConnectionState;
  closed: boolean;
  /** Why the broker detached the link (revoked role, expired token): transfers still arriving are refused with it. */
  detachedWith?: BrokerError;
  /** A revoked sender waiting for its detach: transfers that arrive meanwhile are refused together with it. */
  pendingDetach?: { deliveries: Delivery[]; timer: NodeJS.Timeout; detach(): void };
}

type LinkState =
  | (LinkStateBase & { kind: 'send'; node: EntityNode; target: QueueEntity | TopicEntity; claim: Claim })
  | (LinkStateBase & {
      kind: 'receive';
      node: EntityNode;
      queue: MessageQueue;
      consumer: LinkConsumer;
      claim: Claim;
      /** Waiting for a session: the attach reply is held back. */
      held: boolean;
    })
  | (LinkStateBase & { kind: 'cbs-requests' })
  | (LinkStateBase & { kind: 'management-requests'; node: EntityNode; claim: Claim; authorized: Set<'send' | 'receive'> })
  | (LinkStateBase & { kind: 'reply' });

type ReceiveLinkState = Extract<LinkState, { kind: 'receive' }>;
type AuthorizedLinkState = Extract<LinkState, { claim: Claim }>;
type ManagementLinkState = Extract<LinkState, { kind: 'management-requests' }>;
type SendLinkState = Extract<LinkState, { kind: 'send' }>;

/** An outcome as rhea decodes it from a disposition. */
interface Outcome {
  delivery_failed?: boolean;
  undeliverable_here?: boolean;
  message_annotations?: Record<string, unknown>;
  error?: { condition?: string; description?: string; info?: Record<string, unknown> };
}

interface MechanismInstance {
  outcome?: boolean;
  username?: string;
  start(): void;
}

/**
 * The local Service Bus's AMQP 1.0 endpoint (rhea, TLS): SASL ANONYMOUS and MSSBCBS, `$cbs` put-token
 * with Entra ID tokens checked by the shared guard, RBAC per link, entity links for sending and
 * receiving, `$management`, settlement, drain, and detaching links whose token expires unrenewed.
 *
 * Authorization is not a one-time check at attach. Rules:
 * 1. A connection is authorized for one principal, the one of its first accepted token; a token for
 *    another principal is refused (401) and changes nothing.
 * 2. Every put-token, renewals included, re-checks the role of every link that uses the token's claim; a
 *    link whose role is gone is detached with `amqp:unauthorized-access` (the SDK's `UnauthorizedAccess`).
 * 3. A role assignment change re-checks every open link at once; so does a timer every
 *    `reauthorizationIntervalInMs`, the guarantee for changes that bypass the store's listeners.
 * 4. `$management` decisions are cached per link and action only until the next re-check (2 or 3).
 * 5. A detached sender's sends accepted before the detach are acknowledged first; later transfers are refused.
 */
export class AmqpBroker {
  private readonly container: Container;
  private readonly connections = new Map<Connection, ConnectionState>();
  private readonly linkStates = new WeakMap<Link, LinkState>();
  private readonly deliveryLocks = new WeakMap<Delivery, MessageLock>();
  private readonly sockets = new Set<Duplex>();
  private readonly namespace: ServiceBusNamespace;
  private connectionCounter = 0;
  private readonly reauthorizationTimer: NodeJS.Timeout;
  private readonly stopWatchingAccess: () => void;
  private reauthorizationQueued = false;

  constructor(private readonly options: AmqpBrokerOptions) {
    this.namespace = options.namespace;
    encodeIntoReusedBuffer();
    this.container = rhea.create_container({
      id: 'local-azure-servicebus',
      // Sends are accepted only after the store commits; settlements keep abandon and defer apart.
      autoaccept: false,
      treat_modified_as_released: false,
      credit_window: defaults.senderCreditWindow,
    });
    const mechanisms = this.container.sasl_server_mechanisms as { enable_anonymous(): void } & Record<string, unknown>;
    mechanisms.enable_anonymous();
    // .NET and other SDKs authenticate the connection with MSSBCBS (the token follows on $cbs).
    mechanisms.MSSBCBS = (): MechanismInstance => ({
      start() {
        this.outcome = true;
      },
    });
    this.listen();
    this.namespace.onEntityRemoved((entity) => this.detachLinksOf(entity));
    this.stopWatchingAccess = options.guard.onAccessChange(() => this.queueReauthorization());
    this.reauthorizationTimer = setInterval(() => this.reauthorizeAll('periodic re-check'), options.reauthorizationIntervalInMs);
    this.reauthorizationTimer.unref();
  }

  /** Number of open AMQP connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Detaches every link attached to a deleted entity (or one of its sub-queues or its `$management`
   * node) with `amqp:not-found`, which the SDK reports as `MessagingEntityNotFound`.
   */
  private detachLinksOf(entity: AnyEntity): void {
    for (const connection of this.connections.values()) {
      for (const link of [...connection.links]) {
        const state = this.linkStates.get(link);
        if (!state || state.closed || !('node' in state)) continue;
        if (state.node.entity !== entity && state.node.sendTarget !== entity) continue;
        this.detach(link, entityNotFound(this.uri(connection, state.node.path)));
      }
    }
  }

  /** Closes every connection (`amqp:connection:forced`, so clients reconnect) and stops timers. */
  async stop(): Promise<void> {
    clearInterval(this.reauthorizationTimer);
    this.stopWatchingAccess();
    for (const [connection, state] of this.connections) {
      clearTimeout(state.expiryTimer);
      try {
        connection.close({ condition: 'amqp:connection:forced', description: 'The local Service Bus is stopping.' });
      } catch {
        // A connection that cannot write its close frame is destroyed below.
      }
    }
    await new Promise<void>((resolve) => setTimeout(resolve, 20));
    for (const socket of this.sockets) socket.destroy();
    for (const connection of this.connections.keys()) connectionSocket(connection)?.destroy();
    this.connections.clear();
  }

  /** The open client connections (the connection faults act on them). */
  openSockets(): Iterable<Duplex> {
    return this.sockets;
  }

  /**
   * Takes a connection whose client speaks AMQP: a TLS socket, or the byte stream of an AMQP WebSocket
   * (the namespace endpoint routes both here).
   */
  accept(socket: Duplex): void {
    if (this.options.faults && !this.options.faults.admit(socket)) return;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    coalesceWrites(socket);
    const id = `sb-connection-${++this.connectionCounter}`;
    const connection = this.container.create_connection({
      id,
      idle_time_out: defaults.idleTimeoutInMs,
      properties: { product: 'Keyless local Service Bus' },
    } as unknown as Parameters<Container['create_connection']>[0]);
    this.connections.set(connection, new ConnectionState(id));
    connection.accept(socket as unknown as Parameters<Connection['accept']>[0]);
    disconnectOnClose(connection, socket);
    acknowledgePromptly(socket, () => connection.is_open() && !hasPartialFrame(connection));
  }

  private listen(): void {
    const c = this.container;
    const guarded =
      (handler: (context: EventContext) => void) =>
      (context: EventContext): void => {
        try {
          handler(context);
        } catch (error) {
          this.fail(error);
        }
      };
    c.on('connection_open', guarded((context) => {
      const state = this.connections.get(context.connection);
      if (state) state.hostname = context.connection.hostname ?? 'localhost';
    }));
    c.on('receiver_open', guarded((context) => this.onClientSenderAttached(context.receiver!)));
    c.on('sender_open', guarded((context) => this.onClientReceiverAttached(context.sender!)));
    c.on('message', guarded((context) => this.onMessage(context)));
    c.on('sender_flow', guarded((context) => this.onFlow(context.sender!, true)));
    // Also raised when the session's outgoing buffer has room again: deliver, but a drain was answered already.
    c.on('sendable', guarded((context) => this.onFlow(context.sender!, false)));
    for (const outcome of ['accepted', 'rejected', 'modified', 'released'] as const) {
      c.on(outcome, guarded((context) => this.onOutcome(context.sender!, context.delivery!, outcome)));
    }
    c.on('sender_close', guarded((context) => this.cleanupLink(context.sender!)));
    c.on('receiver_close', guarded((context) => this.cleanupLink(context.receiver!)));
    c.on('session_close', guarded((context) => {
      context.session?.each_link((link: Link) => this.cleanupLink(link), () => true);
    }));
    c.on('connection_close', guarded((context) => this.cleanupConnection(context.connection)));
    c.on('disconnected', guarded((context) => this.cleanupConnection(context.connection)));
    // rhea ends the connection on a protocol error; other connections are not affected.
    c.on('protocol_error', (error: Error) => this.options.log(`[servicebus] closed a connection after a protocol error: ${error.message}`));
    c.on('error', (error: Error) => this.options.log(`[servicebus] connection error: ${error.message}`));
    for (const event of ['connection_error', 'session_error', 'sender_error', 'receiver_error']) c.on(event, () => undefined);
  }

  // -------------------------------------------------------------------------------------------------
  // Attach

  /** The client attached a sender: `$cbs` or `$management` requests, or messages for an entity. */
  private onClientSenderAttached(receiver: Receiver): void {
    const connection = this.connections.get(receiver.connection);
    if (!connection) return;
    const address = receiver.target?.address;
    try {
      if (!address) throw new BrokerError('invalid-argument', 'A sender link needs a target address.');
      const resolved = this.namespace.resolve(address);
      if (!resolved) throw entityNotFound(this.uri(connection, address));
      this.echoTermini(receiver);
      if (resolved.kind === 'cbs') {
        this.register(receiver, { kind: 'cbs-requests', connection, closed: false });
        return;
      }
      if (resolved.kind === 'management') {
        const claim = this.claimFor(connection, address);
        this.register(receiver, { kind: 'management-requests', connection, closed: false, node: resolved.node, claim, authorized: new Set() });
        return;
      }
      const node = resolved.node;
      if (!node.sendTarget) {
        throw new BrokerError('not-allowed', `Messages cannot be sent to ${this.uri(connection, node.path)}: send to a queue or topic.`);
      }
      const claim = this.claimFor(connection, address);
      this.check(claim.caller, 'send', node, connection, `send to ${node.path}`);
      localAttach(receiver).max_message_size = this.options.maxMessageSizeInBytes;
      this.options.faults?.gateSenderCredit(receiver, defaults.senderCreditWindow);
      this.register(receiver, { kind: 'send', connection, closed: false, node, target: node.sendTarget, claim });
    } catch (error) {
      this.refuse(receiver, error);
    }
  }

  /** The client attached a receiver: responses of `$cbs` / `$management`, or messages of an entity. */
  private onClientReceiverAttached(sender: Sender): void {
    const connection = this.connections.get(sender.connection);
    if (!connection) return;
    const source = sender.source;
    const address = source?.address;
    try {
      if (!address) throw new BrokerError('invalid-argument', 'A receiver link needs a source address.');
      const resolved = this.namespace.resolve(address);
      if (!resolved) throw entityNotFound(this.uri(connection, address));
      if (resolved.kind !== 'entity') {
        this.echoTermini(sender);
        this.register(sender, { kind: 'reply', connection, closed: false });
        connection.replyLinks.set(sender.name, sender);
        const target = sender.target?.address;
        if (target) connection.replyLinks.set(target, sender);
        return;
      }
      this.openReceiver(sender, connection, resolved.node, address);
    } catch (error) {
      this.refuse(sender, error);
    }
  }

  private openReceiver(sender: Sender, connection: ConnectionState, node: EntityNode, address: string): void {
    const queue = node.queue;
    if (!queue) {
      throw new BrokerError('not-allowed', `Cannot receive from topic ${this.uri(connection, node.path)}: receive from one of its subscriptions (<topic>/Subscriptions/<name>).`);
    }
    const claim = this.claimFor(connection, address);
    this.check(claim.caller, 'receive', node, connection, `receive from ${node.path}`);
    const status = node.entity!.definition.status;
    if (status === 'Disabled' || status === 'ReceiveDisabled') {
      throw new BrokerError('entity-disabled', `Messaging entity '${this.uri(connection, node.path)}' is currently disabled (status ${status}): it gives out no messages.`);
    }
    node.entity!.accessedAt = Date.now();
    const filter = sender.source?.filter as Record<string, unknown> | undefined | null;
    const wantsSession = !!filter && Object.prototype.hasOwnProperty.call(filter, names.sessionFilter);
    const sessionId = wantsSession ? filter![names.sessionFilter] : undefined;
    if (queue.requiresSession && !wantsSession) {
      throw new BrokerError(
        'not-allowed',
        `It is not possible for an entity that requires sessions to create a non-sessionful message receiver. Use acceptSession or acceptNextSession on ${node.path}.`,
      );
    }
    if (!queue.requiresSession && wantsSession) {
      throw new BrokerError('not-allowed', `${node.path} does not require sessions: create a receiver with createReceiver, not a session receiver.`);
    }
    // The SDK asks for receiveAndDelete with snd-settle-mode settled (1), peekLock with unsettled (0).
    const receiveMode = sender.snd_settle_mode === 1 ? 'receiveAndDelete' : 'peekLock';
    const attach = localAttach(sender);
    attach.snd_settle_mode = sender.snd_settle_mode;
    attach.rcv_settle_mode = sender.rcv_settle_mode;
    sender.set_target({ address: sender.target?.address ?? '' });
    sender.set_source({ address });
    const consumer = new LinkConsumer(
      sender,
      receiveMode,
      (delivery, lock) => this.deliveryLocks.set(delivery, lock),
      (error) => this.detach(sender, error),
      () => this.options.faults?.deliveriesStalled() ?? false,
    );
    answerDrainsAtZeroCredit(sender);
    const state: ReceiveLinkState = { kind: 'receive', connection, closed: false, node, queue, consumer, claim, held: false };
    const now = Date.now();
    if (!wantsSession) {
      this.register(sender, state);
      queue.addConsumer(consumer);
      return;
    }
    if (typeof sessionId === 'string') {
      const session = queue.sessions.accept(sessionId, consumer, now);
      this.setSessionAttach(sender, address, session);
      this.register(sender, state);
      return;
    }
    // Accept the next available session: hold the attach reply until one has messages, like the service.
    const requested = Number(sender.properties?.[names.timeout]);
    const timeout = Math.max(0, (Number.isFinite(requested) && requested > 0 ? requested : defaults.acceptSessionTimeoutInMs) - defaults.acceptSessionMarginInMs);
    holdAttach(sender);
    state.held = true;
    this.register(sender, state);
    queue.sessions.acceptNext(consumer, timeout, now).then(
      (session) => {
        if (state.closed) return;
        state.held = false;
        this.setSessionAttach(sender, address, session);
        releaseAttach(sender);
        queue.schedulePump();
      },
      (error: unknown) => {
        if (state.closed) return;
        state.held = false;
        releaseAttach(sender);
        this.detach(sender, toBrokerError(error));
      },
    );
  }

  /** Echoes the session id (the SDK checks it) and the session lock expiry in .NET ticks. */
  private setSessionAttach(sender: Sender, address: string, session: SessionQueue): void {
    sender.set_source({ address, filter: { [names.sessionFilter]: session.id } });
    localAttach(sender).properties = { [names.lockedUntilUtc]: dotNetTicks(session.lockedUntil) };
  }

  private echoTermini(link: Link): void {
    const attach = localAttach(link);
    attach.snd_settle_mode = link.snd_settle_mode;
    attach.rcv_settle_mode = link.rcv_settle_mode;
    link.set_source({ address: link.source?.address ?? '' });
    link.set_target({ address: link.target?.address ?? '' });
  }

  private register(link: Link, state: LinkState): void {
    this.linkStates.set(link, state);
    state.connection.links.add(link);
    if ('claim' in state) this.armExpiry(state.connection);
  }

  /** Refuses an attach: the reply carries no source/target and a detach with the error follows. */
  private refuse(link: Link, error: unknown): void {
    const brokerError = toBrokerError(error);
    if (brokerError.code === 'internal') this.fail(error);
    link.close(brokerError.toAmqp());
  }

  private detach(link: Link, error: BrokerError): void {
    this.cleanupLink(link);
    link.close(error.toAmqp());
  }

  /**
   * Detaches a link the broker no longer authorizes (revoked role, expired token) with `error`.
   *
   * A sender needs care, because the SDK forgets a send it has not seen settled once it sees the detach
   * (the send then hangs until its operation timeout). So a revoked sender stops accepting at once but is
   * detached at its next transfer, which is refused in the same write as the detach, or after
   * `revokedSenderDetachDelayInMs` if it sends nothing; sends accepted before are acknowledged first (the
   * detach follows the commit that holds them). No acknowledged message is lost, no refused one acknowledged.
   */
  private revoke(link: Link, state: AuthorizedLinkState, error: BrokerError): void {
    if (state.closed) return;
    this.options.log(`[servicebus] detached a ${state.kind === 'send' ? 'sender' : 'receiver'} of ${state.node.path} on ${state.connection.id}: ${error.message}`);
    this.cleanupLink(link);
    state.detachedWith = error;
    if (state.kind !== 'send') {
      link.close(error.toAmqp());
      return;
    }
    let detaching = false;
    const pending = {
      deliveries: [] as Delivery[],
      timer: setTimeout(() => pending.detach(), defaults.revokedSenderDetachDelayInMs),
      detach: (): void => {
        if (detaching) return;
        detaching = true;
        clearTimeout(pending.timer);
        this.namespace.store.afterCommit(() => {
          delete state.pendingDetach;
          if (state.connection.closed) return;
          try {
            for (const delivery of pending.deliveries) settle(delivery, rejectedOutcome(error));
            closeWithSession(link, error);
          } catch (failure) {
            this.fail(failure);
          }
        });
      },
    };
    pending.timer.unref();
    state.pendingDetach = pending;
  }

  // -------------------------------------------------------------------------------------------------
  // Authorization

  /** The token put for this address on the connection. @throws {BrokerError} `unauthorized` */
  private claimFor(connection: ConnectionState, address: string): Claim {
    const claim = connection.claims.find(address, Date.now());
    if (!claim) {
      throw new BrokerError(
        'unauthorized',
        `Unauthorized access. No valid token for '${this.uri(connection, address)}' was put on $cbs on this connection (the SDK does this before every link; a token that expired must be renewed).`,
      );
    }
    return claim;
  }

  /** RBAC: the caller's data action on the entity (logged by the guard). @throws {BrokerError} `unauthorized` */
  private check(caller: Caller, action: 'send' | 'receive', node: EntityNode, connection: ConnectionState, operation: string, recordAllowed = true): void {
    const dataAction = action === 'send' ? dataActions.serviceBusSend : dataActions.serviceBusReceive;
    const decision = this.options.guard.authorize(caller, dataAction, node.armId, { resource: 'serviceBus', operation, recordAllowed });
    if (decision.allowed) return;
    const role = decision.roleNeeded?.name ?? (action === 'send' ? 'Azure Service Bus Data Sender' : 'Azure Service Bus Data Receiver');
    throw new BrokerError(
      'unauthorized',
      `Unauthorized access. '${action === 'send' ? 'Send' : 'Listen'}' claim(s) are required to perform this operation. Resource: '${this.uri(connection, node.path)}'. ` +
        missingRoleText(this.options.directory, caller, dataAction, node.armId, role),
    );
  }

  /**
   * Re-checks the role behind an open link (rule 2, 3): a sender or receiver without it is detached; a
   * `$management` link forgets each cached decision that no longer holds (its next request is refused).
   */
  private reauthorize(link: Link, state: AuthorizedLinkState, why: string, recordAllowed: boolean): void {
    if (state.closed) return;
    const caller = state.claim.caller;
    if (caller.principalId !== state.connection.principalId) {
      // Unreachable while rule 1 holds; a link never acts for a principal other than its connection's.
      this.revoke(link, state, new BrokerError('unauthorized', `Unauthorized access. The link's token is for another principal than its connection's.`));
      return;
    }
    const actions = state.kind === 'management-requests' ? [...state.authorized] : [state.kind];
    for (const action of actions) {
      try {
        this.check(caller, action, state.node, state.connection, `${why}: ${action === 'send' ? 'send to' : 'receive from'} ${state.node.path}`, recordAllowed);
      } catch (error) {
        if (state.kind === 'management-requests') state.authorized.delete(action);
        else this.revoke(link, state, toBrokerError(error));
      }
    }
  }

  /** Re-checks the links that use `claim` (a token was put for its path: rule 2). */
  private reauthorizeClaim(connection: ConnectionState, claim: Claim): void {
    this.options.guard.refreshAccess();
    for (const link of [...connection.links]) {
      const state = this.linkStates.get(link);
      if (state && 'claim' in state && state.claim === claim) this.reauthorize(link, state, 'put-token', true);
    }
  }

  /** Re-checks every open link of every connection (rule 3). */
  private reauthorizeAll(why: string): void {
    try {
      // Changes another process wrote to the database reach no listener: this pass is their guarantee.
      this.options.guard.refreshAccess();
      for (const connection of this.connections.values()) {
        for (const link of [...connection.links]) {
          const state = this.linkStates.get(link);
          if (state && 'claim' in state) this.reauthorize(link, state, why, false);
        }
      }
    } catch (error) {
      this.fail(error);
    }
  }

  /** Role assignments changed (possibly several in one batch): re-check once the batch is done. */
  private queueReauthorization(): void {
    if (this.reauthorizationQueued) return;
    this.reauthorizationQueued = true;
    setImmediate(() => {
      this.reauthorizationQueued = false;
      this.reauthorizeAll('role assignments changed');
    });
  }

  /** A put-token refused before any role was checked: a console line and a line in the authorization log. */
  private refuseToken(connection: ConnectionState, path: string, caller: Caller | undefined, reason: string): void {
    const resolved = this.namespace.resolve(path);
    const scope = resolved && resolved.kind !== 'cbs' ? resolved.node.armId : this.options.directory.resourceId('serviceBus');
    this.options.log(`[servicebus] refused a token for ${this.uri(connection, path)} on ${connection.id}: ${reason}`);
    this.options.auditLog.recordAuthorization({
      resource: 'serviceBus',
      principalId: caller?.principalId ?? '',
      ...(caller?.clientId ? { clientId: caller.clientId } : {}),
      scope,
      decision: 'denied',
      operation: `put-token for ${this.uri(connection, path)} on ${connection.id}`,
      reason,
    });
  }

  private authorizeManagement(state: ManagementLinkState, action: 'send' | 'receive', operation: string): void {
    if (state.claim.expiresAt <= Date.now()) {
      throw new BrokerError('unauthorized', `Unauthorized access. The token for '${state.claim.audience}' expired; put a new one on $cbs.`);
    }
    if (state.authorized.has(action)) return;
    this.check(state.claim.caller, action, state.node, state.connection, `${operation} on ${state.node.path}`);
    state.authorized.add(action);
  }

  /** Detaches links whose token expired without renewal, at the earliest expiry. */
  private armExpiry(connection: ConnectionState): void {
    clearTimeout(connection.expiryTimer);
    connection.expiryTimer = undefined;
    let next = Number.POSITIVE_INFINITY;
    for (const link of connection.links) {
      const state = this.linkStates.get(link);
      if (state && 'claim' in state) next = Math.min(next, state.claim.expiresAt);
    }
    if (!Number.isFinite(next) || connection.closed) return;
    connection.expiryTimer = setTimeout(
      () => {
        try {
          this.expireLinks(connection);
        } catch (error) {
          this.fail(error);
        }
      },
      Math.min(Math.max(0, next - Date.now()), maxTimerDelayInMs),
    );
    connection.expiryTimer.unref();
  }

  private expireLinks(connection: ConnectionState): void {
    const now = Date.now();
    for (const link of [...connection.links]) {
      const state = this.linkStates.get(link);
      if (!state || !('claim' in state) || state.claim.expiresAt > now) continue;
      this.revoke(
        link,
        state,
        new BrokerError(
          'unauthorized',
          `Unauthorized access. The token for '${state.claim.audience}' expired at ${new Date(state.claim.expiresAt).toISOString()} and was not renewed on $cbs; the link is detached.`,
        ),
      );
    }
    this.armExpiry(connection);
  }

  // -------------------------------------------------------------------------------------------------
  // Transfers from clients

  private onMessage(context: EventContext): void {
    this.options.onActivity?.();
    const receiver = context.receiver!;
    const delivery = context.delivery!;
    const state = this.linkStates.get(receiver);
    if (!state || state.closed) {
      if (state?.pendingDetach) {
        state.pendingDetach.deliveries.push(delivery);
        state.pendingDetach.detach();
      } else {
        settle(delivery, rejectedOutcome(state?.detachedWith ?? new BrokerError('not-allowed', 'The link is not attached to an entity.')));
      }
      return;
    }
    const format = (context as EventContext & { format?: number }).format;
    if (state.kind === 'send') {
      this.onSend(state, delivery, context.message, format);
      return;
    }
    settle(delivery, acceptedOutcome());
    if (format !== undefined && format !== 0) return;
    const request = context.message as AmqpMessage;
    if (state.kind === 'cbs-requests') this.onPutToken(state.connection, request);
    else if (state.kind === 'management-requests') this.onManagementRequest(state, request);
  }

  private onSend(state: SendLinkState, delivery: Delivery, message: unknown, format: number | undefined): void {
    try {
      const now = Date.now();
      if (state.claim.expiresAt <= now) {
        throw new BrokerError('unauthorized', `Unauthorized access. The token for '${state.claim.audience}' expired; put a new one on $cbs.`);
      }
      let messages: IncomingMessage[];
      if (format === batchMessageFormat) {
        const payload = message as Buffer;
        if (payload.length > this.options.maxMessageSizeInBytes) throw messageTooLarge(payload.length, this.options.maxMessageSizeInBytes);
        messages = decodeBatch(payload);
      } else if (format === undefined || format === 0) {
        // rhea hands format-0 messages over decoded; their size is that of the encoding (kept for the store).
        const amqp = ownBody(message as AmqpMessage);
        const payload = encodeMessage(amqp);
        if (payload.length > this.options.maxMessageSizeInBytes) throw messageTooLarge(payload.length, this.options.maxMessageSizeInBytes);
        messages = [{ amqp, payload }];
      } else {
        throw new BrokerError('decode-error', `Message format ${format} is not supported (use 0, or 0x80013700 for batches).`);
      }
      this.namespace.send(state.target, messages, now);
      this.namespace.store.afterCommit((error) =>
        settle(delivery, error ? rejectedOutcome(new BrokerError('internal', `The message could not be stored: ${error.message}`)) : acceptedOutcome()),
      );
    } catch (error) {
      const brokerError = toBrokerError(error);
      if (brokerError.code === 'internal') this.fail(error);
      settle(delivery, rejectedOutcome(brokerError));
    }
  }

  private onPutToken(connection: ConnectionState, request: AmqpMessage): void {
    const properties = request.application_properties ?? {};
    const reply = (status: number, description: string): void =>
      this.reply(connection, request, { 'status-code': amqpInt(status), 'status-description': description });
    const audience = typeof properties.name === 'string' ? properties.name : '';
    if (properties.operation !== 'put-token') return reply(400, `The $cbs operation "${String(properties.operation)}" is not supported; use put-token.`);
    if (properties.type === names.sasTokenType) {
      this.options.log(`[servicebus] refused a shared access signature for ${audience}: local authentication is disabled`);
      return reply(
        401,
        'Shared access signatures are not accepted: this namespace has local (SAS key) authentication disabled, as Keyless deploys it. Authenticate with a Microsoft Entra ID token (a TokenCredential such as ManagedIdentityCredential).',
      );
    }
    if (properties.type !== names.jwtTokenType) return reply(400, `The token type "${String(properties.type)}" is not supported; put a Microsoft Entra ID token with type "jwt".`);
    const path = audiencePath(audience);
    if (path === undefined) return reply(400, `The put-token name must be the audience URI (sb://<namespace>/<entity>), not "${audience}".`);
    if (typeof request.body !== 'string') return reply(400, 'The put-token body must be the token as an AMQP string.');
    const token = request.body;
    if (this.options.faults) {
      void this.options.faults.beforePutToken().then((refusal) => (refusal ? reply(401, refusal) : this.checkPutToken(connection, audience, path, token, reply)));
      return;
    }
    this.checkPutToken(connection, audience, path, token, reply);
  }

  private checkPutToken(connection: ConnectionState, audience: string, path: string, token: string, reply: (status: number, description: string) => void): void {
    this.options.guard.authenticate(token, [defaults.audience]).then(
      (caller) => {
        if (connection.closed) return;
        if (caller.expiresOn.getTime() <= Date.now()) {
          this.refuseToken(connection, path, caller, `the token expired at ${caller.expiresOn.toISOString()}`);
          return reply(401, `ExpiredToken: The token is expired. Expiration time: '${caller.expiresOn.toISOString()}'.`);
        }
        // Rule 1: a connection acts for one principal; another principal's token changes nothing.
        if (connection.principalId !== undefined && connection.principalId !== caller.principalId) {
          this.refuseToken(connection, path, caller, `the connection is authorized for principal ${connection.principalId}; a token for another principal is refused`);
          return reply(
            401,
            `Unauthorized access. This connection is already authorized for the principal with object id ${connection.principalId}; ` +
              `a token for object id ${caller.principalId} cannot be put on it. Use a separate connection (a new ServiceBusClient) for another identity.`,
          );
        }
        connection.principalId = caller.principalId;
        const claim = connection.claims.put(path, audience, caller);
        try {
          // Rule 2: a renewal re-checks the links the token covers.
          this.reauthorizeClaim(connection, claim);
          this.armExpiry(connection);
        } catch (error) {
          this.fail(error);
        }
        reply(202, 'Accepted');
      },
      (error: unknown) => {
        const reason = (error as { reason?: string }).reason;
        const message = `${reason ? `${reason}: ` : ''}${(error as Error).message}`;
        this.refuseToken(connection, path, undefined, message);
        reply(401, `Unauthorized access. The token was refused: ${message}.`);
      },
    );
  }

  private onManagementRequest(state: ManagementLinkState, request: AmqpMessage): void {
    const operation = String(request.application_properties?.operation ?? '');
    const trackingId = request.application_properties?.['com.microsoft:tracking-id'];
    const tracking: Record<string, string> = typeof trackingId === 'string' ? { 'com.microsoft:tracking-id': trackingId } : {};
    try {
      if (operation === 'com.microsoft:renew-session-lock') this.options.faults?.checkSessionRenewal((request.body as Record<string, unknown> | undefined)?.['session-id']);
      const response = runManagementOperation(
        {
          namespace: this.namespace,
          node: state.node,
          maxMessageSizeInBytes: this.options.maxMessageSizeInBytes,
          authorize: (action, description) => this.authorizeManagement(state, action, description),
        },
        operation,
        request,
      );
      // Scheduling is a send and a rule change is a change of the entity: acknowledged once committed.
      // Settlements answer at once (see onOutcome).
      const respond = (error?: Error): void => {
        if (error) {
          const failure = new BrokerError('internal', `The change could not be stored: ${error.message}`);
          this.reply(state.connection, request, managementError(failure, tracking));
          return;
        }
        this.reply(
          state.connection,
          request,
          { statusCode: amqpInt(response.status), statusDescription: response.description, ...tracking },
          response.body,
        );
      };
      if (response.durable) this.namespace.store.afterCommit(respond);
      else respond();
    } catch (error) {
      const brokerError = toBrokerError(error);
      if (brokerError.code === 'internal') this.fail(error);
      this.reply(state.connection, request, managementError(brokerError, tracking));
    }
  }

  /** Sends a response to the link named by the request's reply-to, correlated by its message id. */
  private reply(connection: ConnectionState, request: AmqpMessage, properties: Record<string, unknown>, body?: AmqpTyped): void {
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

  // -------------------------------------------------------------------------------------------------
  // Deliveries to clients

  private onFlow(sender: Sender, fromPeer: boolean): void {
    const state = this.linkStates.get(sender);
    if (!state || state.kind !== 'receive' || state.closed || state.held) return;
    state.queue.pump();
    if (fromPeer && isDraining(sender)) {
      state.consumer.drained();
      sender.set_drained(true);
    }
  }

  /** A client settled a delivery (peekLock): complete, abandon, defer or dead-letter it. */
  private onOutcome(sender: Sender, delivery: Delivery, outcome: 'accepted' | 'rejected' | 'modified' | 'released'): void {
    this.options.onActivity?.();
    const state = this.linkStates.get(sender);
    if (!state || state.kind !== 'receive') return;
    const lock = this.deliveryLocks.get(delivery);
    if (!lock) {
      if (!delivery.settled) settleOutgoing(delivery, acceptedOutcome());
      return;
    }
    this.deliveryLocks.delete(delivery);
    const queue = state.queue;
    const remote = (delivery.remote_state ?? {}) as Outcome;
    const now = Date.now();
    try {
      let reply: unknown = acceptedOutcome();
      switch (outcome) {
        case 'accepted':
          queue.locks.complete(lock, now);
          break;
        case 'modified':
          if (remote.undeliverable_here) queue.locks.defer(lock, remote.message_annotations, now);
          else queue.locks.abandon(lock, remote.message_annotations, now);
          reply = outcomes.modified({ delivery_failed: remote.delivery_failed, undeliverable_here: remote.undeliverable_here }).described();
          break;
        case 'rejected': {
          const error = remote.error;
          if (error?.condition === names.deadLetterCondition) {
            const { DeadLetterReason, DeadLetterErrorDescription, ...properties } = error.info ?? {};
            queue.locks.deadLetter(lock, optionalString(DeadLetterReason), optionalString(DeadLetterErrorDescription), properties, now);
          } else {
            queue.locks.deadLetter(lock, error?.condition, error?.description, undefined, now);
          }
          // Never echo the dead-letter error: the SDK treats any error in the reply as a failure.
          break;
        }
        case 'released':
          queue.locks.releaseUnprocessed(lock, now);
          reply = outcomes.released().described();
          break;
      }
      // Settlements are acknowledged at once (they commit at the end of this turn): a crash in between can
      // only deliver the message again, which at-least-once delivery allows. Sends wait for the commit.
      settleOutgoing(delivery, reply);
    } catch (error) {
      const brokerError = toBrokerError(error);
      if (brokerError.code === 'internal') this.fail(error);
      settleOutgoing(delivery, rejectedOutcome(brokerError));
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Clean-up

  private cleanupLink(link: Link): void {
    const state = this.linkStates.get(link);
    if (!state || state.closed) return;
    state.closed = true;
    state.connection.links.delete(link);
    if (state.kind === 'receive') {
      if (state.held) {
        // rhea must still write the attach before the detach it answers with.
        state.held = false;
        releaseAttach(link);
      }
      state.queue.removeConsumer(state.consumer, Date.now());
    } else if (state.kind === 'reply') {
      for (const [key, value] of state.connection.replyLinks) if (value === link) state.connection.replyLinks.delete(key);
    }
  }

  private cleanupConnection(connection: Connection): void {
    const state = this.connections.get(connection);
    if (!state) return;
    this.connections.delete(connection);
    state.closed = true;
    clearTimeout(state.expiryTimer);
    for (const link of [...state.links]) this.cleanupLink(link);
  }

  private uri(connection: ConnectionState, path: string): string {
    return `sb://${connection.hostname}/${path.replace(/^\/+/, '')}`;
  }

  private fail(error: unknown): void {
    this.options.log(`[servicebus] internal error: ${(error as Error)?.stack ?? String(error)}`);
  }
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
 * store commits, in the turn after it arrived), and none while a frame is still arriving (`expectsReply`
 * false). A batch of 100 arrives in three or four TLS records: an empty frame was written after each, a TLS
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

/**
 * Detaches a sender link and, when the session holds no other open link (the SDK gives every entity link
 * its own), ends that session in the same write. The SDK reacts to a detach and to the end of its session
 * alike (closing the link, under a lock); when the end came only later, in answer to the SDK's own, that
 * second close ran after the SDK had reopened the sender for the next send and closed the new link, which
 * then failed with SenderBusy.
 */
function closeWithSession(link: Link, error: BrokerError): void {
  const session = link.session;
  link.close(error.toAmqp());
  let others = 0;
  session.each_link(
    () => others++,
    (other: Link) => other !== link && !other.is_closed(),
  );
  if (!others) session.close();
}

/** Settles a delivery the client sent (a message, a request). */
function settle(delivery: Delivery, state: unknown): void {
  if (!delivery.settled) delivery.update(true, state);
}

/**
 * Settles a delivery the broker sent, answering the client's (unsettled) disposition. With receiver
 * settle mode `second` the client settles on receipt of this and sends nothing more, so the delivery
 * is done on both sides: rhea must be told, or it keeps every delivery of the link in its session's
 * 2048-slot outgoing buffer and the link stalls once that is full.
 */
function settleOutgoing(delivery: Delivery, state: unknown): void {
  if (delivery.settled) return;
  delivery.update(true, state);
  markRemoteSettled(delivery);
}

function acceptedOutcome(): unknown {
  return outcomes.accepted().described();
}

function rejectedOutcome(error: BrokerError): unknown {
  return outcomes.rejected({ error: error.toAmqp() }).described();
}

function managementError(error: BrokerError, tracking: Record<string, string>): Record<string, unknown> {
  // The SDK needs `statusCode` (camelCase) and `error-condition` to map the error to its code.
  return { statusCode: amqpInt(error.status), statusDescription: error.message, 'error-condition': error.condition, ...tracking };
}

function amqpInt(value: number): AmqpTyped {
  return rhea.types.wrap_int(value);
}

function optionalString(value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : String(value);
}
