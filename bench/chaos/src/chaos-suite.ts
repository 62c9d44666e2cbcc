import { randomBytes } from 'node:crypto';
import type { ServiceName } from '@keyless/launcher';
import { ChaosSystem, type ChaosSystemOptions } from './chaos-system.js';
import { isSuccess } from './gateway-client.js';
import { Ledger, type LedgerEntry, type LedgerVerdict, type ProductReading } from './ledger.js';
import { countByStatus, EventStream, requestRecoveryInMs, RequestLoad, type PhaseClock, type RequestRecord } from './load.js';
import { growthTrend, sampleProcess, type GrowthTrend, type ProcessSample } from './process-sampler.js';
import type { Scenario } from './scenarios.js';

/** Options of {@link ChaosSuite}. */
export interface ChaosSuiteOptions {
  /** Steady load before each fault. **Default**: 3000 ms. */
  warmupInMs?: number;
  /** How long each fault is held. **Default**: 15000 ms. */
  holdInMs?: number;
  /** The goal: recovered within this long after the heal. **Default**: 30000 ms. */
  recoveryBoundInMs?: number;
  /**
   * How long acknowledged upserts get to reach the end of the pipeline after recovery. **Default**: 150000 ms: a
   * message whose settlement was lost with its connection comes back only when its lock expires (the subscriptions'
   * LockDuration is 1 minute), then goes through the handlers' retries.
   */
  settleTimeoutInMs?: number;
  /** Requests in flight and each worker's pause. **Default**: 4 workers, 100 ms. */
  requests?: { concurrency: number; pauseInMs: number };
  /** Upserts in flight and each worker's pause. **Default**: 2 workers, 200 ms. */
  events?: { concurrency: number; pauseInMs: number };
  /** Progress lines (stderr in the CLI). **Default**: dropped. */
  log?: (line: string) => void;
}

/** The ledger's scenario for upserts sent while no scenario runs (seeding, settling). */
const betweenScenarios = '(between scenarios)';

const defaults = {
  warmupInMs: 3_000,
  holdInMs: 15_000,
  recoveryBoundInMs: 30_000,
  settleTimeoutInMs: 150_000,
  requests: { concurrency: 4, pauseInMs: 100 },
  events: { concurrency: 2, pauseInMs: 200 },
  /** Products the request load reads (no image: indexed as soon as embedded). */
  seedProducts: 4,
  /** How often recovery and the pipeline are polled. */
  pollIntervalInMs: 250,
  /** Reads of products in flight while settling. */
  readConcurrency: 16,
  /** After settling, time for the last spans to reach the collector (the services export every 200 ms). */
  spanFlushInMs: 1_500,
  /** The subscriptions whose dead-letter queues are read. */
  deadLetterEntities: ['events/vision', 'events/recommendation'],
};

/** What one scenario did to the system (printed as JSON). */
export interface ScenarioReport {
  scenario: string;
  description: string;
  holdInMs: number;
  /** Requests through the gateway by status, per phase. */
  requests: Record<'before' | 'fault' | 'after', Record<string, number>>;
  /** Failed requests by kind and status, per phase (what broke where). */
  failures: Record<'before' | 'fault' | 'after', Record<string, Record<string, number>>>;
  /** The ledger's reconciliation of this scenario's upserts. */
  messages: LedgerVerdict;
  recovery: {
    /** From the heal to the first of a run of successful requests of every kind. */
    requestsInMs: number | null;
    /** From the heal to the first upsert sent after it being read back applied. */
    eventsInMs: number | null;
    /** The larger of the two (null: not recovered). */
    inMs: number | null;
    boundInMs: number;
  };
  /** Processes that exited or were replaced without the scenario doing it. */
  unexpectedRestarts: string[];
  /** Every service's /health/ready answered 200 once recovered. */
  healthyAfter: boolean;
  /** Why injecting failed (e.g. a service still running long after SIGTERM: the suite killed it). */
  injectError?: string;
  /** Why healing failed (e.g. a service exited instead of waiting for the platform); the suite restarted it. */
  healError?: string;
  /**
   * The goals: 0 lost, 0 applied twice, every acknowledged upsert at the end of the pipeline (none parked in a
   * dead-letter queue), recovered within the bound, no restart needed, healthy.
   */
  ok: boolean;
}

/** One scenario's figures in a line, as docs/reliability.md tabulates them (the short CI run prints these). */
export interface ScenarioSummary {
  scenario: string;
  /** Requests answered while the fault was held, by status. */
  requestsDuringFault: Record<string, number>;
  /** Requests of the whole scenario (before, during and after the fault): succeeded, and failed by status. */
  requestsOk: number;
  requestsFailed: Record<string, number>;
  messages: Pick<LedgerVerdict, 'sent' | 'acknowledged' | 'handled' | 'applied' | 'indexed' | 'deadLettered' | 'lost' | 'appliedTwice'>;
  recoveryInMs: number | null;
  unexpectedRestarts: string[];
  /** Why injecting or healing failed, when it did. */
  injectError?: string;
  healError?: string;
  ok: boolean;
}

/** The figures of a {@link ScenarioReport} without the per-phase detail. */
export function summarizeScenario(report: ScenarioReport): ScenarioSummary {
  const requestsOk = (['before', 'fault', 'after'] as const).reduce(
    (sum, phase) => sum + Object.entries(report.requests[phase]).reduce((n, [status, count]) => n + (isSuccess(Number(status)) ? count : 0), 0),
    0,
  );
  const requestsFailed: Record<string, number> = {};
  for (const phase of ['before', 'fault', 'after'] as const) {
    for (const byStatus of Object.values(report.failures[phase])) for (const [status, count] of Object.entries(byStatus)) requestsFailed[status] = (requestsFailed[status] ?? 0) + count;
  }
  const { sent, acknowledged, handled, applied, indexed, deadLettered, lost, appliedTwice } = report.messages;
  return {
    scenario: report.scenario,
    requestsDuringFault: report.requests.fault,
    requestsOk,
    requestsFailed,
    messages: { sent, acknowledged, handled, applied, indexed, deadLettered, lost, appliedTwice },
    recoveryInMs: report.recovery.inMs,
    unexpectedRestarts: report.unexpectedRestarts,
    ...(report.injectError ? { injectError: report.injectError } : {}),
    ...(report.healError ? { healError: report.healError } : {}),
    ok: report.ok,
  };
}

/** What a soak found (printed as JSON). */
export interface SoakReport {
  minutes: number;
  /** Requests through the gateway by status, over the whole soak. */
  requests: Record<string, number>;
  /** Token requests to the identity endpoint during the soak, by host. */
  tokenRequests: Record<string, { success: number; failure: number }>;
  /** The whole ledger. */
  messages: LedgerVerdict;
  /** Each process: its first and last sample, the growth trend and every sample. */
  processes: Record<string, { first: ProcessSample | undefined; last: ProcessSample | undefined; trend: GrowthTrend; samples: ProcessSample[] }>;
  /** No request failed, nothing lost or applied twice, no process growing. */
  ok: boolean;
}

/**
 * The chaos suite: the system under a steady load of requests and upserts, scenario after scenario — inject the
 * fault, hold it, heal it, measure the recovery, let the pipeline settle, reconcile the ledger.
 *
 * @example
 * const suite = await ChaosSuite.start({ holdInMs: 5000 });
 * try { reports.push(await suite.run(faultScenario('openai', '429'))); } finally { await suite.stop(); }
 */
export class ChaosSuite {
  readonly ledger = new Ledger(randomBytes(3).toString('hex'));
  private readonly clock: PhaseClock = { scenario: betweenScenarios, phase: 'before' };
  private readonly settings: Required<Omit<ChaosSuiteOptions, 'log'>>;
  private readonly log: (line: string) => void;
  private load!: RequestLoad;
  private events!: EventStream;
  /** Products read back at the end of the pipeline, by id (re-read only while not indexed). */
  private readonly readings = new Map<string, ProductReading | undefined>();

  private constructor(
    readonly chaos: ChaosSystem,
    options: ChaosSuiteOptions,
  ) {
    this.settings = {
      warmupInMs: options.warmupInMs ?? defaults.warmupInMs,
      holdInMs: options.holdInMs ?? defaults.holdInMs,
      recoveryBoundInMs: options.recoveryBoundInMs ?? defaults.recoveryBoundInMs,
      settleTimeoutInMs: options.settleTimeoutInMs ?? defaults.settleTimeoutInMs,
      requests: options.requests ?? defaults.requests,
      events: options.events ?? defaults.events,
    };
    this.log = options.log ?? (() => undefined);
  }

  /** Starts the system, seeds the products the requests read, and starts the load. */
  static async start(options: ChaosSuiteOptions & { system?: ChaosSystemOptions } = {}): Promise<ChaosSuite> {
    const chaos = await ChaosSystem.start(options.system);
    const suite = new ChaosSuite(chaos, options);
    try {
      await suite.seed();
      return suite;
    } catch (error) {
      await chaos.stop();
      throw error;
    }
  }

  /** Runs one scenario under the load and reports it. */
  async run(scenario: Scenario, holdInMs = this.settings.holdInMs): Promise<ScenarioReport> {
    const { recoveryBoundInMs } = this.settings;
    this.log(`${scenario.name}: steady load`);
    this.clock.scenario = scenario.name;
    this.clock.phase = 'before';
    await delay(this.settings.warmupInMs);
    const pidsBefore = this.chaos.pids();
    const burst = scenario.burst ? this.startBurst(scenario.burst) : undefined;
    if (burst) await burst.reached;

    this.log(`${scenario.name}: inject, hold ${holdInMs} ms`);
    // An injection that fails (a process that ignored SIGTERM) is a finding, reported like a failed heal.
    const injectError = await scenario.inject(this.chaos).then(
      () => undefined,
      (error: unknown) => (error as Error).message,
    );
    this.clock.phase = 'fault';
    await delay(holdInMs);

    this.log(`${scenario.name}: heal`);
    const healedAt = Date.now();
    this.clock.phase = 'after';
    // A heal that fails (a service that exited instead of waiting for the platform) is a finding, not the end of
    // the suite: it is reported, and whatever is down is started again so the next scenario finds a whole system.
    const healError = await scenario.heal(this.chaos).then(
      () => undefined,
      (error: unknown) => (error as Error).message,
    );
    if (healError) await this.restartWhatIsDown();
    const recovery = await this.awaitRecovery(scenario.name, healedAt);
    if (burst) {
      this.log(`${scenario.name}: waiting for the rest of the burst`);
      await burst.finished;
    }
    this.log(`${scenario.name}: recovered in ${recovery.inMs ?? 'never'} ms; settling`);
    const healthyAfter = recovery.inMs !== null && (await this.healthy());
    const unexpectedRestarts = [...pidsBefore]
      .filter(([name, pid]) => !scenario.restarts?.includes(name) && this.chaos.pids().get(name) !== pid)
      .map(([name]) => name);
    // Upserts from here on belong to no scenario: the ledger of this one is closed (the final check covers them).
    this.clock.scenario = betweenScenarios;
    const messages = await this.settle(scenario.name);
    const records = this.load.records.filter((r) => r.scenario === scenario.name);
    const byPhase = (phase: RequestRecord['phase']): Record<string, number> => countByStatus(records.filter((r) => r.phase === phase));
    const failuresOf = (phase: RequestRecord['phase']): Record<string, Record<string, number>> => {
      const failed = records.filter((r) => r.phase === phase && !isSuccess(r.status));
      return Object.fromEntries([...new Set(failed.map((r) => r.kind))].map((kind) => [kind, countByStatus(failed.filter((r) => r.kind === kind))]));
    };
    const report: ScenarioReport = {
      scenario: scenario.name,
      description: scenario.description,
      holdInMs,
      requests: { before: byPhase('before'), fault: byPhase('fault'), after: byPhase('after') },
      failures: { before: failuresOf('before'), fault: failuresOf('fault'), after: failuresOf('after') },
      messages,
      recovery: { ...recovery, boundInMs: recoveryBoundInMs },
      unexpectedRestarts,
      healthyAfter,
      ...(injectError ? { injectError } : {}),
      ...(healError ? { healError } : {}),
      ok:
        !injectError &&
        !healError &&
        messages.lost === 0 &&
        messages.appliedTwice === 0 &&
        messages.indexed === messages.acknowledged &&
        recovery.inMs !== null && recovery.inMs <= recoveryBoundInMs && unexpectedRestarts.length === 0 && healthyAfter,
    };
    this.log(`${scenario.name}: ${report.ok ? 'ok' : 'FAILED'} — ${JSON.stringify({ lost: messages.lost, appliedTwice: messages.appliedTwice, recovery: recovery.inMs })}`);
    return report;
  }

  /**
   * Soak: the steady load for `minutes`, sampling every process's RSS and open handles every `sampleEveryInMs`; then
   * the growth trend of each (least-squares slope over the second half), the requests by status, the token
   * requests each host made, and the whole ledger.
   */
  async soak(minutes: number, sampleEveryInMs = 10_000): Promise<SoakReport> {
    this.clock.scenario = `soak ${minutes} min`;
    this.clock.phase = 'fault';
    const started = Date.now();
    const samples = new Map<string, ProcessSample[]>();
    for (;;) {
      const at = (Date.now() - started) / 60_000;
      for (const [name, pid] of this.chaos.pids()) {
        const sample = pid === undefined ? undefined : sampleProcess(pid, Math.round(at * 100) / 100);
        if (sample) samples.set(name, [...(samples.get(name) ?? []), sample]);
      }
      if (Date.now() - started >= minutes * 60_000) break;
      this.log(`soak: ${at.toFixed(1)} of ${minutes} min; ${[...samples].map(([name, list]) => `${name} ${list.at(-1)!.rssInMb} MB/${list.at(-1)!.openHandles} fds`).join(', ')}`);
      await delay(Math.min(sampleEveryInMs, started + minutes * 60_000 - Date.now()));
    }
    const records = this.load.records.filter((r) => r.scenario === this.clock.scenario);
    this.clock.scenario = betweenScenarios;
    const signIns = JSON.parse(await this.chaos.localAzure('log', 'sign-ins', '--limit', '1000000')) as { time: string; host: string; resource?: string; outcome: string }[];
    const during = signIns.filter((s) => Date.parse(s.time) >= started);
    const tokenRequests: Record<string, { success: number; failure: number }> = {};
    for (const signIn of during) {
      const host = (tokenRequests[signIn.host] ??= { success: 0, failure: 0 });
      host[signIn.outcome === 'success' ? 'success' : 'failure']++;
    }
    const ledger = await this.finalCheck();
    const processes = Object.fromEntries([...samples].map(([name, list]) => [name, { first: list[0], last: list.at(-1), trend: growthTrend(list), samples: list }]));
    return {
      minutes,
      requests: countByStatus(records),
      tokenRequests,
      messages: ledger,
      processes,
      ok: ledger.lost === 0 && ledger.appliedTwice === 0 && Object.values(processes).every((p) => !p.trend.growing) && records.every((r) => isSuccess(r.status)),
    };
  }

  /**
   * Stops the upserts, lets everything sent so far settle, and reconciles the whole ledger: every scenario's and
   * those sent between scenarios.
   */
  async finalCheck(): Promise<LedgerVerdict> {
    await this.events.stop();
    return this.settle(undefined);
  }

  /** Stops the load and the system. */
  async stop(): Promise<void> {
    await Promise.all([this.load?.stop(), this.events?.stop()]);
    await this.chaos.stop();
  }

  private async seed(): Promise<void> {
    const ids: string[] = [];
    for (let i = 0; i < defaults.seedProducts; i++) {
      const id = `chaos-seed-${this.ledger.runId}-${i}`;
      const result = await this.chaos.gateway.call('PUT', `/v1/products/${id}`, {
        name: `Seed running shoe ${i}`,
        description: 'A light running shoe with a cushioned sole, read by the chaos load.',
        category: 'shoes',
        price: 50 + i,
      });
      if (result.status !== 202) throw new Error(`seeding ${id} answered ${result.status}`);
      ids.push(id);
    }
    await until(async () => (await Promise.all(ids.map((id) => this.read(id)))).every((r) => r?.state === 'indexed'), 60_000, 'the seed products were not indexed within 60 s');
    this.load = new RequestLoad(this.chaos.gateway, { productIds: ids, imageUrl: this.chaos.images.url('request-load') }, this.clock, this.settings.requests);
    this.events = new EventStream(this.chaos.gateway, this.ledger, this.chaos.images, this.clock, this.settings.events);
    this.load.start();
    this.events.start();
  }

  private async awaitRecovery(scenario: string, healedAt: number): Promise<{ requestsInMs: number | null; eventsInMs: number | null; inMs: number | null }> {
    const deadline = healedAt + this.settings.recoveryBoundInMs + 15_000;
    let requestsInMs: number | undefined;
    let eventsInMs: number | undefined;
    while (Date.now() < deadline && (requestsInMs === undefined || eventsInMs === undefined)) {
      requestsInMs ??= requestRecoveryInMs(this.load.records, healedAt);
      if (eventsInMs === undefined) {
        const candidates = this.ledger.of(scenario).filter((e) => e.sentAt >= healedAt && e.status === 202 && !e.withImage).slice(0, 3);
        for (const entry of candidates) {
          if ((await this.read(entry.productId))?.name === entry.name) {
            eventsInMs = Date.now() - healedAt;
            break;
          }
        }
      }
      await delay(defaults.pollIntervalInMs);
    }
    const inMs = requestsInMs !== undefined && eventsInMs !== undefined ? Math.max(requestsInMs, eventsInMs) : null;
    return { requestsInMs: requestsInMs ?? null, eventsInMs: eventsInMs ?? null, inMs };
  }

  /** Waits until every acknowledged upsert of the scenario is indexed (or the settle time is up), then reconciles. */
  private async settle(scenario: string | undefined): Promise<LedgerVerdict> {
    const acknowledged = (): LedgerEntry[] => this.ledger.of(scenario).filter((e) => e.status === 202);
    const deadline = Date.now() + this.settings.settleTimeoutInMs;
    for (;;) {
      const pending = acknowledged().filter((e) => this.readings.get(e.productId)?.state !== 'indexed');
      await inParallel(pending, defaults.readConcurrency, async (entry) => void (await this.read(entry.productId)));
      const still = acknowledged().filter((e) => this.readings.get(e.productId)?.state !== 'indexed');
      if (still.length === 0 || Date.now() > deadline) break;
      await delay(1_000);
    }
    await delay(defaults.spanFlushInMs);
    return this.ledger.reconcile(
      { products: this.readings, handledRuns: this.chaos.spans.handledRuns(), deadLettered: await this.chaos.deadLetteredIds(defaults.deadLetterEntities) },
      scenario,
    );
  }

  /** Reads a product back through the gateway (`undefined` when the gateway says 404). */
  private async read(productId: string): Promise<ProductReading | undefined> {
    const result = await this.chaos.gateway.call('GET', `/v1/products/${productId}`);
    if (result.status === 404) {
      this.readings.set(productId, undefined);
      return undefined;
    }
    if (!isSuccess(result.status)) return this.readings.get(productId);
    const view = result.body as { product: { name: string }; indexing: { state: string } };
    const reading = { name: view.product.name, state: view.indexing.state };
    this.readings.set(productId, reading);
    return reading;
  }

  /** Starts a burst of upserts; `reached` resolves once `injectAfter` were answered, `finished` once all were. */
  private startBurst(burst: NonNullable<Scenario['burst']>): { reached: Promise<void>; finished: Promise<void> } {
    let reach!: () => void;
    const reached = new Promise<void>((resolve) => (reach = resolve));
    const finished = this.events.burst(burst.upserts, burst.concurrency, (sent) => {
      if (sent >= burst.injectAfter) reach();
      if (sent % 1000 === 0) this.log(`burst: ${sent} of ${burst.upserts} upserts answered`);
    });
    finished.then(reach, reach);
    return { reached, finished };
  }

  /** Starts every service whose process is gone (after a failed heal). */
  private async restartWhatIsDown(): Promise<void> {
    for (const [name, pid] of this.chaos.pids()) {
      if (pid === undefined && name !== 'local-azure') await this.chaos.system.restartService(name as ServiceName).catch((error: unknown) => this.log(`could not restart ${name}: ${(error as Error).message}`));
    }
  }

  private async healthy(): Promise<boolean> {
    const answers = await Promise.all(
      [...this.chaos.system.ports.values()].map((port) =>
        fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.status === 200, () => false),
      ),
    );
    return answers.every(Boolean);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(check: () => Promise<boolean>, timeoutInMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutInMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(message);
    await delay(250);
  }
}

async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}
