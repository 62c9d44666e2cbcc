import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { StorefrontCaller } from '../src/storefront-caller.js';
import { launcherLocalAzureConfig } from '../src/system.js';

// The storefront caller against a gateway that keeps answering 429: the launcher's catalog load and the e2e specs
// call through it, so an endless rate limit must end in an answer, not an endless wait.
describe('StorefrontCaller, given a gateway that answers 429', () => {
  let test: TestAzure;
  let server: Server;
  let caller: StorefrontCaller | undefined;
  const answers: { status: number; retryAfter?: string }[] = [];
  let requests = 0;

  beforeAll(async () => {
    server = createServer((_request, response) => {
      requests++;
      const answer = answers.shift() ?? { status: 429, retryAfter: '0' };
      response.writeHead(answer.status, answer.retryAfter === undefined ? {} : { 'retry-after': answer.retryAfter }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    test = await startTestAzure({ config: launcherLocalAzureConfig(undefined, [url]) });
    caller = await StorefrontCaller.create(test.azure.hostEnv('storefront'), url);
  });
  afterAll(async () => {
    await caller?.close();
    await test?.stop();
    await new Promise((resolve) => server?.close(resolve));
  });
  beforeEach(() => {
    requests = 0;
    answers.length = 0;
  });

  it('gives up after 20 tries and answers with the 429', async () => {
    const response = await caller!.fetch('/v1/products');
    expect(response.status).toBe(429);
    expect(requests).toBe(20);
  });

  it('waits 1 s when Retry-After is missing or unreadable, then answers with what the gateway says next', async () => {
    answers.push({ status: 429 }, { status: 429, retryAfter: 'soon' }, { status: 200 });
    const started = performance.now();
    const response = await caller!.fetch('/v1/products');
    expect(response.status).toBe(200);
    expect(requests).toBe(3);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1900);
  });
});
