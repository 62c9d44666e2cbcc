import { summarizeScenario, type ScenarioReport } from './chaos-suite.js';

describe(summarizeScenario.name, () => {
  const messages = { sent: 12, acknowledged: 10, refused: { '503': 2 }, handled: 10, applied: 10, indexed: 10, deadLettered: 0, lost: 0, appliedTwice: 0, samples: { lost: [], appliedTwice: [], notIndexed: [], deadLettered: [] } };
  const report: ScenarioReport = {
    scenario: 'openai 500',
    description: 'npm run local-azure -- fault openai 500',
    holdInMs: 10_000,
    requests: { before: { '200': 5 }, fault: { '200': 3, '503': 4, 'network-error': 1 }, after: { '200': 7, '504': 1 } },
    failures: { before: {}, fault: { similar: { '503': 4 }, read: { 'network-error': 1 } }, after: { analyze: { '504': 1 } } },
    messages,
    recovery: { requestsInMs: 900, eventsInMs: 1_200, inMs: 1_200, boundInMs: 30_000 },
    unexpectedRestarts: [],
    healthyAfter: true,
    ok: true,
  };

  it('counts the successful requests of every phase and the failed ones by status', () => {
    const summary = summarizeScenario(report);
    expect(summary.requestsOk).toBe(15);
    expect(summary.requestsFailed).toEqual({ '503': 4, 'network-error': 1, '504': 1 });
    expect(summary.requestsDuringFault).toEqual(report.requests.fault);
  });

  it('keeps the ledger counts, the recovery and the restarts, without the samples', () => {
    const summary = summarizeScenario(report);
    expect(summary.messages).toEqual({ sent: 12, acknowledged: 10, handled: 10, applied: 10, indexed: 10, deadLettered: 0, lost: 0, appliedTwice: 0 });
    expect(summary).toMatchObject({ scenario: 'openai 500', recoveryInMs: 1_200, unexpectedRestarts: [], ok: true });
  });
});
