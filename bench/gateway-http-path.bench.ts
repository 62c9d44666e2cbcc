// The gateway's HTTP path in isolation: what each piece of its Express middleware set costs one request at a time,
// without Nest, the caller token or the bus. Each variant is a server process of its own answering
// `GET /v1/products/{id}/similar` with a 1.2 KB JSON body (the size of a similar-products answer); the variants add
// the gateway's pieces in the order of its pipeline (gateway.app.ts): the server span, helmet's headers, the body
// parsers, the access line (the services' pino-http options). Rounds alternate between the variants; the medians of
// the rounds are printed, with every round's value, then one JSON line. Latency is the client's, one request in
// flight on a keep-alive connection; CPU is the server process's (user + system, its log writer thread included).
//
//   npx nx run-many -t build && npx node bench/gateway-http-path.bench.ts [--rounds 7] [--requests 2000]
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, createServer, request, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import express from 'express';
import helmet from 'helmet';
import { pinoHttp, type Options } from 'pino-http';
import type { DestinationStream } from 'pino';
import { httpTracing, loggerOptions, startServiceTelemetry } from '@keyless/observability';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, requests: { type: 'string', default: '2000' }, serve: { type: 'string' } } });

/** Each variant adds one piece to the one before it; the last two take one piece away from the whole set. */
const variants = ['node:http', 'express', '+ server span', '+ helmet', '+ body parsers', '+ access line (the gateway set)', 'gateway set without ETag'] as const;
type Variant = (typeof variants)[number];

const answer = JSON.stringify({
  items: Array.from({ length: 5 }, (_, i) => ({
    product: { id: `sku-${i}`, name: `Trail running shoe ${i}`, description: 'A light shoe with a grippy sole for muddy trails.', category: 'shoes', price: 129.99, imageUrl: `https://images.example.org/products/sku-${i}.jpg`, available: true },
    score: 0.9 - i / 50,
  })),
  explanation: 'These products share the trail focus and the cushioning of the one you are looking at; all are in stock. '.repeat(3),
});

function listener(variant: Variant): RequestListener {
  if (variant === 'node:http') {
    return (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(answer) });
      response.end(answer);
    };
  }
  const level = variants.indexOf(variant);
  const app = express();
  app.disable('x-powered-by');
  if (variant === 'gateway set without ETag') app.disable('etag');
  if (level >= 2) app.use(httpTracing());
  if (level >= 3) app.use(helmet({ contentSecurityPolicy: { directives: { 'script-src': ["'self'", "'unsafe-inline'"], 'style-src': ["'self'", "'unsafe-inline'"], 'img-src': ["'self'", 'data:'] } } }));
  if (level >= 4) app.use(express.json({ limit: '64kb' }), express.raw({ limit: '4mb', type: ['image/*', 'application/octet-stream'] }));
  if (level >= 5) {
    const [options, destination] = loggerOptions({ service: 'gateway' }).pinoHttp as [Options, DestinationStream];
    app.use(pinoHttp(options, destination));
  }
  app.get('/v1/products/:id/similar', (_request, response) => {
    response.type('application/json').send(answer);
  });
  return app;
}

/** A variant's server (this script started with `--serve <variant>`): reports its port, then its CPU time on request. */
function serve(variant: Variant): void {
  startServiceTelemetry('gateway', {});
  const server = createServer(listener(variant));
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('message', () => {
    const usage = process.cpuUsage();
    process.send!({ cpuInMs: (usage.user + usage.system) / 1000 });
  });
  process.on('disconnect', () => process.exit(0));
}

function reply<T>(child: ChildProcess, message?: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (value) => resolve(value as T));
    if (message) child.send(message);
  });
}

async function measure(variant: Variant, requests: number): Promise<{ p50InUs: number; cpuPerRequestInUs: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', variant], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const { port } = await reply<{ port: number }>(child);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      request({ host: '127.0.0.1', port, path: '/v1/products/sku-1/similar?limit=5', agent }, (response) => {
        response.resume();
        response.on('end', () => resolve(Number(process.hrtime.bigint() - started) / 1000));
      })
        .on('error', reject)
        .end();
    });
  for (let i = 0; i < 500; i++) await get();
  const before = await reply<{ cpuInMs: number }>(child, 'cpu');
  const latencies: number[] = [];
  for (let i = 0; i < requests; i++) latencies.push(await get());
  const after = await reply<{ cpuInMs: number }>(child, 'cpu');
  agent.destroy();
  child.disconnect();
  latencies.sort((a, b) => a - b);
  return { p50InUs: Math.round(latencies[requests >> 1]!), cpuPerRequestInUs: Math.round(((after.cpuInMs - before.cpuInMs) * 1000) / requests) };
}

const median = (list: number[]): number => [...list].sort((a, b) => a - b)[list.length >> 1]!;

if (values.serve) {
  serve(values.serve as Variant);
} else {
  const rounds = Number(values.rounds);
  const requests = Number(values.requests);
  const results = new Map(variants.map((variant) => [variant, { p50InUs: [] as number[], cpuPerRequestInUs: [] as number[] }]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) {
      const { p50InUs, cpuPerRequestInUs } = await measure(variant, requests);
      results.get(variant)!.p50InUs.push(p50InUs);
      results.get(variant)!.cpuPerRequestInUs.push(cpuPerRequestInUs);
    }
  }
  console.log(`the gateway's HTTP path without Nest, ${requests} requests one at a time, ${rounds} alternating rounds (medians; every round after it)`);
  console.log(`${'variant'.padEnd(34)} ${'p50 µs'.padStart(7)}  ${'server CPU µs/request'.padStart(22)}`);
  const summary: Record<string, { p50InUs: number; cpuPerRequestInUs: number; rounds: { p50InUs: number[]; cpuPerRequestInUs: number[] } }> = {};
  for (const [variant, measured] of results) {
    summary[variant] = { p50InUs: median(measured.p50InUs), cpuPerRequestInUs: median(measured.cpuPerRequestInUs), rounds: measured };
    console.log(`${variant.padEnd(34)} ${String(summary[variant].p50InUs).padStart(7)}  ${String(summary[variant].cpuPerRequestInUs).padStart(22)}   (${measured.p50InUs.join(' / ')}; ${measured.cpuPerRequestInUs.join(' / ')})`);
  }
  console.log(JSON.stringify({ requests, rounds, variants: summary }));
}
