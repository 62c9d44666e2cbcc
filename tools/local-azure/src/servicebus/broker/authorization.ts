// Authorization of links, for as long as they live. A link acts with the claim of the token put for its address
// (cbs.ts) and needs the caller's data action on the entity — send, or receive — from the shared guard's role
// assignments (RBAC, logged in the authorization log). This unit owns every such decision and when it is taken
// again: at attach, at each put-token, at each role assignment change, on a periodic pass, and when a token expires
// unrenewed. A link that lost its role is detached by links.ts (`revoke`).

import type { link as Link } from 'rhea';
import type { Directory } from '../../entra/directory.js';
import type { Caller, ResourceGuard } from '../../guard/resource-guard.js';
import { dataActions } from '../../rbac/built-in-roles.js';
import { missingRoleText } from '../access-refusal.js';
import { BrokerError, toBrokerError } from '../amqp/broker-error.js';
import type { EntityNode } from '../entities/service-bus-namespace.js';
import { maxTimerDelayInMs } from '../queue/timers.js';
import type { Claim } from './connection-claims.js';
import type { ConnectionState } from './connection.js';
import type { AuthorizedLinkState, LinkState, ManagementLinkState } from './links.js';

/** What link authorization needs from the broker. */
export interface LinkAuthorizationOptions {
  guard: ResourceGuard;
  directory: Directory;
  /**
   * Every open link and cached `$management` decision is re-checked at this interval (besides at once on
   * each role assignment change and at each put-token): the bound on how long a revoked role keeps working.
   */
  reauthorizationIntervalInMs: number;
  /** The open connections. */
  connections(): Iterable<ConnectionState>;
  /** What an attached link is for (links.ts). */
  stateOf(link: Link): LinkState | undefined;
  /** Detaches a link that lost its authorization (links.ts). */
  revoke(link: Link, state: AuthorizedLinkState, error: BrokerError): void;
  /** Reports an unexpected failure (logged; the broker keeps running). */
  fail(error: unknown): void;
}

/**
 * Authorization is not a one-time check at attach. Rules:
 * 1. A connection is authorized for one principal, the one of its first accepted token; a token for
 *    another principal is refused (401) and changes nothing (cbs.ts).
 * 2. Every put-token, renewals included, re-checks the role of every link that uses the token's claim; a
 *    link whose role is gone is detached with `amqp:unauthorized-access` (the SDK's `UnauthorizedAccess`).
 * 3. A role assignment change re-checks every open link at once; so does a timer every
 *    `reauthorizationIntervalInMs`, the guarantee for changes that bypass the store's listeners.
 * 4. `$management` decisions are cached per link and action only until the next re-check (2 or 3).
 * 5. A detached sender's sends accepted before the detach are acknowledged first; later transfers are refused
 *    (links.ts, `revoke`).
 */
export class LinkAuthorization {
  private readonly reauthorizationTimer: NodeJS.Timeout;
  private readonly stopWatchingAccess: () => void;
  private reauthorizationQueued = false;

  constructor(private readonly options: LinkAuthorizationOptions) {
    this.stopWatchingAccess = options.guard.onAccessChange(() => this.queueReauthorization());
    this.reauthorizationTimer = setInterval(() => this.reauthorizeAll('periodic re-check'), options.reauthorizationIntervalInMs);
    this.reauthorizationTimer.unref();
  }

  /** Stops watching role assignments and the periodic pass. */
  stop(): void {
    clearInterval(this.reauthorizationTimer);
    this.stopWatchingAccess();
  }

  /** The token put for this address on the connection. @throws {BrokerError} `unauthorized` */
  claimFor(connection: ConnectionState, address: string): Claim {
    const claim = connection.claims.find(address, Date.now());
    if (!claim) {
      throw new BrokerError(
        'unauthorized',
        `Unauthorized access. No valid token for '${connection.uri(address)}' was put on $cbs on this connection (the SDK does this before every link; a token that expired must be renewed).`,
      );
    }
    return claim;
  }

  /** RBAC: the caller's data action on the entity (logged by the guard). @throws {BrokerError} `unauthorized` */
  check(caller: Caller, action: 'send' | 'receive', node: EntityNode, connection: ConnectionState, operation: string, recordAllowed = true): void {
    const dataAction = action === 'send' ? dataActions.serviceBusSend : dataActions.serviceBusReceive;
    const decision = this.options.guard.authorize(caller, dataAction, node.armId, { resource: 'serviceBus', operation, recordAllowed });
    if (decision.allowed) return;
    const role = decision.roleNeeded?.name ?? (action === 'send' ? 'Azure Service Bus Data Sender' : 'Azure Service Bus Data Receiver');
    throw new BrokerError(
      'unauthorized',
      `Unauthorized access. '${action === 'send' ? 'Send' : 'Listen'}' claim(s) are required to perform this operation. Resource: '${connection.uri(node.path)}'. ` +
        missingRoleText(this.options.directory, caller, dataAction, node.armId, role),
    );
  }

  /** A `$management` request's action (rule 4: cached per link until the next re-check). @throws {BrokerError} `unauthorized` */
  authorizeManagement(state: ManagementLinkState, action: 'send' | 'receive', operation: string): void {
    if (state.claim.expiresAt <= Date.now()) {
      throw new BrokerError('unauthorized', `Unauthorized access. The token for '${state.claim.audience}' expired; put a new one on $cbs.`);
    }
    if (state.authorized.has(action)) return;
    this.check(state.claim.caller, action, state.node, state.connection, `${operation} on ${state.node.path}`);
    state.authorized.add(action);
  }

  /** A token was put for `claim`'s path (rule 2): re-checks the links that use it, and re-arms the expiry. */
  tokenAccepted(connection: ConnectionState, claim: Claim): void {
    this.options.guard.refreshAccess();
    for (const link of [...connection.links]) {
      const state = this.options.stateOf(link);
      if (state && 'claim' in state && state.claim === claim) this.reauthorize(link, state, 'put-token', true);
    }
    this.armExpiry(connection);
  }

  /** Detaches links whose token expired without renewal, at the earliest expiry. */
  armExpiry(connection: ConnectionState): void {
    clearTimeout(connection.expiryTimer);
    connection.expiryTimer = undefined;
    let next = Number.POSITIVE_INFINITY;
    for (const link of connection.links) {
      const state = this.options.stateOf(link);
      if (state && 'claim' in state) next = Math.min(next, state.claim.expiresAt);
    }
    if (!Number.isFinite(next) || connection.closed) return;
    connection.expiryTimer = setTimeout(
      () => {
        try {
          this.expireLinks(connection);
        } catch (error) {
          this.options.fail(error);
        }
      },
      Math.min(Math.max(0, next - Date.now()), maxTimerDelayInMs),
    );
    connection.expiryTimer.unref();
  }

  /**
   * Re-checks the role behind an open link (rule 2, 3): a sender or receiver without it is detached; a
   * `$management` link forgets each cached decision that no longer holds (its next request is refused).
   */
  private reauthorize(link: Link, state: AuthorizedLinkState, why: string, recordAllowed: boolean): void {
    if (state.closed) return;
    const caller = state.claim.caller;
    if (caller.principalId !== state.connection.principalId) {
      // Unreachable while rule 1 holds; a link never acts for a principal other than its connection's.
      this.options.revoke(link, state, new BrokerError('unauthorized', `Unauthorized access. The link's token is for another principal than its connection's.`));
      return;
    }
    const actions = state.kind === 'management-requests' ? [...state.authorized] : [state.kind];
    for (const action of actions) {
      try {
        this.check(caller, action, state.node, state.connection, `${why}: ${action === 'send' ? 'send to' : 'receive from'} ${state.node.path}`, recordAllowed);
      } catch (error) {
        if (state.kind === 'management-requests') state.authorized.delete(action);
        else this.options.revoke(link, state, toBrokerError(error));
      }
    }
  }

  /** Re-checks every open link of every connection (rule 3). */
  private reauthorizeAll(why: string): void {
    try {
      // Changes another process wrote to the database reach no listener: this pass is their guarantee.
      this.options.guard.refreshAccess();
      for (const connection of this.options.connections()) {
        for (const link of [...connection.links]) {
          const state = this.options.stateOf(link);
          if (state && 'claim' in state) this.reauthorize(link, state, why, false);
        }
      }
    } catch (error) {
      this.options.fail(error);
    }
  }

  /** Role assignments changed (possibly several in one batch): re-check once the batch is done. */
  private queueReauthorization(): void {
    if (this.reauthorizationQueued) return;
    this.reauthorizationQueued = true;
    setImmediate(() => {
      this.reauthorizationQueued = false;
      this.reauthorizeAll('role assignments changed');
    });
  }

  private expireLinks(connection: ConnectionState): void {
    const now = Date.now();
    for (const link of [...connection.links]) {
      const state = this.options.stateOf(link);
      if (!state || !('claim' in state) || state.claim.expiresAt > now) continue;
      this.options.revoke(
        link,
        state,
        new BrokerError(
          'unauthorized',
          `Unauthorized access. The token for '${state.claim.audience}' expired at ${new Date(state.claim.expiresAt).toISOString()} and was not renewed on $cbs; the link is detached.`,
        ),
      );
    }
    this.armExpiry(connection);
  }
}
