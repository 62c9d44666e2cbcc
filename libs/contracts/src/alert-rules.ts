/** Azure Monitor's alert severities, from Sev0 (critical) to Sev4 (verbose). */
export type AlertSeverity = 'Sev0' | 'Sev1' | 'Sev2' | 'Sev3' | 'Sev4';

/** What kind of signal a rule watches, as the common alert schema names it. */
export type AlertSignalType = 'Log' | 'Activity Log' | 'Metric';

/** The ids of the local Azure's alert rules. */
export type AlertRuleId = 'access-denied' | 'identity-endpoint-failures' | 'role-assignment-deleted' | 'dead-lettered-messages';

/** A rule the local Azure evaluates, and the Azure Monitor rule in `infra/` that watches the same condition in Azure. */
export interface AlertRule {
  id: AlertRuleId;
  /** Shown in the portal, on the console and as `essentials.alertRule`. */
  name: string;
  severity: AlertSeverity;
  signalType: AlertSignalType;
  /** `essentials.monitoringService` of the common alert schema. */
  monitoringService: 'Log Alerts V2' | 'Activity Log - Administrative' | 'Platform';
  /** What the rule watches, and when it fires and resolves. */
  description: string;
  /** What to do when it fires. */
  fix: string;
  /** Symbolic name of the Azure alert resource in `infra/modules/alerts.bicep` that watches the same condition (the infra checks hold them together). */
  azureRule: string;
}

/** The local Azure's alert rules (the same conditions as the Azure Monitor rules in `infra/modules/alerts.bicep`). */
export const alertRules: Readonly<Record<AlertRuleId, AlertRule>> = {
  'access-denied': {
    id: 'access-denied',
    name: 'Access denied to the shared identity',
    severity: 'Sev1',
    signalType: 'Log',
    monitoringService: 'Log Alerts V2',
    description:
      'A data plane denied the shared identity (infra/access.json) a data action in the last 5 minutes. One alert per data action and scope; ' +
      'it resolves once the same access succeeds again, or after 5 minutes without a denial.',
    fix: 'Restore the role the denial names (`npm run local-azure -- role assignment reset` re-applies infra/access.json), or add it to infra/access.json.',
    azureRule: 'accessDeniedAlert',
  },
  'identity-endpoint-failures': {
    id: 'identity-endpoint-failures',
    name: 'Managed identity endpoint failing',
    severity: 'Sev1',
    signalType: 'Log',
    monitoringService: 'Log Alerts V2',
    description:
      "A host's token requests failed in the last 5 minutes, or the identity endpoint itself is failing (a fault is injected). " +
      'It resolves once the host gets a token again, or the endpoint recovers, or after 5 minutes without a failure; a host throttled ' +
      'for too many requests (429) gets tokens in between, so its alert resolves only after 5 minutes without throttling.',
    fix:
      'Read the failure reason in the sign-in log; check the host\'s IDENTITY_ENDPOINT, IDENTITY_HEADER and AZURE_CLIENT_ID (its env file). ' +
      'Throttled: keep one credential per process and reuse its tokens.',
    azureRule: 'identityFailureAlert',
  },
  'role-assignment-deleted': {
    id: 'role-assignment-deleted',
    name: 'Role assignment deleted on a resource the system uses',
    severity: 'Sev2',
    signalType: 'Activity Log',
    monitoringService: 'Activity Log - Administrative',
    description:
      'A role assignment was deleted at the scope of a resource in infra/access.json (or a scope above it). It resolves when the same ' +
      'assignment (principal, role, scope) exists again.',
    fix: 'If the deletion was not intended, re-create it (`npm run local-azure -- role assignment reset` for the shared identity).',
    azureRule: 'roleAssignmentDeletedAlert',
  },
  'dead-lettered-messages': {
    id: 'dead-lettered-messages',
    name: 'Dead-lettered messages',
    severity: 'Sev2',
    signalType: 'Metric',
    monitoringService: 'Platform',
    description: 'A Service Bus queue or subscription holds dead-lettered messages (metric DeadletteredMessages > 0). It resolves when its dead-letter queue is empty.',
    fix: 'Peek the dead-letter queue (portal, or `npm run local-azure -- servicebus peek <entity> --dlq`), fix the cause, then resubmit or purge.',
    azureRule: 'deadLetterAlert',
  },
};
