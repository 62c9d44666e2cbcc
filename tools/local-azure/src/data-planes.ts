import type { DataPlane } from './data-plane.js';
import { openAiDataPlane } from './openai/openai-data-plane.js';
import { postgresDataPlane } from './postgres/postgres-data-plane.js';
import { serviceBusDataPlane } from './servicebus/service-bus-data-plane.js';
import { visionDataPlane } from './vision/vision-data-plane.js';

/** The emulated Azure resources `npm run local-azure` runs, besides Entra ID and RBAC. */
export const dataPlanes: readonly DataPlane[] = [serviceBusDataPlane, openAiDataPlane, visionDataPlane, postgresDataPlane];
