// The broker's links: what each attached link is for, from attach to detach. A client's sender link carries
// messages to a queue or topic, `$cbs` requests or `$management` requests; a client's receiver link takes messages
// from a queue, subscription or sub-queue (a session of it, possibly waiting for the next free session), or
// responses. Attach resolves the address, checks the link's role (authorization.ts) and echoes what the SDK expects
// (settle modes, the session filter and lock expiry). Flow hands messages to receivers with credit and answers
// drains. Detach comes from the client, from a deleted entity, or from a revoked role or expired token; a revoked
// sender is detached so that no acknowledged send is lost and no refused one acknowledged.

import type { Delivery, link as Link, Receiver, Sender } from 'rhea';
import { dotNetTicks } from '../amqp/amqp-message.js';
import { BrokerError, toBrokerError } from '../amqp/broker-error.js';
import { answerDrainsAtZeroCredit, holdAttach, isDraining, localAttach, releaseAttach } from '../amqp/rhea-internals.js';
import type { AnyEntity, EntityNode, QueueEntity, ServiceBusNamespace, TopicEntity } from '../entities/service-bus-namespace.js';
import type { MessageLock } from '../queue/locks.js';
import type { MessageQueue } from '../queue/message-queue.js';
import type { SessionQueue } from '../queue/sessions.js';
import type { LinkAuthorization } from './authorization.js';
import type { BrokerFaults } from './broker-faults.js';
import type { Claim } from './connection-claims.js';
import type { ConnectionState } from './connection.js';
import { LinkConsumer } from './link-consumer.js';
import { rejectedOutcome, settle } from './settlement.js';

export const linkDefaults = {
  /** Link credit the broker grants senders (topped up as messages arrive). */
  senderCreditWindow: 500,
  /**
   * A revoked sender is detached at its next transfer (refused, with the detach in the same write) or this
   * long after the revocation, whichever comes first. Part of the documented bound.
   */
  revokedSenderDetachDelayInMs: 1000,
  /** Server-side wait for the next available session when the client gives no `com.microsoft:timeout`. */
  acceptSessionTimeoutInMs: 60_000,
  /** Answer an accept-next-session this much before the client's own timeout. */
  acceptSessionMarginInMs: 50,
};

/** AMQP names Service Bus uses on links. */
const names = {
  sessionFilter: 'com.microsoft:session-filter',
  lockedUntilUtc: 'com.microsoft:locked-until-utc',
  timeout: 'com.microsoft:timeout',
} as const;

interface LinkStateBase {
  connection: ConnectionState;
  closed: boolean;
  /** Why the broker detached the link (revoked role, expired token): transfers still arriving are refused with it. */
  detachedWith?: BrokerError;
  /** A revoked sender waiting for its detach: transfers that arrive meanwhile are refused together with it. */
  pendingDetach?: { deliveries: Delivery[]; timer: NodeJS.Timeout; detach(): void };
}

/** What an attached link is for. */
export type LinkState =
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

export type ReceiveLinkState = Extract<LinkState, { kind: 'receive' }>;
/** A link that acts with a token's claim: its role is re-checked while it lives. */
export type AuthorizedLinkState = Extract<LinkState, { claim: Claim }>;
export type ManagementLinkState = Extract<LinkState, { kind: 'management-requests' }>;
export type SendLinkState = Extract<LinkState, { kind: 'send' }>;

/** What the links need from the broker. */
export interface BrokerLinksOptions {
  namespace: ServiceBusNamespace;
  /** Largest message (or batch) accepted, in bytes: announced on sender links. */
  maxMessageSizeInBytes: number;
  faults: BrokerFaults | undefined;
  authorization: LinkAuthorization;
  /** The connection state of a rhea connection (undefined once it closed). */
  connectionOf(link: Link): ConnectionState | undefined;
  /** The refusal of a link beyond the connection's limit, or undefined (connection.ts). */
  admitLink(link: Link): BrokerError | undefined;
  /** A link was registered on its connection, or forgotten (the broker closes connections left without links). */
  linkAdded(connection: ConnectionState): void;
  linkRemoved(link: Link, connection: ConnectionState): void;
  /** Remembers the lock of a delivery sent in peekLock, for its settlement. */
  delivered(delivery: Delivery, lock: MessageLock): void;
  log(line: string): void;
  /** Reports an unexpected failure (logged; the broker keeps running). */
  fail(error: unknown): void;
}

/** The state of every attached link. */
export class BrokerLinks {
  private readonly states = new WeakMap<Link, LinkState>();

  constructor(private readonly options: BrokerLinksOptions) {}

  /** What the link is for, if the broker attached it. */
  stateOf(link: Link): LinkState | undefined {
    return this.states.get(link);
  }

  // -------------------------------------------------------------------------------------------------
  // Attach

  /** The client attached a sender: `$cbs` or `$management` requests, or messages for an entity. */
  onClientSenderAttached(receiver: Receiver): void {
    const connection = this.options.connectionOf(receiver);
    if (!connection) return;
    const address = receiver.target?.address;
    try {
      const overLimit = this.options.admitLink(receiver);
      if (overLimit) throw overLimit;
      if (!address) throw new BrokerError('invalid-argument', 'A sender link needs a target address.');
      const resolved = this.options.namespace.resolve(address);
      if (!resolved) throw this.notFound(connection, address);
      this.echoTermini(receiver);
      if (resolved.kind === 'cbs') {
        this.register(receiver, { kind: 'cbs-requests', connection, closed: false });
        return;
      }
      const authorization = this.options.authorization;
      if (resolved.kind === 'management') {
        const claim = authorization.claimFor(connection, address);
        this.register(receiver, { kind: 'management-requests', connection, closed: false, node: resolved.node, claim, authorized: new Set() });
        return;
      }
      const node = resolved.node;
      if (!node.sendTarget) {
        throw new BrokerError('not-allowed', `Messages cannot be sent to ${connection.uri(node.path)}: send to a queue or topic.`);
      }
      const claim = authorization.claimFor(connection, address);
      authorization.check(claim.caller, 'send', node, connection, `send to ${node.path}`);
      localAttach(receiver).max_message_size = this.options.maxMessageSizeInBytes;
      this.options.faults?.gateSenderCredit(receiver, linkDefaults.senderCreditWindow);
      this.register(receiver, { kind: 'send', connection, closed: false, node, target: node.sendTarget, claim });
    } catch (error) {
      this.refuse(receiver, error);
    }
  }

  /** The client attached a receiver: responses of `$cbs` / `$management`, or messages of an entity. */
  onClientReceiverAttached(sender: Sender): void {
    const connection = this.options.connectionOf(sender);
    if (!connection) return;
    const source = sender.source;
    const address = source?.address;
    try {
      const overLimit = this.options.admitLink(sender);
      if (overLimit) throw overLimit;
      if (!address) throw new BrokerError('invalid-argument', 'A receiver link needs a source address.');
      const resolved = this.options.namespace.resolve(address);
      if (!resolved) throw this.notFound(connection, address);
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

  /**
   * The refusal of an address that names no entity — once a token was put for it: without one, the client gets the
   * refusal any entity would give it (`unauthorized-access`), so a connection with no token learns nothing of what exists.
   */
  private notFound(connection: ConnectionState, address: string): BrokerError {
    this.options.authorization.claimFor(connection, address);
    return this.options.namespace.notFound(connection.uri(address));
  }

  private openReceiver(sender: Sender, connection: ConnectionState, node: EntityNode, address: string): void {
    const queue = node.queue;
    if (!queue) {
      throw new BrokerError('not-allowed', `Cannot receive from topic ${connection.uri(node.path)}: receive from one of its subscriptions (<topic>/Subscriptions/<name>).`);
    }
    const authorization = this.options.authorization;
    const claim = authorization.claimFor(connection, address);
    authorization.check(claim.caller, 'receive', node, connection, `receive from ${node.path}`);
    const status = node.entity!.definition.status;
    if (status === 'Disabled' || status === 'ReceiveDisabled') {
      throw new BrokerError('entity-disabled', `Messaging entity '${connection.uri(node.path)}' is currently disabled (status ${status}): it gives out no messages.`);
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
      (delivery, lock) => this.options.delivered(delivery, lock),
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
    const timeout = Math.max(0, (Number.isFinite(requested) && requested > 0 ? requested : linkDefaults.acceptSessionTimeoutInMs) - linkDefaults.acceptSessionMarginInMs);
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
    this.states.set(link, state);
    state.connection.links.add(link);
    this.options.linkAdded(state.connection);
    if ('claim' in state) this.options.authorization.armExpiry(state.connection);
  }

  /** Refuses an attach: the reply carries no source/target and a detach with the error follows. */
  private refuse(link: Link, error: unknown): void {
    const brokerError = toBrokerError(error);
    if (brokerError.code === 'internal') this.options.fail(error);
    link.close(brokerError.toAmqp());
  }

  // -------------------------------------------------------------------------------------------------
  // Flow

  /** The client granted credit or drains (`fromPeer`), or the session's outgoing buffer has room again. */
  onFlow(sender: Sender, fromPeer: boolean): void {
    const state = this.states.get(sender);
    if (!state || state.kind !== 'receive' || state.closed || state.held) return;
    state.queue.pump();
    if (fromPeer && isDraining(sender)) {
      state.consumer.drained();
      sender.set_drained(true);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Detach

  /**
   * Detaches every link attached to a deleted entity (or one of its sub-queues or its `$management`
   * node) with `amqp:not-found`, which the SDK reports as `MessagingEntityNotFound`.
   */
  detachLinksOf(entity: AnyEntity, connections: Iterable<ConnectionState>): void {
    for (const connection of connections) {
      for (const link of [...connection.links]) {
        const state = this.states.get(link);
        if (!state || state.closed || !('node' in state)) continue;
        if (state.node.entity !== entity && state.node.sendTarget !== entity) continue;
        this.detach(link, this.options.namespace.notFound(connection.uri(state.node.path)));
      }
    }
  }

  detach(link: Link, error: BrokerError): void {
    this.cleanup(link);
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
  revoke(link: Link, state: AuthorizedLinkState, error: BrokerError): void {
    if (state.closed) return;
    this.options.log(`[servicebus] detached a ${state.kind === 'send' ? 'sender' : 'receiver'} of ${state.node.path} on ${state.connection.id}: ${error.message}`);
    this.cleanup(link);
    state.detachedWith = error;
    if (state.kind !== 'send') {
      link.close(error.toAmqp());
      return;
    }
    let detaching = false;
    const pending = {
      deliveries: [] as Delivery[],
      timer: setTimeout(() => pending.detach(), linkDefaults.revokedSenderDetachDelayInMs),
      detach: (): void => {
        if (detaching) return;
        detaching = true;
        clearTimeout(pending.timer);
        this.options.namespace.store.afterCommit(() => {
          delete state.pendingDetach;
          if (state.connection.closed) return;
          try {
            for (const delivery of pending.deliveries) settle(delivery, rejectedOutcome(error));
            closeWithSession(link, error);
          } catch (failure) {
            this.options.fail(failure);
          }
        });
      },
    };
    pending.timer.unref();
    state.pendingDetach = pending;
  }

  /** Forgets a link that closed (either side), or that the broker detaches: its receiver leaves its queue. */
  cleanup(link: Link): void {
    const state = this.states.get(link);
    if (!state || state.closed) return;
    state.closed = true;
    state.connection.links.delete(link);
    this.options.linkRemoved(link, state.connection);
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
