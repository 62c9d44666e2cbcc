import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import rhea from 'rhea';
import { homeFormat } from '../../src/home.js';
import { LocalAzureProcess } from '../../src/testing/index.js';
import { firstStoreTables } from '../servicebus/first-store-tables.js';
import { testTopologyFile } from '../servicebus/support.js';

const config = { resources: { serviceBus: { topologyFile: testTopologyFile } } };

/**
 * Writes what the first releases (before the Service Bus store recorded its format, and before the home had a
 * format marker) left in a home after a clean stop: the tenant's directory, a role assignment made with the CLI in
 * the table's first columns, and a store in the first tables — a queued and a dead-lettered message of the `plain`
 * queue, each payload the AMQP encoding with the id the broker assigned. Signing keys, the CA and the rest are made
 * by the start, as they were then.
 */
function writeFirstReleaseHome(home: string): { subscriptionId: string; receiverPrincipalId: string } {
  const data = join(home, 'data');
  mkdirSync(data, { recursive: true, mode: 0o700 });
  const ids = () => ({ clientId: randomUUID(), principalId: randomUUID() });
  const directory = {
    tenantId: randomUUID(),
    subscriptionId: randomUUID(),
    tenantCreatedAt: Math.floor(Date.now() / 1000) - 86_400,
    identities: { 'id-keyless': ids(), 'id-storefront': ids() },
    systemIdentities: {},
    identityHeaders: Object.fromEntries(['gateway', 'recommendation', 'vision', 'storefront'].map((host) => [host, randomBytes(24).toString('base64url')])),
    apps: { 'keyless-gateway': { appId: randomUUID(), servicePrincipalId: randomUUID() } },
  };
  writeFileSync(join(data, 'directory.json'), JSON.stringify(directory, null, 2), { mode: 0o600 });

  const receiverPrincipalId = directory.identities['id-storefront'].principalId;
  const queueScope = `/subscriptions/${directory.subscriptionId}/resourceGroups/rg-keyless-local/providers/Microsoft.ServiceBus/namespaces/sb-keyless-local/queues/plain`;
  // Those releases kept a role's bare definition id (here Azure Service Bus Data Receiver's).
  const dataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0';
  const db = new DatabaseSync(join(data, 'local-azure.db'));
  db.exec(`CREATE TABLE role_assignments (
    id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, role_definition_id TEXT NOT NULL,
    scope TEXT NOT NULL, source TEXT NOT NULL, purpose TEXT, created_on TEXT NOT NULL)`);
  db.prepare('INSERT INTO role_assignments VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    `${queueScope}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`,
    receiverPrincipalId,
    dataReceiver,
    queueScope,
    'cli',
    null,
    new Date().toISOString(),
  );
  db.close();

  const store = new DatabaseSync(join(data, 'servicebus.db'));
  store.exec(`
    ${firstStoreTables}
    INSERT INTO sequences VALUES ('queue:plain', 2);
  `);
  const insert = store.prepare('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const encoded = (id: string, body: string) => rhea.message.encode({ message_id: id, body });
  const enqueuedAt = Date.now() - 60_000;
  insert.run('queue:plain', 1, encoded('queued-before-upgrade', 'still queued'), enqueuedAt, null, null, 0, 0, null, null);
  insert.run('queue:plain#dlq', 2, encoded('dead-lettered-before-upgrade', 'still dead-lettered'), enqueuedAt, null, null, 0, 1, null, 'queue:plain');
  store.close();
  return { subscriptionId: directory.subscriptionId, receiverPrincipalId };
}

describe('a local Azure home written by another version', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'local-azure-home-upgrade-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  describe('when an earlier version wrote it', () => {
    const home = join(scratch, 'first-release');
    const written = writeFirstReleaseHome(home);
    const azure = new LocalAzureProcess({ home, config, deleteHomeOnStop: false });
    let client: ServiceBusClient | undefined;

    beforeAll(() => azure.start(), 30_000);
    afterAll(async () => {
      await client?.close();
      await azure.stop();
    }, 30_000);

    it('keeps its tenant, its role assignments and its queued and dead-lettered messages, and marks the home with its format', async () => {
      const listed = await azure.run(['role', 'assignment', 'list', '--assignee', written.receiverPrincipalId, '-o', 'json']);
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toEqual([
        expect.objectContaining({ roleDefinitionName: 'Azure Service Bus Data Receiver', scope: expect.stringMatching(new RegExp(`^/subscriptions/${written.subscriptionId}/.*/queues/plain$`)), source: 'cli' }),
      ]);

      const env = azure.enterHost('storefront');
      client = new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }), {
        retryOptions: { maxRetries: 0, timeoutInMs: 5000 },
      });
      // The storefront's identity receives from `plain` by the assignment the earlier version kept, and by nothing else.
      const queued = await client.createReceiver('plain', { receiveMode: 'receiveAndDelete' }).receiveMessages(5, { maxWaitTimeInMs: 3000 });
      const deadLettered = await client.createReceiver('plain', { subQueueType: 'deadLetter', receiveMode: 'receiveAndDelete' }).receiveMessages(5, { maxWaitTimeInMs: 3000 });
      expect(queued.map((m) => [m.messageId, m.body, m.sequenceNumber?.toNumber()])).toEqual([['queued-before-upgrade', 'still queued', 1]]);
      expect(deadLettered.map((m) => [m.messageId, m.body])).toEqual([['dead-lettered-before-upgrade', 'still dead-lettered']]);

      expect(JSON.parse(readFileSync(join(home, 'home-format.json'), 'utf8'))).toEqual({ format: homeFormat });
    }, 30_000);
  });

  describe('when a newer version wrote it', () => {
    it('refuses to start before touching it, naming the home and what to do instead', async () => {
      const home = join(scratch, 'newer');
      mkdirSync(join(home, 'data'), { recursive: true });
      writeFileSync(join(home, 'home-format.json'), JSON.stringify({ format: homeFormat + 1 }));
      writeFileSync(join(home, 'data', 'servicebus.db'), 'a store in a format this version does not know');
      const azure = new LocalAzureProcess({ home, config, deleteHomeOnStop: false });
      await expect(azure.start()).rejects.toThrow(/exited \(2\) before it was ready/);
      const refused = await azure.run(['start', '--config', join(home, 'test-config.json')]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toBe(
        `local-azure: ${home} was written by a newer version of the local Azure (home format ${homeFormat + 1}; this version reads formats up to ${homeFormat}), and is left as it was. ` +
          `Start the newer version on it (git pull, then npm ci and LOCAL_AZURE_HOME=${home} npm start), or start this version on a home of its own: set LOCAL_AZURE_HOME to another folder, or move this one aside (mv ${home} ${home}.newer) to start over with a new tenant.\n`,
      );
      expect(readdirSync(home).sort()).toEqual(['data', 'home-format.json', 'test-config.json']);
      expect(readdirSync(join(home, 'data'))).toEqual(['servicebus.db']);
      expect(JSON.parse(readFileSync(join(home, 'home-format.json'), 'utf8'))).toEqual({ format: homeFormat + 1 });
    }, 30_000);
  });
});
