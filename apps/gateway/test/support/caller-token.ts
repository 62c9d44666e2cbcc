import { SignJWT } from 'jose';
import type { TestAzure } from '@keyless/local-azure/testing';

/**
 * A caller token of the local tenant for the gateway (`api://keyless-gateway`), signed with the local Entra's current
 * key, with these app roles: what an app registration's client credentials would get, without one.
 * `expires: false` leaves `exp` out (a token the gateway must refuse).
 */
export function callerToken(test: TestAzure, roles: readonly string[], caller: string, options: { expires?: boolean } = {}): Promise<string> {
  const { kid, privateKey } = test.azure.keys.current;
  const tid = test.azure.hostEnv('gateway').AZURE_TENANT_ID!;
  const token = new SignJWT({ tid, oid: caller, roles: [...roles] })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setIssuer(`https://sts.windows.net/${tid}/`)
    .setAudience('api://keyless-gateway')
    .setIssuedAt();
  return (options.expires === false ? token : token.setExpirationTime('1h')).sign(privateKey);
}
