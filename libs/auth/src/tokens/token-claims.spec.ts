import { readTokenClaims } from './token-claims.js';

const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe(readTokenClaims.name, () => {
  describe('when given a managed-identity (v1) token', () => {
    it('reads object id, client id, tenant, audience and identity resource id', () => {
      const token = `${encode({ alg: 'RS256' })}.${encode({
        aud: 'https://servicebus.azure.net/',
        appid: 'client',
        oid: 'object',
        tid: 'tenant',
        idtyp: 'app',
        xms_mirid: '/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id',
      })}.signature`;
      expect(readTokenClaims(token)).toEqual({
        objectId: 'object',
        clientId: 'client',
        tenantId: 'tenant',
        audience: 'https://servicebus.azure.net/',
        identityType: 'app',
        managedIdentityResourceId: '/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id',
      });
    });
  });

  describe('when given a v2 user token', () => {
    it('takes the client id from azp and the user name from upn', () => {
      const token = `${encode({})}.${encode({ azp: 'cli', oid: 'user', upn: 'dev@contoso.example' })}.x`;
      expect(readTokenClaims(token)).toEqual({ clientId: 'cli', objectId: 'user', userName: 'dev@contoso.example' });
    });
  });

  describe('when given something that is not a JWT', () => {
    it.each(['opaque', 'a.%%%.c', `x.${Buffer.from('[1]').toString('base64url')}.y`])('returns undefined or no claims for %s', (token) => {
      const claims = readTokenClaims(token);
      expect(claims === undefined || Object.keys(claims).length === 0).toBe(true);
    });
  });
});
