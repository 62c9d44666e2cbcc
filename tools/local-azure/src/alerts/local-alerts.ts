import type { DatabaseSync } from 'node:sqlite';
import { resolve } from 'node:path';
import type { AuditLog } from '../audit/audit-log.js';
import { repoRoot, type LocalAzureConfig } from '../config/local-azure-config.js';
import type { ConsoleLog } from '../data-plane.js';
import { principalNameOf, type Directory } from '../entra/directory.js';
import { ArmError } from '../management/arm-error.js';
import { listLimit } from '../management/list-query.js';
import type { ManagementApi } from '../management/management-api.js';
import { loadAccessFile } from '../rbac/access-file.js';
import type { RoleAssignmentStore } from '../rbac/role-assignments.js';
import type { ServiceBusOperations } from '../servicebus/admin-routes.js';
import { AlertEngine, type AlertTransition } from './alert-engine.js';
import { alertRules, type AlertRuleId } from './alert-rules.js';
import { AlertStore, type Alert } from './alert-store.js';
import { commonAlertPayload } from './common-alert-schema.js';
import { WebhookNotifier } from './webhook-notifier.js';

/** What the alerts need from the local Azure. */
export interface LocalAlertsContext {
  db: DatabaseSync;
  config: LocalAzureConfig;
  directory: Directory;
  auditLog: AuditLog;
  roleAssignments: RoleAssignmentStore;
  identityEndpointFault(): string;
  serviceBus?: ServiceBusOperations;
  log: ConsoleLog;
}

/** The running alerts: the engine, the webhook (when configured), and the console view. */
export interface LocalAlerts {
  engine: AlertEngine;
  webhook?: WebhookNotifier;
  /** Adds `GET /alerts`, `/alerts/rules` and `/alerts/{id}` to the management API (`Microsoft.AlertsManagement/alerts/read`). */
  adminRoutes(api: ManagementApi): void;
  stop(): void;
}

/**
 * Starts the alert rules of the local Azure: evaluates them over its logs and state, prints each alert and its
 * resolution on the console, and POSTs both to the configured webhook in the common alert schema.
 */
export function startLocalAlerts(context: LocalAlertsContext): LocalAlerts {
  const { config, directory, log } = context;
  const access = loadAccessFile(resolve(repoRoot, config.accessFile));
  const shared = directory.userAssignedIdentity(access.identity);
  const systemResources = [...new Set(access.entries.map((entry) => directory.resourceId(entry.resource)))];
  const windowInMs = config.alerts.windowInSeconds * 1000;
  const engine = new AlertEngine(
    new AlertStore(context.db),
    {
      auditLog: context.auditLog,
      roleAssignments: context.roleAssignments,
      sharedIdentity: () => (shared ? { name: shared.name, principalId: shared.principalId } : undefined),
      systemResources: () => systemResources,
      principalName: (principalId) => {
        const principal = directory.findPrincipal(principalId);
        return principal?.principalId === principalId ? principalNameOf(principal) : undefined;
      },
      hostResourceId: (host) => `/subscriptions/${directory.subscriptionId}/resourceGroups/${config.resourceGroup}/providers/Microsoft.Web/sites/${host}`,
      identityEndpointFault: context.identityEndpointFault,
      ...(context.serviceBus ? { deadLetterCounts: () => context.serviceBus!.deadLetterCounts() } : {}),
    },
    { evaluationIntervalInMs: config.alerts.evaluationIntervalInSeconds * 1000, windowInMs },
  );
  const webhook = config.alerts.webhookUrl
    ? new WebhookNotifier({ url: config.alerts.webhookUrl, retryDelaysInMs: config.alerts.webhookRetryDelaysInSeconds.map((s) => s * 1000) }, log)
    : undefined;
  engine.onAlert((alert, transition) => {
    if (transition === 'Updated') return;
    log(formatAlertLine(alert, transition));
    webhook?.notify(alert, commonAlertPayload(alert, directory.subscriptionId, windowInMs));
  });
  engine.start();
  return {
    engine,
    ...(webhook ? { webhook } : {}),
    adminRoutes(api) {
      const read = () => [{ action: 'Microsoft.AlertsManagement/alerts/read', scope: `/subscriptions/${directory.subscriptionId}` }];
      api.add(
        {
          method: 'GET',
          pattern: /^\/alerts$/,
          access: read,
          handle: ({ url }) => {
            const state = url.searchParams.get('state');
            const rule = url.searchParams.get('rule');
            const limit = listLimit(url);
            if (state && state !== 'Fired' && state !== 'Resolved') throw new ArmError(400, 'InvalidFilter', 'state must be Fired or Resolved');
            if (rule && !(rule in alertRules)) throw new ArmError(400, 'InvalidFilter', `rule must be one of ${Object.keys(alertRules).join(', ')}`);
            return engine.list({
              ...(state ? { state: state as Alert['monitorCondition'] } : {}),
              ...(rule ? { rule: rule as AlertRuleId } : {}),
              limit,
            });
          },
        },
        { method: 'GET', pattern: /^\/alerts\/rules$/, access: read, handle: () => Object.values(alertRules) },
        {
          method: 'GET',
          // Any id, so that a mistyped one is an AlertNotFound rather than an unknown endpoint.
          pattern: /^\/alerts\/(?<id>[^/]+)$/,
          access: read,
          handle: ({ params }) => {
            const alert = engine.get(params.id!);
            if (!alert) throw new ArmError(404, 'AlertNotFound', `No alert with id ${params.id}.`);
            return { ...alert, notifications: webhook?.deliveries(alert.id) ?? [] };
          },
        },
      );
    },
    stop() {
      engine.stop();
      webhook?.stop();
    },
  };
}

/** The console line of an alert that fired or resolved. */
export function formatAlertLine(alert: Alert, transition: Exclude<AlertTransition, 'Updated'>): string {
  return transition === 'Fired'
    ? `[alert] FIRED ${alert.severity} ${alert.ruleName}: ${alert.summary}`
    : `[alert] RESOLVED ${alert.ruleName}: ${alert.summary} — ${alert.resolution ?? 'condition cleared'}`;
}
