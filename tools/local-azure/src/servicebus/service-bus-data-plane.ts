import { isAbsolute, join, relative, resolve } from 'node:path';
import { repoRoot } from '../config/local-azure-config.js';
import type { DataPlane, DataPlaneContext, RunningDataPlane } from '../data-plane.js';
import { listen, type BoundListener } from '../net/listen.js';
import { addServiceBusAdminRoutes, serviceBusOperations } from './admin-routes.js';
import { AmqpBroker } from './amqp-broker.js';
import { BrokerFaults } from './broker-faults.js';
import { IdleMemoryReducer } from './idle-memory-reducer.js';
import { MessageStore } from './message-store.js';
import { ServiceBusNamespace } from './service-bus-namespace.js';
import { loadTopology } from './topology.js';

/**
 * The local Azure Service Bus: an AMQP 1.0 broker over TLS that the unmodified `@azure/service-bus`
 * talks to with Entra ID tokens, entities from the topology file, messages in SQLite.
 *
 * Host env files gain `SERVICEBUS_FULLY_QUALIFIED_NAMESPACE` (`<host>:<port>`, what
 * `new ServiceBusClient(namespace, credential)` takes) and `SERVICEBUS_NAMESPACE_RESOURCE_ID` (the
 * namespace's ARM id, the scope of its role assignments).
 */
export const serviceBusDataPlane: DataPlane = {
  resource: 'serviceBus',
  start: startServiceBus,
};

async function startServiceBus(context: DataPlaneContext): Promise<RunningDataPlane> {
  const settings = context.config.resources.serviceBus;
  const topologyFile = isAbsolute(settings.topologyFile) ? settings.topologyFile : resolve(repoRoot, settings.topologyFile);
  const topology = loadTopology(topologyFile);
  const namespaceId = context.directory.resourceId('serviceBus');
  const store = new MessageStore(join(context.home.dataDir, 'servicebus.db'));
  const namespace = new ServiceBusNamespace({
    topology,
    store,
    namespaceId,
    fail: (error) => context.log(`[servicebus] internal error: ${(error as Error)?.stack ?? String(error)}`),
  });
  const memory = new IdleMemoryReducer();
  let broker: AmqpBroker | undefined;
  const faults = new BrokerFaults(context.faults, { sockets: () => broker?.openSockets() ?? [], namespace, store, log: context.log });
  let listener: BoundListener;
  let loaded: { messages: number; orphaned: number };
  try {
    loaded = namespace.load(Date.now());
    if (loaded.orphaned) {
      context.log(`[servicebus] ${loaded.orphaned} stored messages belong to entities no longer in ${topologyFile}; they are kept on disk`);
    }
    const started = new AmqpBroker({
      namespace,
      guard: context.guard,
      directory: context.directory,
      maxMessageSizeInBytes: settings.maxMessageSizeInBytes,
      reauthorizationIntervalInMs: settings.reauthorizationIntervalInSeconds * 1000,
      auditLog: context.auditLog,
      log: context.log,
      onActivity: () => memory.touch(),
      faults,
    });
    broker = started;
    listener = await listen(() => started.createServer(context.tls), context.bind);
  } catch (error) {
    memory.stop();
    faults.stop();
    await broker?.stop();
    namespace.stop();
    store.close();
    throw error;
  }
  const fullyQualifiedNamespace = `${context.publicHost}:${listener.port}`;
  const shownFile = relative(repoRoot, topologyFile).startsWith('..') ? topologyFile : relative(repoRoot, topologyFile);
  const subscriptions = topology.topics.reduce((sum, topic) => sum + topic.subscriptions.length, 0);
  const operations = serviceBusOperations(namespace, () => ({
    fullyQualifiedNamespace,
    resourceId: namespaceId,
    topologyFile,
    maxMessageSizeInBytes: settings.maxMessageSizeInBytes,
    connections: broker!.connectionCount,
    queues: topology.queues.length,
    topics: topology.topics.length,
    subscriptions,
  }));
  return {
    port: listener.port,
    env: {
      SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: fullyQualifiedNamespace,
      SERVICEBUS_NAMESPACE_RESOURCE_ID: namespaceId,
    },
    endpoint: `amqps://${fullyQualifiedNamespace}`,
    summary:
      `amqps://${fullyQualifiedNamespace} — ${topology.queues.length} queues, ${topology.topics.length} topics, ${subscriptions} subscriptions from ${shownFile}` +
      (loaded.messages ? `; ${loaded.messages} stored messages` : ''),
    adminRoutes: (api) => addServiceBusAdminRoutes(api, operations),
    serviceBus: operations,
    async stop() {
      memory.stop();
      faults.stop();
      await broker!.stop();
      await listener.close();
      namespace.stop();
      store.close();
    },
  };
}
