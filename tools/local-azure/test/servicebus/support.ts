import { ManagedIdentityCredential, type AccessToken, type TokenCredential } from '@azure/identity';
import { ServiceBusClient, type ServiceBusClientOptions, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import type { LocalAzureConfigInput } from '../../src/config/local-azure-config.js';
import type { TokenIssuer } from '../../src/entra/token-issuer.js';
import type { MessageRow } from '../../src/servicebus/admin-routes.js';
import { findRole } from '../../src/rbac/built-in-roles.js';
import { serviceBusDataPlane } from '../../src/servicebus/service-bus-data-plane.js';
import { LocalAzureProcess, startTestAzure, trustCa, type TestAzure } from '../../src/testing/index.js';

/** The entities the Service Bus tests use (each test file uses its own entities where they could interfere). */
export const testTopologyFile = fileURLToPath(new URL('./fixtures/test-topology.json', import.meta.url));

/** Queues for the tests of authorization on open links (one per case, so cases do not interfere). */
export const reauthorizationTopologyFile = fileURLToPath(new URL('./fixtures/reauthorization-topology.json', import.meta.url));

/** Short SDK retries, so a missing reply shows up in seconds instead of behind 60-second defaults. */
export const shortRetries: ServiceBusClientOptions = { retryOptions: { maxRetries: 0, retryDelayInMs: 100, timeoutInMs: 5000 } };

/** A local Azure with the Service Bus data plane, entered as one host, and a real SDK client factory. */
export interface TestServiceBus {
  test: TestAzure;
  env: Record<string, string>;
  credential: ManagedIdentityCredential;
  /** Principal (object) id of the host's identity. */
  principalId: string;
  /** A new client (one AMQP connection) with short retries; closed by `stop`. */
  client(options?: ServiceBusClientOptions): ServiceBusClient;
  /** Gives the host's identity Azure Service Bus Data Owner on the namespace. */
  grantDataOwner(): void;
  stop(): Promise<void>;
}

/** Options of {@link startServiceBus}. */
export interface StartServiceBusOptions {
  /** Host whose identity the test uses. Default: gateway. */
  host?: string;
  /** Topology file; `null` for the local Azure's default (the project's infra/servicebus-topology.json). Default: the test topology. */
  topologyFile?: string | null;
  config?: LocalAzureConfigInput;
  /** Existing home (restart tests). */
  home?: string;
}

export async function startServiceBus(options: StartServiceBusOptions = {}): Promise<TestServiceBus> {
  const config = options.config ?? {};
  const test = await startTestAzure({
    dataPlanes: [serviceBusDataPlane],
    ...(options.home ? { home: options.home } : {}),
    config: {
      ...config,
      resources: {
        ...config.resources,
        serviceBus: {
          ...(options.topologyFile === null ? {} : { topologyFile: options.topologyFile ?? testTopologyFile }),
          ...config.resources?.serviceBus,
        },
      },
    },
  });
  const env = test.enterHost(options.host ?? 'gateway');
  const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
  const principalId = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!.principalId;
  const clients: ServiceBusClient[] = [];
  return {
    test,
    env,
    credential,
    principalId,
    client(clientOptions = shortRetries) {
      const client = new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, clientOptions);
      clients.push(client);
      return client;
    },
    grantDataOwner() {
      test.azure.roleAssignments.create({
        principalId,
        role: findRole('Azure Service Bus Data Owner')!,
        scope: test.azure.directory.resourceId('serviceBus'),
        source: 'cli',
      });
    },
    async stop() {
      await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
      await test.stop();
    },
  };
}

/** The local Azure CLI in a child process, for tests that kill and restart it (see {@link startServiceBusProcess}). */
export interface ServiceBusProcess {
  child: LocalAzureProcess;
  /** The gateway host's variables (this process acts as that host). */
  env: Record<string, string>;
  credential: ManagedIdentityCredential;
  /** Stops the process, removes the exported variables and deletes the home. */
  stop(): Promise<void>;
}

/**
 * Starts the local Azure CLI (from source) in a child process with the test topology, in a new home; gives
 * the host's identity Azure Service Bus Data Owner on the namespace and makes this process the gateway
 * host. No ports are configured: a restart binds the ports the first start picked (kept in the home).
 */
export async function startServiceBusProcess(name: string): Promise<ServiceBusProcess> {
  const home = mkdtempSync(join(tmpdir(), `local-azure-${name}-`));
  const child = new LocalAzureProcess({ home, config: { resources: { serviceBus: { topologyFile: testTopologyFile } } } });
  try {
    await child.start();
    const granted = await child.run(['role', 'assignment', 'create', '--assignee', 'id-keyless', '--role', 'Azure Service Bus Data Owner', '--scope', 'serviceBus']);
    if (granted.code !== 0) throw new Error(`granting Data Owner failed: ${granted.stderr}`);
  } catch (error) {
    // The caller never gets a handle to stop it: a child left running kept the test worker from exiting.
    await child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  const env = child.hostEnv('gateway');
  Object.assign(process.env, env);
  trustCa(readFileSync(env.NODE_EXTRA_CA_CERTS!, 'utf8'));
  return {
    child,
    env,
    credential: new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }),
    async stop() {
      await child.kill('SIGTERM');
      for (const key of Object.keys(env)) delete process.env[key];
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Polls `probe` until it returns a value other than `undefined`, or fails after `timeoutInMs`. */
export async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutInMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutInMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error & { code?: string; retryable?: boolean }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected the operation to fail, but it succeeded');
}

/** Receives until `count` messages arrived (or fails after `timeoutInMs`). */
export async function receiveExactly(
  receiver: { receiveMessages(n: number, options: { maxWaitTimeInMs: number }): Promise<ServiceBusReceivedMessage[]> },
  count: number,
  timeoutInMs = 3000,
): Promise<ServiceBusReceivedMessage[]> {
  const received: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + timeoutInMs;
  while (received.length < count && Date.now() < deadline) {
    received.push(...(await receiver.receiveMessages(count - received.length, { maxWaitTimeInMs: Math.max(50, deadline - Date.now()) })));
  }
  if (received.length < count) throw new Error(`received ${received.length} of ${count} messages within ${timeoutInMs} ms`);
  return received;
}

/** What the operator sees of an entity's messages (admin API peek), e.g. to wait for the broker to act. */
export function adminPeek(bus: TestServiceBus, entity: string, options: { deadLetter?: boolean } = {}): Promise<MessageRow[]> {
  const path = entity.split('/').map(encodeURIComponent).join('/');
  return bus.test.admin().call<MessageRow[]>('GET', `/servicebus/entities/${path}/messages?limit=1000${options.deadLetter ? '&dlq=true' : ''}`);
}

/**
 * A credential that hands out real tokens of a chosen identity (switchable) and claims they expire
 * `renewAfterInMs` after the SDK's two-minute renewal margin, so the SDK puts a renewal on $cbs that soon.
 */
export class SwitchableCredential implements TokenCredential {
  constructor(
    private readonly issuer: TokenIssuer,
    private readonly bus: TestServiceBus,
    public identity: string,
    public renewAfterInMs = 3_600_000,
  ) {}

  async getToken(): Promise<AccessToken> {
    const identity = this.bus.test.azure.directory.userAssignedIdentity(this.identity)!;
    const { accessToken } = await this.issuer.issue(identity, 'https://servicebus.azure.net/');
    return { token: accessToken, expiresOnTimestamp: Date.now() + 120_000 + this.renewAfterInMs };
  }
}

/** Deletes the role assignments at `scope` with a separate database connection, as another process would; returns how many. */
export function deleteBehindTheStoresBack(bus: TestServiceBus, scope: string): number {
  const db = new DatabaseSync(join(bus.test.home, 'data', 'local-azure.db'));
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    return Number(db.prepare('DELETE FROM role_assignments WHERE scope = ?').run(scope).changes);
  } finally {
    db.close();
  }
}
