import { Module, type INestApplication, type LoggerService, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import type { ServiceBusClient, ServiceBusReceivedMessage } from '@azure/service-bus';
import { queues, type RequestPattern } from '@keyless/contracts';
import { MessagingClient, MessagingModule, ServiceBusServer, type IdempotencyStore, type MessagingModuleOptions } from '../../src/index.js';
import { ServiceBusClientProxy } from '../../src/internals.js';
import { MemoryIdempotencyStore } from '../../src/testing/index.js';

/** A Nest service wired like the apps: `MessagingModule` + the server connected as a microservice. */
export interface TestService {
  app: INestApplication;
  server: ServiceBusServer;
  /** Present when the service also sends (`proxy` given). */
  messaging: MessagingClient | null;
}

/**
 * Starts a Nest app with `controllers` (real `@OnRequest`/`@OnEvent` handlers) receiving through the
 * Service Bus transport, as `apps/recommendation` and `apps/vision` do. Its idempotency store is the in-memory
 * double unless one is given (the tests of sharing give the PostgreSQL one).
 */
export async function startService(options: {
  client: ServiceBusClient;
  controllers: Type[];
  server: Omit<NonNullable<MessagingModuleOptions['server']>, 'idempotencyStore'> & { idempotencyStore?: IdempotencyStore };
  proxy?: MessagingModuleOptions['proxy'];
  logger?: LoggerService | false;
}): Promise<TestService> {
  class TestServiceModule {}
  Module({
    imports: [
      MessagingModule.forRoot({
        client: options.client,
        server: { idempotencyStore: new MemoryIdempotencyStore(), ...options.server },
        ...(options.proxy ? { proxy: options.proxy } : {}),
      }),
    ],
    controllers: options.controllers,
  })(TestServiceModule);
  const app = await NestFactory.create(TestServiceModule, { logger: options.logger ?? false, abortOnError: false });
  const server = app.get(ServiceBusServer);
  app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.init();
  return { app, server, messaging: app.get(MessagingClient) };
}

/** A requester wired like `apps/gateway`: `MessagingModule` with a proxy (reply session acquired at bootstrap). */
export async function startRequester(options: {
  client: ServiceBusClient;
  proxy: NonNullable<MessagingModuleOptions['proxy']>;
  logger?: LoggerService | false;
}): Promise<{ app: INestApplication; messaging: MessagingClient; proxy: ServiceBusClientProxy }> {
  class TestRequesterModule {}
  Module({ imports: [MessagingModule.forRoot({ client: options.client, proxy: options.proxy })] })(TestRequesterModule);
  const app = await NestFactory.create(TestRequesterModule, { logger: options.logger ?? false, abortOnError: false });
  await app.init();
  return { app, messaging: app.get(MessagingClient), proxy: app.get(ServiceBusClientProxy) };
}

/** A valid product (the contracts' schema) with the given id. */
export function testProduct(id: string): { id: string; name: string; description: string; category: string; price: number; available: boolean } {
  return { id, name: `Product ${id}`, description: 'for tests', category: 'tests', price: 10, available: true };
}

/**
 * Sends `copies` of one request (same message id) in one batch, as a requester's re-send would, with the raw SDK;
 * returns the message id and the replies, read from a reply session of their own.
 */
export async function sendCopies(client: ServiceBusClient, pattern: RequestPattern, body: object, copies: number): Promise<{ messageId: string; replies: ServiceBusReceivedMessage[] }> {
  const messageId = randomUUID();
  const sessionId = `duplicate-probe-${messageId}`;
  const copy = { messageId, subject: pattern, body, replyTo: queues.replies, replyToSessionId: sessionId, contentType: 'application/json' };
  const sender = client.createSender(queues.recommendationRequests);
  await sender.sendMessages(Array.from({ length: copies }, () => ({ ...copy })));
  await sender.close();
  const receiver = await client.acceptSession(queues.replies, sessionId, { receiveMode: 'receiveAndDelete' });
  const replies: ServiceBusReceivedMessage[] = [];
  while (replies.length < copies) replies.push(...(await receiver.receiveMessages(copies - replies.length, { maxWaitTimeInMs: 5_000 })));
  await receiver.close();
  return { messageId, replies };
}
