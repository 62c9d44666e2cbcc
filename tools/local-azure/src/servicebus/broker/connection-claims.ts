// The tokens put on one connection's `$cbs` node (cbs.ts), by the entity path of their audience: which token a link
// acts with, and the renewal of a claim in place, so every link using it sees the new caller and expiry.

import type { Caller } from '../../guard/resource-guard.js';
import { trimChars } from '../../util/trim-chars.js';
import { maxEntityAddressLength } from '../entities/entity-definitions.js';

/** A token put on `$cbs` for an audience: who the caller is, for which entity path, until when. */
export interface Claim {
  /** Entity path the token covers (lowercase, no slashes at the ends; empty = the whole namespace). */
  readonly path: string;
  /** The audience as the client sent it (`sb://host/q`). */
  audience: string;
  caller: Caller;
  /** Epoch ms: the token's `exp`. */
  expiresAt: number;
}

/**
 * The tokens put on one connection's `$cbs` node. A link may attach to an entity when a token is put
 * for the entity's address or an enclosing path (Service Bus scopes a token to its audience); a new
 * token for the same audience renews the claim of every link using it.
 */
export class ConnectionClaims {
  /** Azure's limit on the tokens of one connection ("The maximum number of '1000' tokens per connection has been reached."). */
  static readonly maxClaims = 1000;
  private readonly claims = new Map<string, Claim>();

  /**
   * Records a token; an existing claim for the same path is updated in place (renewal). A token for a new path
   * beyond {@link ConnectionClaims.maxClaims} unexpired ones is not recorded: without a limit, one caller with a valid
   * token could grow the broker's memory without end, one audience at a time.
   *
   * @returns the claim, or undefined when the connection holds the most tokens it may.
   */
  put(path: string, audience: string, caller: Caller, now = Date.now()): Claim | undefined {
    const expiresAt = caller.expiresOn.getTime();
    const existing = this.claims.get(path);
    if (existing) {
      Object.assign(existing, { audience, caller, expiresAt });
      return existing;
    }
    if (this.claims.size >= ConnectionClaims.maxClaims) {
      // Links keep the claims they act with: forgetting an expired one here only frees its place.
      for (const [key, claim] of this.claims) if (claim.expiresAt <= now) this.claims.delete(key);
      if (this.claims.size >= ConnectionClaims.maxClaims) return undefined;
    }
    const claim: Claim = { path, audience, caller, expiresAt };
    this.claims.set(path, claim);
    return claim;
  }

  /** The unexpired claim covering `address` with the longest path, if any. */
  find(address: string, now: number): Claim | undefined {
    const path = normalizePath(address);
    const unexpired = (key: string): Claim | undefined => {
      const claim = this.claims.get(key);
      return claim && claim.expiresAt > now ? claim : undefined;
    };
    // Claims are no longer than an entity's address (see audiencePath): only the prefixes that short are looked up,
    // one per "/", instead of one join of the segments per segment.
    for (let end = path.length <= maxEntityAddressLength ? path.length : path.lastIndexOf('/', maxEntityAddressLength); end > 0; end = path.lastIndexOf('/', end - 1)) {
      const claim = unexpired(path.slice(0, end));
      if (claim) return claim;
    }
    return unexpired('');
  }
}

/**
 * The entity path of a CBS audience: `sb://host[:port]/orders/$management` → `orders/$management`.
 * The host and port are ignored (clients put whatever host they connected to).
 *
 * @returns `undefined` when the audience is not a URL, or its path is longer than any entity's address.
 */
export function audiencePath(audience: string): string | undefined {
  let url: URL;
  try {
    url = new URL(audience);
  } catch {
    return undefined;
  }
  let path: string;
  try {
    path = normalizePath(decodeURIComponent(url.pathname));
  } catch {
    path = normalizePath(url.pathname);
  }
  return path.length <= maxEntityAddressLength ? path : undefined;
}

/** Lowercase, without slashes at the ends (entity names are case-insensitive). */
export function normalizePath(path: string): string {
  return trimChars(path, '/').toLowerCase();
}
