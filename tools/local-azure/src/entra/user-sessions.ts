import type { DatabaseSync } from 'node:sqlite';
import { randomToken } from '../util/ids.js';
import { secretDigest } from '../util/secret-compare.js';

/** A user's session at the token endpoint: what a refresh token stands for. */
export interface UserSession {
  /** Object id of the signed-in user. */
  userId: string;
  /** The public client the user signed in with (`client_id`); the refresh token works only for it. */
  clientId: string;
  createdOn: string;
  lastUsedOn: string;
}

/** Why an authorization code was not accepted. */
export type CodeRefusal = 'unknown' | 'expired' | 'redeemed' | 'wrong-client' | 'wrong-redirect';

const defaults = {
  /** A refresh token unused this long is dead (Entra: 90 days of inactivity). */
  refreshTokenInactivityInMs: 90 * 24 * 3600_000,
  /** An authorization code (a portal sign-in link) is valid this long, and once. */
  authorizationCodeLifetimeInMs: 5 * 60_000,
  /** Codes kept at most (issued, not yet redeemed or expired). */
  maxPendingCodes: 1000,
};

interface PendingCode {
  userId: string;
  clientId: string;
  redirectUri: string;
  expiresAt: number;
  redeemed: boolean;
}

/**
 * Sessions of the tenant's users, the way Entra keeps them behind its token endpoint:
 * - a sign-in starts a session and returns a **refresh token** (opaque, random; stored only as its SHA-256
 *   digest, in SQLite so it survives restarts), which buys access tokens for any resource until it has been
 *   unused for 90 days or the session is revoked;
 * - a signed-in user can get a one-time **authorization code** (5 minutes, one redemption) that another client
 *   — a browser opening the portal's sign-in link — exchanges at the token endpoint for its own session.
 *
 * A refresh token is looked up by its digest; the digest of an unknown token finds nothing, so no comparison
 * of the secret itself ever happens.
 */
export class UserSessions {
  private readonly codes = new Map<string, PendingCode>();

  constructor(private readonly db: DatabaseSync) {
    db.exec(`CREATE TABLE IF NOT EXISTS user_sessions (
      token_digest TEXT PRIMARY KEY, user_id TEXT NOT NULL, client_id TEXT NOT NULL,
      created_on TEXT NOT NULL, last_used_on TEXT NOT NULL, expires_at INTEGER NOT NULL)`);
    db.prepare('DELETE FROM user_sessions WHERE expires_at < ?').run(Date.now());
  }

  /** Starts a session for `userId` signed in with `clientId`; returns its refresh token. */
  start(userId: string, clientId: string): string {
    const token = randomToken(48);
    const now = new Date();
    this.db
      .prepare('INSERT INTO user_sessions VALUES (?, ?, ?, ?, ?, ?)')
      .run(secretDigest(token), userId, clientId, now.toISOString(), now.toISOString(), now.getTime() + defaults.refreshTokenInactivityInMs);
    return token;
  }

  /**
   * The session `refreshToken` belongs to, if it is alive and was issued to `clientId`; using it slides its
   * expiry. Undefined for an unknown, expired or revoked token, or one of another client.
   */
  redeemRefreshToken(refreshToken: string, clientId: string): UserSession | undefined {
    const digest = secretDigest(refreshToken);
    const row = this.db.prepare('SELECT * FROM user_sessions WHERE token_digest = ?').get(digest) as SessionRow | undefined;
    if (!row || row.expires_at < Date.now() || row.client_id !== clientId) return undefined;
    const now = new Date();
    this.db.prepare('UPDATE user_sessions SET last_used_on = ?, expires_at = ? WHERE token_digest = ?').run(
      now.toISOString(),
      now.getTime() + defaults.refreshTokenInactivityInMs,
      digest,
    );
    return { userId: row.user_id, clientId: row.client_id, createdOn: row.created_on, lastUsedOn: now.toISOString() };
  }

  /** Ends the session of `refreshToken` (sign-out). Returns whether there was one. */
  revoke(refreshToken: string): boolean {
    return Number(this.db.prepare('DELETE FROM user_sessions WHERE token_digest = ?').run(secretDigest(refreshToken)).changes) > 0;
  }

  /** Ends every session of a user (e.g. the user was removed). Returns how many. */
  revokeUser(userId: string): number {
    return Number(this.db.prepare('DELETE FROM user_sessions WHERE user_id = ?').run(userId).changes);
  }

  /**
   * A one-time authorization code for a signed-in user, for `clientId` at `redirectUri` (the portal's sign-in
   * link carries one). **Default** lifetime: 5 minutes.
   */
  issueAuthorizationCode(grant: { userId: string; clientId: string; redirectUri: string; lifetimeInMs?: number }): string {
    this.pruneCodes();
    if (this.codes.size >= defaults.maxPendingCodes) throw new Error(`more than ${defaults.maxPendingCodes} sign-in codes are pending; try again in a few minutes`);
    const code = randomToken(32);
    this.codes.set(secretDigest(code), {
      userId: grant.userId,
      clientId: grant.clientId,
      redirectUri: grant.redirectUri,
      expiresAt: Date.now() + (grant.lifetimeInMs ?? defaults.authorizationCodeLifetimeInMs),
      redeemed: false,
    });
    return code;
  }

  /** Redeems a code once: the user it was issued for, or why it is refused. */
  redeemAuthorizationCode(code: string, clientId: string, redirectUri: string): { userId: string } | { refused: CodeRefusal } {
    const pending = this.codes.get(secretDigest(code));
    if (!pending) return { refused: 'unknown' };
    if (pending.redeemed) return { refused: 'redeemed' };
    if (pending.expiresAt < Date.now()) return { refused: 'expired' };
    if (pending.clientId !== clientId) return { refused: 'wrong-client' };
    if (pending.redirectUri !== redirectUri) return { refused: 'wrong-redirect' };
    pending.redeemed = true;
    return { userId: pending.userId };
  }

  private pruneCodes(): void {
    const now = Date.now();
    for (const [digest, code] of this.codes) if (code.expiresAt < now) this.codes.delete(digest);
  }
}

interface SessionRow {
  token_digest: string;
  user_id: string;
  client_id: string;
  created_on: string;
  last_used_on: string;
  expires_at: number;
}
