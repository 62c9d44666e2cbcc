import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  isServiceBusError,
  type ServiceBusClient,
  type ServiceBusMessage,
  type ServiceBusReceivedMessage,
  type ServiceBusSender,
  type ServiceBusSessionReceiver,
} from '@azure/service-bus';
import { Logger } from '@nestjs/common';
import type { MeterProvider } from '@opentelemetry/api';
import type { ServiceBusEntity } from '@keyless/auth';
import { ClientProxy, RpcException, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { eventContracts, replyErrorSchema, requestContracts, type EventPattern, type RequestPattern } from '@keyless/contracts';
import { InvalidPayloadError, InvalidReplyError, MessagingError, RequestTimeoutError } from '../errors.js';
import { MessagingMetrics } from '../metrics.js';
import { issuesOf, type ReplyEnvelope } from '../reply.js';
import { describe } from '../error-description.js';
import { isTransientSendError } from '../send-errors.js';
import { settledWithin } from '../settled-within.js';
import { withProducerSpan } from '../tracing.js';
import { explained, type ServiceBusErrorExplainer } from '../access-denial.js';
import { ServiceBusRecord, type ServiceBusRecordOptions } from './service-bus.record-builder.js';

/** Options of `ServiceBusClientProxy` (`@keyless/messaging/internals`). */
export interface ServiceBusClientProxyOptions {
  /** The Service Bus client (from `@keyless/auth`: namespace + the process's credential). */
  client: ServiceBusClient;
  /** The session-enabled queue replies come back on. Omit for a proxy that only publishes events. */
  replyQueue?: string;
  /** This instance's reply session id. **Default**: `<hostname>-<random uuid>`. */
  instanceId?: string;
  /**
   * How long a request waits for its reply (also the request message's TTL), and how long a publish waits for
   * Service Bus to accept its event (the SDK's own retries would take up to four of its per-try timeouts).
   * **Default**: 30000 ms.
   */
  requestTimeoutInMs?: number;
  /** Delay bounds for re-acquiring the reply session after an error. **Default**: 250 ms … 10000 ms. */
  sessionRetry?: { initialDelayInMs?: number; maxDelayInMs?: number };
  /** Where the transport's metrics go. **Default**: the global OpenTelemetry meter provider (a no-op until the app registers one). */
  meterProvider?: MeterProvider;
  /**
   * Translates send and reply-session errors (a role refusal → `AccessDeniedError` naming the fix). **Default**: none,
   * the SDK's errors; `MessagingModule` passes `@keyless/auth`'s `AzureClientFactory.explainAccessDenied`.
   */
  explainError?: ServiceBusErrorExplainer;
}

const defaults = {
  requestTimeoutInMs: 30_000,
  sessionRetry: { initialDelayInMs: 250, maxDelayInMs: 10_000 },
  /** The reply session's lock is renewed this long before it expires. */
  sessionLockRenewalMarginInMs: 10_000,
  /**
   * Replies the broker may deliver to this instance's session before the proxy has taken the earlier ones. The SDK's
   * default for a session receiver is 1: every reply then waits for the credit the previous one gave back, one
   * round trip each, while many requests are in flight. Taking a reply is synchronous (match, validate, resolve).
   */
  replyCredit: 100,
  /** Delay bounds between attempts to send a request after a transient failure (within its timeout). */
  sendRetry: { initialDelayInMs: 100, maxDelayInMs: 1_000 },
  /**
   * How long `close` waits for the reply session's and the senders' links to close: milliseconds on a healthy
   * connection, while on a dead one the SDK waits for a send in flight to give up (its 10 s operation timeout). The
   * links end with the process anyway, and nothing is waiting on them by then.
   */
  closeLinksTimeoutInMs: 1_000,
};

interface Pending {
  callback: (packet: WritePacket) => void;
  timer: NodeJS.Timeout | undefined;
  pattern: string;
  started: number;
  /** The last transient send failure, kept as the cause of a timeout. */
  lastSendError: unknown;
}

/** State of the reply session, for health checks. */
export interface ReplySessionHealth {
  sessionId: string;
  state: 'connecting' | 'attached' | 'reconnecting' | 'closed';
  lastError?: string;
  lastErrorAt?: string;
  pendingRequests: number;
}

/**
 * A NestJS `ClientProxy` over Azure Service Bus. `send` puts a request on the target service's queue
 * (subject = pattern, `replyTo` = the shared reply queue, `replyToSessionId` = this instance's id, TTL = the
 * timeout) and resolves with the reply that comes back on this instance's session; `emit` publishes an
 * event to the events topic. Payloads are validated against `@keyless/contracts` before anything is sent.
 * No Manage rights are needed: the reply queue and its sessions already exist.
 */
export class ServiceBusClientProxy extends ClientProxy {
  /** This instance's reply session id. */
  readonly instanceId: string;
  private readonly log = new Logger(ServiceBusClientProxy.name);
  private readonly senders = new Map<string, ServiceBusSender>();
  private readonly pending = new Map<string, Pending>();
  private connecting: Promise<void> | undefined;
  private closed = false;
  private receiver: ServiceBusSessionReceiver | undefined;
  private readonly sessionHealth: ReplySessionHealth;
  private readonly metrics: MessagingMetrics;

  constructor(private readonly options: ServiceBusClientProxyOptions) {
    super();
    this.instanceId = options.instanceId ?? `${hostname()}-${randomUUID()}`;
    this.sessionHealth = { sessionId: this.instanceId, state: 'connecting', pendingRequests: 0 };
    this.metrics = new MessagingMetrics(options.meterProvider);
  }

  /** Acquires this instance's reply session (once; later calls share the first). Publish-only: nothing to do. */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new MessagingError('NotConnected', 'ServiceBusClientProxy was closed.'));
    if (!this.options.replyQueue) return Promise.resolve();
    this.connecting ??= new Promise<void>((resolve) => {
      void this.keepReplySession(resolve);
    });
    return this.connecting;
  }

  /**
   * Fails pending requests, stops the reply session and closes the senders, waiting at most 1000 ms for their links
   * (Service Bus may be gone: then they end with the process, with one warning).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.callback({ err: new MessagingError('NotConnected', `client closed before the reply to "${pending.pattern}" (${id}) arrived`), isDisposed: true });
    }
    this.pending.clear();
    const linksClosed = Promise.all([this.receiver?.close().catch(() => undefined), ...[...this.senders.values()].map((sender) => sender.close())]);
    linksClosed.catch((error: unknown) => this.log.warn(`shutdown: closing a sender failed; its link ends with the process: ${describe(error)}`));
    if (!(await settledWithin(linksClosed, defaults.closeLinksTimeoutInMs))) {
      this.log.warn(`shutdown: closing the Service Bus links of the reply session and the senders did not finish within ${defaults.closeLinksTimeoutInMs} ms; they end with the process (the broker drops links with their connection)`);
    }
    this.sessionHealth.state = 'closed';
  }

  /** Reply session state for health checks (undefined for a publish-only proxy). */
  health(): ReplySessionHealth | undefined {
    return this.options.replyQueue ? { ...this.sessionHealth, pendingRequests: this.pending.size } : undefined;
  }

  unwrap<T>(): T {
    return this.options.client as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const pattern = this.normalizePattern(packet.pattern);
    const contract = requestContracts[pattern as RequestPattern];
    const { data, options } = unwrapRecord(packet.data);
    if (!contract) {
      callback({ err: new InvalidPayloadError(pattern, [{ path: '', message: `"${pattern}" is not a request pattern of @keyless/contracts` }]), isDisposed: true });
      return () => undefined;
    }
    if (!this.options.replyQueue) {
      callback({ err: new MessagingError('NotConnected', `cannot send request "${pattern}": this proxy has no replyQueue (it only publishes events)`), isDisposed: true });
      return () => undefined;
    }
    const parsed = contract.request.safeParse(data);
    if (!parsed.success) {
      callback({ err: new InvalidPayloadError(pattern, issuesOf(parsed.error)), isDisposed: true });
      return () => undefined;
    }
    const timeoutInMs = options.timeToLiveInMs ?? this.options.requestTimeoutInMs ?? defaults.requestTimeoutInMs;
    const messageId = options.messageId ?? randomUUID();
    const deadline = Date.now() + timeoutInMs;
    const request: Pending = { callback, timer: undefined, pattern, started: performance.now(), lastSendError: undefined };
    request.timer = setTimeout(() => {
      if (this.pending.delete(messageId)) callback({ err: new RequestTimeoutError(pattern, contract.queue, timeoutInMs, messageId, request.lastSendError), isDisposed: true });
    }, timeoutInMs);
    this.pending.set(messageId, request);
    const message: ServiceBusMessage = {
      ...this.baseMessage(pattern, parsed.data, options),
      messageId,
      replyTo: this.options.replyQueue,
      replyToSessionId: this.instanceId,
    };
    this.sendRequest(contract.queue, pattern, message, request, deadline).catch((error: unknown) => {
      if (this.pending.get(messageId) !== request) return;
      clearTimeout(request.timer);
      this.pending.delete(messageId);
      callback({ err: error, isDisposed: true });
    });
    return () => {
      const waiting = this.pending.get(messageId);
      if (waiting) clearTimeout(waiting.timer);
      this.pending.delete(messageId);
    };
  }

  /**
   * Sends a request, again and again while the failure is transient (connection lost, broker restarting,
   * busy) and the request still waits: a request either gets its reply or fails with
   * {@link RequestTimeoutError} (whose `cause` is the last send failure). Each attempt carries the time
   * left as its TTL, so a request sent late still expires when its caller gives up. Permanent failures
   * (message too large, entity missing, access denied) reject at once.
   */
  private async sendRequest(queue: string, pattern: string, message: ServiceBusMessage, request: Pending, deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const timeToLive = deadline - Date.now();
      if (timeToLive <= 0 || this.pending.get(String(message.messageId)) !== request) return;
      try {
        // A request nobody picks up in time expires instead of running for a caller who gave up.
        await this.sendTo({ kind: 'queue', name: queue }, pattern, { ...message, timeToLive });
        return;
      } catch (error) {
        if (this.closed || !isTransientSendError(error)) throw error;
        request.lastSendError = error;
        this.log.warn(`request ${String(message.messageId)} (${pattern}) to ${queue}: send failed, retrying while the request waits: ${describe(error)}`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(defaults.sendRetry.maxDelayInMs, defaults.sendRetry.initialDelayInMs * 2 ** attempt, Math.max(0, deadline - Date.now()))));
      }
    }
  }

  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    const pattern = this.normalizePattern(packet.pattern);
    const contract = eventContracts[pattern as EventPattern];
    const { data, options } = unwrapRecord(packet.data);
    if (!contract) throw new InvalidPayloadError(pattern, [{ path: '', message: `"${pattern}" is not an event pattern of @keyless/contracts` }]);
    const parsed = contract.payload.safeParse(data);
    if (!parsed.success) throw new InvalidPayloadError(pattern, issuesOf(parsed.error));
    const messageId = options.messageId ?? randomUUID();
    const timeoutInMs = this.options.requestTimeoutInMs ?? defaults.requestTimeoutInMs;
    // A caller (the gateway's HTTP client) waits for the publish: it is bounded like a request, not by the SDK's retries.
    const deadline = AbortSignal.timeout(timeoutInMs);
    await this.sendTo({ kind: 'topic', name: contract.topic }, pattern, { ...this.baseMessage(pattern, parsed.data, options), messageId }, deadline).catch((error: unknown) => {
      if (!deadline.aborted) throw error;
      throw new MessagingError(
        'PublishTimeout',
        `Service Bus did not accept event "${pattern}" (message ${messageId}) on topic "${contract.topic}" within ${timeoutInMs} ms; it may still arrive once Service Bus recovers.`,
        { cause: error },
      );
    });
    return undefined as T;
  }

  private baseMessage(pattern: string, body: unknown, options: ServiceBusRecordOptions): ServiceBusMessage {
    return {
      subject: pattern,
      contentType: 'application/json',
      body,
      applicationProperties: { ...options.applicationProperties },
      ...(options.sessionId ? { sessionId: options.sessionId } : {}),
      ...(options.timeToLiveInMs ? { timeToLive: options.timeToLiveInMs } : {}),
      ...(options.scheduledEnqueueTimeUtc ? { scheduledEnqueueTimeUtc: options.scheduledEnqueueTimeUtc } : {}),
    };
  }

  private async sendTo(entity: ServiceBusEntity, pattern: string, message: ServiceBusMessage, abortSignal?: AbortSignal): Promise<void> {
    let sender = this.senders.get(entity.name);
    if (!sender) {
      sender = this.options.client.createSender(entity.name);
      this.senders.set(entity.name, sender);
    }
    const attributes = { 'messaging.system': 'servicebus', 'messaging.destination.name': entity.name, 'messaging.operation.type': 'send', 'messaging.message.id': String(message.messageId) };
    await withProducerSpan(`${pattern} send`, attributes, message.applicationProperties as Record<string, string | number | boolean>, () => sender.sendMessages(message, abortSignal && { abortSignal })).catch((error: unknown) => {
      throw explained(this.options.explainError, error, 'send', entity);
    });
  }

  /**
   * Holds this instance's reply session for as long as the proxy lives. The SDK does not recover session
   * receivers (a lost connection or lock closes them for good), so any error leads to a new
   * `acceptSession` after a growing delay; replies sent meanwhile wait in the session.
   */
  private async keepReplySession(onFirstAttach: () => void): Promise<void> {
    const retry = { ...defaults.sessionRetry, ...this.options.sessionRetry };
    let delayInMs = retry.initialDelayInMs;
    while (!this.closed) {
      try {
        // receiveAndDelete: a reply matters only to the caller waiting in this process, so no settlement
        // round trip. The SDK renews session locks only in peekLock mode, so the renewal is done here.
        const receiver = await this.options.client.acceptSession(this.options.replyQueue!, this.instanceId, { receiveMode: 'receiveAndDelete' });
        this.receiver = receiver;
        this.sessionHealth.state = 'attached';
        delayInMs = retry.initialDelayInMs;
        onFirstAttach();
        await new Promise<void>((lost) => {
          const renewal = this.renewSessionLock(receiver, (error) => {
            this.noteSessionError(error);
            lost();
          });
          receiver.subscribe({
            processMessage: async (message) => this.onReply(message),
            processError: async ({ error }) => {
              this.noteSessionError(error);
              if (receiver.isClosed || (isServiceBusError(error) && error.code === 'SessionLockLost')) {
                clearTimeout(renewal.timer);
                lost();
              }
            },
          }, { maxConcurrentCalls: defaults.replyCredit });
        });
        await receiver.close().catch(() => undefined);
      } catch (error) {
        this.noteSessionError(error);
      }
      if (this.closed) break;
      this.sessionHealth.state = 'reconnecting';
      await new Promise((resolve) => setTimeout(resolve, delayInMs));
      delayInMs = Math.min(retry.maxDelayInMs, delayInMs * 2);
    }
  }

  /** Renews the session lock shortly before each expiry until the receiver closes or a renewal fails. */
  private renewSessionLock(receiver: ServiceBusSessionReceiver, onFailure: (error: unknown) => void): { timer: NodeJS.Timeout | undefined } {
    const handle: { timer: NodeJS.Timeout | undefined } = { timer: undefined };
    const schedule = (): void => {
      const remaining = (receiver.sessionLockedUntilUtc?.getTime() ?? Date.now()) - Date.now();
      handle.timer = setTimeout(() => {
        if (this.closed || receiver.isClosed) return;
        receiver.renewSessionLock().then(schedule, onFailure);
      }, Math.max(0, remaining - Math.min(defaults.sessionLockRenewalMarginInMs, remaining / 2)));
      handle.timer.unref();
    };
    schedule();
    return handle;
  }

  private noteSessionError(sdkError: unknown): void {
    if (this.closed) return;
    const error = explained(this.options.explainError, sdkError, 'receive', { kind: 'queue', name: this.options.replyQueue! });
    this.sessionHealth.lastError = describe(error);
    this.sessionHealth.lastErrorAt = new Date().toISOString();
    this.log.warn(`reply session ${this.instanceId} on ${this.options.replyQueue ?? '(none)'}: ${describe(error)}`);
  }

  private async onReply(message: ServiceBusReceivedMessage): Promise<void> {
    const id = String(message.correlationId ?? '');
    const pending = this.pending.get(id);
    if (!pending) {
      this.log.debug?.(`reply ${message.messageId} for ${id} has no waiting request (timed out or not ours); dropped`);
      return;
    }
    this.pending.delete(id);
    clearTimeout(pending.timer);
    this.metrics.requestDuration.record(performance.now() - pending.started, { pattern: pending.pattern });
    const outcome = this.checkReply(pending.pattern, id, message.body);
    if (outcome instanceof InvalidReplyError) {
      this.log.error(`${outcome.message} (reply ${String(message.messageId)} from ${this.options.replyQueue}); the caller gets InvalidReplyError`);
      pending.callback({ err: outcome, isDisposed: true });
    } else if (outcome.ok) {
      pending.callback({ response: outcome.data, isDisposed: true });
    } else {
      pending.callback({ err: new RpcException(outcome.error), isDisposed: true });
    }
  }

  /**
   * A reply as its contract allows it: `{ ok: true, data }` with data that passes the pattern's reply schema,
   * or `{ ok: false, error }` with a known error code. Anything else is an {@link InvalidReplyError}: data
   * that breaks its contract never reaches the caller.
   */
  private checkReply(pattern: string, messageId: string, body: unknown): ReplyEnvelope | InvalidReplyError {
    const envelope = body as Partial<ReplyEnvelope> | null | undefined;
    if (envelope?.ok === true) {
      const parsed = requestContracts[pattern as RequestPattern].reply.safeParse((envelope as { data?: unknown }).data);
      return parsed.success ? { ok: true, data: parsed.data } : new InvalidReplyError(pattern, messageId, issuesOf(parsed.error).map((i) => ({ ...i, path: ['data', i.path].filter(Boolean).join('.') })));
    }
    if (envelope?.ok === false) {
      const parsed = replyErrorSchema.safeParse((envelope as { error?: unknown }).error);
      return parsed.success ? { ok: false, error: parsed.data } : new InvalidReplyError(pattern, messageId, issuesOf(parsed.error).map((i) => ({ ...i, path: ['error', i.path].filter(Boolean).join('.') })));
    }
    return new InvalidReplyError(pattern, messageId, [{ path: '', message: 'not a reply envelope ({ ok: true, data } or { ok: false, error })' }]);
  }

  protected override serializeError(err: unknown): unknown {
    return err;
  }
}

function unwrapRecord(data: unknown): { data: unknown; options: ServiceBusRecordOptions } {
  return data instanceof ServiceBusRecord ? { data: data.data, options: data.options } : { data, options: {} };
}
