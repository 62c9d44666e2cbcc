import type { DataPlane } from './data-plane.js';
import { serviceBusDataPlane } from './servicebus/service-bus-data-plane.js';

/** The emulated Azure resources `npm run local-azure` runs, besides Entra ID and RBAC. */
export const dataPlanes: readonly DataPlane[] = [serviceBusDataPlane];
