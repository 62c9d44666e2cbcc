// Test support for integration tests of any project against the local Azure (`@keyless/local-azure/testing`).
export { startTestAzure, trustCa } from './test-azure.js';
export type { TestAzure, TestAzureOptions } from './test-azure.js';
export { TestMetrics } from './test-metrics.js';
export { freePorts, LocalAzureProcess } from './local-azure-process.js';
export type { LocalAzureProcessOptions } from './local-azure-process.js';
export { runToEnd } from './run-to-end.js';
export { AdminClient, AdminClientError } from '../cli/admin-client.js';
export { TcpGate } from './tcp-gate.js';
