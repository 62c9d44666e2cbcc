#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { demoCatalog, type DemoProduct } from './demo/demo-catalog.js';
import { fileExists, freePort, portIsFree, readEnvFile, startProcess, stopProcess, waitFor, type ManagedProcess } from './processes.js';
import { Progress } from './progress.js';
import { StorefrontCaller } from './storefront-caller.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const defaults = {
  gatewayPort: 3000,
  /** Concurrent requests while loading the demo catalog and polling its indexing. */
  loadConcurrency: 8,
  startupTimeoutInMs: 90_000,
  indexingTimeoutInMs: 300_000,
};

const usage = `Usage: npm start            run the whole system (local Azure, gateway, recommendation, vision)
       npm run token        print an access token for the gateway, from the storefront's managed identity

Environment: PORT (the gateway's, default ${defaults.gatewayPort}), LOCAL_AZURE_HOME (state, default .local-azure/),
KEYLESS_DEMO_CATALOG=false to skip loading the demo catalog.`;

interface Services {
  processes: ManagedProcess[];
  imageServer?: Server;
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const home = resolve(process.env.LOCAL_AZURE_HOME ?? join(repoRoot, '.local-azure'));
  const gatewayPort = Number(process.env.PORT ?? defaults.gatewayPort);
  if (!Number.isInteger(gatewayPort) || gatewayPort <= 0 || gatewayPort > 65535) throw new UsageError(`PORT must be a port number, not "${process.env.PORT}".`);
  if (positionals[0] === 'token') return printToken(home);
  if (positionals.length && positionals[0] !== 'start') throw new UsageError(`Unknown command "${positionals.join(' ')}".\n${usage}`);
  return start(home, gatewayPort);
}

async function start(home: string, gatewayPort: number): Promise<number> {
  const progress = new Progress();
  const imagePort = gatewayPort + 1;
  for (const [what, port] of [['gateway', gatewayPort], ['demo image server', imagePort]] as const) {
    if (!(await portIsFree(port))) {
      throw new UsageError(`Port ${port} (${what}) is in use. Stop what uses it, or run another copy with PORT=<free port> and its own LOCAL_AZURE_HOME.`);
    }
  }
  const services: Services = { processes: [] };
  let stopping: Promise<void> | undefined;
  const stop = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      progress.line(`${signal}: stopping…`);
      // Gateway first (no new work), then the services (they finish in-flight messages), then the local Azure.
      for (const name of ['gateway', 'recommendation', 'vision', 'local-azure']) {
        const process_ = services.processes.find((p) => p.name === name);
        if (process_) await stopProcess(process_);
      }
      services.imageServer?.close();
      progress.line('Stopped.');
    })();
    return stopping;
  };
  const stopped = new Promise<number>((resolveExit) => {
    process.once('SIGINT', () => void stop('SIGINT').then(() => resolveExit(0)));
    process.once('SIGTERM', () => void stop('SIGTERM').then(() => resolveExit(0)));
  });

  try {
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const imageBaseUrl = `http://127.0.0.1:${imagePort}/images`;
    const catalog = demoCatalog({ imageBaseUrl });
    services.imageServer = await serveImages(catalog, imagePort);

    progress.step('Starting the local Azure');
    const configFile = join(home, 'launcher.config.json');
    writeFileSync(configFile, JSON.stringify({ hostEnv: { storefront: { GATEWAY_URL: gatewayUrl } } }, null, 2));
    const localAzure = startProcess({
      name: 'local-azure',
      script: join(repoRoot, 'tools/local-azure/dist/main.js'),
      args: ['start', '--config', configFile],
      env: { LOCAL_AZURE_HOME: home },
      logDir: join(home, 'logs'),
      onNotableLine: (line) => progress.line(`[local-azure] ${line}`),
    });
    services.processes.push(localAzure);
    await waitFor(
      () => fileExists(join(home, 'env', 'storefront.env')) || localAzure.child.exitCode !== null,
      defaults.startupTimeoutInMs,
      () => `the local Azure did not become ready; see ${localAzure.logFile}`,
    );
    if (localAzure.child.exitCode !== null) throw new Error(`the local Azure exited (code ${localAzure.child.exitCode}); see ${localAzure.logFile}`);
    progress.done();

    progress.step('Starting recommendation, vision and gateway');
    const ports = { recommendation: await freePort(), vision: await freePort(), gateway: gatewayPort };
    for (const name of ['recommendation', 'vision', 'gateway'] as const) {
      const env: Record<string, string> = {
        ...readEnvFile(join(home, 'env', `${name}.env`)),
        PORT: String(ports[name]),
        HOST: '127.0.0.1',
        ...(name === 'recommendation' ? { RECOMMENDATION_DATA_DIR: join(home, 'apps', 'recommendation') } : {}),
        ...(process.env.LOG_LEVEL ? { LOG_LEVEL: process.env.LOG_LEVEL } : {}),
      };
      services.processes.push(
        startProcess({ name, script: join(repoRoot, `apps/${name}/dist/main.js`), env, logDir: join(home, 'logs'), onNotableLine: (line) => progress.line(`[${name}] ${line}`) }),
      );
    }
    await Promise.all(
      Object.entries(ports).map(([name, port]) =>
        waitFor(
          async () => {
            const exited = services.processes.find((p) => p.name === name)!.child.exitCode;
            if (exited !== null) throw new Error(`${name} exited with code ${exited}; see ${join(home, 'logs', `${name}.log`)}`);
            return (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined))?.status === 200;
          },
          defaults.startupTimeoutInMs,
          () => `${name} did not become ready within ${defaults.startupTimeoutInMs / 1000} s; see ${join(home, 'logs', `${name}.log`)}`,
          200,
        ),
      ),
    );
    progress.done();

    const storefront = await StorefrontCaller.create(readEnvFile(join(home, 'env', 'storefront.env')), gatewayUrl);
    try {
      if (process.env.KEYLESS_DEMO_CATALOG !== 'false') await loadCatalog(storefront, catalog, progress);
    } finally {
      await storefront.close();
    }
    printReady(progress, gatewayUrl, catalog[0]!.product.id, home);
  } catch (error) {
    progress.fail(error instanceof Error ? error.message : String(error));
    await stop('error');
    return 1;
  }
  return stopped;
}

/** Serves the demo catalog's generated images (what the local Vision fetches by URL). */
function serveImages(catalog: readonly DemoProduct[], port: number): Promise<Server> {
  const images = new Map(catalog.map(({ product, image }) => [`/images/${product.id}.png`, image]));
  const server = createServer((request, response) => {
    const image = images.get(request.url ?? '');
    if (!image) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'image/png', 'content-length': image.length, 'cache-control': 'max-age=3600' }).end(image);
  });
  return new Promise((resolveServer, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolveServer(server));
  });
}

/**
 * Loads the demo catalog through the gateway, then waits until every product is indexed, showing progress
 * for both. A second start finds the products there and only re-sends those that are not indexed (an
 * upsert nudges vision and recommendation again), so it is quick.
 */
async function loadCatalog(storefront: StorefrontCaller, catalog: readonly DemoProduct[], progress: Progress): Promise<void> {
  const states = new Map<string, string>();
  await inBatches(catalog, defaults.loadConcurrency, async ({ product }) => {
    states.set(product.id, await indexingState(storefront, product.id));
  });
  const toSend = catalog.filter(({ product }) => states.get(product.id) !== 'indexed');
  if (toSend.length === 0) {
    progress.line(`Demo catalog loaded and indexed (${catalog.length} products).`);
    return;
  }
  let sent = 0;
  progress.step(toSend.length === catalog.length ? `Loading the demo catalog (${catalog.length} products)` : `Re-sending ${toSend.length} products that are not indexed yet`);
  await inBatches(toSend, defaults.loadConcurrency, async ({ product }) => {
    const { id, ...body } = product;
    const response = await storefront.fetch(`/v1/products/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(body) });
    if (response.status !== 202) throw new Error(`PUT /v1/products/${id} answered ${response.status}: ${await response.text()}`);
    progress.count(++sent, toSend.length);
  });
  progress.done();

  progress.step('Indexing (vision tags, embeddings)');
  const pending = new Set(toSend.map(({ product }) => product.id));
  let failed = 0;
  await waitFor(
    async () => {
      await inBatches([...pending], defaults.loadConcurrency, async (id) => {
        const state = await indexingState(storefront, id);
        if (state === 'indexed' || state === 'failed') {
          pending.delete(id);
          if (state === 'failed') failed++;
        }
      });
      progress.count(toSend.length - pending.size, toSend.length);
      return pending.size === 0;
    },
    defaults.indexingTimeoutInMs,
    () => `${pending.size} products were still not indexed after ${defaults.indexingTimeoutInMs / 1000} s (see the logs in LOCAL_AZURE_HOME/logs)`,
    2000,
  );
  progress.done(failed ? `${failed} failed` : undefined);
}

/** A product's indexing state through the gateway, or `missing`. */
async function indexingState(storefront: StorefrontCaller, id: string): Promise<string> {
  const response = await storefront.fetch(`/v1/products/${encodeURIComponent(id)}`);
  if (response.status === 404) return 'missing';
  if (response.status !== 200) throw new Error(`GET /v1/products/${id} answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { indexing: { state: string } }).indexing.state;
}

async function inBatches<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

function printReady(progress: Progress, gatewayUrl: string, exampleId: string, home: string): void {
  progress.line(
    [
      '',
      'Keyless is running.',
      `  Gateway   ${gatewayUrl}`,
      `  OpenAPI   ${gatewayUrl}/docs`,
      `  Logs      ${join(home, 'logs')}/<service>.log`,
      '',
      "Try it — callers need an Entra token for the gateway; the storefront's managed identity gets one:",
      '  TOKEN=$(npm run -s token)',
      `  curl -s -H "Authorization: Bearer $TOKEN" "${gatewayUrl}/v1/products/${exampleId}/similar?limit=3"`,
      `  curl -s -H "Authorization: Bearer $TOKEN" -H "content-type: application/json" \\`,
      `       -d '{"query":"waterproof hiking boots","limit":3}' ${gatewayUrl}/v1/recommendations`,
      '',
      'Ctrl-C stops everything.',
    ].join('\n'),
  );
}

/** `npm run token`: an access token for the gateway from the storefront's identity, on stdout. */
async function printToken(home: string): Promise<number> {
  const envFile = join(home, 'env', 'storefront.env');
  if (!fileExists(envFile)) throw new UsageError(`The system is not running for ${home}: start it with \`npm start\` first.`);
  const env = readEnvFile(envFile);
  const storefront = await StorefrontCaller.create(env, env.GATEWAY_URL ?? '');
  try {
    process.stdout.write(`${await storefront.token()}\n`);
  } finally {
    await storefront.close();
  }
  return 0;
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`keyless: ${error instanceof UsageError ? error.message : (error as Error).stack ?? String(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
