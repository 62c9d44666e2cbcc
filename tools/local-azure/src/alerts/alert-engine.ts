import type { AuditLog, AuthorizationRecord, SignInRecord } from '../audit/audit-log.js';
import type { RoleAssignment, RoleAssignmentStore } from '../rbac/role-assignments.js';
import { scopeContains } from '../rbac/scope.js';
import { newGuid } from '../util/ids.js';
import { alertRules, type AlertRuleId } from './alert-rules.js';
import type { Alert, AlertDimension, AlertQuery, AlertStore } from './alert-store.js';

/** What the rules watch, from the running local Azure. */
export interface AlertSources {
  auditLog: AuditLog;
  roleAssignments: RoleAssignmentStore;
  /** The shared identity of `infra/access.json`, whose denials raise `access-denied`. */
  sharedIdentity(): { name: string; principalId: string } | undefined;
  /** ARM ids of the resources `infra/access.json` grants access to: the resources the system uses. */
  systemResources(): string[];
  /** A display name for a principal id (an identity's name), when known. */
  principalName?(principalId: string): string | undefined;
  /** ARM id of a host (an App-Service-like site), the target of its identity alerts. */
  hostResourceId(host: string): string;
  /** The fault injected into the identity endpoint (`none` when healthy). */
  identityEndpointFault(): string;
  /** Dead-lettered messages per queue or subscription, with the entity's ARM id; absent without Service Bus. */
  deadLetterCounts?(): { entity: string; resourceId: string; count: number }[];
}

/** Options of {@link AlertEngine}. */
export interface AlertEngineOptions {
  /**
   * How often every rule is evaluated in full (windows closing, dead-letter counts). Events (denials, failed sign-ins,
   * deleted assignments) are evaluated as they happen; this is the upper bound for the rest. **Default**: 10000 ms.
   */
  evaluationIntervalInMs?: number;
  /** The look-back window of the log rules: an alert resolves once no matching event came for this long. **Default**: 300000 ms (5 min). */
  windowInMs?: number;
}

/** How an alert changed: it fired, it resolved, or it fired again while open (count and evidence updated). */
export type AlertTransition = 'Fired' | 'Resolved' | 'Updated';

export const alertEngineDefaults = {
  evaluationIntervalInMs: 10_000,
  windowInMs: 5 * 60_000,
} as const;

/**
 * Evaluates the alert rules over the sign-in and authorization logs, the role-assignment changes, the identity
 * endpoint's state and the Service Bus dead-letter counts. Log and activity events are evaluated when they happen
 * (an alert fires in the same event-loop turn as its condition); a periodic evaluation closes windows and reads
 * metrics. One open alert per rule and dimension set; alerts and their resolution are persisted.
 * Listeners (console, webhook, portal) are called synchronously and must not block.
 */
export class AlertEngine {
  private readonly open = new Map<string, Alert>();
  private readonly listeners = new Set<(alert: Alert, transition: AlertTransition) => void>();
  private readonly unsubscribe: (() => void)[] = [];
  private assignments = new Map<string, RoleAssignment>();
  private timer: NodeJS.Timeout | undefined;
  /** The pending diff of the role assignments (one per burst of changes); cleared by stop, the database closes next. */
  private diffScheduled: NodeJS.Immediate | undefined;
  private readonly intervalInMs: number;
  readonly windowInMs: number;

  constructor(
    private readonly store: AlertStore,
    private readonly sources: AlertSources,
    options: AlertEngineOptions = {},
  ) {
    this.intervalInMs = options.evaluationIntervalInMs ?? alertEngineDefaults.evaluationIntervalInMs;
    this.windowInMs = options.windowInMs ?? alertEngineDefaults.windowInMs;
    for (const alert of store.firing()) this.open.set(openKey(alert.rule, alert.key), alert);
  }

  /** Subscribes to the sources and starts the periodic evaluation (which runs once at once). */
  start(): void {
    this.assignments = new Map(this.sources.roleAssignments.all().map((a) => [a.id.toLowerCase(), a]));
    this.unsubscribe.push(
      this.sources.auditLog.onRecord((kind, record) => {
        if (kind === 'authorization') this.onAuthorization(record as AuthorizationRecord);
        else if (kind === 'sign-in') this.onSignIn(record as SignInRecord);
      }),
      // A reset replaces many assignments in one synchronous call: diff once it is done, not at every step.
      this.sources.roleAssignments.onChange(() => {
        this.diffScheduled ??= setImmediate(() => {
          this.diffScheduled = undefined;
          this.onAssignmentsChanged();
        });
      }),
    );
    this.evaluate();
    this.timer = setInterval(() => this.evaluate(), this.intervalInMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    clearImmediate(this.diffScheduled);
    this.diffScheduled = undefined;
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** Called on every fire, resolve and update. Returns an unsubscribe function. */
  onAlert(listener: (alert: Alert, transition: AlertTransition) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Alerts, newest first (firing ones and the history). */
  list(query: AlertQuery = {}): Alert[] {
    return this.store.list(query);
  }

  get(id: string): Alert | undefined {
    return this.store.get(id);
  }

  /** Evaluates every rule now (the periodic evaluation; also after a change the engine is told about, e.g. a fault). */
  evaluate(now = Date.now()): void {
    const expired = now - this.windowInMs;
    for (const alert of [...this.open.values()]) {
      if ((alert.rule === 'access-denied' || alert.rule === 'identity-endpoint-failures') && alert.key !== 'endpoint' && Date.parse(alert.lastEventAt) < expired) {
        this.resolve(alert.rule, alert.key, `no matching event in the last ${Math.round(this.windowInMs / 1000)} s`);
      }
    }
    this.evaluateEndpointFault();
    this.evaluateDeadLetters();
    this.onAssignmentsChanged();
  }

  private onAuthorization(record: AuthorizationRecord): void {
    const shared = this.sources.sharedIdentity();
    // Data planes only: the rule watches data actions (a refused control-plane call is not a broken service).
    if (!shared || record.principalId !== shared.principalId || !record.dataAction) return;
    // A refusal with a reason is not a missing role (a refused token, an image URL Vision will not fetch).
    if (record.reason) return;
    const key = `${record.dataAction}|${record.scope.toLowerCase()}`;
    if (record.decision === 'allowed') {
      this.resolve('access-denied', key, `${record.dataAction} on ${record.scope} was allowed again at ${record.time}${record.role ? ` (through ${record.role})` : ''}`);
      return;
    }
    this.fire('access-denied', key, {
      dimensions: [
        { name: 'Identity', value: shared.name },
        { name: 'DataAction', value: record.dataAction },
        { name: 'Scope', value: record.scope },
      ],
      targets: [record.scope],
      summary: `${shared.name} was denied ${record.dataAction} on ${record.scope}${record.operation ? ` (${record.operation})` : ''}`,
      evidence: { ...record },
      at: record.time,
    });
  }

  private onSignIn(record: SignInRecord): void {
    // Hosts' managed-identity endpoints only: a user's sign-in at the token endpoint, a database login (the shared
    // identity's refused logins reach access-denied through the authorization log), or a request that named no
    // host, is not one.
    const host = record.host;
    if (record.endpoint === 'token' || record.endpoint === 'postgres' || !host) return;
    if (record.outcome === 'success') {
      for (const alert of [...this.open.values()]) {
        // A throttled host gets tokens between refusals: its alert resolves only after a window without one.
        if (alert.rule !== 'identity-endpoint-failures' || alert.key === 'endpoint' || alert.key.startsWith(throttledKeyPrefix)) continue;
        const [alertHost, identity] = alert.key.split('|');
        if (alertHost === host && (identity === '*' || identity === record.identity)) {
          this.resolve(alert.rule, alert.key, `host ${host} got a token for ${record.identity ?? 'its identity'} at ${record.time}`);
        }
      }
      return;
    }
    if (record.throttled) {
      this.fire('identity-endpoint-failures', `${throttledKeyPrefix}${host}`, {
        dimensions: [
          { name: 'Host', value: host },
          { name: 'Identity', value: '(any)' },
        ],
        targets: [this.sources.hostResourceId(host)],
        summary: `host ${host} is throttled by the identity endpoint: ${record.reason ?? 'too many token requests'}`,
        evidence: { ...record },
        at: record.time,
      });
      return;
    }
    this.fire('identity-endpoint-failures', `${host}|${record.identity ?? '*'}`, {
      dimensions: [
        { name: 'Host', value: host },
        { name: 'Identity', value: record.identity ?? '(none resolved)' },
      ],
      targets: [this.sources.hostResourceId(host)],
      summary: `token request of host ${host}${record.identity ? ` for ${record.identity}` : ''} failed: ${record.reason ?? 'no reason recorded'}`,
      evidence: { ...record },
      at: record.time,
    });
  }


  private evaluateEndpointFault(): void {
    const fault = this.sources.identityEndpointFault();
    if (fault === 'none') {
      this.resolve('identity-endpoint-failures', 'endpoint', 'the identity endpoint answers normally again');
      return;
    }
    if (this.open.has(openKey('identity-endpoint-failures', 'endpoint'))) return;
    this.fire('identity-endpoint-failures', 'endpoint', {
      dimensions: [{ name: 'Fault', value: fault }],
      targets: [],
      summary: `the managed identity endpoint is failing for every host (fault "${fault}" injected)`,
      evidence: { fault },
      at: new Date().toISOString(),
    });
  }

  private evaluateDeadLetters(): void {
    if (!this.sources.deadLetterCounts) return;
    for (const { entity, resourceId, count } of this.sources.deadLetterCounts()) {
      const existing = this.open.get(openKey('dead-lettered-messages', entity));
      if (count === 0) {
        if (existing) this.resolve('dead-lettered-messages', entity, `the dead-letter queue of ${entity} is empty`);
        continue;
      }
      if (existing?.count === count) continue;
      this.fire(
        'dead-lettered-messages',
        entity,
        {
          dimensions: [{ name: 'EntityName', value: entity }],
          targets: [resourceId],
          summary: `${count} dead-lettered message${count === 1 ? '' : 's'} in ${entity}`,
          evidence: { entity, deadLetteredMessages: count },
          at: new Date().toISOString(),
        },
        count,
      );
    }
  }

  private onAssignmentsChanged(): void {
    const current = new Map(this.sources.roleAssignments.all().map((a) => [a.id.toLowerCase(), a]));
    const resources = this.sources.systemResources();
    for (const [id, assignment] of this.assignments) {
      if (current.has(id)) continue;
      const used = resources.filter((resource) => scopeContains(assignment.scope, resource) || scopeContains(resource, assignment.scope));
      if (!used.length) continue;
      this.fire('role-assignment-deleted', id, {
        dimensions: [
          { name: 'PrincipalId', value: assignment.principalId },
          { name: 'Role', value: assignment.roleDefinitionName },
          { name: 'Scope', value: assignment.scope },
        ],
        targets: [assignment.scope],
        summary: `role assignment "${assignment.roleDefinitionName}" of ${this.sources.principalName?.(assignment.principalId) ?? assignment.principalId} on ${assignment.scope} was deleted`,
        evidence: { operationName: 'Microsoft.Authorization/roleAssignments/delete', assignment: { ...assignment } },
        at: new Date().toISOString(),
      });
    }
    for (const alert of [...this.open.values()]) {
      if (alert.rule === 'role-assignment-deleted' && current.has(alert.key)) {
        const restored = current.get(alert.key)!;
        this.resolve(alert.rule, alert.key, `the assignment exists again (created ${restored.createdOn})`);
      }
    }
    this.assignments = current;
  }

  private fire(
    rule: AlertRuleId,
    key: string,
    signal: { dimensions: AlertDimension[]; targets: string[]; summary: string; evidence: Record<string, unknown>; at: string },
    count?: number,
  ): void {
    const existing = this.open.get(openKey(rule, key));
    if (existing) {
      const updated: Alert = { ...existing, summary: signal.summary, evidence: signal.evidence, count: count ?? existing.count + 1, lastEventAt: signal.at };
      this.open.set(openKey(rule, key), updated);
      this.store.save(updated);
      this.emit(updated, 'Updated');
      return;
    }
    const definition = alertRules[rule];
    const alert: Alert = {
      id: newGuid(),
      rule,
      ruleName: definition.name,
      severity: definition.severity,
      key,
      monitorCondition: 'Fired',
      dimensions: signal.dimensions,
      targets: signal.targets,
      summary: signal.summary,
      evidence: signal.evidence,
      count: count ?? 1,
      firedAt: new Date().toISOString(),
      lastEventAt: signal.at,
    };
    this.open.set(openKey(rule, key), alert);
    this.store.save(alert);
    this.emit(alert, 'Fired');
  }

  private resolve(rule: AlertRuleId, key: string, resolution: string): void {
    const existing = this.open.get(openKey(rule, key));
    if (!existing) return;
    const resolved: Alert = { ...existing, monitorCondition: 'Resolved', resolvedAt: new Date().toISOString(), resolution };
    this.open.delete(openKey(rule, key));
    this.store.save(resolved);
    this.emit(resolved, 'Resolved');
  }

  private emit(alert: Alert, transition: AlertTransition): void {
    for (const listener of this.listeners) listener(alert, transition);
  }
}

/** Key of a host's throttling alert (host names never contain `:`). */
const throttledKeyPrefix = 'throttled:';

function openKey(rule: AlertRuleId, key: string): string {
  return `${rule}\u0000${key}`;
}
