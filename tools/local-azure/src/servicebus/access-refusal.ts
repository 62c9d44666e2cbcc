import type { Directory } from '../entra/directory.js';
import type { Caller } from '../guard/resource-guard.js';

/**
 * Who was refused, the data action and scope they lack, and the command that grants it: the part of a
 * Service Bus refusal (AMQP or management API) that tells a developer what to do.
 */
export function missingRoleText(directory: Directory, caller: Caller, dataAction: string, scope: string, role: string): string {
  const identity = directory.findIdentity(caller.principalId);
  const who = `${identity ? `The identity ${identity.name}` : 'The caller'} (client id ${caller.clientId || 'unknown'}, object id ${caller.principalId})`;
  return (
    `${who} has no role assignment granting ${dataAction} on ${scope} or an enclosing scope. ` +
    `Fix: az role assignment create --assignee-object-id ${caller.principalId} --assignee-principal-type ServicePrincipal --role "${role}" --scope ${scope}`
  );
}
