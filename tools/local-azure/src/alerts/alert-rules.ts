// The alert rules live in @keyless/contracts: one catalog for the local Azure, the portal, the infra checks and the docs.
export { alertRules } from '@keyless/contracts';
export type { AlertRule, AlertRuleId, AlertSeverity, AlertSignalType } from '@keyless/contracts';
