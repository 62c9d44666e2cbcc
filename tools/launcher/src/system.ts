import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemInstancesFileName, type SystemInstancesFile } from '@keyless/contracts';
import type { DemoProduct } from './demo/demo-catalog.js';
import { localAzureCli, localAzureStatus } from './local-azure-status.js';
import { freePort, readEnvFile, startProcess, stopProcess, waitFor, type ManagedProcess } from './processes.js';
import { StorefrontCaller } from './storefront-caller.js';

/** The repository this launcher belongs to (its built apps and tools are started from here). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The services of the system, in start order (the gateway last: it is the front door). */
export const serviceNames = ['recommendation', 'vision', 'gateway'] as const;
export type ServiceName = (typeof serviceNames)[number];

/** Options of {@link startSystem}. */
export interface SystemOptions {
  /** `$LOCAL_AZURE_HOME`: the local Azure's state, the services' data and logs. */
  home: string;
  /** The gateway's port. */
  gatewayPort: number;
  /**
   * Images to serve for the catalog on 127.0.0.1:`port` (the local Vision fetches them by URL); that
   * `host:port` is added to the local Azure's `resources.vision.allowedImageHosts`.
   */
  images?: { products: readonly DemoProduct[]; port: number };
  /** Extra local Azure configuration (merged into the launcher's, e.g. more hosts). */
  localAzureConfig?: Record<string, unknown>;
  /** Extra environment per service (e.g. a short request timeout in tests). */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Warnings and errors of the processes, one line each. Default: dropped. */
  onNotableLine?: (line: string) => void;
  /** How long each start may take. **Default**: 90 s. */
  startupTimeoutInMs?: number;
}

/**
 * Starts the whole system as separate processes, each service as its own host with its own env file:
 * the local Azure, then recommendation and vision, then the gateway, and waits until every service's
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
  readonly ports = new Map<ServiceName, number>();
  private imageServer: Server | undefined;
  private readonly timeout: number;

  constructor(readonly options: SystemOptions) {
    this.timeout = options.startupTimeoutInMs ?? 90_000;
  }

  get home(): string {
    return this.options.home;
  }

  get gatewayUrl(): string {
    return `http://127.0.0.1:${this.options.gatewayPort}`;
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
    if (before.state !== 'stopped') {
      throw new Error(`A local Azure already runs for ${this.home} (${before.state}, pid ${before.pid}): stop it first, or set LOCAL_AZURE_HOME to another folder.`);
    }
    if (this.options.images) this.imageServer = await serveImages(this.options.images.products, this.options.images.port);
    await this.startLocalAzure();
    for (const name of serviceNames) this.ports.set(name, name === 'gateway' ? this.options.gatewayPort : await freePort());
    for (const name of serviceNames) this.startService(name);
    await Promise.all(serviceNames.map((name) => this.waitUntilReady(name)));
    this.writeInstances();
  }

  /** Starts (or restarts) one service with its host's env file and waits until it is ready. */
  async restartService(name: ServiceName): Promise<void> {
    const running = this.processes.get(name);
    if (running) await stopProcess(running);
    this.startService(name);
    await this.waitUntilReady(name);
    this.writeInstances();
  }

  /**
   * Starts another gateway instance on `port` (same host, same identity, its own reply session), e.g. to
   * test several instances or one with other settings. It is stopped with the system.
   */
  async addGatewayInstance(instance: string, port: number, env: Record<string, string> = {}): Promise<void> {
    this.startService('gateway', { processName: instance, port, env });
    this.ports.set(instance as ServiceName, port);
    await this.waitUntilReady(instance, port);
    this.writeInstances();
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

  /** Stops one service (SIGTERM, then SIGKILL after a grace period). */
  async stopService(name: ServiceName): Promise<void> {
    const running = this.processes.get(name);
    if (running) await stopProcess(running);
  }

  /** Stops the gateway, then the services, then the local Azure. */
  async stop(): Promise<void> {
    rmSync(join(this.home, systemInstancesFileName), { force: true });
    for (const [name, running] of this.processes) if (name.startsWith('gateway-')) await stopProcess(running);
    for (const name of [...serviceNames].reverse()) await this.stopService(name);
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
        .map((name) => ({ name, service: name.startsWith('gateway') ? 'gateway' : name, url: `http://127.0.0.1:${this.ports.get(name as ServiceName)}` })),
    };
    writeFileSync(`${file}.tmp`, JSON.stringify(content, null, 2));
    renameSync(`${file}.tmp`, file);
  }

  private async startLocalAzure(): Promise<void> {
    mkdirSync(this.home, { recursive: true });
    const configFile = join(this.home, 'launcher.config.json');
    const config = { ...this.options.localAzureConfig };
    const hostEnv = (config.hostEnv ?? {}) as Record<string, Record<string, string>>;
    config.hostEnv = { ...hostEnv, storefront: { ...hostEnv.storefront, GATEWAY_URL: this.gatewayUrl } };
    if (this.options.images) {
      // The local Vision fetches only from the internet, like Azure's; the demo image server on loopback is the exception.
      const resources = (config.resources ?? {}) as { vision?: { allowedImageHosts?: string[] } };
      const vision = resources.vision ?? {};
      config.resources = {
        ...resources,
        vision: { ...vision, allowedImageHosts: [...(vision.allowedImageHosts ?? []), `127.0.0.1:${this.options.images.port}`] },
      };
    }
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const localAzure = startProcess({
      name: 'local-azure',
      script: localAzureCli,
      args: ['start', '--config', configFile],
      env: { LOCAL_AZURE_HOME: this.home },
      logDir: join(this.home, 'logs'),
      ...(this.options.onNotableLine ? { onNotableLine: (line: string) => this.options.onNotableLine!(`[local-azure] ${line}`) } : {}),
    });
    this.processes.set('local-azure', localAzure);
    // Ready is what `local-azure status` says (its process lives and its admin API answers), never a file.
    const waiting = new AbortController();
    const exited = localAzure.exited.then((code) => {
      throw new Error(`the local Azure exited (code ${code}); see ${localAzure.logFile}`);
    });
    exited.catch(() => undefined);
    const ready = localAzureStatus(this.home, { waitInMs: this.timeout, signal: waiting.signal });
    ready.catch(() => undefined);
    try {
      const status = await Promise.race([ready, exited]);
      if (status.state !== 'running') throw new Error(`the local Azure did not become ready within ${this.timeout / 1000} s (${status.detail}); see ${localAzure.logFile}`);
    } finally {
      waiting.abort();
    }
  }

  private startService(name: ServiceName, instance: { processName?: string; port?: number; env?: Record<string, string> } = {}): void {
    const processName = instance.processName ?? name;
    const env: Record<string, string> = {
      ...this.hostEnv(name),
      PORT: String(instance.port ?? this.ports.get(name)),
      HOST: '127.0.0.1',
      ...(name === 'recommendation' ? { RECOMMENDATION_DATA_DIR: join(this.home, 'apps', 'recommendation') } : {}),
      ...this.options.serviceEnv?.[name],
      ...instance.env,
    };
    this.processes.set(
      processName,
      startProcess({
        name: processName,
        script: join(repoRoot, `apps/${name}/dist/main.js`),
        env,
        logDir: join(this.home, 'logs'),
        ...(this.options.onNotableLine ? { onNotableLine: (line: string) => this.options.onNotableLine!(`[${name}] ${line}`) } : {}),
      }),
    );
  }

  private async waitUntilReady(name: string, port = this.ports.get(name as ServiceName)): Promise<void> {
    const logFile = join(this.home, 'logs', `${name}.log`);
    await waitFor(
      async () => {
        const exited = this.processes.get(name)!.child.exitCode;
        if (exited !== null) throw new Error(`${name} exited with code ${exited}; see ${logFile}`);
        return (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined))?.status === 200;
      },
      this.timeout,
      () => `${name} did not become ready within ${this.timeout / 1000} s; see ${logFile}`,
      200,
    );
  }
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
