import { createHash } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { randomToken } from '../util/ids.js';
import type { Directory, DirectoryUser, ManagedIdentity } from './directory.js';
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
    private readonly userLifetimeSeconds: () => number = () => 3600,
  ) {}

  async issue(identity: ManagedIdentity, resource: string): Promise<IssuedToken> {
    const now = Math.floor(Date.now() / 1000);
    const issuer = v1Issuer(this.directory.tenantId);
    const app = this.directory.appRegistrationFor(resource);
    const roles = app ? this.directory.appRolesOf(identity, app) : [];
    const expiresOn = now + this.lifetimeSeconds();
    const accessToken = await this.sign({
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
    }, { audience: resource, issuer, subject: identity.principalId, issuedAt: now, expiresOn });
    return { accessToken, issuedAt: now, notBefore: now, expiresOn };
  }

  /**
   * A user's access token (v1, delegated): `aud` the requested resource, `appid` the public client that signed
   * the user in, `scp` = `user_impersonation`, `oid` the user's object id, `upn`/`unique_name` the UPN, `idtyp`
   * `user`; `sub` is pairwise per client, as in Entra. Lifetime: `userTokenLifetimeSeconds` (default 1 h).
   */
  async issueForUser(user: DirectoryUser, resource: string, clientId: string): Promise<IssuedToken> {
    const now = Math.floor(Date.now() / 1000);
    const issuer = v1Issuer(this.directory.tenantId);
    const expiresOn = now + this.userLifetimeSeconds();
    const accessToken = await this.sign(
      {
        acr: '1',
        aio: randomToken(48),
        amr: ['pwd'],
        appid: clientId,
        appidacr: '0',
        idp: issuer,
        idtyp: 'user',
        name: user.displayName,
        oid: user.principalId,
        rh: `${randomToken(32)}.`,
        scp: 'user_impersonation',
        tid: this.directory.tenantId,
        unique_name: user.userPrincipalName,
        upn: user.userPrincipalName,
        uti: randomToken(16),
        ver: '1.0',
      },
      { audience: resource, issuer, subject: pairwiseSubject(user.principalId, clientId), issuedAt: now, expiresOn },
    );
    return { accessToken, issuedAt: now, notBefore: now, expiresOn };
  }

  /** An OpenID Connect ID token (v2) for `user`, addressed to the public client `clientId`. */
  async idToken(user: DirectoryUser, clientId: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return this.sign(
      {
        name: user.displayName,
        oid: user.principalId,
        preferred_username: user.userPrincipalName,
        rh: `${randomToken(32)}.`,
        tid: this.directory.tenantId,
        uti: randomToken(16),
        ver: '2.0',
      },
      {
        audience: clientId,
        issuer: v2Issuer(this.directory.tenantId),
        subject: pairwiseSubject(user.principalId, clientId),
        issuedAt: now,
        expiresOn: now + this.userLifetimeSeconds(),
      },
    );
  }

  private sign(claims: JWTPayload, registered: { audience: string; issuer: string; subject: string; issuedAt: number; expiresOn: number }): Promise<string> {
    const { kid, privateKey } = this.keys.current;
    return new SignJWT(claims)
      .setProtectedHeader({ typ: 'JWT', alg: 'RS256', x5t: kid, kid })
      .setAudience(registered.audience)
      .setIssuer(registered.issuer)
      .setSubject(registered.subject)
      .setIssuedAt(registered.issuedAt)
      .setNotBefore(registered.issuedAt)
      .setExpirationTime(registered.expiresOn)
      .sign(privateKey);
  }
}

/** Entra's `sub` for users: stable per (user, application) and different across applications. */
function pairwiseSubject(objectId: string, clientId: string): string {
  return createHash('sha256').update(`${objectId}|${clientId}`).digest('base64url').slice(0, 43);
}
