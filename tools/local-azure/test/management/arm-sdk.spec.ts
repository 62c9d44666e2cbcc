import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ManagedIdentityCredential, UsernamePasswordCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/core-auth';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { publicClients } from '../../src/entra/token-endpoint.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

interface RestErrorLike {
  statusCode?: number;
  code?: string;
  message: string;
}

/** The error a call rejects with (fails the test when it resolves). */
async function refusal(call: Promise<unknown>): Promise<RestErrorLike> {
  try {
    await call;
  } catch (error) {
    return error as RestErrorLike;
  }
  throw new Error('the call succeeded');
}

// The ARM SDK (@azure/arm-authorization, unmodified) against the local ARM, with real credentials: users through
// MSAL's username/password flow at the local token endpoint, the service identity through its host's identity
// endpoint (this test file is the gateway host).
describe('Microsoft.Authorization through @azure/arm-authorization', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let subscription: string;
  let queueScope: string;
  let storefront: { principalId: string };
  const created: string[] = [];

  const userCredential = (name: string): TokenCredential =>
    new UsernamePasswordCredential(
      test.azure.directory.tenantId,
      publicClients.azureCli,
      `${name}@${test.azure.directory.domain}`,
      readFileSync(test.azure.home.homeCredentialFile, 'utf8').trim(),
      { authorityHost: env.AZURE_AUTHORITY_HOST!, disableInstanceDiscovery: true },
    );
  const client = (credential: TokenCredential): AuthorizationManagementClient =>
    new AuthorizationManagementClient(credential, test.azure.directory.subscriptionId, {
      endpoint: env.AZURE_RESOURCE_MANAGER_ENDPOINT!,
      credentialScopes: ['https://management.azure.com/.default'],
      retryOptions: { maxRetries: 0 },
    });
  const senderRoleId = (): string => `${subscription}/providers/Microsoft.Authorization/roleDefinitions/69a216fc-b8fb-44d8-bc22-1f3c2cd27a39`;
  const assignmentCount = (): number => test.azure.roleAssignments.all().length;

  beforeAll(async () => {
    test = await startTestAzure({ config: { users: { reader: { roleAssignments: [{ role: 'Reader', scope: 'subscription' }] } } } });
    env = test.enterHost('gateway');
    subscription = `/subscriptions/${test.azure.directory.subscriptionId}`;
    queueScope = `${test.azure.directory.resourceId('serviceBus')}/queues/vision-requests`;
    storefront = test.azure.directory.userAssignedIdentity('id-storefront')!;
  });
  afterAll(() => test.stop());

  describe('when the operator (Owner of the subscription) calls', () => {
    let operator: AuthorizationManagementClient;
    beforeAll(() => (operator = client(userCredential('operator'))));

    it('finds a role definition by name, with its actions and data actions, as az does', async () => {
      const found = [];
      for await (const role of operator.roleDefinitions.list(subscription, { filter: "roleName eq 'Azure Service Bus Data Owner'" })) found.push(role);
      expect(found).toEqual([
        expect.objectContaining({
          name: '090c5cfd-751d-490a-894a-3ce6f1109419',
          roleName: 'Azure Service Bus Data Owner',
          roleType: 'BuiltInRole',
          permissions: [{ actions: ['Microsoft.ServiceBus/*'], notActions: [], dataActions: ['Microsoft.ServiceBus/*'], notDataActions: [] }],
        }),
      ]);
      expect((await operator.roleDefinitions.getById(`/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635`)).roleName).toBe('Owner');
    });

    it('creates a role assignment at a queue, reads it back, finds it in lists, and deletes it', async () => {
      const name = randomUUID();
      const assignment = await operator.roleAssignments.create(queueScope, name, {
        roleDefinitionId: senderRoleId(),
        principalId: storefront.principalId,
        principalType: 'ServicePrincipal',
        description: 'storefront sends vision requests',
      });
      expect(assignment).toMatchObject({
        id: `${queueScope}/providers/Microsoft.Authorization/roleAssignments/${name}`,
        name,
        type: 'Microsoft.Authorization/roleAssignments',
        scope: queueScope,
        principalId: storefront.principalId,
        principalType: 'ServicePrincipal',
        roleDefinitionId: senderRoleId(),
        description: 'storefront sends vision requests',
        createdBy: test.azure.directory.operator.principalId,
      });
      expect(test.azure.roleAssignments.get(assignment.id!)?.roleDefinitionName).toBe('Azure Service Bus Data Sender');

      expect((await operator.roleAssignments.get(queueScope, name)).principalId).toBe(storefront.principalId);
      expect((await operator.roleAssignments.getById(assignment.id!)).name).toBe(name);
      const atScope = [];
      for await (const a of operator.roleAssignments.listForScope(queueScope, { filter: 'atScope()' })) atScope.push(a.id);
      expect(atScope).toContain(assignment.id);
      // atScope() includes what applies from above (the operator's Owner on the subscription), not what lies below.
      expect(atScope.some((id) => id!.startsWith(`${subscription}/providers/`))).toBe(true);
      const ofPrincipal = [];
      for await (const a of operator.roleAssignments.listForSubscription({ filter: `principalId eq '${storefront.principalId}'` })) ofPrincipal.push(a.id);
      expect(ofPrincipal).toEqual([assignment.id]);

      expect((await operator.roleAssignments.delete(queueScope, name))?.id).toBe(assignment.id);
      expect(test.azure.roleAssignments.get(assignment.id!)).toBeUndefined();
      expect(await refusal(operator.roleAssignments.get(queueScope, name))).toMatchObject({ statusCode: 404, code: 'RoleAssignmentNotFound' });
    });

    it('answers 409 RoleAssignmentExists for the same role, principal and scope under another name', async () => {
      const first = randomUUID();
      created.push(first);
      await operator.roleAssignments.create(queueScope, first, { roleDefinitionId: senderRoleId(), principalId: storefront.principalId });
      const count = assignmentCount();
      expect(await refusal(operator.roleAssignments.create(queueScope, randomUUID(), { roleDefinitionId: senderRoleId(), principalId: storefront.principalId }))).toMatchObject({
        statusCode: 409,
        code: 'RoleAssignmentExists',
        message: expect.stringContaining('The role assignment already exists.'),
      });
      expect(assignmentCount()).toBe(count);
    });

    it('answers 400 PrincipalNotFound for an object id the directory does not have, and creates nothing', async () => {
      const count = assignmentCount();
      const unknown = randomUUID();
      expect(await refusal(operator.roleAssignments.create(queueScope, randomUUID(), { roleDefinitionId: senderRoleId(), principalId: unknown }))).toMatchObject({
        statusCode: 400,
        code: 'PrincipalNotFound',
        message: expect.stringContaining(`Principal ${unknown} does not exist in the directory ${test.azure.directory.tenantId}`),
      });
      expect(assignmentCount()).toBe(count);
    });
  });

  describe('when a user without write rights (Reader) calls', () => {
    it('lists assignments but gets 403 AuthorizationFailed for a create, naming the principal, the action and the scope', async () => {
      const reader = client(userCredential('reader'));
      const listed = [];
      for await (const a of reader.roleAssignments.listForSubscription()) listed.push(a);
      expect(listed.length).toBeGreaterThan(0);

      const count = assignmentCount();
      const name = randomUUID();
      const error = await refusal(reader.roleAssignments.create(queueScope, name, { roleDefinitionId: senderRoleId(), principalId: storefront.principalId }));
      const user = test.azure.directory.findUser('reader')!;
      expect(error).toMatchObject({ statusCode: 403, code: 'AuthorizationFailed' });
      expect(error.message).toBe(
        `The client '${user.userPrincipalName}' with object id '${user.principalId}' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' ` +
          `over scope '${queueScope}/providers/Microsoft.Authorization/roleAssignments/${name}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      );
      expect(assignmentCount()).toBe(count);
      expect(test.azure.auditLog.authorizations({ principal: user.principalId, limit: 1 })[0]).toMatchObject({
        resource: 'management',
        action: 'Microsoft.Authorization/roleAssignments/write',
        decision: 'denied',
        identity: user.userPrincipalName,
      });
    });
  });

  describe('when the service identity id-keyless calls with its ManagedIdentityCredential token', () => {
    it('gets 403 AuthorizationFailed for a create and for a delete, and nothing changes', async () => {
      const service = client(new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }));
      const shared = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!;
      const count = assignmentCount();
      const grant = await refusal(
        service.roleAssignments.create(queueScope, randomUUID(), { roleDefinitionId: `${subscription}/providers/Microsoft.Authorization/roleDefinitions/090c5cfd-751d-490a-894a-3ce6f1109419`, principalId: shared.principalId }),
      );
      expect(grant).toMatchObject({ statusCode: 403, code: 'AuthorizationFailed' });
      expect(grant.message).toContain(`The client '${shared.clientId}' with object id '${shared.principalId}' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write'`);
      const revoke = await refusal(service.roleAssignments.delete(queueScope, created[0]!));
      expect(revoke).toMatchObject({ statusCode: 403, code: 'AuthorizationFailed', message: expect.stringContaining("'Microsoft.Authorization/roleAssignments/delete'") });
      expect(assignmentCount()).toBe(count);
      expect(test.azure.auditLog.authorizations({ principal: shared.principalId, limit: 2 }).map((r) => [r.identity, r.action, r.decision])).toEqual([
        ['id-keyless', 'Microsoft.Authorization/roleAssignments/delete', 'denied'],
        ['id-keyless', 'Microsoft.Authorization/roleAssignments/write', 'denied'],
      ]);
    });
  });
});
