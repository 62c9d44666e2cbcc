import { compileSqlAction, compileSqlFilter, SqlSyntaxError, type FilterInput, type SqlAction, type SqlParameterValue, type SystemPropertyName } from './sql-filter.js';

/** A value a correlation filter compares an application property with. */
export type CorrelationPropertyValue = string | number | boolean | Date;

/** A correlation filter: every given field must equal the message's (properties: by value). */
export interface CorrelationFilterSpec {
  type: 'correlation';
  correlationId?: string;
  messageId?: string;
  to?: string;
  replyTo?: string;
  /** The message's subject (Service Bus names it Label in filters). */
  label?: string;
  sessionId?: string;
  replyToSessionId?: string;
  contentType?: string;
  properties?: Record<string, CorrelationPropertyValue>;
}

/** A rule's filter as it is created and stored: SQL, correlation, or the constant true and false filters. */
export type RuleFilterSpec =
  | { type: 'sql'; expression: string; parameters?: Record<string, SqlParameterValue> }
  | CorrelationFilterSpec
  | { type: 'true' }
  | { type: 'false' };

/** A rule's SQL action as it is created and stored. */
export interface RuleActionSpec {
  expression: string;
  parameters?: Record<string, SqlParameterValue>;
}

/** A subscription rule as it is created and stored. */
export interface RuleSpec {
  name: string;
  filter: RuleFilterSpec;
  action?: RuleActionSpec;
}

/** A subscription rule, compiled for routing. */
export interface RuleDefinition extends RuleSpec {
  /** Epoch ms. */
  createdAt: number;
  /** How the operator view names the filter. */
  filterType: 'Sql' | 'Correlation' | 'True' | 'False';
  /** The filter as the operator view prints it. */
  filterText: string;
  matches(input: FilterInput): boolean;
  compiledAction?: SqlAction;
}

/** Service Bus's limit on the length of a SQL filter or action expression. */
const maxExpressionLength = 1024;

/** The rule every new subscription gets when none is given: it matches every message. */
export const defaultRuleName = '$Default';

/** Correlation filter fields and the system property each compares (the field order of the AMQP encoding). */
export const correlationFields = [
  ['correlationId', 'CorrelationId'],
  ['messageId', 'MessageId'],
  ['to', 'To'],
  ['replyTo', 'ReplyTo'],
  ['label', 'Label'],
  ['sessionId', 'SessionId'],
  ['replyToSessionId', 'ReplyToSessionId'],
  ['contentType', 'ContentType'],
] as const satisfies readonly (readonly [keyof CorrelationFilterSpec, SystemPropertyName])[];

/** Whether a correlation filter gives no field to match (Service Bus refuses those). */
export function isEmptyCorrelationFilter(filter: CorrelationFilterSpec): boolean {
  return correlationFields.every(([field]) => filter[field] === undefined) && !Object.keys(filter.properties ?? {}).length;
}

/**
 * Compiles a rule for routing.
 *
 * @throws {SqlSyntaxError} when the SQL filter or action does not parse (its message says where).
 */
export function compileRule(spec: RuleSpec, createdAt: number): RuleDefinition {
  for (const expression of [spec.filter.type === 'sql' ? spec.filter.expression : '', spec.action?.expression ?? '']) {
    if (expression.length > maxExpressionLength) {
      throw new SqlSyntaxError(maxExpressionLength, `the expression is ${expression.length} characters long; Service Bus allows ${maxExpressionLength}`);
    }
  }
  const action = spec.action ? compileSqlAction(spec.action.expression, spec.action.parameters) : undefined;
  const base = { ...spec, createdAt, ...(action ? { compiledAction: action } : {}) };
  const filter = spec.filter;
  switch (filter.type) {
    case 'true':
      return { ...base, filterType: 'True', filterText: '1=1', matches: () => true };
    case 'false':
      return { ...base, filterType: 'False', filterText: '1=0', matches: () => false };
    case 'sql': {
      const compiled = compileSqlFilter(filter.expression, filter.parameters);
      return { ...base, filterType: 'Sql', filterText: filter.expression, matches: (input) => compiled.matches(input) };
    }
    case 'correlation': {
      const wanted = correlationFields.flatMap(([field, system]) => (filter[field] === undefined ? [] : [[system, filter[field]] as const]));
      const properties = Object.entries(filter.properties ?? {});
      return {
        ...base,
        filterType: 'Correlation',
        filterText: [...wanted, ...properties].map(([key, value]) => `${key}=${value instanceof Date ? value.toISOString() : String(value)}`).join(', '),
        // Service Bus compares correlation fields as exact (case-sensitive) strings, properties by value.
        matches: (input) =>
          wanted.every(([key, value]) => input.system[key] === value) && properties.every(([key, value]) => sameValue(input.user[key], value)),
      };
    }
  }
}

/** The `$Default` rule: a true filter and no action. */
export function defaultRule(createdAt: number): RuleDefinition {
  return compileRule({ name: defaultRuleName, filter: { type: 'true' } }, createdAt);
}

/** The creatable part of a rule (what is stored). */
export function ruleSpecOf(rule: RuleDefinition): RuleSpec {
  return { name: rule.name, filter: rule.filter, ...(rule.action ? { action: rule.action } : {}) };
}

function sameValue(actual: unknown, wanted: CorrelationPropertyValue): boolean {
  const left = actual instanceof Date ? actual.getTime() : typeof actual === 'bigint' ? Number(actual) : actual;
  const right = wanted instanceof Date ? wanted.getTime() : wanted;
  return left === right;
}
