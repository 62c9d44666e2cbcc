import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalAzureProcess } from '@keyless/local-azure/testing';
import { writeTestTopology, type TopologyOverrides } from './test-bus.js';

/**
 * The local Azure CLI in a child process with the test topology, started and ready (within `startTimeoutInMs`,
 * default 30 s). A kill and restart keeps its endpoints (the ports the first start picked are kept in its home),
 * so clients reconnect by themselves. Stop it with `stop()`.
 */
export async function startChildAzure(topology: TopologyOverrides = {}, startTimeoutInMs?: number): Promise<LocalAzureProcess> {
  const home = mkdtempSync(join(tmpdir(), 'messaging-child-azure-'));
  const topologyFile = writeTestTopology(home, topology);
  const azure = new LocalAzureProcess({ home, deleteHomeOnStop: true, config: { resources: { serviceBus: { topologyFile } } } });
  await azure.start(startTimeoutInMs);
  return azure;
}
