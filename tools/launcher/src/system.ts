import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemInstancesFileName, type SystemInstancesFile } from '@keyless/contracts';
import type { DemoProduct } from './demo/demo-catalog.js';
import { localAzureCli, localAzureStatus } from './local-azure-status.js';
import { freePort, readEnvFile, startProcess, stopProcess, waitFor, type ManagedProcess } from './processes.js';
import { planInstances, serviceNames, serviceOf, storefrontGatewayEnv, type ServiceInstance, type ServiceName } from './replicas.js';
import { StorefrontCaller } from './storefront-caller.js';

/** The repository this launcher belongs to (its built apps and tools are started from here). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The local Azure home when `LOCAL_AZURE_HOME` is unset: `.local-azure/` at the repository root. */
export const defaultHome = join(repoRoot, '.local-azure');

/**
 * What a service instance is told about the home besides its host's env file: `LOCAL_AZURE_HOME` for any home but the
 * default one, so that the local fix commands it prints (`npm run local-azure -- role assignment create …`) name
 * that home and do not act on the default one.
 */
export function serviceHomeEnv(home: string): Record<string, string> {
  return resolve(home) === defaultHome ? {} : { LOCAL_AZURE_HOME: resolve(home) };
}

export { serviceNames, type ServiceName };

/** Options of {@link startSystem}. */
export interface SystemOptions {
  /** `$LOCAL_AZURE_HOME`: the local Azure's state, the services' data and logs. */
  home: string;
  /** The first gateway instance's port; instance i listens on gatewayPort + 10 i. */
  gatewayPort: number;
  /** Instances of each of gateway, recommendation and vision, each its own process. **Default**: 1. */
  replicas?: number;
  /**
   * Images to serve for the catalog on 127.0.0.1:`port` (the local Vision fetches them by URL); that
   * `host:port` is added to the local Azure's `resources.vision.allowedImageHosts`.
   */
  images?: { products: readonly DemoProduct[]; port: number };
  /** Extra local Azure configuration (merged into the launcher's, e.g. more hosts). */
  localAzureConfig?: Record<string, unknown>;
  /**
   * The local Azure's own settings from the environment (`LOCAL_AZURE_ALERT_WEBHOOK`, `LOCAL_AZURE_SERVICEBUS_CONFIG`),
   * passed to its process, which gets no other environment. **Default**: none.
   */
  localAzureEnv?: Record<string, string>;
  /** Extra environment per service (e.g. a short request timeout in tests). */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Warnings and errors of the processes, one line each. Default: dropped. */
  onNotableLine?: (line: string) => void;
  /** How long each start may take. **Default**: 90 s. */
  startupTimeoutInMs?: number;
  /**
   * Options for Node.js in every process started (the local Azure and each service instance), e.g.
   * `['--cpu-prof', '--cpu-prof-dir=/tmp/profiles']` to profile a benchmark. **Default**: none.
   */
  nodeArgs?: readonly string[];
  /** Size at which each process's log file is set aside as `<name>.log.1` (see tools/launcher/src/rotating-log.ts), in bytes. **Default**: 32 MiB. */
  maxLogBytes?: number;
  /**
   * Aborting it stops a start under way (Ctrl-C while `npm start` waits for readiness): the waits end at once, the
   * processes started so far are stopped, and {@link startSystem} rejects with the signal's reason. It has no effect
   * once the system runs. **Default**: none.
   */
  signal?: AbortSignal;
}

/**
 * Starts the whole system as separate processes, each service as its own host with its own env file:
 * the local Azure, then recommendation and vision, then the gateway — `replicas` instances of each, every
 * instance of a service on the same host (same identity, same env file) — and waits until every instance's
 * `/health/ready` answers 200. Used by `npm start` and by the end-to-end tests.
 */
export async function startSystem(options: SystemOptions): Promise<RunningSystem> {
  const system = new RunningSystem(options);
  try {
    await system.start();
    return system;
  } catch (error) {
    await system.stop();
    throw error;
  }
}

/** A running system; {@link stop} stops it in reverse order. */
export class RunningSystem {
  readonly processes = new Map<string, ManagedProcess>();
  /** Port of each running instance, by instance name (`gateway`, `gateway-2`, `recommendation`, …). */
  readonly ports = new Map<string, number>();
  /** The instances the system runs (the plan; {@link addInstance} adds to {@link ports} only). */
  readonly instances: readonly ServiceInstance[];
  private imageServer: Server | undefined;
  private readonly timeout: number;

  constructor(readonly options: SystemOptions) {
    this.timeout = options.startupTimeoutInMs ?? 90_000;
    this.instances = planInstances(options.replicas ?? 1, options.gatewayPort);
  }

  get home(): string {
    return this.options.home;
  }

  /** The first gateway instance. */
  get gatewayUrl(): string {
    return `http://127.0.0.1:${this.options.gatewayPort}`;
  }

  /** Every gateway instance, the first first (what the storefront's GATEWAY_URLS lists). */
  get gatewayUrls(): string[] {
    return this.instances.filter((instance) => instance.service === 'gateway').map((instance) => `http://127.0.0.1:${instance.port}`);
  }

  /** Variables of a host's env file (written at the local Azure's first start; they stay true across its restarts). */
  hostEnv(host: string): Record<string, string> {
    return readEnvFile(join(this.home, 'env', `${host}.env`));
  }

  /** The local portal's address (from the operator's env file), while the local Azure runs. */
  get portalUrl(): string | undefined {
    return readEnvFile(join(this.home, 'env', 'operator.env')).LOCAL_AZURE_PORTAL_URL;
  }

  /** A caller with the storefront's identity (remember to close it). */
  storefront(): Promise<StorefrontCaller> {
    return StorefrontCaller.create(this.hostEnv('storefront'), this.gatewayUrl);
  }

  async start(): Promise<void> {
    // Also checks the home: the local Azure refuses an unusable one (the root of a git work tree) with a message that says why.
    const before = await localAzureStatus(this.home);
    if (before.earlierVersion) throw new Error(before.detail);
    if (before.state !== 'stopped') {
      throw new Error(`A local Azure already runs for ${this.home} (${before.state}, pid ${before.pid}): stop it first, or set LOCAL_AZURE_HOME to another folder.`);
    }
    this.options.signal?.throwIfAborted();
    if (this.options.images) this.imageServer = await serveImages(this.options.images.products, this.options.images.port);
    await this.unlessAborted(this.startLocalAzure());
    for (const instance of this.instances) this.ports.set(instance.name, instance.port ?? (await freePort()));
    for (const instance of this.instances) this.startService(instance.service, { processName: instance.name });
    await this.unlessAborted(Promise.all(this.instances.map((instance) => this.waitUntilReady(instance.name))));
    this.writeInstances();
  }

  /**
   * `work`, or the abort of {@link SystemOptions.signal}, whichever comes first. A failure after the abort is
   * reported as the abort: the processes being waited for are being stopped (or, on Windows, got the console's Ctrl-C
   * themselves), and "the local Azure exited" or "did not become ready within 90 s" would blame them for the stop.
   */
  private async unlessAborted<T>(work: Promise<T>): Promise<T> {
    const signal = this.options.signal;
    if (!signal) return work;
    let onAbort: () => void = () => undefined;
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    try {
      signal.throwIfAborted();
      return await Promise.race([work, aborted]);
    } catch (error) {
      signal.throwIfAborted();
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Starts (or restarts) one instance (`gateway`, `recommendation-2`, …) with its host's env file and waits until it is ready. */
  async restartService(name: ServiceName | string): Promise<void> {
    const service = serviceOf(name);
    if (!service || !this.ports.has(name)) throw new Error(`no instance named "${name}" (running: ${[...this.ports.keys()].join(', ')})`);
    const running = this.processes.get(name);
    if (running) await stopProcess(running);
    this.startService(service, { processName: name });
    await this.waitUntilReady(name);
    this.writeInstances();
  }

  /**
   * Starts another instance of `service` as the process `instance` (`recommendation-2`) on `port`: same host, same
   * identity and env file. A gateway instance holds its own reply session; recommendation and vision instances share
   * the database and compete for their queue and subscription. It is stopped with the system.
   */
  async addInstance(service: ServiceName, instance: string, port: number, env: Record<string, string> = {}): Promise<void> {
    this.ports.set(instance, port);
    this.startService(service, { processName: instance, env });
    await this.waitUntilReady(instance, port);
    this.writeInstances();
  }

  /**
   * Starts another gateway instance on `port` (same host, same identity, its own reply session), e.g. to
   * test several instances or one with other settings. It is stopped with the system.
   */
  addGatewayInstance(instance: string, port: number, env: Record<string, string> = {}): Promise<void> {
    return this.addInstance('gateway', instance, port, env);
  }

  /**
   * Stops the local Azure with `signal` (SIGKILL: no clean-up at all) and starts it again on the same home,
   * waiting until it runs. The services keep running: they find it again at the same endpoints by themselves.
   */
  async restartLocalAzure(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const running = this.processes.get('local-azure');
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill(signal);
      await running.exited;
    }
    await this.startLocalAzure();
  }

  /** Stops one instance (SIGTERM, then SIGKILL after a grace period). */
  async stopService(name: ServiceName | string): Promise<void> {
    const running = this.processes.get(name);
    if (running) await stopProcess(running);
  }

  /** Stops the gateways, then the other services' instances, then the local Azure. */
  async stop(): Promise<void> {
    rmSync(join(this.home, systemInstancesFileName), { force: true });
    for (const service of [...serviceNames].reverse()) {
      const instances = [...this.processes.values()].filter((running) => serviceOf(running.name) === service);
      await Promise.all(instances.map((running) => stopProcess(running)));
    }
    const localAzure = this.processes.get('local-azure');
    if (localAzure) await stopProcess(localAzure);
    await new Promise((resolve) => (this.imageServer ? this.imageServer.close(resolve) : resolve(undefined)));
  }

  /**
   * Records the service instances for the local Azure's portal (System page), in `$LOCAL_AZURE_HOME/instances.json`:
   * every process the launcher started, except the local Azure itself.
   */
  private writeInstances(): void {
    const file = join(this.home, systemInstancesFileName);
    const content: SystemInstancesFile = {
      instances: [...this.processes.keys()]
        .filter((name) => name !== 'local-azure')
        .map((name) => ({ name, service: serviceOf(name) ?? name, url: `http://127.0.0.1:${this.ports.get(name)}` })),
    };
    writeFileSync(`${file}.tmp`, JSON.stringify(content, null, 2));
    renameSync(`${file}.tmp`, file);
  }

  private async startLocalAzure(): Promise<void> {
    // Created here first, before the local Azure (which would make it 0700 too): it holds the CA key and the identity headers.
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    chmodSync(this.home, 0o700);
    const configFile = join(this.home, 'launcher.config.json');
    writeFileSync(configFile, JSON.stringify(launcherLocalAzureConfig(this.options.localAzureConfig, this.gatewayUrls, this.options.images?.port), null, 2));
    const localAzure = startProcess({
      name: 'local-azure',
      script: localAzureCli,
      args: ['start', '--config', configFile],
      ...(this.options.nodeArgs ? { nodeArgs: this.options.nodeArgs } : {}),
      env: { ...this.options.localAzureEnv, LOCAL_AZURE_HOME: this.home },
      logDir: join(this.home, 'logs'),
      ...(this.options.maxLogBytes ? { maxLogBytes: this.options.maxLogBytes } : {}),
      ...(this.options.onNotableLine ? { onNotableLine: (line: string) => this.options.onNotableLine!(`[local-azure] ${line}`) } : {}),
    });
    this.processes.set('local-azure', localAzure);
    // Ready is what `local-azure status` says (its process lives and its admin API answers), never a file.
    const waiting = new AbortController();
    const exited = localAzure.exited.then((code) => {
      throw new Error(`the local Azure exited (code ${code}); see ${localAzure.logFile}, which ends with:\n${localAzure.tail()}`);
    });
    exited.catch(() => undefined);
    // An aborted start ends the wait too, so nothing keeps polling a local Azure that is being stopped.
    const abortWait = (): void => waiting.abort();
    this.options.signal?.addEventListener('abort', abortWait, { once: true });
    const ready = localAzureStatus(this.home, { waitInMs: this.timeout, signal: waiting.signal });
    ready.catch(() => undefined);
    try {
      const status = await Promise.race([ready, exited]);
      if (status.state !== 'running') throw new Error(`the local Azure did not become ready within ${this.timeout / 1000} s (${status.detail}); see ${localAzure.logFile}`);
    } finally {
      this.options.signal?.removeEventListener('abort', abortWait);
      waiting.abort();
    }
  }

  /** Starts an instance of `name` as the process `processName`, on the port recorded for it in {@link ports}. */
  private startService(name: ServiceName, instance: { processName?: string; env?: Record<string, string> } = {}): void {
    const processName = instance.processName ?? name;
    const env: Record<string, string> = {
      ...this.hostEnv(name),
      ...serviceHomeEnv(this.home),
      PORT: String(this.ports.get(processName)),
      HOST: '127.0.0.1',
      ...this.options.serviceEnv?.[name],
      ...instance.env,
    };
    this.processes.set(
      processName,
      startProcess({
        name: processName,
        script: join(repoRoot, `apps/${name}/dist/main.js`),
        env,
        ...(this.options.nodeArgs ? { nodeArgs: this.options.nodeArgs } : {}),
        logDir: join(this.home, 'logs'),
        ...(this.options.maxLogBytes ? { maxLogBytes: this.options.maxLogBytes } : {}),
        ...(this.options.onNotableLine ? { onNotableLine: (line: string) => this.options.onNotableLine!(`[${processName}] ${line}`) } : {}),
      }),
    );
  }

  private async waitUntilReady(name: string, port = this.ports.get(name)): Promise<void> {
    const logFile = join(this.home, 'logs', `${name}.log`);
    await waitFor(
      async () => {
        this.options.signal?.throwIfAborted();
        const exited = this.processes.get(name)!.child.exitCode;
        if (exited !== null) throw new Error(`${name} exited with code ${exited}; see ${logFile}, which ends with:\n${this.processes.get(name)!.tail()}`);
        return (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined))?.status === 200;
      },
      this.timeout,
      () => `${name} did not become ready within ${this.timeout / 1000} s; see ${logFile}`,
      200,
    );
  }
}

/**
 * The local Azure configuration the launcher writes: the caller's extra configuration, the storefront host told
 * where the gateways are (`GATEWAY_URL`, the first; `GATEWAY_URLS`, every instance), and the demo image server's
 * loopback address allowed to the local Vision (it fetches only from the internet, like Azure's).
 */
export function launcherLocalAzureConfig(extra: Record<string, unknown> | undefined, gatewayUrls: readonly string[], imagePort?: number): Record<string, unknown> {
  const config = { ...extra };
  const hostEnv = (config.hostEnv ?? {}) as Record<string, Record<string, string>>;
  config.hostEnv = { ...hostEnv, storefront: { ...hostEnv.storefront, ...storefrontGatewayEnv(gatewayUrls) } };
  if (imagePort !== undefined) {
    const resources = (config.resources ?? {}) as { vision?: { allowedImageHosts?: string[] } };
    const vision = resources.vision ?? {};
    config.resources = { ...resources, vision: { ...vision, allowedImageHosts: [...(vision.allowedImageHosts ?? []), `127.0.0.1:${imagePort}`] } };
  }
  return config;
}

/** Serves product images (what the local Vision fetches by URL). */
function serveImages(products: readonly DemoProduct[], port: number): Promise<Server> {
  const images = new Map(products.map(({ product, image }) => [`/images/${product.id}.png`, image]));
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
