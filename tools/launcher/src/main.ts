#!/usr/bin/env node
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCatalog } from './demo/catalog-loader.js';
import { demoCatalog } from './demo/demo-catalog.js';
import { fileExists, readEnvFile } from './processes.js';
import { Progress } from './progress.js';
import { checkLauncherPorts, parseReplicas, replicaLimits, UsageError } from './replicas.js';
import { StorefrontCaller } from './storefront-caller.js';
import { readySummary } from './summary.js';
import { repoRoot, startSystem, type RunningSystem } from './system.js';

const defaults = { gatewayPort: 3000 };

const usage = `Usage: npm start            run the whole system (local Azure, gateway, recommendation, vision)
       npm run token        print an access token for the gateway, from the storefront's managed identity

Environment: PORT (the gateway's, default ${defaults.gatewayPort}; the demo images use PORT+1),
KEYLESS_REPLICAS (instances of each of gateway, recommendation and vision, 1 to ${replicaLimits.maxReplicas}, default 1;
gateway instance i listens on PORT + ${replicaLimits.gatewayPortStep} i), LOCAL_AZURE_HOME (state, default .local-azure/),
KEYLESS_DEMO_CATALOG=false to skip the demo catalog, LOG_LEVEL for the services (default info).`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const home = resolve(process.env.LOCAL_AZURE_HOME ?? join(repoRoot, '.local-azure'));
  const gatewayPort = Number(process.env.PORT ?? defaults.gatewayPort);
  if (!Number.isInteger(gatewayPort) || gatewayPort <= 0 || gatewayPort >= 65535) throw new UsageError(`PORT must be a port number, not "${process.env.PORT}".`);
  if (positionals[0] === 'token') return printToken(home);
  if (positionals.length && positionals[0] !== 'start') throw new UsageError(`Unknown command "${positionals.join(' ')}".\n${usage}`);
  const replicas = parseReplicas(process.env.KEYLESS_REPLICAS);
  return start(home, gatewayPort, replicas);
}

async function start(home: string, gatewayPort: number, replicas: number): Promise<number> {
  const progress = new Progress();
  const imagePort = gatewayPort + 1;
  await checkLauncherPorts(gatewayPort, replicas);
  const catalog = demoCatalog({ imageBaseUrl: `http://127.0.0.1:${imagePort}/images` });
  let system: RunningSystem | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      progress.line(`${why}: stopping…`);
      await system?.stop();
      progress.line('Stopped.');
    })();
    return stopping;
  };
  const stopped = new Promise<number>((resolveExit) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop(signal).then(() => resolveExit(0)));
  });

  try {
    progress.step(`Starting the local Azure, recommendation, vision and gateway${replicas > 1 ? ` (${replicas} instances of each)` : ''}`);
    system = await startSystem({
      home,
      gatewayPort,
      replicas,
      images: { products: catalog, port: imagePort },
      ...(process.env.LOG_LEVEL ? { serviceEnv: { gateway: { LOG_LEVEL: process.env.LOG_LEVEL }, recommendation: { LOG_LEVEL: process.env.LOG_LEVEL }, vision: { LOG_LEVEL: process.env.LOG_LEVEL } } } : {}),
      onNotableLine: (line) => progress.line(line),
    });
    progress.done();
    if (process.env.KEYLESS_DEMO_CATALOG !== 'false') {
      const storefront = await system.storefront();
      try {
        await loadCatalog(storefront, catalog, progress);
      } finally {
        await storefront.close();
      }
    }
    const running = system;
    progress.line(
      readySummary({
        gatewayUrls: running.gatewayUrls,
        ...(running.portalUrl ? { portalUrl: running.portalUrl } : {}),
        exampleId: catalog[0]!.product.id,
        home,
        instances: running.instances.map((instance) => ({ name: instance.name, url: `http://127.0.0.1:${running.ports.get(instance.name)}` })),
      }),
    );
  } catch (error) {
    progress.fail(error instanceof Error ? error.message : String(error));
    await stop('error');
    return 1;
  }
  return stopped;
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`keyless: ${error instanceof UsageError ? error.message : (error as Error).stack ?? String(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
