import { alertRules, type AlertRule } from '@keyless/contracts';
import { DeployTimeValue, type ResourceInstance } from '../bicep/bicep-evaluator.js';
import type { InfraProblem } from './infra-problem.js';

/** The ARM type each kind of signal is watched with in Azure. */
const typeOfSignal: Record<AlertRule['signalType'], string> = {
  Log: 'microsoft.insights/scheduledqueryrules',
  'Activity Log': 'microsoft.insights/activitylogalerts',
  Metric: 'microsoft.insights/metricalerts',
};

const alertTypes = new Set(Object.values(typeOfSignal));

/**
 * Holds the Azure alerts and the local Azure's alert rules together. Rules:
 * - every local rule (libs/contracts alertRules) has its Azure counterpart, the resource its `azureRule` names, of the
 *   type its signal is watched with, at the same severity (activity-log alerts have none);
 * - every alert notifies an action group deployed here;
 * - every action group receiver (email, webhook) uses the common alert schema, the shape the local Azure posts too;
 * - the activity-log alert watches role-assignment deletes; the metric alert watches `DeadletteredMessages`.
 */
export function checkAlerts(deployed: ResourceInstance[], at: (r: ResourceInstance) => string, problems: InfraProblem[]): void {
  const fail = (resource: ResourceInstance | undefined, entry: string, message: string, fix: string): void => {
    problems.push({ code: 'alert-mismatch', file: resource ? at(resource) : 'infra/modules/alerts.bicep', entry, message, fix });
  };
  const actionGroups = deployed.filter((r) => r.type.toLowerCase() === 'microsoft.insights/actiongroups');
  for (const rule of Object.values(alertRules)) {
    const resource = deployed.find((r) => r.symbol === rule.azureRule);
    if (!resource) {
      fail(undefined, rule.id, `deploys no alert "${rule.azureRule}" for the local rule "${rule.name}".`, `Add a ${typeOfSignal[rule.signalType]} resource named ${rule.azureRule} to infra/modules/alerts.bicep, or correct azureRule in libs/contracts/src/alert-rules.ts.`);
      continue;
    }
    if (resource.type.toLowerCase() !== typeOfSignal[rule.signalType]) {
      fail(resource, rule.azureRule, `is a ${resource.type}, but the local rule "${rule.name}" watches a ${rule.signalType} signal.`, `Deploy it as ${typeOfSignal[rule.signalType]}.`);
    }
    const severity = (resource.body.properties as Record<string, unknown> | undefined)?.severity;
    if (rule.signalType !== 'Activity Log' && severity !== Number(rule.severity.slice(3))) {
      fail(resource, rule.azureRule, `has severity ${String(severity)}, the local rule "${rule.name}" ${rule.severity}.`, `Set properties.severity to ${rule.severity.slice(3)}.`);
    }
  }
  for (const resource of deployed.filter((r) => alertTypes.has(r.type.toLowerCase()))) {
    const actions = JSON.stringify((resource.body.properties as Record<string, unknown> | undefined)?.actions ?? null, (_key, value: unknown) => (value instanceof DeployTimeValue ? value.text : value));
    if (!actionGroups.some((group) => actions.includes(group.symbol))) {
      fail(resource, resource.symbol, 'notifies no action group of this deployment.', 'Add the action group (actionGroup.id) to its actions.');
    }
  }
  for (const group of actionGroups) {
    const properties = (group.body.properties ?? {}) as Record<string, unknown>;
    for (const kind of ['emailReceivers', 'webhookReceivers']) {
      for (const receiver of (properties[kind] ?? []) as Record<string, unknown>[]) {
        if (receiver.useCommonAlertSchema !== true) {
          fail(group, `${group.symbol} ${kind} ${String(receiver.name)}`, 'does not use the common alert schema.', 'Set useCommonAlertSchema: true (the local Azure posts the same schema, so one receiver handles both).');
        }
      }
    }
  }
  const watches = (symbol: string, text: string): boolean => JSON.stringify(deployed.find((r) => r.symbol === symbol)?.body ?? {}).includes(text);
  if (deployed.some((r) => r.symbol === alertRules['role-assignment-deleted'].azureRule) && !watches(alertRules['role-assignment-deleted'].azureRule, 'Microsoft.Authorization/roleAssignments/delete')) {
    fail(deployed.find((r) => r.symbol === alertRules['role-assignment-deleted'].azureRule), alertRules['role-assignment-deleted'].azureRule, 'does not watch Microsoft.Authorization/roleAssignments/delete.', "Add { field: 'operationName', equals: 'Microsoft.Authorization/roleAssignments/delete' } to its condition.");
  }
  if (deployed.some((r) => r.symbol === alertRules['dead-lettered-messages'].azureRule) && !watches(alertRules['dead-lettered-messages'].azureRule, '"metricName":"DeadletteredMessages"')) {
    fail(deployed.find((r) => r.symbol === alertRules['dead-lettered-messages'].azureRule), alertRules['dead-lettered-messages'].azureRule, 'does not watch the DeadletteredMessages metric.', "Set metricName: 'DeadletteredMessages' in its criteria.");
  }
}
