import { randomUUID } from 'node:crypto';
import type { ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import { ClientProxy, RpcException, Server, type CustomTransportStrategy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { eventContracts, requestContracts, type EventPattern, type RequestPattern } from '@keyless/contracts';
import { lastValueFrom } from 'rxjs';
import { MessagingClient } from '../client/messaging.client.js';
import { ServiceBusRecord } from '../client/service-bus.record-builder.js';
import { prepare, unhandleableReply } from '../dispatch.js';
import { InvalidPayloadError } from '../errors.js';
import { issuesOf, toReplyError, type ReplyEnvelope } from '../reply.js';
import { ServiceBusContext } from '../server/service-bus.context.js';
import { settle, type SettlementPolicyOptions } from '../settlement-policy.js';

/** A message the in-memory bus dead-lettered, as an operator would find it on the DLQ. */
export interface DeadLetteredMessage {
  pattern: string;
  payload: unknown;
  reason: string;
  description: string;
  deliveryCount: number;
}

/**
 * An in-memory stand-in for Service Bus, for fast unit tests of handlers: the same contract validation,
 * reply envelopes and settlement policy as the real transport, delivered synchronously and without
 * backoff delays. Integration tests still run against the local Service Bus.
 */
export class InMemoryBus {
  readonly published: { pattern: string; payload: unknown }[] = [];
  readonly deadLettered: DeadLetteredMessage[] = [];
  server: InMemoryServer | undefined;
}

/** The server side of {@link InMemoryBus}; connect it with `app.connectMicroservice({ strategy })`. */
export class InMemoryServer extends Server implements CustomTransportStrategy {
  constructor(
    private readonly bus: InMemoryBus,
    private readonly settlement: SettlementPolicyOptions = {},
  ) {
    super();
    bus.server = this;
  }

  listen(callback: () => void): void {
    callback();
  }

  close(): void {
    this.bus.server = undefined;
  }

  on(): never {
    throw new Error('InMemoryServer does not emit events.');
  }

  unwrap<T>(): T {
    return this.bus as T;
  }

  /** Delivers a request as the Service Bus server would and returns the reply envelope. */
  async deliverRequest(pattern: string, body: unknown): Promise<ReplyEnvelope> {
    const prepared = prepare(body, pattern, requestContracts[pattern as RequestPattern]?.request, this.getHandlerByPattern(pattern));
    if ('kind' in prepared) {
      this.bus.deadLettered.push({ pattern, payload: body, reason: prepared.reason, description: prepared.description, deliveryCount: 0 });
      return { ok: false, error: unhandleableReply(prepared) };
    }
    try {
      const result = await lastValueFrom(this.transformToObservable(await prepared.handler(prepared.data, inMemoryContext(pattern, body, 0))), { defaultValue: undefined });
      const reply = requestContracts[pattern as RequestPattern].reply.safeParse(result);
      return reply.success
        ? { ok: true, data: reply.data }
        : { ok: false, error: { code: 'internal', message: `handler of "${pattern}" returned a reply that breaks its contract`, details: issuesOf(reply.error) } };
    } catch (error) {
      return { ok: false, error: toReplyError(error) };
    }
  }

  /** Delivers an event, redelivering per the settlement policy (without waiting out backoff delays). */
  async deliverEvent(pattern: string, body: unknown): Promise<void> {
    const prepared = prepare(body, pattern, eventContracts[pattern as EventPattern]?.payload, this.getHandlerByPattern(pattern));
    const messageId = randomUUID();
    for (let deliveryCount = 0; ; deliveryCount++) {
      let action;
      if ('kind' in prepared) action = settle(prepared, deliveryCount, this.settlement);
      else {
        try {
          await lastValueFrom(this.transformToObservable(await prepared.handler(prepared.data, inMemoryContext(pattern, body, deliveryCount, messageId))), { defaultValue: undefined });
          action = settle({ kind: 'handled' }, deliveryCount, this.settlement);
        } catch (error) {
          action = settle({ kind: 'failed', error, isRequest: false }, deliveryCount, this.settlement);
        }
      }
      if (action.action === 'complete') return;
      if (action.action === 'dead-letter') {
        this.bus.deadLettered.push({ pattern, payload: body, reason: action.reason, description: action.description, deliveryCount });
        return;
      }
    }
  }
}

/**
 * The context an in-memory handler gets: a message with id, subject, body, delivery count and empty
 * application properties (what handlers read); there is no receiver (`getReceiver()` is undefined).
 */
function inMemoryContext(pattern: string, body: unknown, deliveryCount: number, messageId: string = randomUUID()): ServiceBusContext {
  const message = { messageId, subject: pattern, body, deliveryCount, applicationProperties: {}, enqueuedTimeUtc: new Date() };
  return new ServiceBusContext([message as unknown as ServiceBusReceivedMessage, undefined as unknown as ServiceBusReceiver, pattern]);
}

/** The client side of {@link InMemoryBus}. */
export class InMemoryClientProxy extends ClientProxy {
  constructor(private readonly bus: InMemoryBus) {
    super();
  }

  /** Nothing to connect: the bus is in this process. */
  async connect(): Promise<void> {
    return undefined;
  }

  /** Nothing to release: the bus is in this process. */
  close(): void {
    return undefined;
  }

  unwrap<T>(): T {
    return this.bus as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const pattern = this.normalizePattern(packet.pattern);
    const data = packet.data instanceof ServiceBusRecord ? packet.data.data : packet.data;
    const contract = requestContracts[pattern as RequestPattern];
    const parsed = contract?.request.safeParse(data);
    if (!contract || !parsed?.success) {
      callback({ err: new InvalidPayloadError(pattern, parsed?.success === false ? issuesOf(parsed.error) : [{ path: '', message: 'unknown request pattern' }]), isDisposed: true });
      return () => undefined;
    }
    const server = this.bus.server;
    if (!server) {
      callback({ err: new Error(`no InMemoryServer listens for "${pattern}"`), isDisposed: true });
      return () => undefined;
    }
    void server.deliverRequest(pattern, JSON.parse(JSON.stringify(parsed.data))).then((envelope) =>
      callback(envelope.ok ? { response: envelope.data, isDisposed: true } : { err: new RpcException(envelope.error), isDisposed: true }),
    );
    return () => undefined;
  }

  protected async dispatchEvent<T>(packet: ReadPacket): Promise<T> {
    const pattern = this.normalizePattern(packet.pattern);
    const data = packet.data instanceof ServiceBusRecord ? packet.data.data : packet.data;
    const parsed = eventContracts[pattern as EventPattern]?.payload.safeParse(data);
    if (!parsed?.success) throw new InvalidPayloadError(pattern, parsed ? issuesOf(parsed.error) : [{ path: '', message: 'unknown event pattern' }]);
    this.bus.published.push({ pattern, payload: parsed.data });
    await this.bus.server?.deliverEvent(pattern, JSON.parse(JSON.stringify(parsed.data)));
    return undefined as T;
  }

  protected override serializeError(err: unknown): unknown {
    return err;
  }
}

/**
 * A connected in-memory transport: `server` to connect to the Nest app under test, `client` to send it
 * typed requests and events, `bus` to inspect what was published and dead-lettered.
 *
 * @example
 * const { server, client, bus } = createInMemoryMessaging();
 * app.connectMicroservice({ strategy: server });
 * await app.startAllMicroservices();
 * await client.request('recommendation.get-product', { id: 'p-1' });
 */
export function createInMemoryMessaging(settlement: SettlementPolicyOptions = {}): { bus: InMemoryBus; server: InMemoryServer; client: MessagingClient } {
  const bus = new InMemoryBus();
  return { bus, server: new InMemoryServer(bus, settlement), client: new MessagingClient(new InMemoryClientProxy(bus)) };
}
