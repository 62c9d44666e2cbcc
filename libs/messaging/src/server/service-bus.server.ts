import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  isServiceBusError,
  type MessageHandlers,
  type ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
  type ServiceBusSender,
} from '@azure/service-bus';
import { Logger } from '@nestjs/common';
import type { MeterProvider } from '@opentelemetry/api';
import type { ServiceBusEntity } from '@keyless/auth';
import { RpcException, Server, type CustomTransportStrategy, type MessageHandler } from '@nestjs/microservices';
import { eventContracts, queues, requestContracts, type EventPattern, type RequestPattern } from '@keyless/contracts';
import { lastValueFrom } from 'rxjs';
import type { ClaimOptions, IdempotencyClaim, IdempotencyStore } from '../idempotency/idempotency-store.js';
import { MessagingMetrics } from '../metrics.js';
import { issuesOf, replyFormatProperty, toReplyError, type ReplyEnvelope } from '../reply.js';
import { describe } from '../error-description.js';
import { settle, type HandlingOutcome, type SettlementPolicyOptions } from '../settlement-policy.js';
import { prepare, unhandleableReply } from '../dispatch.js';
import { isTransientSendError } from '../send-errors.js';
import { settledWithin } from '../settled-within.js';
import { withConsumerSpan, withProducerSpan } from '../tracing.js';
import { explained, type ServiceBusErrorExplainer } from '../access-denial.js';
import { sideEffectsExtra } from './handler.decorators.js';
import { ServiceBusContext } from './service-bus.context.js';

/** Where a service's messages come from. */
export interface ServiceBusServerOptions {
  /** The Service Bus client (from `@keyless/auth`: namespace + the process's credential). */
  client: ServiceBusClient;
  /**
   * The queue this service's requests arrive on (subject = pattern). Omit if it handles none.
   * `replyQueues` are the only queues replies are sent to: a request whose `replyTo` names any other entity
   * is dead-lettered (`ReplyToNotAllowed`) without running its handler, so a request cannot make the service
   * write into another service's queue. **Default** `replyQueues`: the contracts' reply queue
   * (`queues.replies`). Names compare case-insensitively, as Service Bus entity names do.
   */
  requests?: { queue: string; maxConcurrentCalls?: number; replyQueues?: readonly string[] };
  /** Event subscriptions this service consumes. */
  events?: readonly { topic: string; subscription: string; maxConcurrentCalls?: number }[];
  /** Retry and dead-letter tuning (see settlement-policy.ts). */
  settlement?: SettlementPolicyOptions;
  /**
   * Where messages being handled and handled are recorded, shared by every instance of the service: a
   * `PostgresIdempotencyStore` (tests may use the `MemoryIdempotencyStore` double of `@keyless/messaging/testing`).
   */
  idempotencyStore: IdempotencyStore;
  /** How long a handled message id is remembered. **Default**: 24 h. */
  idempotencyTtlInMs?: number;
  /**
   * How long this instance's claim on a message it is handling holds without renewal; it is renewed every third of
   * that while the handler runs. A copy at another instance waits until the
   * claim is completed or, if this instance died, its lease ran out. **Default**: 30000 ms.
   */
  idempotencyLeaseInMs?: number;
  /** This instance's name in claims and logs. **Default**: `<host name>-<pid>-<random>`. */
  instanceId?: string;
  /** Locks of long handlers are renewed for up to this long. **Default**: 300000 ms (the SDK's default). */
  maxAutoLockRenewalDurationInMs?: number;
  /**
   * On close, in-flight handlers get this long to finish before their messages are abandoned. With the abandons and
   * the links' close (1000 ms together, after it) and the bus client's close (1000 ms) it must fit in the process's
   * stop bound (`@keyless/observability`: 7 s for the app to close, so that a stop ends within docker's 10 s grace
   * before SIGKILL). **Default**: 4000 ms.
   */
  shutdownTimeoutInMs?: number;
  /** Where the transport's metrics go. **Default**: the global OpenTelemetry meter provider (a no-op until the app registers one). */
  meterProvider?: MeterProvider;
  /**
   * Translates receive and reply-send errors (a role refusal → `AccessDeniedError` naming the fix). **Default**: none,
   * the SDK's errors; `MessagingModule` passes `@keyless/auth`'s `AzureClientFactory.explainAccessDenied`.
   */
  explainError?: ServiceBusErrorExplainer;
}

const defaults = {
  maxConcurrentCalls: 8,
  idempotencyTtlInMs: 24 * 3600 * 1000,
  idempotencyLeaseInMs: 30_000,
  /** First and longest pause between two looks at a request another instance is handling. */
  claimPollInMs: 50,
  maxClaimPollInMs: 1_000,
  maxAutoLockRenewalDurationInMs: 300_000,
  shutdownTimeoutInMs: 4_000,
  /**
   * On close, after the handlers' drain: how long the abandons, the claims' release and the links' close get,
   * together. A healthy broker answers each in milliseconds; one that is gone lets the SDK retry a settlement on
   * its dead connection for up to four 10 s operation timeouts.
   */
  closeLinksTimeoutInMs: 1_000,
  /** Replies outlive no caller: the requester's timeout is far shorter. */
  replyTimeToLiveInMs: 5 * 60_000,
};

/** State of one receiver, for health checks. */
export interface ReceiverHealth {
  /** The queue, or `<topic>/Subscriptions/<subscription>`. */
  entityPath: string;
  /**
   * `attaching` until its link is attached the first time; `receiving` while it is attached; `reconnecting` from the
   * loss of the link until the SDK has attached it again (it retries, with backoff, until the receiver is closed);
   * `closed` once the server closed.
   */
  state: 'attaching' | 'receiving' | 'reconnecting' | 'closed';
  /** When the receiver entered `state` (ISO 8601). */
  since: string;
  /**
   * The last error the SDK reported for this receiver, prefixed with its source: `receive` (the link: it is
   * re-attached) or one message's `renewLock`, `complete`, `abandon` (the link may be fine: `state` is left as is).
   */
  lastError?: string;
  /** When `lastError` was reported (ISO 8601). */
  lastErrorAt?: string;
}

interface InFlight {
  message: ServiceBusReceivedMessage;
  receiver: ServiceBusReceiver;
  /** Set when shutdown abandoned the message: the handler's own settlement must then be skipped. */
  released: boolean;
}

type Kind = 'request' | 'event';

/**
 * A hook of `subscribe`'s handlers that the SDK calls each time it has attached the receive link — the first time and
 * after every re-attach following a lost connection — before it grants credit. It is not in the SDK's public types
 * (its internal `InternalMessageHandlers`, @azure/service-bus 7.x), and it is the only signal of a re-attach: the SDK
 * reports the loss (`processError`, source `receive`) but not the recovery. If a new SDK stops calling it,
 * test/resilience/idle-broker-restart.spec.ts fails, and receivers stay `attaching` after a start until their first message.
 */
interface LinkAttachedHandler {
  postInitialize(): Promise<void>;
}

/**
 * Span attribute of every `<pattern> process` span: `handled` (the handler ran and resolved), `duplicate` (handled
 * before: the idempotency guard answered), `failed`, `unhandleable` or `reply-not-sent`.
 */
export const outcomeAttribute = 'keyless.messaging.outcome';

/**
 * A NestJS microservice transport over Azure Service Bus: requests arrive on the service's queue and are
 * answered on the requester's reply session; events arrive on the service's subscriptions of the events
 * topic. Payloads are validated against `@keyless/contracts`, handlers run with the message's trace
 * context, and every message is settled by the policy in settlement-policy.ts.
 *
 * @example
 * const app = await NestFactory.create(AppModule);
 * app.connectMicroservice({ strategy: app.get(ServiceBusServer) });
 * await app.startAllMicroservices();
 */
export class ServiceBusServer extends Server implements CustomTransportStrategy {
  override readonly transportId = Symbol.for('keyless.servicebus');
  private readonly log = new Logger(ServiceBusServer.name);
  private readonly receivers: { receiver: ServiceBusReceiver; kind: Kind; health: ReceiverHealth; close: () => Promise<void> }[] = [];
  /** One sender per declared reply queue (lowercase name), created on first use: bounded by `replyQueues`. */
  private readonly replySenders = new Map<string, ServiceBusSender>();
  private readonly replyQueues: ReadonlySet<string>;
  private readonly inFlight = new Set<InFlight>();
  /** Keys (entity:messageId) of messages whose handler is running, each with a promise settled when it stops. */
  private readonly inFlightKeys = new Map<string, Promise<void>>();
  private readonly idempotency: IdempotencyStore;
  private readonly instanceId: string;
  private readonly claimOptions: ClaimOptions;
  private readonly metrics: MessagingMetrics;
  private closing = false;
  private listening = false;
  private readonly wakeOnClose = new Set<() => void>();

  constructor(private readonly options: ServiceBusServerOptions) {
    super();
    this.idempotency = options.idempotencyStore;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.claimOptions = {
      leaseInMs: options.idempotencyLeaseInMs ?? defaults.idempotencyLeaseInMs,
      ttlInMs: options.idempotencyTtlInMs ?? defaults.idempotencyTtlInMs,
    };
    this.replyQueues = new Set((options.requests?.replyQueues ?? [queues.replies]).map((queue) => queue.toLowerCase()));
    this.metrics = new MessagingMetrics(options.meterProvider);
  }

  /** Starts receiving. Every registered handler must have a contract; the callback runs once receivers are up. */
  listen(callback: (error?: unknown) => void): void {
    try {
      this.checkHandlersHaveContracts();
      const { requests, events = [] } = this.options;
      const receiverOptions = {
        receiveMode: 'peekLock' as const,
        maxAutoLockRenewalDurationInMs: this.options.maxAutoLockRenewalDurationInMs ?? defaults.maxAutoLockRenewalDurationInMs,
      };
      if (requests) {
        this.startReceiver(this.options.client.createReceiver(requests.queue, receiverOptions), { kind: 'queue', name: requests.queue }, 'request', requests.maxConcurrentCalls);
      }
      for (const event of events) {
        this.startReceiver(this.options.client.createReceiver(event.topic, event.subscription, receiverOptions), { kind: 'subscription', topic: event.topic, name: event.subscription }, 'event', event.maxConcurrentCalls);
      }
      this.listening = true;
      this._status$.next('connected');
      callback();
    } catch (error) {
      callback(error);
    }
  }

  /**
   * Stops receiving, gives in-flight handlers `shutdownTimeoutInMs` to finish and settle, then abandons
   * what is left (so no message stays locked for a full lock duration) and closes the receivers.
   *
   * Rules (a stop must end within the process's stop bound even when Service Bus or the database is gone):
   * 1. Handlers still running after `shutdownTimeoutInMs` have their messages abandoned (redelivered at once, here
   *    or elsewhere) and their claims released; their own settlement is skipped.
   * 2. The abandons, releases and the links' close get `closeLinksTimeoutInMs` (1000 ms) together. What Service Bus
   *    has not confirmed by then is left as it is, with one warning naming it: an unsettled message stays on the
   *    broker, which keeps its lock when the connection ends and redelivers it once the lock expires (the entity's
   *    lock duration); an unreleased claim runs out after its lease, after which a redelivery takes it.
   * 3. Nothing is completed or dead-lettered on the way out: a message is either settled by its handler's outcome
   *    before the bound, or redelivered.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const wake of this.wakeOnClose) wake();
    const deadline = Date.now() + (this.options.shutdownTimeoutInMs ?? defaults.shutdownTimeoutInMs);
    // Stopping the subscriptions drains their credit: bounded like the handlers, which go on meanwhile.
    await settledWithin(Promise.all(this.receivers.map((r) => r.close())), deadline - Date.now());
    while (this.inFlight.size > 0 && Date.now() < deadline) await delay(20);
    const linksDeadline = Date.now() + defaults.closeLinksTimeoutInMs;
    const unconfirmed = new Set(this.inFlight);
    const givenBack = [...unconfirmed].map((entry) => this.giveBack(entry).finally(() => unconfirmed.delete(entry)));
    await settledWithin(Promise.all(givenBack), linksDeadline - Date.now());
    if (unconfirmed.size) {
      this.log.warn(
        `shutdown: Service Bus did not confirm giving back ${[...unconfirmed].map((entry) => `message ${entry.message.messageId} of ${entry.receiver.entityPath}`).join(', ')} within ${defaults.closeLinksTimeoutInMs} ms; stopping without it: each stays locked on the broker until its lock expires, then is redelivered (and its claim, unless released, runs out after ${this.claimOptions.leaseInMs} ms)`,
      );
    }
    const linksClosed = Promise.all([
      ...this.receivers.map((r) => r.receiver.close()),
      ...[...this.replySenders.values()].map((s) => s.close()),
      Promise.resolve(this.idempotency.close?.()),
    ]);
    linksClosed.catch((error: unknown) => this.log.warn(`shutdown: closing a Service Bus link or the idempotency store failed; it ends with the process: ${describe(error)}`));
    if (!(await settledWithin(linksClosed, linksDeadline - Date.now()))) {
      this.log.warn(`shutdown: closing the Service Bus links and the idempotency store did not finish within ${defaults.closeLinksTimeoutInMs} ms; they end with the process (the broker drops links with their connection)`);
    }
    for (const r of this.receivers) r.health.state = 'closed';
    this._status$.next('disconnected');
  }

  /**
   * Abandons a message whose handler did not finish in time (rule 1): its claim is released first, so that the
   * redelivery, which may go to another instance, does not wait for this instance's lease to run out.
   * Resolves once Service Bus took the message back or refused (then it is redelivered once its lock expires).
   */
  private async giveBack(entry: InFlight): Promise<void> {
    entry.released = true;
    const { message, receiver } = entry;
    this.log.warn(`shutdown: abandoning message ${message.messageId} of ${receiver.entityPath}; its handler did not finish in time`);
    await this.idempotency
      .release(`${receiver.entityPath}:${message.messageId}`, this.instanceId)
      .catch((error: unknown) => this.log.warn(`shutdown: could not release the claim on ${message.messageId}; a redelivery takes it once its lease runs out: ${describe(error)}`));
    try {
      await receiver.abandonMessage(message);
    } catch (error) {
      this.log.warn(`shutdown: could not abandon message ${message.messageId} of ${receiver.entityPath}; it is redelivered once its lock expires: ${describe(error)}`);
    }
  }

  /**
   * The handler of a subject. Subjects are the contracts' plain string patterns, registered as they are; Nest's
   * own lookup first tries `JSON.parse` on the pattern, which throws for every plain string — a measurable
   * cost on every message.
   */
  override getHandlerByPattern(pattern: string): MessageHandler | null {
    return this.messageHandlers.get(pattern) ?? null;
  }

  /** Whether `listen` has run (receivers started) and `close` has not. */
  isListening(): boolean {
    return this.listening && !this.closing;
  }

  /** Receiver states for health checks. */
  health(): ReceiverHealth[] {
    return this.receivers.map((r) => ({ ...r.health }));
  }

  on(): never {
    throw new Error('ServiceBusServer does not emit events; use health() for receiver state.');
  }

  unwrap<T>(): T {
    return this.options.client as T;
  }

  private checkHandlersHaveContracts(): void {
    for (const [pattern, handler] of this.getHandlers()) {
      const known = handler.isEventHandler ? pattern in eventContracts : pattern in requestContracts;
      if (!known) {
        throw new Error(`No ${handler.isEventHandler ? 'event' : 'request'} contract for pattern "${pattern}" in @keyless/contracts; add it there first.`);
      }
    }
  }

  private startReceiver(receiver: ServiceBusReceiver, entity: ServiceBusEntity, kind: Kind, maxConcurrentCalls = defaults.maxConcurrentCalls): void {
    const health: ReceiverHealth = { entityPath: receiver.entityPath, state: 'attaching', since: new Date().toISOString() };
    const enter = (state: 'receiving' | 'reconnecting'): void => {
      if (health.state === state || health.state === 'closed') return;
      health.state = state;
      health.since = new Date().toISOString();
    };
    const handlers: MessageHandlers & LinkAttachedHandler = {
      processMessage: async (message) => {
        enter('receiving');
        await this.process(message, receiver, kind);
      },
      processError: async ({ error: sdkError, errorSource }) => {
        const error = explained(this.options.explainError, sdkError, 'receive', entity);
        // Only a `receive` error is about the link; a failed lock renewal or settlement is about one message.
        if (errorSource === 'receive' && health.state === 'receiving') enter('reconnecting');
        health.lastError = `${errorSource}: ${describe(error)}`;
        health.lastErrorAt = new Date().toISOString();
        this.log.warn(`receiver ${receiver.entityPath} (${errorSource}): ${describe(error)}; the SDK keeps retrying`);
      },
      // The link is attached again; without this a receiver would stay "reconnecting" until its next message, which on
      // an idle queue or subscription never comes, so the service would never be ready again after a broker restart.
      postInitialize: async () => enter('receiving'),
    };
    // The SDK grants credit = maxConcurrentCalls: prefetch is sized to what can be handled at once.
    const subscription = receiver.subscribe(handlers, { autoCompleteMessages: false, maxConcurrentCalls });
    this.receivers.push({ receiver, kind, health, close: () => subscription.close() });
  }

  private async process(message: ServiceBusReceivedMessage, receiver: ServiceBusReceiver, kind: Kind): Promise<void> {
    const pattern = typeof message.subject === 'string' ? message.subject : '';
    const attributes = {
      'messaging.system': 'servicebus',
      'messaging.destination.name': receiver.entityPath,
      'messaging.message.id': String(message.messageId ?? ''),
      'messaging.operation.type': 'process',
    };
    await withConsumerSpan(`${pattern || 'unknown'} process`, attributes, message.applicationProperties, async (span) => {
      const entry: InFlight = { message, receiver, released: false };
      this.inFlight.add(entry);
      const started = performance.now();
      try {
        const outcome = kind === 'request' ? await this.handleRequestMessage(message, receiver, pattern) : await this.handleEventMessage(message, receiver, pattern);
        // What happened, for whoever counts handler runs per message id (the chaos suite's "applied twice").
        span.setAttribute(outcomeAttribute, outcome.kind === 'handled' && outcome.duplicate ? 'duplicate' : outcome.kind);
        await this.apply(outcome, entry, pattern, kind);
      } finally {
        this.inFlight.delete(entry);
        this.metrics.handlerDuration.record(performance.now() - started, { pattern, kind });
      }
    });
  }

  private async handleRequestMessage(message: ServiceBusReceivedMessage, receiver: ServiceBusReceiver, pattern: string): Promise<HandlingOutcome> {
    if (!message.replyTo || !message.replyToSessionId) {
      return { kind: 'unhandleable', reason: 'MissingReplyTo', description: `request "${pattern}" has no replyTo/replyToSessionId: nobody to answer` };
    }
    if (!this.replyQueues.has(message.replyTo.toLowerCase())) {
      return {
        kind: 'unhandleable',
        reason: 'ReplyToNotAllowed',
        description: `request "${pattern}" asks for its reply on "${message.replyTo.slice(0, 260)}", which is not a reply queue of this service (${[...this.replyQueues].join(', ')}); nothing was sent there`,
      };
    }
    const reply = (envelope: ReplyEnvelope): Promise<void> => this.sendReply(message, pattern, envelope);
    const contract = requestContracts[pattern as RequestPattern];
    const handler = this.getHandlerByPattern(pattern);
    const prepared = prepare(message.body, pattern, contract?.request, handler);
    if ('kind' in prepared) {
      await reply({ ok: false, error: unhandleableReply(prepared) });
      return prepared;
    }
    if (prepared.handler.extras?.[sideEffectsExtra] === false) {
      // A query: a copy only computes the same answer again, so no claim and no remembered reply.
      const { envelope, outcome } = await this.runRequestHandler(prepared, message, receiver, pattern);
      const sent = await this.sendReplyOf(message, pattern, reply, envelope);
      return sent.kind === 'handled' ? outcome : sent;
    }
    const key = `${receiver.entityPath}:${message.messageId}`;
    // A copy of a request still being handled here (the requester re-sent it after a lost send
    // acknowledgement) waits for the first, then answers from what the first remembered.
    for (let running = this.inFlightKeys.get(key); running; running = this.inFlightKeys.get(key)) await running;
    if (this.closing) return { kind: 'failed', error: new Error('the service is shutting down'), isRequest: false };
    const finished = this.markInFlight(key);
    try {
      let claim: IdempotencyClaim;
      try {
        claim = await this.claimWaiting(key);
      } catch (error) {
        // Without the store a copy could run twice: the caller gets dependency-unavailable (rule 4) and may retry.
        this.log.warn(`request ${message.messageId} (${pattern}): the idempotency store cannot be reached, answering dependency-unavailable: ${describe(error)}`);
        const sent = await this.sendReplyOf(message, pattern, reply, { ok: false, error: { code: 'dependency-unavailable', message: 'The service cannot take requests right now.' } });
        return sent.kind === 'handled' ? { kind: 'failed', error, isRequest: true } : sent;
      }
      if (claim.status === 'done') {
        this.log.log(`request ${message.messageId} (${pattern}) was already handled: re-sending its reply`);
        const resent = await this.sendReplyOf(message, pattern, reply, claim.record.reply as ReplyEnvelope);
        return resent.kind === 'handled' ? { kind: 'handled', duplicate: true } : resent;
      }
      // Still held by another instance when this one began shutting down: the redelivery goes elsewhere.
      if (claim.status === 'running') return { kind: 'failed', error: new Error('the service is shutting down'), isRequest: false };
      const stopLease = this.holdLease(key, message, pattern);
      const { envelope, outcome } = await this.runRequestHandler(prepared, message, receiver, pattern).finally(stopLease);
      // Remembered before it is sent: if the send fails (the broker went away), the redelivered request
      // gets this reply again instead of running the handler a second time (settlement rule 6).
      await this.idempotency
        .complete(key, { handledAt: Date.now(), reply: envelope }, this.claimOptions.ttlInMs)
        .catch((error: unknown) => this.log.error(`could not remember the reply to request ${message.messageId} (${pattern}); a redelivery would run its handler again: ${describe(error)}`));
      const sent = await this.sendReplyOf(message, pattern, reply, envelope);
      return sent.kind === 'handled' ? outcome : sent;
    } finally {
      finished();
    }
  }

  /**
   * Runs a request's handler and makes its reply: the result checked against the contract's reply schema, or the
   * error reply of a failure (rule 4: the error reply is the outcome, remembered like any other reply).
   */
  private async runRequestHandler(
    prepared: { handler: MessageHandler; data: unknown },
    message: ServiceBusReceivedMessage,
    receiver: ServiceBusReceiver,
    pattern: string,
  ): Promise<{ envelope: ReplyEnvelope; outcome: HandlingOutcome }> {
    try {
      const result = await this.invoke(prepared.handler, prepared.data, message, receiver, pattern);
      const parsed = requestContracts[pattern as RequestPattern].reply.safeParse(result);
      if (parsed.success) return { envelope: { ok: true, data: parsed.data }, outcome: { kind: 'handled' } };
      this.log.error(`handler of "${pattern}" returned an invalid reply: ${JSON.stringify(issuesOf(parsed.error))}`);
      return {
        envelope: { ok: false, error: { code: 'internal', message: `handler of "${pattern}" returned a reply that breaks its contract`, details: issuesOf(parsed.error) } },
        outcome: { kind: 'handled' },
      };
    } catch (error) {
      this.logFailure(message, receiver, pattern, error);
      return { envelope: { ok: false, error: toReplyError(error) }, outcome: { kind: 'failed', error, isRequest: true } };
    }
  }

  /**
   * Claims a message for this instance. While another instance holds it (a copy delivered to both: a requester's
   * re-send, a lock lost under load, an instance killed mid-handler), waits — the message stays locked, the SDK renews
   * the lock — looking again with backoff, until that instance completes it (→ `done`, answered from its record) or
   * its lease runs out (it died → claimed here). Waiting rather than failing the delivery keeps the copy from using up
   * its delivery attempts while the first runs. Returns `running` only when this instance begins shutting down.
   */
  private async claimWaiting(key: string): Promise<IdempotencyClaim> {
    for (let pause = defaults.claimPollInMs; ; pause = Math.min(pause * 2, defaults.maxClaimPollInMs)) {
      const claim = await this.idempotency.claim(key, this.instanceId, this.claimOptions);
      if (claim.status !== 'running' || this.closing) return claim;
      await this.sleepUnlessClosing(Math.min(pause, claim.leaseRemainingInMs + 10));
    }
  }

  /** Renews this instance's claim on `key` every third of the lease until the returned function is called. */
  private holdLease(key: string, message: ServiceBusReceivedMessage, pattern: string): () => void {
    const { leaseInMs } = this.claimOptions;
    const timer = setInterval(() => {
      this.idempotency.renew(key, this.instanceId, leaseInMs).then(
        (held) => {
          if (!held) this.log.warn(`message ${message.messageId} (${pattern}): this instance's claim was lost (its lease ran out); another copy may run its handler too`);
        },
        (error: unknown) => this.log.warn(`message ${message.messageId} (${pattern}): the claim could not be renewed: ${describe(error)}`),
      );
    }, Math.max(10, Math.floor(leaseInMs / 3)));
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Sends the reply of a handled request. A transient failure becomes settlement rule 6 (the redelivery re-sends
   * it). A permanent one (the reply too large, the reply queue missing or not writable) is reported to the
   * caller with a small `internal` error reply if that gets through, so the caller does not wait for its
   * timeout; if not, rule 6 again (an operator may restore the role or the queue).
   */
  private async sendReplyOf(message: ServiceBusReceivedMessage, pattern: string, reply: (envelope: ReplyEnvelope) => Promise<void>, envelope: ReplyEnvelope): Promise<HandlingOutcome> {
    try {
      await reply(envelope);
      return { kind: 'handled' };
    } catch (error) {
      if (isTransientSendError(error)) return { kind: 'reply-not-sent', error };
      this.log.error(`the reply to request ${message.messageId} (${pattern}) cannot be sent: ${describe(error)}`);
      try {
        await reply({ ok: false, error: { code: 'internal', message: `the reply to "${pattern}" could not be sent: ${describe(error)}` } });
        return { kind: 'handled' };
      } catch {
        return { kind: 'reply-not-sent', error };
      }
    }
  }

  private async handleEventMessage(message: ServiceBusReceivedMessage, receiver: ServiceBusReceiver, pattern: string): Promise<HandlingOutcome> {
    const contract = eventContracts[pattern as EventPattern];
    const prepared = prepare(message.body, pattern, contract?.payload, this.getHandlerByPattern(pattern));
    if ('kind' in prepared) return prepared;
    const key = `${receiver.entityPath}:${message.messageId}`;
    // A copy still being handled here (its lock was lost under load) waits for the first, then finds it done.
    for (let running = this.inFlightKeys.get(key); running; running = this.inFlightKeys.get(key)) await running;
    if (this.closing) return { kind: 'failed', error: new Error('the service is shutting down'), isRequest: false };
    const finished = this.markInFlight(key);
    try {
      let claim: IdempotencyClaim;
      try {
        claim = await this.claimWaiting(key);
      } catch (error) {
        this.log.warn(`event ${message.messageId} (${pattern}) on ${receiver.entityPath}: the idempotency store cannot be reached; retried later: ${describe(error)}`);
        return { kind: 'failed', error, isRequest: false };
      }
      if (claim.status === 'done') {
        this.log.log(`event ${message.messageId} (${pattern}) on ${receiver.entityPath} was already handled: completing it without running the handler again`);
        return { kind: 'handled', duplicate: true };
      }
      // Still held by another instance when this one began shutting down: the redelivery goes elsewhere.
      if (claim.status === 'running') return { kind: 'failed', error: new Error('the service is shutting down'), isRequest: false };
      const stopLease = this.holdLease(key, message, pattern);
      try {
        await this.invoke(prepared.handler, prepared.data, message, receiver, pattern);
      } catch (error) {
        stopLease();
        this.logFailure(message, receiver, pattern, error);
        // Let the retry (here or at another instance) take the claim at once.
        await this.idempotency.release(key, this.instanceId).catch((releaseError: unknown) => this.log.warn(`could not release the claim on ${message.messageId}: ${describe(releaseError)}`));
        return { kind: 'failed', error, isRequest: false };
      }
      stopLease();
      // The handler's effect happened: a failure to record it is logged, not retried (a retry would repeat it).
      await this.idempotency
        .complete(key, { handledAt: Date.now() }, this.claimOptions.ttlInMs)
        .catch((error: unknown) => this.log.error(`could not record event ${message.messageId} (${pattern}) as handled; a copy arriving later would run its handler again: ${describe(error)}`));
      return { kind: 'handled' };
    } finally {
      finished();
    }
  }

  /** Marks `key` as being handled here until the returned function is called. */
  private markInFlight(key: string): () => void {
    let resolve!: () => void;
    this.inFlightKeys.set(key, new Promise<void>((r) => (resolve = r)));
    return () => {
      this.inFlightKeys.delete(key);
      resolve();
    };
  }

  private async invoke(handler: MessageHandler, data: unknown, message: ServiceBusReceivedMessage, receiver: ServiceBusReceiver, pattern: string): Promise<unknown> {
    const context = new ServiceBusContext([message, receiver, pattern]);
    const result: unknown = await handler(data, context);
    return lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
  }

  private async apply(outcome: HandlingOutcome, entry: InFlight, pattern: string, kind: Kind): Promise<void> {
    if (entry.released) return;
    const { message, receiver } = entry;
    const action = settle(outcome, message.deliveryCount ?? 0, this.options.settlement);
    try {
      switch (action.action) {
        case 'complete':
          await receiver.completeMessage(message);
          (outcome.kind === 'handled' ? this.metrics.handled : this.metrics.failed).add(1, { pattern, kind });
          return;
        case 'dead-letter':
          this.log.error(`dead-lettering ${kind} ${message.messageId} (${pattern || 'no subject'}) from ${receiver.entityPath}: ${action.reason}: ${action.description}`);
          await receiver.deadLetterMessage(message, { deadLetterReason: action.reason, deadLetterErrorDescription: action.description });
          this.metrics.deadLettered.add(1, { pattern, kind, reason: action.reason });
          return;
        case 'retry':
          this.metrics.failed.add(1, { pattern, kind });
          this.log.warn(
            outcome.kind === 'reply-not-sent'
              ? `reply to request ${message.messageId} (${pattern}) could not be sent: ${describe(outcome.error)}; re-sending the remembered reply in ${action.delayInMs} ms (delivery ${(message.deliveryCount ?? 0) + 1})`
              : `retrying ${kind} ${message.messageId} (${pattern}) from ${receiver.entityPath} in ${action.delayInMs} ms (delivery ${(message.deliveryCount ?? 0) + 1})`,
          );
          await this.sleepUnlessClosing(action.delayInMs);
          if (!entry.released) await receiver.abandonMessage(message);
          return;
      }
    } catch (error) {
      // Typically a lost lock: the broker redelivers, and the idempotency guard keeps the effect single.
      this.log.warn(`could not settle ${message.messageId} on ${receiver.entityPath} (${action.action}): ${describe(error)}`);
    }
  }

  private async sendReply(request: ServiceBusReceivedMessage, pattern: string, envelope: ReplyEnvelope): Promise<void> {
    const queue = request.replyTo!;
    let sender = this.replySenders.get(queue.toLowerCase());
    if (!sender) {
      sender = this.options.client.createSender(queue);
      this.replySenders.set(queue.toLowerCase(), sender);
    }
    const applicationProperties: Record<string, string | number | boolean> = { [replyFormatProperty]: 1 };
    const attributes = { 'messaging.system': 'servicebus', 'messaging.destination.name': queue, 'messaging.operation.type': 'send' };
    await withProducerSpan(`${pattern} reply`, attributes, applicationProperties, () =>
      sender.sendMessages({
        messageId: randomUUID(),
        subject: pattern,
        sessionId: request.replyToSessionId!,
        correlationId: String(request.messageId),
        contentType: 'application/json',
        body: envelope,
        timeToLive: defaults.replyTimeToLiveInMs,
        applicationProperties,
      }),
    ).catch((error: unknown) => {
      throw explained(this.options.explainError, error, 'send', { kind: 'queue', name: queue });
    });
  }

  private logFailure(message: ServiceBusReceivedMessage, receiver: ServiceBusReceiver, pattern: string, error: unknown): void {
    const where = `${receiver.entityPath} message ${message.messageId} (${pattern}, delivery ${(message.deliveryCount ?? 0) + 1})`;
    const code = error instanceof RpcException ? (error.getError() as { code?: string }).code : undefined;
    if (code === 'not-found' || code === 'invalid-request') {
      // An answer, not a failure: the requester gets it as an error reply.
      this.log.debug?.(`${where} answered ${code}: ${describe(error)}`);
      return;
    }
    if (isServiceBusError(error)) this.log.warn(`handler failed on ${where}: Service Bus ${error.code}: ${error.message}`);
    else this.log.warn(`handler failed on ${where}: ${describe(error)}`, error instanceof Error ? error.stack : undefined);
  }

  private sleepUnlessClosing(ms: number): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeOnClose.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeOnClose.add(done);
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

