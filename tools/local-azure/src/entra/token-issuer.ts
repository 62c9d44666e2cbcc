import { SignJWT } from 'jose';
import { randomToken } from '../util/ids.js';
import type { Directory, ManagedIdentity } from './directory.js';
import type { SigningKeys } from './signing-keys.js';

/** An issued access token and its times (epoch seconds). */
export interface IssuedToken {
  accessToken: string;
  issuedAt: number;
  notBefore: number;
  expiresOn: number;
}

/** The v1 issuer Azure puts in managed-identity tokens: `https://sts.windows.net/{tid}/`. */
export function v1Issuer(tenantId: string): string {
  return `https://sts.windows.net/${tenantId}/`;
}

/** The v2 issuer of the tenant, as published by its v2.0 discovery document. */
export function v2Issuer(tenantId: string): string {
  return `https://login.microsoftonline.com/${tenantId}/v2.0`;
}

/**
 * Signs access tokens with the claim set of real managed-identity tokens (v1, resource-based):
 * `aud` is the requested resource exactly as asked, `appid` the identity's client id, `oid` = `sub`
 * its principal id, `xms_mirid` its ARM id; `roles` when the identity holds app roles on the audience.
 */
export class TokenIssuer {
  constructor(
    private readonly directory: Directory,
    private readonly keys: SigningKeys,
    private readonly lifetimeSeconds: () => number,
  ) {}

  async issue(identity: ManagedIdentity, resource: string): Promise<IssuedToken> {
    const now = Math.floor(Date.now() / 1000);
    const issuer = v1Issuer(this.directory.tenantId);
    const app = this.directory.appRegistrationFor(resource);
    const roles = app ? this.directory.appRolesOf(identity, app) : [];
    const { kid, privateKey } = this.keys.current;
    const expiresOn = now + this.lifetimeSeconds();
    const accessToken = await new SignJWT({
      aio: randomToken(48),
      appid: identity.clientId,
      appidacr: '2',
      idp: issuer,
      idtyp: 'app',
      oid: identity.principalId,
      rh: `${randomToken(32)}.`,
      ...(roles.length ? { roles } : {}),
      tid: this.directory.tenantId,
      uti: randomToken(16),
      ver: '1.0',
      xms_mirid: identity.resourceId,
      xms_tcdt: this.directory.tenantCreatedAt,
    })
      .setProtectedHeader({ typ: 'JWT', alg: 'RS256', x5t: kid, kid })
      .setAudience(resource)
      .setIssuer(issuer)
      .setSubject(identity.principalId)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(expiresOn)
      .sign(privateKey);
    return { accessToken, issuedAt: now, notBefore: now, expiresOn };
  }
}
