import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoCatalog, freePort, loadCatalog, startSystem, type DemoProduct, type RunningSystem, type StorefrontCaller, type SystemOptions } from '@keyless/launcher';

/** Options of {@link useRunningSystem}. */
export interface RunningSystemOptions {
  /** Names the spec in its scratch folder, `keyless-<name>-e2e-…` in the OS's temporary folder (the logs are there). */
  name: string;
  /** Variants of each of the demo catalog's 36 product types. **Default**: 1. */
  variantsPerType?: number;
  /** Whether the catalog is upserted and indexed before the first test (`loadCatalog`). **Default**: true. */
  loadCatalog?: boolean;
  /**
   * More options of `startSystem` (local Azure configuration, service environment), asked for just before the start:
   * the place to open what they point to (a collector, a gate), to be closed in {@link afterStop}. **Default**: none.
   */
  systemOptions?: () => Promise<Partial<StartOptions>> | Partial<StartOptions>;
  /** Runs once the system is ready, before the storefront caller is made and the catalog loaded (more instances). */
  afterStart?: (system: RunningSystem) => Promise<void>;
  /** Runs first when the suite ends, while the system still runs (e.g. restoring what a test cut). */
  beforeStop?: () => Promise<unknown> | unknown;
  /** Runs once the system has stopped (also after a start that failed), before its scratch folder is deleted. */
  afterStop?: () => Promise<unknown> | unknown;
  /** How long the start, catalog load included, may take. **Default**: 240 s. */
  startTimeoutInMs?: number;
}

/** What the fixture gives the tests; each property throws if read before its `beforeAll` has started the system. */
export interface RunningSystemFixture {
  readonly system: RunningSystem;
  /** A caller with the storefront's identity, through the first gateway instance. */
  readonly storefront: StorefrontCaller;
  /** The demo catalog, its images served on 127.0.0.1 to the local Vision. */
  readonly catalog: DemoProduct[];
}

/** The options of `startSystem` the fixture leaves to the spec (it sets the home, the gateway port and the images). */
type StartOptions = Omit<SystemOptions, 'home' | 'gatewayPort' | 'images'>;

/**
 * The set-up and teardown the system end-to-end specs share, registered as `beforeAll`/`afterAll` of the calling
 * `describe` block: a scratch folder, the whole system started with `startSystem` (the local Azure and every service
 * as its own process, on free ports) on a home that does not exist yet (as on a first `npm start`), with the demo
 * catalog's images served to Vision; a storefront caller; the catalog loaded and indexed unless `loadCatalog` is
 * false. When the block ends: the caller closed, the system stopped, the scratch folder deleted.
 *
 * @example
 * describe('Keyless, after …', () => {
 *   const e2e = useRunningSystem({ name: 'restart' });
 *   it('…', async () => {
 *     expect((await e2e.storefront.fetch(`/v1/products/${e2e.catalog[0]!.product.id}`)).status).toBe(200);
 *   });
 * });
 */
export function useRunningSystem(options: RunningSystemOptions): RunningSystemFixture {
  let scratch: string | undefined;
  let system: RunningSystem | undefined;
  let storefront: StorefrontCaller | undefined;
  let catalog: DemoProduct[] | undefined;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), `keyless-${options.name}-e2e-`));
    const startOptions = (await options.systemOptions?.()) ?? {};
    const [gatewayPort, imagePort] = [await freePort(), await freePort()];
    catalog = demoCatalog({ imageBaseUrl: `http://127.0.0.1:${imagePort}/images`, variantsPerType: options.variantsPerType ?? 1 });
    system = await startSystem({ ...startOptions, home: join(scratch, 'state'), gatewayPort, images: { products: catalog, port: imagePort } });
    await options.afterStart?.(system);
    storefront = await system.storefront();
    if (options.loadCatalog ?? true) await loadCatalog(storefront, catalog);
  }, options.startTimeoutInMs ?? 240_000);

  // Every step runs even when one before it fails (a failure is reported after the rest), so no process or scratch
  // folder outlives a failed spec for the rest of the Jest run.
  afterAll(async () => {
    const steps = [options.beforeStop, () => storefront?.close(), () => system?.stop(), options.afterStop, () => scratch && rmSync(scratch, { recursive: true, force: true })];
    const failures: unknown[] = [];
    for (const step of steps) {
      try {
        await step?.();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} steps of useRunningSystem's teardown failed`);
  }, 60_000);

  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the ${what} is read before useRunningSystem's beforeAll has started the system (or the start failed)`);
    return value;
  };
  return {
    get system() {
      return started(system, 'system');
    },
    get storefront() {
      return started(storefront, 'storefront caller');
    },
    get catalog() {
      return started(catalog, 'catalog');
    },
  };
}
