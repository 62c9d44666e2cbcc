// The chaos suite, the gateway fuzz and the soak: the harness the bench scripts (bench/chaos/*.bench.ts) and the
// short CI runs (bench/chaos/test/) share.
export { ChaosSuite, summarizeScenario } from './chaos-suite.js';
export type { ChaosSuiteOptions, ScenarioReport, ScenarioSummary, SoakReport } from './chaos-suite.js';
export { ChaosSystem } from './chaos-system.js';
export type { ChaosSystemOptions } from './chaos-system.js';
export { GatewayClient, isSuccess } from './gateway-client.js';
export type { CallResult } from './gateway-client.js';
export { Ledger } from './ledger.js';
export type { LedgerEntry, LedgerVerdict } from './ledger.js';
export { countByStatus, requestKinds, requestRecoveryInMs } from './load.js';
export { allScenarios, faultScenario, identityFaultAtStartScenario, killScenario, localAzureKillScenario, roleRevokeScenario } from './scenarios.js';
export type { Scenario } from './scenarios.js';
export { fuzzGateway, FuzzGenerator, Random } from './gateway-fuzz.js';
export type { FuzzOptions, FuzzReport, FuzzRequest, FuzzResult } from './gateway-fuzz.js';
export { growthTrend, leastSquaresSlope, sampleProcess } from './process-sampler.js';
export type { GrowthLimits, GrowthTrend, ProcessSample } from './process-sampler.js';
