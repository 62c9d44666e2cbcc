// The local Service Bus's AMQP 1.0 endpoint: one rhea container, and which of rhea's events goes to which unit.
// connection.ts (sockets, SASL, per-connection state), cbs.ts (tokens), authorization.ts (roles, for the life of a
// link), links.ts (attach, flow, detach), sends.ts (transfers from clients), settlement.ts (outcomes),
// management.ts (`$management`). This file creates them, wires them to each other, and starts and stops them.

import type { Duplex } from 'node:stream';
import rhea from 'rhea';
import type { Container, EventContext, link as Link } from 'rhea';
import type { AuditLog } from '../../audit/audit-log.js';
import type { ConsoleLog } from '../../data-plane.js';
import type { Directory } from '../../entra/directory.js';
import type { ResourceGuard } from '../../guard/resource-guard.js';
import { encodeIntoReusedBuffer, keepDecodedBytes } from '../amqp/rhea-internals.js';
import type { ServiceBusNamespace } from '../entities/service-bus-namespace.js';
import { LinkAuthorization } from './authorization.js';
import type { BrokerFaults } from './broker-faults.js';
import { CbsNode } from './cbs.js';
import { BrokerConnections, enableSasl, type LinklessTimeouts } from './connection.js';
import { BrokerLinks, linkDefaults } from './links.js';
import { ManagementNode } from './management.js';
import { IncomingTransfers } from './sends.js';
import { DeliverySettlement } from './settlement.js';

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
  /** The namespace's name (a refusal at its connection quota names it). */
  namespaceName: string;
  /** Connections open at once; one more is closed with `amqp:resource-limit-exceeded` once it opens. */
  maxConnections: number;
  /** How long a connection may be without links before it is closed (Azure: 60 s from its start, 300 s after its last link). */
  linklessTimeouts: LinklessTimeouts;
  /** The authorization log, for refusals that happen before any role is checked (a token for another principal). */
  auditLog: AuditLog;
  log: ConsoleLog;
  /** Called for every message sent or settled (the idle memory reducer watches it). */
  onActivity?(): void;
  /** Injected faults (broker-faults.ts); none when omitted. */
  faults?: BrokerFaults;
}

/**
 * The local Service Bus's AMQP 1.0 endpoint (rhea, TLS): SASL ANONYMOUS and MSSBCBS, `$cbs` put-token
 * with Entra ID tokens checked by the shared guard, RBAC per link for the life of the link (see
 * {@link LinkAuthorization}), entity links for sending and receiving, `$management`, settlement, drain,
 * and detaching links whose token expires unrenewed.
 */
export class AmqpBroker {
  private readonly container: Container;
  private readonly connections: BrokerConnections;
  private readonly authorization: LinkAuthorization;
  private readonly links: BrokerLinks;
  private readonly settlement: DeliverySettlement;
  private readonly transfers: IncomingTransfers;

  constructor(private readonly options: AmqpBrokerOptions) {
    const { namespace, faults, maxMessageSizeInBytes } = options;
    const fail = (error: unknown): void => this.fail(error);
    encodeIntoReusedBuffer();
    keepDecodedBytes();
    this.container = rhea.create_container({
      id: 'local-azure-servicebus',
      // Sends are accepted only after the store commits; settlements keep abandon and defer apart.
      autoaccept: false,
      treat_modified_as_released: false,
      credit_window: linkDefaults.senderCreditWindow,
    });
    enableSasl(this.container);
    this.connections = new BrokerConnections(this.container, (link) => this.links.cleanup(link), faults, {
      namespaceName: options.namespaceName,
      maxMessageSizeInBytes,
      maxConnections: options.maxConnections,
      linkless: options.linklessTimeouts,
    });
    this.settlement = new DeliverySettlement(fail);
    this.authorization = new LinkAuthorization({
      guard: options.guard,
      directory: options.directory,
      reauthorizationIntervalInMs: options.reauthorizationIntervalInMs,
      connections: () => this.connections.values(),
      stateOf: (link) => this.links.stateOf(link),
      revoke: (link, state, error) => this.links.revoke(link, state, error),
      fail,
    });
    this.links = new BrokerLinks({
      namespace,
      maxMessageSizeInBytes,
      faults,
      authorization: this.authorization,
      connectionOf: (link) => this.connections.get(link.connection),
      admitLink: (link) => this.connections.admitLink(link),
      linkAdded: (connection) => this.connections.linkAdded(connection),
      linkRemoved: (link, connection) => this.connections.linkRemoved(link.connection, connection),
      delivered: (delivery, lock) => this.settlement.delivered(delivery, lock),
      log: options.log,
      fail,
    });
    this.transfers = new IncomingTransfers({
      namespace,
      maxMessageSizeInBytes,
      links: this.links,
      cbs: new CbsNode({
        namespace,
        guard: options.guard,
        directory: options.directory,
        auditLog: options.auditLog,
        log: options.log,
        faults,
        accepted: (connection, claim) => this.authorization.tokenAccepted(connection, claim),
        fail,
      }),
      management: new ManagementNode({ namespace, maxMessageSizeInBytes, authorization: this.authorization, faults, fail }),
      fail,
    });
    this.listen();
    namespace.onEntityRemoved((entity) => this.links.detachLinksOf(entity, this.connections.values()));
  }

  /** Number of open AMQP connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Closes every connection (`amqp:connection:forced`, so clients reconnect) and stops timers. */
  async stop(): Promise<void> {
    this.authorization.stop();
    await this.connections.stop();
  }

  /** The open client connections (the connection faults act on them). */
  openSockets(): Iterable<Duplex> {
    return this.connections.openSockets();
  }

  /**
   * Takes a connection whose client speaks AMQP: a TLS socket, or the byte stream of an AMQP WebSocket
   * (the namespace endpoint routes both here).
   */
  accept(socket: Duplex): void {
    this.connections.accept(socket);
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
    c.on('connection_open', guarded((context) => this.connections.opened(context.connection)));
    c.on('session_open', guarded((context) => this.connections.sessionOpened(context.connection)));
    c.on('receiver_open', guarded((context) => this.links.onClientSenderAttached(context.receiver!)));
    c.on('sender_open', guarded((context) => this.links.onClientReceiverAttached(context.sender!)));
    c.on('message', guarded((context) => {
      this.options.onActivity?.();
      this.transfers.onMessage(context);
    }));
    c.on('sender_flow', guarded((context) => this.links.onFlow(context.sender!, true)));
    // Also raised when the session's outgoing buffer has room again: deliver, but a drain was answered already.
    c.on('sendable', guarded((context) => this.links.onFlow(context.sender!, false)));
    for (const outcome of ['accepted', 'rejected', 'modified', 'released'] as const) {
      c.on(outcome, guarded((context) => {
        this.options.onActivity?.();
        const state = this.links.stateOf(context.sender!);
        if (state?.kind === 'receive') this.settlement.onOutcome(state.queue, context.delivery!, outcome);
      }));
    }
    c.on('sender_close', guarded((context) => this.links.cleanup(context.sender!)));
    c.on('receiver_close', guarded((context) => this.links.cleanup(context.receiver!)));
    c.on('session_close', guarded((context) => {
      context.session?.each_link((link: Link) => this.links.cleanup(link), () => true);
    }));
    c.on('connection_close', guarded((context) => this.connections.closed(context.connection)));
    c.on('disconnected', guarded((context) => this.connections.closed(context.connection)));
    // rhea ends the connection on a protocol error; other connections are not affected.
    c.on('protocol_error', (error: Error) => this.options.log(`[servicebus] closed a connection after a protocol error: ${error.message}`));
    c.on('error', (error: Error) => this.options.log(`[servicebus] connection error: ${error.message}`));
    for (const event of ['connection_error', 'session_error', 'sender_error', 'receiver_error']) c.on(event, () => undefined);
  }

  private fail(error: unknown): void {
    this.options.log(`[servicebus] internal error: ${(error as Error)?.stack ?? String(error)}`);
  }
}
