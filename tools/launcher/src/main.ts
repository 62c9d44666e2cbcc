#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCatalog } from './demo/catalog-loader.js';
import { demoCatalog } from './demo/demo-catalog.js';
import { carryOverEarlierCatalog, hasEarlierCatalog } from './earlier-catalog.js';
import { commandForHome, readSetting, serviceSettings } from '@keyless/contracts';
import { LocalAzureCliError, localAzureStatus } from './local-azure-status.js';
import { followJobControl, readEnvFile } from './processes.js';
import { Progress } from './progress.js';
import { parseMaxLogBytes } from './rotating-log.js';
import { checkLauncherPorts, parseReplicas, replicaLimits, UsageError } from './replicas.js';
import { StorefrontCaller } from './storefront-caller.js';
import { readySummary } from './summary.js';
import { superviseSystem, supervisionDefaults } from './supervision.js';
import { defaultHome, startSystem, type RunningSystem } from './system.js';

const defaults = { gatewayPort: 3000 };
/** The local Azure's own variables (docs/local-azure.md, "Configuration") that `npm start` hands on to it. */
const localAzureSettings = ['LOCAL_AZURE_ALERT_WEBHOOK', 'LOCAL_AZURE_SERVICEBUS_CONFIG'];

const usage = `Usage: npm start            run the whole system (local Azure, gateway, recommendation, vision)
       npm run token        print an access token for the gateway, from the storefront's managed identity

Environment: PORT (the gateway's, default ${defaults.gatewayPort}; the demo images use PORT+1),
KEYLESS_REPLICAS (instances of each of gateway, recommendation and vision, 1 to ${replicaLimits.maxReplicas}, default 1;
gateway instance i listens on PORT + ${replicaLimits.gatewayPortStep} i), LOCAL_AZURE_HOME (state, default .local-azure/),
LOCAL_AZURE_CONFIG (a local Azure configuration file the launcher's own settings are added to),
LOCAL_AZURE_ALERT_WEBHOOK and LOCAL_AZURE_SERVICEBUS_CONFIG (handed on to the local Azure),
KEYLESS_DEMO_CATALOG=false to skip the demo catalog, LOG_LEVEL for the services (default info),
KEYLESS_LOG_MAX_MB (size of each process's log file, default 32; a full one is kept as <instance>.log.1).
A process that dies while the system runs (the local Azure, a service instance) is started again (left stopped after
${supervisionDefaults.maxQuickExits} exits in a row within ${supervisionDefaults.quickExitInMs / 1000} s of starting); Ctrl-C stops all.`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  // A blank setting (`LOCAL_AZURE_HOME=`, `PORT=`) means the default, never the current folder or port 0.
  const home = resolve(readSetting(process.env, 'LOCAL_AZURE_HOME') ?? defaultHome);
  const portSetting = readSetting(process.env, 'PORT');
  const gatewayPort = Number(portSetting ?? defaults.gatewayPort);
  if (!Number.isInteger(gatewayPort) || gatewayPort <= 0 || gatewayPort >= 65535) throw new UsageError(`PORT must be a port number, not "${portSetting}".`);
  if (positionals[0] === 'token') return printToken(home);
  if (positionals.length && positionals[0] !== 'start') throw new UsageError(`Unknown command "${positionals.join(' ')}".\n${usage}`);
  const replicas = parseReplicas(readSetting(process.env, 'KEYLESS_REPLICAS'));
  const maxLogBytes = parseMaxLogBytes(readSetting(process.env, 'KEYLESS_LOG_MAX_MB'));
  return start(home, gatewayPort, replicas, maxLogBytes, { logLevel: parseLogLevel(readSetting(process.env, 'LOG_LEVEL')), withDemoCatalog: parseDemoCatalog(readSetting(process.env, 'KEYLESS_DEMO_CATALOG')) });
}

/**
 * `LOG_LEVEL`, checked before anything starts against the services' own list: each service would refuse a bad one
 * only once the local Azure runs, by exiting at start, which reads as a crash.
 */
function parseLogLevel(value: string | undefined): string | undefined {
  const levels: readonly string[] = serviceSettings({ port: 0 }).LOG_LEVEL.unwrap().options;
  if (value === undefined || levels.includes(value)) return value;
  throw new UsageError(`LOG_LEVEL must be one of ${levels.join(', ')} (the services' log level), not "${value}".`);
}

/** `KEYLESS_DEMO_CATALOG`: `false` skips the demo catalog; anything but `true` or `false` is a mistake, not a yes. */
function parseDemoCatalog(value: string | undefined): boolean {
  if (value === undefined || value === 'true') return true;
  if (value === 'false') return false;
  throw new UsageError(`KEYLESS_DEMO_CATALOG must be true or false (false skips the demo catalog), not "${value}".`);
}

async function start(home: string, gatewayPort: number, replicas: number, maxLogBytes: number, settings: { logLevel: string | undefined; withDemoCatalog: boolean }): Promise<number> {
  // The caller's own input is judged before the machine's state: a bad configuration file is reported as such even
  // when a port is also taken.
  const localAzureConfig = readLocalAzureConfig(readSetting(process.env, 'LOCAL_AZURE_CONFIG'));
  const progress = new Progress();
  const imagePort = gatewayPort + 1;
  await checkLauncherPorts(gatewayPort, replicas);
  const catalog = demoCatalog({ imageBaseUrl: `http://127.0.0.1:${imagePort}/images` });
  let startup: Promise<RunningSystem> | undefined;
  const starting = new AbortController();
  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      // A start under way stops what it started and rejects, as the catalog load does (its requests and retry waits
      // end, and it prints nothing more), before the stop says a word; a system that runs is stopped here.
      starting.abort(new Error(`stopped by ${why} while starting`));
      progress.abandon();
      progress.line(`${why}: stopping…`);
      const started = await startup?.catch(() => undefined);
      await started?.stop();
      progress.line('Stopped.');
    })();
    return stopping;
  };
  const stopped = new Promise<number>((resolveExit) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop(signal).then(() => resolveExit(0)));
  });
  // Ctrl-Z and `fg` suspend and continue the whole system, not the launcher alone.
  followJobControl();

  try {
    const { logLevel, withDemoCatalog } = settings;
    // The local Azure's process gets no environment but its home: its own settings are handed on by name.
    const localAzureEnv = Object.fromEntries(
      localAzureSettings.flatMap((name) => {
        const value = readSetting(process.env, name);
        return value === undefined ? [] : [[name, value]];
      }),
    );
    progress.step(`Starting the local Azure, recommendation, vision and gateway${replicas > 1 ? ` (${replicas} instances of each)` : ''}`);
    startup = startSystem({
      signal: starting.signal,
      home,
      gatewayPort,
      replicas,
      maxLogBytes,
      images: { products: catalog, port: imagePort },
      ...(localAzureConfig ? { localAzureConfig } : {}),
      localAzureEnv,
      ...(logLevel ? { serviceEnv: { gateway: { LOG_LEVEL: logLevel }, recommendation: { LOG_LEVEL: logLevel }, vision: { LOG_LEVEL: logLevel } } } : {}),
      onNotableLine: (line) => progress.line(line),
    });
    const system = await startup;
    progress.done();
    if (withDemoCatalog || hasEarlierCatalog(home)) {
      const storefront = await system.storefront();
      try {
        // Their failures name this home's logs folder and the start command for it.
        const options = { signal: starting.signal, home: { root: home, isDefault: home === defaultHome } };
        await carryOverEarlierCatalog(home, storefront, progress, new Set(withDemoCatalog ? catalog.map(({ product }) => product.id) : []), options);
        if (withDemoCatalog) await loadCatalog(storefront, catalog, progress, options);
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
        customHome: home !== defaultHome,
        instances: running.instances.map((instance) => ({ name: instance.name, url: `http://127.0.0.1:${running.ports.get(instance.name)}` })),
      }),
    );
    superviseSystem(running, (line) => progress.line(line), () => stopping !== undefined);
  } catch (error) {
    // Ctrl-C while starting or loading the catalog: the stop is under way, and its failures are not the system's.
    if (stopping) return stopped;
    progress.fail(error instanceof Error ? error.message : String(error));
    await stop('error');
    return 1;
  }
  return stopped;
}

/** The local Azure configuration file `LOCAL_AZURE_CONFIG` names (the local Azure validates it at start). */
function readLocalAzureConfig(file: string | undefined): Record<string, unknown> | undefined {
  if (!file) return undefined;
  try {
    const config = JSON.parse(readFileSync(resolve(file), 'utf8')) as unknown;
    if (config && typeof config === 'object' && !Array.isArray(config)) return config as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`LOCAL_AZURE_CONFIG names ${resolve(file)}, which cannot be read as JSON: ${(error as Error).message}`);
  }
  throw new UsageError(`LOCAL_AZURE_CONFIG names ${resolve(file)}, which does not hold a JSON object.`);
}

/** `npm run token`: an access token for the gateway from the storefront's identity, on stdout. */
async function printToken(home: string): Promise<number> {
  // The env file outlives the local Azure; whether it runs is what its status says.
  const status = await localAzureStatus(home).catch((error: unknown) => {
    throw error instanceof LocalAzureCliError ? new UsageError(error.message) : error;
  });
  // The status's own advice for a stopped local Azure is `npm run local-azure`, which gives no gateway to call.
  if (status.state !== 'running') {
    const start = commandForHome('npm start', { root: home, isDefault: home === defaultHome });
    throw new UsageError(`The system is not running for ${home}: start it with \`${start}\` first.${status.state === 'stopped' ? '' : ` (${status.detail})`}`);
  }
  const env = readEnvFile(join(home, 'env', 'storefront.env'));
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
    // parseArgs' refusals (an unknown option) are the caller's to fix, like a UsageError.
    const parseRefusal = String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_');
    const mistaken = error instanceof UsageError || parseRefusal;
    process.stderr.write(`keyless: ${mistaken ? `${(error as Error).message}${parseRefusal ? ' (--help shows the usage)' : ''}` : (error as Error).stack ?? String(error)}\n`);
    process.exit(mistaken ? 2 : 1);
  },
);
