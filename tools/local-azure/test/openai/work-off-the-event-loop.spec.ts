import type { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient, type ServiceBusSender } from '@azure/service-bus';
import * as http from 'node:http';
import * as https from 'node:https';
import type { TestAzure } from '../../src/testing/index.js';
import { OpenAiWork } from '../../src/openai/openai-work.js';
import { serviceBusDataPlane } from '../../src/servicebus/service-bus-data-plane.js';
import { startOpenAi } from './support.js';

interface ChatCompletion {
  choices: { message: { content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number };
}

// Mixed English text: the chat model reads every word of it, the token counter counts each (about 500,000 tokens
// in 2 MiB, inside gpt-4.1's window). On the event loop it held every listener of the local Azure for seconds.
const sentence = 'The trail running shoe has a grippy sole, a 12 mm drop and a breathable upper; ideal for long hikes in the hills. ';
const prompt = sentence.repeat(Math.ceil((2 * 1024 * 1024) / sentence.length));

// Deadlines, not measurements: the work on 2 MiB (on the thread, then again here to compare) takes a few seconds on an
// idle machine and over 30 s on the loaded 2-core machine with two busy loops.
const startTimeoutInMs = 120_000;
const workTimeoutInMs = 180_000;

// The local Azure serves tokens, Service Bus, PostgreSQL and OpenAI from one event loop. A large OpenAI request's
// token count and local model run on a worker thread, so the other listeners answer while it is worked on.
describe('Azure OpenAI, given a large chat request', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let tokenProvider: () => Promise<string>;
  let bus: ServiceBusClient;
  let sender: ServiceBusSender;

  beforeAll(async () => {
    let credential: ManagedIdentityCredential;
    ({ test, env, tokenProvider, credential } = await startOpenAi({
      deployments: { 'gpt-4.1': { model: 'gpt-4.1', tokensPerMinute: 100_000_000 } },
      otherDataPlanes: [serviceBusDataPlane],
    }));
    bus = new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, { retryOptions: { maxRetries: 0 } });
    sender = bus.createSender('recommendation-requests');
    // The connection, its authorization and the link are set up before the test: a send is then one round trip.
    await sender.sendMessages({ body: 'warm-up' });
  }, startTimeoutInMs);
  afterAll(async () => {
    await bus?.close();
    await test?.stop();
  });

  /** A managed-identity token on a connection of its own, as a service asks for one when its token is due. */
  function tokenRequest(): Promise<void> {
    const url = new URL(env.IDENTITY_ENDPOINT!);
    url.search = new URLSearchParams({ 'api-version': '2019-08-01', resource: 'https://servicebus.azure.net', client_id: env.AZURE_CLIENT_ID! }).toString();
    const get = url.protocol === 'https:' ? https.get : http.get;
    return new Promise((resolve, reject) => {
      // No keep-alive: the request reaches the local Azure on a new connection, only after the connection is accepted.
      get(url, { headers: { 'x-identity-header': env.IDENTITY_HEADER! }, agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => (response.statusCode === 200 && JSON.parse(body).access_token ? resolve() : reject(new Error(`token request: ${response.statusCode} ${body}`))));
      }).on('error', reject);
    });
  }

  /** A chat request whose body is written but for its last byte; `end()` sends that byte. */
  async function chatRequest(body: Buffer): Promise<{ end: () => void; answer: Promise<{ status: number | string; body: string }> }> {
    const url = new URL(`${env.AZURE_OPENAI_ENDPOINT}/openai/deployments/gpt-4.1/chat/completions?api-version=${env.OPENAI_API_VERSION}`);
    const headers = { authorization: `Bearer ${await tokenProvider()}`, 'content-type': 'application/json', 'content-length': String(body.length) };
    let answer!: Promise<{ status: number | string; body: string }>;
    const request = await new Promise<http.ClientRequest>((resolve, reject) => {
      const request = https.request(url, { method: 'POST', headers, agent: false });
      answer = new Promise((settle, fail) => {
        request.on('response', (response) => {
          let text = '';
          response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          response.on('end', () => settle({ status: response.statusCode!, body: text }));
        });
        request.on('error', fail);
      });
      request.write(body.subarray(0, -1), (error) => (error ? reject(error) : resolve(request)));
    });
    return { end: () => request.end(body.subarray(-1)), answer };
  }

  it('answers a token request and a Service Bus send while it works on the request, and answers it as on the event loop', async () => {
    const messages = [{ role: 'user', content: `Summarize this: ${prompt}` }];
    const body = Buffer.from(JSON.stringify({ messages, max_tokens: 64 }));
    const chat = await chatRequest(body);
    // Round trips that let the local Azure read what was written: the last byte is then all it has left to read of
    // the request, and once it has it, the work begins (on the event loop, before the next connection is accepted).
    for (let i = 0; i < 3; i++) await tokenRequest();
    chat.end();

    const order: string[] = [];
    const answered = chat.answer.then((answer) => {
      order.push('chat completion');
      return answer;
    });
    await tokenRequest();
    order.push('token');
    await sender.sendMessages({ body: 'while the chat request is worked on' });
    order.push('Service Bus send');
    const answer = await answered;
    expect(order).toEqual(['token', 'Service Bus send', 'chat completion']);

    // What the event loop answers for the same request: the same count and the same reply.
    expect(answer.status).toBe(200);
    const completion = JSON.parse(answer.body) as ChatCompletion;
    const inline = await new OpenAiWork().run({
      kind: 'chat',
      encoding: 'o200k_base',
      messages,
      promptLimit: 1_047_576 - 64,
      reply: { stops: [], maxTokens: 64, contextTokens: 1_047_576 },
    });
    expect(completion.usage.prompt_tokens).toBe(inline.promptTokens);
    expect(completion.choices[0]!.message.content).toBe(inline.completion!.text);
    expect(completion.usage.completion_tokens).toBe(inline.completion!.tokens.length);
  }, workTimeoutInMs);

  it('stops without waiting for the work on a large request, which then ends with a 500 or its connection closed', async () => {
    const body = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: prompt }], max_tokens: 64 }));
    const chat = await chatRequest(body);
    for (let i = 0; i < 3; i++) await tokenRequest();
    chat.end();
    // Answered once the local Azure has the whole request: its work is under way.
    await tokenRequest();
    const ended = chat.answer.then(
      (answer) => answer,
      () => ({ status: 'connection closed', body: '' }),
    );
    // Closed first: a client of a stopped broker would try to reconnect.
    await bus.close();
    await test.azure.stop();
    const answer = await ended;
    if (answer.status === 500) {
      // Azure's server error, with nothing of the local Azure's inside.
      expect(JSON.parse(answer.body)).toEqual({ error: expect.objectContaining({ type: 'server_error', code: null }) });
    } else {
      expect(answer.status).toBe('connection closed');
    }
  }, workTimeoutInMs);
});
