import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot, startSystem, type RunningSystem, type ServiceName, type StorefrontCaller } from '@keyless/launcher';
import { GatewayClient } from './gateway-client.js';
import { ImageServer } from './image-server.js';
import { SpanCollector } from './span-collector.js';

/** Options of {@link startChaosSystem}. */
export interface ChaosSystemOptions {
  /** Extra local Azure configuration (e.g. a short token lifetime). */
  localAzureConfig?: Record<string, unknown>;
  /** Extra environment per service. */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Instances of each service (the launcher's `KEYLESS_REPLICAS`); the load is spread over the gateways. **Default**: 1. */
  replicas?: number;
  /** Keep the home after stop (to read the logs). **Default**: false. */
  keepHome?: boolean;
  /** Warnings and errors of the processes. **Default**: dropped. */
  onNotableLine?: (line: string) => void;
}

/**
 * The system as `npm start` runs it (the launcher's startSystem: the local Azure and each service as processes),
 * instrumented for the chaos suite: the services export their spans to the suite's collector at once (a 200 ms
 * batch delay, so a SIGKILL loses at most that much), product images come from the suite's image server, and
 * the gateway's per-caller and per-address rate limits are out of the way of the load (all of it comes from one
 * caller on one address).
 */
export class ChaosSystem {
  private constructor(
    readonly system: RunningSystem,
    readonly storefront: StorefrontCaller,
    readonly gateway: GatewayClient,
    readonly spans: SpanCollector,
    readonly images: ImageServer,
    private readonly scratch: string,
    private readonly keepHome: boolean,
  ) {}

  get home(): string {
    return this.system.home;
  }

  /** Runs a local Azure CLI command against this system (`fault …`, `role assignment …`, `servicebus peek …`). */
  async localAzure(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        [join(repoRoot, 'tools/local-azure/dist/main.js'), ...args, '--output', 'json'],
        { env: { ...process.env, LOCAL_AZURE_HOME: this.home }, maxBuffer: 256 * 1024 * 1024 },
        (error, stdout, stderr) => (error ? reject(new Error(`local-azure ${args.join(' ')} failed: ${stderr.trim() || error.message}`)) : resolve(stdout)),
      );
    });
  }

  /** Injects (or with `none`, heals) a fault through the CLI, as an operator would. */
  async fault(target: string, mode: string, delayInMs?: number): Promise<void> {
    await this.localAzure('fault', target, mode, ...(delayInMs !== undefined ? [String(delayInMs)] : []));
  }

  /** Message ids in the dead-letter queues of `entities` (`<queue>` or `<topic>/<subscription>`). */
  async deadLetteredIds(entities: readonly string[]): Promise<Set<string>> {
    const ids = new Set<string>();
    for (const entity of entities) {
      const messages = JSON.parse(await this.localAzure('servicebus', 'peek', entity, '--dlq', '--limit', '1000')) as { messageId: string }[];
      for (const message of messages) ids.add(String(message.messageId));
    }
    return ids;
  }

  /** The pid of every process the launcher runs, by name. */
  pids(): Map<string, number | undefined> {
    return new Map([...this.system.processes].map(([name, running]) => [name, running.child.exitCode === null && running.child.signalCode === null ? running.child.pid : undefined]));
  }

  async stop(): Promise<void> {
    await this.storefront.close().catch(() => undefined);
    await this.system.stop();
    await this.spans.close();
    await this.images.close();
    if (!this.keepHome) rmSync(this.scratch, { recursive: true, force: true });
  }

  static async start(options: ChaosSystemOptions = {}): Promise<ChaosSystem> {
    const scratch = mkdtempSync(join(tmpdir(), 'keyless-chaos-'));
    const spans = await SpanCollector.start();
    const images = await ImageServer.start();
    const telemetry = {
      OTEL_EXPORTER_OTLP_ENDPOINT: spans.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BSP_MAX_QUEUE_SIZE: '65536',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4096',
    };
    const env = (name: ServiceName): Record<string, string> => ({ ...telemetry, ...options.serviceEnv?.[name] });
    let system: RunningSystem | undefined;
    try {
      system = await startSystem({
        home: join(scratch, 'home'),
        gatewayPort: await freePort(),
        replicas: options.replicas ?? 1,
        // The local Vision fetches only from the internet, like Azure's; the suite's image server on loopback is let in.
        localAzureConfig: { ...options.localAzureConfig, resources: { vision: { name: 'vision-keyless-local', allowedImageHosts: [images.hostPort] } } },
        serviceEnv: { gateway: { RATE_LIMIT_PER_MINUTE: '1000000', ADDRESS_RATE_LIMIT_PER_MINUTE: '1000000', ...env('gateway') }, recommendation: env('recommendation'), vision: env('vision') },
        ...(options.onNotableLine ? { onNotableLine: options.onNotableLine } : {}),
      });
      const storefront = await system.storefront();
      return new ChaosSystem(system, storefront, new GatewayClient(storefront, system.gatewayUrls), spans, images, scratch, options.keepHome ?? false);
    } catch (error) {
      await system?.stop();
      await spans.close();
      await images.close();
      if (!options.keepHome) rmSync(scratch, { recursive: true, force: true });
      throw error;
    }
  }
}
