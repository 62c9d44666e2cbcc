import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/local-azure-config.js';
import { InvalidScopeError } from '../rbac/scope.js';
import { Directory } from './directory.js';

describe(Directory.name, () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'directory-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('when the home was written before users and IMDS capabilities existed', () => {
    it('keeps the tenant and its ids and adds the operator, the users and a capability per host', () => {
      const file = join(dir, 'old.json');
      const old = { tenantId: 't', subscriptionId: 's', tenantCreatedAt: 1, identities: {}, systemIdentities: {}, identityHeaders: { gateway: 'h' }, apps: {} };
      writeFileSync(file, JSON.stringify(old));
      const directory = Directory.loadOrCreate(file, parseConfig({}));
      expect(directory.tenantId).toBe('t');
      expect(directory.host('gateway')).toMatchObject({ identityHeader: 'h', imdsCapability: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(directory.users().map((u) => u.userPrincipalName)).toEqual(['operator@keylesslocal.onmicrosoft.com', 'reader@keylesslocal.onmicrosoft.com']);
      // Kept for the next start.
      const again = Directory.loadOrCreate(file, parseConfig({}));
      expect(again.operator.principalId).toBe(directory.operator.principalId);
      expect(again.host('gateway')!.imdsCapability).toBe(directory.host('gateway')!.imdsCapability);
      expect(readFileSync(file, 'utf8')).toContain(directory.operator.principalId);
    });
  });

  describe('hostByImdsCapability', () => {
    it('finds the host whose capability it is, and no host for anything else', () => {
      const directory = Directory.loadOrCreate(join(dir, 'caps.json'), parseConfig({}));
      const vision = directory.host('vision')!;
      expect(directory.hostByImdsCapability(vision.imdsCapability)?.name).toBe('vision');
      expect(directory.hostByImdsCapability(vision.imdsCapability.toUpperCase())).toBeUndefined();
      expect(directory.hostByImdsCapability(vision.imdsCapability.slice(1))).toBeUndefined();
      expect(directory.hostByImdsCapability('')).toBeUndefined();
    });
  });

  describe('findPrincipal', () => {
    it('finds identities by name, client id or object id, and users by name, UPN or object id', () => {
      const directory = Directory.loadOrCreate(join(dir, 'principals.json'), parseConfig({}));
      const shared = directory.userAssignedIdentity('id-keyless')!;
      for (const key of ['id-keyless', shared.clientId, shared.principalId]) expect(directory.findPrincipal(key)?.principalId).toBe(shared.principalId);
      const reader = directory.findUser('reader')!;
      for (const key of ['reader', 'READER@keylesslocal.onmicrosoft.com', reader.principalId]) expect(directory.findPrincipal(key)).toEqual(reader);
      expect(directory.findPrincipal('nobody')).toBeUndefined();
    });
  });

  describe('resolveScope', () => {
    it('takes ARM ids in the subscription and the short forms, and refuses anything else', () => {
      const directory = Directory.loadOrCreate(join(dir, 'scopes.json'), parseConfig({}));
      const subscription = `/subscriptions/${directory.subscriptionId}`;
      expect(directory.resolveScope('subscription')).toBe(subscription);
      expect(directory.resolveScope('resourceGroup')).toBe(directory.resourceGroupId);
      expect(directory.resolveScope('serviceBus/queues/q')).toBe(`${directory.resourceId('serviceBus')}/queues/q`);
      expect(directory.resolveScope(`${subscription}/resourceGroups/x/`)).toBe(`${subscription}/resourceGroups/x`);
      expect(() => directory.resolveScope('/subscriptions/other')).toThrow(InvalidScopeError);
      expect(() => directory.resolveScope('subscription/extra')).toThrow(/neither an ARM id/);
    });
  });
});
