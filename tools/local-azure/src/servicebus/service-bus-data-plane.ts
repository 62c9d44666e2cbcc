import { isAbsolute, join, relative, resolve } from 'node:path';
import { repoRoot } from '../config/local-azure-config.js';
import type { DataPlane, DataPlaneContext, RunningDataPlane } from '../data-plane.js';
import { listen, type BoundListener } from '../net/listen.js';
import { addServiceBusAdminRoutes, serviceBusOperations } from './admin-routes.js';
import { AmqpBroker } from './broker/amqp-broker.js';
import { BrokerFaults } from './broker/broker-faults.js';
import { IdleMemoryReducer } from './idle-memory-reducer.js';
import { AtomManagementApi, atomClientErrorShape } from './atom/atom-management-api.js';
import { NamespaceEndpoint } from './endpoint/namespace-endpoint.js';
import { MessageStore } from './store/message-store.js';
import { ServiceBusNamespace, type LoadSummary } from './entities/service-bus-namespace.js';
import { loadTopology } from './entities/topology.js';

/**
 * The local Azure Service Bus: an AMQP 1.0 broker over TLS that the unmodified `@azure/service-bus`
 * talks to with Entra ID tokens, and the management API (ATOM over HTTPS) on the same host and port;
 * entities from the topology file and the management API, messages in SQLite.
 *
 * Host env files gain `SERVICEBUS_FULLY_QUALIFIED_NAMESPACE` (`<host>:<port>`, what
 * `new ServiceBusClient(namespace, credential)` and `new ServiceBusAdministrationClient(namespace,
 * credential)` take) and `SERVICEBUS_NAMESPACE_RESOURCE_ID` (the namespace's ARM id, the scope of its
 * role assignments).
 */
export const serviceBusDataPlane: DataPlane = {
  resource: 'serviceBus',
  start: startServiceBus,
};

async function startServiceBus(context: DataPlaneContext): Promise<RunningDataPlane> {
  const settings = context.config.resources.serviceBus;
  const topologyFile = isAbsolute(settings.topologyFile) ? settings.topologyFile : resolve(repoRoot, settings.topologyFile);
  const topology = loadTopology(topologyFile);
  const shownFile = relative(repoRoot, topologyFile).startsWith('..') ? topologyFile : relative(repoRoot, topologyFile);
  for (const warning of topology.warnings) context.log(`[servicebus] ${shownFile}: ${warning}`);
  const namespaceId = context.directory.resourceId('serviceBus');
  const store = new MessageStore(join(context.home.dataDir, 'servicebus.db'));
  const namespace = new ServiceBusNamespace({
    topology,
    store,
    namespaceId,
    home: context.home,
    fail: (error) => context.log(`[servicebus] internal error: ${(error as Error)?.stack ?? String(error)}`),
  });
  const memory = new IdleMemoryReducer();
  let broker: AmqpBroker | undefined;
  const faults = new BrokerFaults(context.faults, { sockets: () => broker?.openSockets() ?? [], namespace, store, log: context.log });
  let endpoint: NamespaceEndpoint | undefined;
  let listener: BoundListener;
  let loaded: LoadSummary;
  try {
    loaded = namespace.load(Date.now());
    for (const note of loaded.storeNotes) context.log(`[servicebus] ${note}`);
    if (loaded.orphaned) {
      context.log(`[servicebus] ${loaded.orphaned} stored messages belong to entities that no longer exist; they are kept on disk`);
    }
    for (const problem of loaded.unreadable) context.log(`[servicebus] an entity created at run time could not be restored (kept in the store): ${problem}`);
    for (const path of loaded.superseded) context.log(`[servicebus] ${path} was created at run time and is now in ${shownFile}: the file's definition applies`);
    const started = new AmqpBroker({
      namespace,
      guard: context.guard,
      directory: context.directory,
      maxMessageSizeInBytes: settings.maxMessageSizeInBytes,
      reauthorizationIntervalInMs: settings.reauthorizationIntervalInSeconds * 1000,
      linklessTimeouts: settings.linklessConnectionTimeouts,
      namespaceName: settings.name,
      maxConnections: settings.maxConnections,
      auditLog: context.auditLog,
      log: context.log,
      onActivity: () => memory.touch(),
      faults,
    });
    broker = started;
    const api = new AtomManagementApi({ namespace, namespaceName: settings.name, namespaceId, guard: context.guard, directory: context.directory, log: context.log });
    const routed = new NamespaceEndpoint({
      amqp: (socket) => started.accept(socket),
      http: api.handle,
      httpClientErrors: atomClientErrorShape,
      refusals: { listener: 'serviceBus', auditLog: context.auditLog, log: context.log },
      limits: context.config.network.limits,
    });
    endpoint = routed;
    listener = await listen(() => routed.createServer(context.tls), context.bind);
  } catch (error) {
    memory.stop();
    faults.stop();
    endpoint?.stop();
    await broker?.stop();
    namespace.stop();
    store.close();
    throw error;
  }
  const fullyQualifiedNamespace = `${context.publicHost}:${listener.port}`;
  const counts = (): { queues: number; topics: number; subscriptions: number } => ({
    queues: namespace.queues.size,
    topics: namespace.topics.size,
    subscriptions: [...namespace.topics.values()].reduce((sum, topic) => sum + topic.subscriptions.length, 0),
  });
  const { queues, topics, subscriptions } = counts();
  const operations = serviceBusOperations(namespace, () => ({
    fullyQualifiedNamespace,
    resourceId: namespaceId,
    topologyFile,
    maxMessageSizeInBytes: settings.maxMessageSizeInBytes,
    connections: broker!.connectionCount,
    ...counts(),
  }), context.home);
  return {
    port: listener.port,
    env: {
      SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: fullyQualifiedNamespace,
      SERVICEBUS_NAMESPACE_RESOURCE_ID: namespaceId,
    },
    endpoint: `amqps://${fullyQualifiedNamespace}`,
    summary:
      `amqps:// and https://${fullyQualifiedNamespace} — ${counted(queues, 'queue')}, ${counted(topics, 'topic')}, ${counted(subscriptions, 'subscription')} from ${shownFile}` +
      (loaded.runtimeEntities ? ` and ${loaded.runtimeEntities} ${loaded.runtimeEntities === 1 ? 'entity' : 'entities'} created at run time` : '') +
      (loaded.messages ? `; ${counted(loaded.messages, 'stored message')}` : ''),
    adminRoutes: (api) => addServiceBusAdminRoutes(api, operations),
    serviceBus: operations,
    async stop() {
      memory.stop();
      faults.stop();
      // No new connection first: a client that reconnects at once (the SDK does, on the broker's forced close)
      // would otherwise be accepted after the broker closed its connections and hold the listener's close for good.
      const closed = listener.close();
      endpoint!.stop();
      await broker!.stop();
      await closed;
      namespace.stop();
      store.close();
    },
  };
}

/** `count` and the noun, in the plural unless there is one (`1 topic`, `4 queues`). */
function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
