import type { AccessDenialHint, ServiceBusEntity } from '@keyless/auth';

/**
 * The transport's access-denied boundary. Given an error of a send or a receive and what the transport knows about
 * it (operation, entity), it returns the error to surface instead, or undefined to keep the SDK's own. With
 * `@keyless/auth` in the app, `MessagingModule` passes `AzureClientFactory.explainAccessDenied`: a role refusal
 * becomes an `AccessDeniedError` naming the principal, the role, the entity's scope and the fix.
 */
export type ServiceBusErrorExplainer = (error: unknown, hint: AccessDenialHint) => Error | undefined;

/** `error` as the transport surfaces it: explained when `explain` recognises a role refusal, else unchanged. */
export function explained(explain: ServiceBusErrorExplainer | undefined, error: unknown, operation: 'send' | 'receive', entity: ServiceBusEntity): unknown {
  return explain?.(error, { resource: 'serviceBus', operation, entity }) ?? error;
}
