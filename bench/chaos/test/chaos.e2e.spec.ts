import { ChaosSuite, faultScenario, killScenario, roleRevokeScenario, summarizeScenario, type Scenario, type ScenarioReport } from '../src/index.js';

// The chaos suite, short version (the long one: bench/chaos/chaos.bench.ts). The whole system under a small steady
// load; each scenario injects, holds, heals. Only the goals are asserted — nothing lost, nothing applied twice, every
// acknowledged upsert at the end of the pipeline, recovered within the bound, no process restarted that the scenario
// did not restart itself — never a timing inside the bound. Holds are longer than the event retry budget used to be
// (about 8 s), so a regression to dead-lettering under an outage shows.
describe('The system under faults (chaos suite, short)', () => {
  let suite: ChaosSuite;
  const reports: ScenarioReport[] = [];

  beforeAll(async () => {
    suite = await ChaosSuite.start({
      warmupInMs: 2_000,
      holdInMs: 10_000,
      requests: { concurrency: 2, pauseInMs: 100 },
      events: { concurrency: 1, pauseInMs: 250 },
    });
  }, 180_000);

  afterAll(async () => {
    // The figures, for the CI log and docs/reliability.md (the assertions below check only the goals).
    process.stderr.write(`[chaos] ${JSON.stringify(reports.map(summarizeScenario))}\n`);
    await suite?.stop();
  }, 60_000);

  const meetsTheGoals = (report: ScenarioReport): void => {
    const { messages, recovery } = report;
    expect({ scenario: report.scenario, lost: messages.lost, appliedTwice: messages.appliedTwice, samples: messages.samples.lost }).toEqual({
      scenario: report.scenario,
      lost: 0,
      appliedTwice: 0,
      samples: [],
    });
    expect(messages.acknowledged).toBeGreaterThan(0);
    expect({ scenario: report.scenario, indexed: messages.indexed, deadLettered: messages.deadLettered }).toEqual({
      scenario: report.scenario,
      indexed: messages.acknowledged,
      deadLettered: 0,
    });
    expect(recovery.inMs).not.toBeNull();
    expect(recovery.inMs!).toBeLessThanOrEqual(recovery.boundInMs);
    expect(report.unexpectedRestarts).toEqual([]);
    expect(report.healthyAfter).toBe(true);
  };

  const run = async (scenario: Scenario): Promise<ScenarioReport> => {
    const report = await suite.run(scenario);
    reports.push(report);
    return report;
  };

  it('loses nothing and recovers when Azure OpenAI fails with 500s', async () => {
    meetsTheGoals(await run(faultScenario('openai', '500')));
  }, 240_000);

  it('loses nothing and recovers when the shared identity loses its roles on Azure OpenAI and Vision, until restored', async () => {
    const report = await run(roleRevokeScenario());
    meetsTheGoals(report);
    expect(Object.keys(report.requests.fault)).toContain('503');
  }, 240_000);

  it('loses nothing and applies nothing twice when the recommendation service is killed with SIGKILL under load', async () => {
    meetsTheGoals(await run(killScenario('recommendation', 'SIGKILL')));
  }, 240_000);

  it('loses nothing when vision is throttled (429 with retry-after)', async () => {
    meetsTheGoals(await run(faultScenario('vision', '429')));
  }, 240_000);

  it('keeps the whole ledger whole across the scenarios and between them', async () => {
    const total = await suite.finalCheck();
    expect({ lost: total.lost, appliedTwice: total.appliedTwice }).toEqual({ lost: 0, appliedTwice: 0 });
    expect(total.acknowledged).toBeGreaterThanOrEqual(reports.reduce((sum, r) => sum + r.messages.acknowledged, 0));
  }, 240_000);
});
