import { ArmError } from '../management/arm-error.js';
import { controlPlaneActions as actions, ownerOnly } from '../management/control-plane-actions.js';
import { objectBody, type ManagementRoute } from '../management/management-api.js';
import { InvalidFaultError, type LocalFaults } from './local-faults.js';

/**
 * The management API's fault injection (what `npm run local-azure -- fault …` calls), authorized like the local
 * Azure's other own operations:
 * - `GET /faults`: every target with its mode and effect (a read of the subscription);
 * - `PUT /faults/{target}` with `{"fault": "<mode>", "delayInMs"?: n}`: sets a fault, `none` heals (Owner only).
 * A bad target, mode or delay is a 400 `InvalidFault` naming what is allowed.
 */
export function faultRoutes(faults: LocalFaults, subscriptionId: string): ManagementRoute[] {
  const subscription = `/subscriptions/${subscriptionId}`;
  return [
    {
      method: 'GET',
      pattern: /^\/faults$/,
      access: () => [{ action: actions.subscriptionRead, scope: subscription }],
      handle: () => faults.list(),
    },
    {
      method: 'PUT',
      pattern: /^\/faults\/(?<target>[^/]+)$/,
      access: () => [{ action: actions.faultsWrite, scope: subscription, onlyRoles: ownerOnly }],
      handle: async (request) => {
        const body = await objectBody(request);
        try {
          if (typeof body.fault !== 'string') throw new InvalidFaultError('The body must be {"fault": "<mode>"} (and "delayInMs" for delay).');
          if (body.delayInMs !== undefined && typeof body.delayInMs !== 'number') throw new InvalidFaultError('delayInMs must be a number of milliseconds.');
          return await faults.set(request.params.target!, { mode: body.fault, delayInMs: body.delayInMs });
        } catch (error) {
          if (error instanceof InvalidFaultError) throw new ArmError(400, error.code, error.message);
          throw error;
        }
      },
    },
  ];
}
