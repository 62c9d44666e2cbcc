// The launcher behind `npm start`: starting the whole system and its demo catalog, reused by the
// end-to-end tests and the benchmarks.
export { demoCatalog, drawProductImage } from './demo/demo-catalog.js';
export type { DemoCatalogOptions, DemoProduct } from './demo/demo-catalog.js';
export { indexingState, inBatches, loadCatalog } from './demo/catalog-loader.js';
export type { GatewayCaller, LoadCatalogOptions } from './demo/catalog-loader.js';
export { encodePng } from './demo/png.js';
export { LocalAzureCliError, localAzureStatus } from './local-azure-status.js';
export type { LocalAzureStatus, LocalAzureStatusOptions } from './local-azure-status.js';
export { freePort, readEnvFile, waitFor } from './processes.js';
export { StorefrontCaller } from './storefront-caller.js';
export { launcherLocalAzureConfig, repoRoot, RunningSystem, serviceNames, startSystem } from './system.js';
export type { ServiceName, SystemOptions } from './system.js';
export { checkLauncherPorts, gatewayPorts, instanceName, parseReplicas, planInstances, replicaLimits, serviceOf, storefrontGatewayEnv, UsageError } from './replicas.js';
export type { ServiceInstance } from './replicas.js';
export { readySummary } from './summary.js';
export type { ReadySummary } from './summary.js';
