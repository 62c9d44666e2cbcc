import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, LocalAzureProcess } from '@keyless/local-azure/testing';
import { writeTestTopology, type TopologyOverrides } from './test-bus.js';

/**
 * The local Azure CLI in a child process on fixed ports (so clients reconnect to the same address after a
 * kill and restart), with the test topology, started and ready. Stop it with `stop()`.
 */
export async function startChildAzure(topology: TopologyOverrides = {}): Promise<LocalAzureProcess> {
  const home = mkdtempSync(join(tmpdir(), 'messaging-child-azure-'));
  const [identity, login, management, serviceBus] = await freePorts(4);
  const topologyFile = writeTestTopology(home, topology);
  const azure = new LocalAzureProcess({ home, deleteHomeOnStop: true, config: { network: { ports: { identity, login, management, serviceBus } }, resources: { serviceBus: { topologyFile } } } });
  await azure.start();
  return azure;
}
