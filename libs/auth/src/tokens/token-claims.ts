/** The claims of an Entra access token that diagnostics and health report. */
export interface TokenClaims {
  /** `oid`: object id of the principal (what role assignments name). */
  objectId?: string;
  /** `appid` (v1) or `azp` (v2): the client id of the application or managed identity. */
  clientId?: string;
  tenantId?: string;
  /** `aud` as issued. */
  audience?: string;
  /** `idtyp`: `app` for managed identities and apps, `user` for people (v2 optional claim). */
  identityType?: string;
  /** `xms_mirid`: ARM id of the managed identity. */
  managedIdentityResourceId?: string;
  /** `upn` / `unique_name` of a signed-in developer. */
  userName?: string;
}

/**
 * Reads the claims of a JWT without verifying it: the token came from our own credential, and the
 * claims are only used to name the principal in logs and error messages. Undefined for a non-JWT.
 */
export function readTokenClaims(token: string): TokenClaims | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof claims !== 'object' || claims === null) return undefined;
  const text = (key: string): string | undefined => (typeof claims[key] === 'string' ? (claims[key] as string) : undefined);
  const result: TokenClaims = {};
  const assign = <K extends keyof TokenClaims>(key: K, value: string | undefined): void => {
    if (value !== undefined) result[key] = value;
  };
  assign('objectId', text('oid'));
  assign('clientId', text('appid') ?? text('azp'));
  assign('tenantId', text('tid'));
  assign('audience', text('aud'));
  assign('identityType', text('idtyp'));
  assign('managedIdentityResourceId', text('xms_mirid'));
  assign('userName', text('upn') ?? text('unique_name'));
  return result;
}
