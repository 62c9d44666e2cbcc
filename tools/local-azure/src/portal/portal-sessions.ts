import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PortalOperator } from './operator-authority.js';

/** A signed-in browser. */
export interface PortalSession {
  id: string;
  operator: PortalOperator;
  /** The anti-forgery token every state-changing form carries. */
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
  /**
   * What the last change did, shown once by the next page. Kept in the session, not in the redirect's URL: a
   * `?done=` text would let any link put words of its choosing in the portal's own status line.
   */
  notice?: string;
}

/** The session's notice, cleared: it is shown once. */
export function takeNotice(session: PortalSession): string | undefined {
  const { notice } = session;
  delete session.notice;
  return notice;
}

/** Options of {@link PortalSessions}. */
export interface PortalSessionsOptions {
  /** How long a sign-in link can be used (once). **Default**: 300000 ms (5 minutes). */
  linkLifetimeInMs?: number;
  /** How long a session lasts from sign-in, whatever the activity. **Default**: 28800000 ms (8 hours). */
  sessionLifetimeInMs?: number;
  /** Links (unused, used or expired: each is remembered a while) and sessions kept at most, per table; the oldest go first. **Default**: 1000. */
  maxEntries?: number;
}

export const portalSessionDefaults = {
  linkLifetimeInMs: 5 * 60_000,
  sessionLifetimeInMs: 8 * 3_600_000,
  maxEntries: 1_000,
} as const;

/** Why a sign-in link was refused (shown to the user; the same page for every reason but the words). */
export type LinkRefusal = 'unknown' | 'expired' | 'used';

/**
 * One-time sign-in links and browser sessions, in memory (a restart signs everyone out). Rules:
 * - a link is 32 random bytes; only its SHA-256 is kept, so the table holds nothing that signs in;
 * - a link works once, within its lifetime; a used or expired link is refused, and says which;
 * - a session id is 32 random bytes, kept hashed too; a session ends at its fixed lifetime or at sign-out;
 * - comparisons of secrets are constant-time.
 */
export class PortalSessions {
  private readonly links = new Map<string, { operator: PortalOperator; expiresAt: number; usedAt?: number }>();
  private readonly sessions = new Map<string, PortalSession>();
  private readonly linkLifetimeInMs: number;
  private readonly sessionLifetimeInMs: number;
  private readonly maxEntries: number;

  constructor(options: PortalSessionsOptions = {}) {
    this.linkLifetimeInMs = options.linkLifetimeInMs ?? portalSessionDefaults.linkLifetimeInMs;
    this.sessionLifetimeInMs = options.sessionLifetimeInMs ?? portalSessionDefaults.sessionLifetimeInMs;
    this.maxEntries = options.maxEntries ?? portalSessionDefaults.maxEntries;
  }

  /** A new one-time sign-in code for `operator`, and when it expires. */
  mintLink(operator: PortalOperator, now = Date.now()): { code: string; expiresAt: number } {
    this.prune(now);
    const code = randomBytes(32).toString('base64url');
    const expiresAt = now + this.linkLifetimeInMs;
    this.links.set(hash(code), { operator, expiresAt });
    return { code, expiresAt };
  }

  /** Redeems a sign-in code: a new session, or why not. */
  redeem(code: string, now = Date.now()): PortalSession | LinkRefusal {
    const link = /^[\w-]{43}$/.test(code) ? this.links.get(hash(code)) : undefined;
    if (!link) return 'unknown';
    if (link.usedAt !== undefined) return 'used';
    if (now >= link.expiresAt) return 'expired';
    link.usedAt = now;
    const id = randomBytes(32).toString('base64url');
    const session: PortalSession = {
      id,
      operator: link.operator,
      csrfToken: randomBytes(32).toString('base64url'),
      createdAt: now,
      expiresAt: now + this.sessionLifetimeInMs,
    };
    this.sessions.set(hash(id), session);
    return session;
  }

  /** The live session of a cookie value, if any. */
  session(id: string | undefined, now = Date.now()): PortalSession | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(hash(id));
    if (!session) return undefined;
    if (now >= session.expiresAt) {
      this.sessions.delete(hash(id));
      return undefined;
    }
    return session;
  }

  /** Whether `token` is the session's anti-forgery token (constant-time). */
  checkCsrf(session: PortalSession, token: string | undefined): boolean {
    if (!token) return false;
    const expected = Buffer.from(session.csrfToken);
    const given = Buffer.from(token);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  end(id: string): void {
    this.sessions.delete(hash(id));
  }

  /** Seconds a session cookie lives (`Max-Age`). */
  get sessionLifetimeInSeconds(): number {
    return Math.floor(this.sessionLifetimeInMs / 1000);
  }

  /** How long a sign-in link works, in seconds (what the refusal of an expired link says). */
  get linkLifetimeInSeconds(): number {
    return Math.floor(this.linkLifetimeInMs / 1000);
  }

  private prune(now: number): void {
    // Links are kept (hashed) a session lifetime past their expiry, so a late or second use says "expired" or
    // "used", not "not valid", even after newer links were minted; maxEntries still bounds the table.
    for (const [key, link] of this.links) if (now >= link.expiresAt + this.sessionLifetimeInMs) this.links.delete(key);
    for (const [key, session] of this.sessions) if (now >= session.expiresAt) this.sessions.delete(key);
    for (const table of [this.links, this.sessions] as Map<string, unknown>[]) {
      while (table.size >= this.maxEntries) table.delete(table.keys().next().value!);
    }
  }
}

function hash(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}
