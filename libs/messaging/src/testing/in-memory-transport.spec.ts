import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RpcException } from '@nestjs/microservices';
import type { INestApplication } from '@nestjs/common';
import type { EventOf, ParsedRequestOf, ReplyOf } from '@keyless/contracts';
import { DeadLetterError, InvalidPayloadError, OnEvent, OnRequest, ServiceBusContext } from '../index.js';
import { createInMemoryMessaging } from './index.js';

const product = { id: 'shoe-1', name: 'Trail runner', description: '', category: 'shoes', price: 89.9, available: true };
const seen: string[] = [];
const deliveries: { id: string; deliveryCount: number; messageId: string }[] = [];
let failuresLeft = 0;

@Controller()
class CatalogHandlers {
  @OnRequest('recommendation.get-product')
  getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): ReplyOf<'recommendation.get-product'> {
    if (id !== product.id) throw new RpcException({ code: 'not-found', message: `no product ${id}` });
    return { product, vision: null, indexing: { state: 'pending-vision', updatedAt: new Date(0).toISOString() } };
  }

  @OnEvent('catalog.product.upserted')
  async upserted({ product: p }: EventOf<'catalog.product.upserted'>, context: ServiceBusContext): Promise<void> {
    deliveries.push({ id: p.id, deliveryCount: context.getDeliveryCount(), messageId: String(context.getMessage().messageId) });
    if (p.id === 'poison') throw new DeadLetterError('Poison', 'this product can never be indexed');
    if (failuresLeft-- > 0) throw new Error('embedding service throttled');
    seen.push(p.id);
  }
}

@Module({ controllers: [CatalogHandlers] })
class HandlersModule {}

// The in-memory double runs the same validation and settlement policy as the Service Bus transport.
describe('createInMemoryMessaging', () => {
  let app: INestApplication;
  const { bus, server, client } = createInMemoryMessaging({ maxAttempts: 3 });

  beforeAll(async () => {
    app = await NestFactory.create(HandlersModule, { logger: false });
    app.connectMicroservice({ strategy: server });
    await app.startAllMicroservices();
    await app.init();
  });
  afterAll(() => app.close());

  it('answers a typed request with the handler\'s reply', async () => {
    await expect(client.request('recommendation.get-product', { id: 'shoe-1' })).resolves.toMatchObject({ product: { name: 'Trail runner' } });
  });

  it('rejects with the handler\'s RpcException code', async () => {
    await expect(client.request('recommendation.get-product', { id: 'nope' })).rejects.toMatchObject({ error: { code: 'not-found' } });
  });

  it('makes a payload that breaks the contract a compile error', () => {
    // @ts-expect-error `idd` is not a field of the get-product request (typecheck fails if this compiles)
    const wrongPayload = () => client.request('recommendation.get-product', { idd: 'shoe-1' });
    // @ts-expect-error a handler's reply must match its pattern's reply schema
    class WrongHandler { @OnRequest('recommendation.get-product') get(): { nothing: true } { return { nothing: true }; } }
    expect([wrongPayload, WrongHandler]).toHaveLength(2);
  });

  it('refuses an invalid request before sending, naming the field', async () => {
    await expect(client.request('recommendation.get-product', { id: '' })).rejects.toBeInstanceOf(InvalidPayloadError);
  });

  it('retries a failing event handler and succeeds within maxAttempts', async () => {
    failuresLeft = 2;
    await client.publish('catalog.product.upserted', { product: { ...product, id: 'retry-me' }, upsertedAt: new Date().toISOString() });
    expect(seen).toContain('retry-me');
    const attempts = deliveries.filter((d) => d.id === 'retry-me');
    expect(attempts.map((d) => d.deliveryCount)).toEqual([0, 1, 2]);
    expect(new Set(attempts.map((d) => d.messageId)).size).toBe(1);
  });

  it('dead-letters an event whose handler keeps failing, with the last error', async () => {
    failuresLeft = 10;
    await client.publish('catalog.product.upserted', { product: { ...product, id: 'never' }, upsertedAt: new Date().toISOString() });
    expect(bus.deadLettered.at(-1)).toMatchObject({ reason: 'MaxAttemptsExceeded', description: 'failed 3 times; last error: Error: embedding service throttled' });
  });

  it('dead-letters at once when the handler throws DeadLetterError', async () => {
    failuresLeft = 0;
    await client.publish('catalog.product.upserted', { product: { ...product, id: 'poison' }, upsertedAt: new Date().toISOString() });
    expect(bus.deadLettered.at(-1)).toMatchObject({ reason: 'Poison', deliveryCount: 0 });
  });
});
