import type { EventInputOf, EventPattern, ReplyOf, RequestOf, RequestPattern } from '@keyless/contracts';
import { lastValueFrom } from 'rxjs';
import type { ServiceBusRecord } from './service-bus.record-builder.js';
import type { ClientProxy } from '@nestjs/microservices';

/**
 * The typed face of a client proxy (`ServiceBusClientProxy` of `@keyless/messaging/internals`, or the in-memory one in tests): patterns and payloads come from `@keyless/contracts`, so
 * a wrong payload is a compile error (and, at run time, an {@link InvalidPayloadError} before sending).
 *
 * @example
 * const result = await messaging.request('recommendation.similar-products', { productId: 'shoe-1', limit: 5 });
 * await messaging.publish('catalog.product.upserted', { product, upsertedAt: new Date().toISOString() });
 */
export class MessagingClient {
  constructor(readonly proxy: ClientProxy) {}

  /**
   * Sends a request and resolves with its reply.
   *
   * @throws {RequestTimeoutError} when no reply arrives within the timeout.
   * @throws {RpcException} with a `{ code, message }` error when the remote handler failed.
   */
  request<P extends RequestPattern>(pattern: P, payload: RequestOf<P> | ServiceBusRecord<RequestOf<P>>): Promise<ReplyOf<P>> {
    return lastValueFrom(this.proxy.send<ReplyOf<P>>(pattern, payload));
  }

  /** Publishes an event; resolves once Service Bus has accepted it. */
  async publish<P extends EventPattern>(pattern: P, payload: EventInputOf<P> | ServiceBusRecord<EventInputOf<P>>): Promise<void> {
    await lastValueFrom(this.proxy.emit(pattern, payload), { defaultValue: undefined });
  }
}
