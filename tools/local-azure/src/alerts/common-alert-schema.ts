import { createHash } from 'node:crypto';
import { alertRules } from './alert-rules.js';
import type { Alert } from './alert-store.js';

/** Azure Monitor's common alert schema (`schemaId: azureMonitorCommonAlertSchema`), as action groups POST it to webhooks. */
export interface CommonAlertPayload {
  schemaId: 'azureMonitorCommonAlertSchema';
  data: {
    essentials: {
      alertId: string;
      alertRule: string;
      severity: Alert['severity'];
      signalType: 'Log' | 'Activity Log' | 'Metric';
      monitorCondition: 'Fired' | 'Resolved';
      monitoringService: string;
      alertTargetIDs: string[];
      configurationItems: string[];
      originAlertId: string;
      firedDateTime: string;
      resolvedDateTime?: string;
      description: string;
      essentialsVersion: '1.0';
      alertContextVersion: '1.0';
    };
    alertContext: Record<string, unknown>;
    customProperties: Record<string, string> | null;
  };
}

/**
 * The common alert schema payload of an alert, with the alert context of its signal type: Log Alerts V2
 * (`LogQueryCriteria`), the activity-log event for a deleted role assignment, and a single-resource metric
 * criterion for dead letters. Queries name the local logs (`SignInLogs`, `AuthorizationLogs`), whose columns are those
 * of `npm run local-azure -- log …`.
 */
export function commonAlertPayload(alert: Alert, subscriptionId: string, windowInMs: number): CommonAlertPayload {
  const rule = alertRules[alert.rule];
  const windowEnd = alert.monitorCondition === 'Resolved' ? alert.resolvedAt! : alert.lastEventAt;
  const windowStart = new Date(Date.parse(windowEnd) - windowInMs).toISOString();
  const windowSize = `PT${Math.max(1, Math.round(windowInMs / 60_000))}M`;
  const dimensions = alert.dimensions.map(({ name, value }) => ({ name, value }));
  let alertContext: Record<string, unknown>;
  if (rule.signalType === 'Activity Log') {
    const assignment = (alert.evidence.assignment ?? {}) as { id?: string; scope?: string; principalId?: string; roleDefinitionId?: string };
    alertContext = {
      authorization: { action: 'Microsoft.Authorization/roleAssignments/delete', scope: assignment.id ?? alert.targets[0] },
      channels: 'Operation',
      caller: (alert.evidence.caller as string | undefined) ?? 'local Azure control plane',
      correlationId: alert.id,
      eventSource: 'Administrative',
      eventTimestamp: alert.firedAt,
      eventDataId: alert.id,
      level: 'Informational',
      operationName: 'Microsoft.Authorization/roleAssignments/delete',
      operationId: alert.id,
      properties: { entity: assignment.id, principalId: assignment.principalId, roleDefinitionId: assignment.roleDefinitionId, scope: assignment.scope },
      status: 'Succeeded',
      subStatus: '',
      submissionTimestamp: alert.firedAt,
    };
  } else if (rule.signalType === 'Metric') {
    alertContext = {
      properties: null,
      conditionType: 'SingleResourceMultipleMetricCriteria',
      condition: {
        windowSize,
        allOf: [
          {
            metricName: 'DeadletteredMessages',
            metricNamespace: 'Microsoft.ServiceBus/namespaces',
            operator: 'GreaterThan',
            threshold: '0',
            timeAggregation: 'Maximum',
            dimensions,
            metricValue: alert.monitorCondition === 'Resolved' ? 0 : alert.count,
            webTestName: null,
          },
        ],
        windowStartTime: windowStart,
        windowEndTime: windowEnd,
      },
    };
  } else {
    alertContext = {
      properties: {},
      conditionType: 'LogQueryCriteria',
      condition: {
        windowSize,
        allOf: [
          {
            searchQuery: searchQuery(alert),
            metricMeasureColumn: null,
            targetResourceTypes: "['Microsoft.Web/sites','Microsoft.CognitiveServices/accounts','Microsoft.ServiceBus/namespaces']",
            operator: 'GreaterThan',
            threshold: '0',
            timeAggregation: 'Count',
            dimensions,
            metricValue: alert.monitorCondition === 'Resolved' ? 0 : alert.count,
            failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 },
          },
        ],
        windowStartTime: windowStart,
        windowEndTime: windowEnd,
      },
    };
  }
  return {
    schemaId: 'azureMonitorCommonAlertSchema',
    data: {
      essentials: {
        alertId: `/subscriptions/${subscriptionId}/providers/Microsoft.AlertsManagement/alerts/${alert.id}`,
        alertRule: rule.name,
        severity: alert.severity,
        signalType: rule.signalType,
        monitorCondition: alert.monitorCondition,
        monitoringService: rule.monitoringService,
        alertTargetIDs: alert.targets.map((target) => target.toLowerCase()),
        configurationItems: alert.targets.map((target) => target.split('/').pop() ?? target),
        originAlertId: createHash('sha256').update(`${alert.rule}\u0000${alert.key}\u0000${alert.firedAt}`).digest('hex'),
        firedDateTime: alert.firedAt,
        ...(alert.resolvedAt ? { resolvedDateTime: alert.resolvedAt } : {}),
        description: `${alert.summary}. ${rule.fix}`,
        essentialsVersion: '1.0',
        alertContextVersion: '1.0',
      },
      alertContext,
      customProperties: { rule: alert.rule, ...(alert.resolution ? { resolution: alert.resolution } : {}) },
    },
  };
}

function searchQuery(alert: Alert): string {
  if (alert.rule === 'access-denied') {
    const identity = alert.dimensions.find((d) => d.name === 'Identity')?.value ?? '';
    return `AuthorizationLogs | where Decision == "denied" and Identity == "${identity}" | summarize count() by DataAction, Scope`;
  }
  return 'SignInLogs | where Outcome == "failure" | summarize count() by Host, Identity';
}
