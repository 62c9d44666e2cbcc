import { entityScopePath, serviceAccess, type EntityRef } from '@keyless/contracts';
import type { InfraProblem } from './infra-problem.js';
import { checkDatabasePrincipals, type DatabasePrincipalDeclaration } from './postgres-checks.js';
import type { Topology } from './topology.js';

/** Resource keys of access.json. */
export type ResourceKey = 'serviceBus' | 'openAi' | 'vision' | 'keyVault' | 'appInsights';

/** A built-in role, as the RBAC knowledge describes it. */
export interface RoleInfo {
  name: string;
  id: string;
}

/** One validated access.json entry. */
export interface AccessGrant {
  role: string;
  roleDefinitionId: string;
  resource: ResourceKey;
  queue?: string;
  topic?: string;
  subscription?: string;
  purpose: string;
}

/**
 * What the checks need to know about Azure RBAC. The local Azure owns this knowledge (its role table and
 * access-file validator); callers pass it in so there is one implementation of each.
 */
export interface RbacKnowledge {
  /** Reads and validates the access file; throws with a message naming the file, entry and field. */
  loadAccessFile(path: string): { identity: string; entries: AccessGrant[]; databasePrincipals?: DatabasePrincipalDeclaration[] };
  /** Built-in roles that grant a data action, least privileged first. */
  rolesGranting(dataAction: string): RoleInfo[];
  /** The data actions the code's operations check. */
  dataActions: {
    serviceBusSend: string;
    serviceBusReceive: string;
    openAiChatCompletions: string;
    openAiEmbeddings: string;
    visionAnalyze: string;
    keyVaultGetSecret: string;
    monitorTelemetryWrite: string;
  };
}

/**
 * Needs of the platform rather than of the code: nothing in `serviceAccess` performs them, App Service and the
 * telemetry exporter do, with the shared identity.
 */
export const platformNeeds = [
  {
    resource: 'keyVault',
    dataAction: 'keyVaultGetSecret',
    reason: 'App Service resolves Key Vault references in app settings with the shared identity (keyVaultReferenceIdentity)',
  },
  {
    resource: 'appInsights',
    dataAction: 'monitorTelemetryWrite',
    reason: 'Application Insights has local auth disabled, so telemetry is accepted only with an Entra token holding Monitoring Metrics Publisher',
  },
] as const satisfies readonly { resource: ResourceKey; dataAction: keyof RbacKnowledge['dataActions']; reason: string }[];

/**
 * Roles that manage resources or grant access, or that include every data action of a service. None of them is
 * ever needed by a service; ids are the built-in definition ids, the same in every tenant.
 */
export const privilegedRoles: readonly RoleInfo[] = [
  { name: 'Owner', id: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635' },
  { name: 'Contributor', id: 'b24988ac-6180-42a0-ab88-20f7382dd24c' },
  { name: 'User Access Administrator', id: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9' },
  { name: 'Role Based Access Control Administrator', id: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168' },
  { name: 'Azure Service Bus Data Owner', id: '090c5cfd-751d-490a-894a-3ce6f1109419' },
  { name: 'Cognitive Services OpenAI Contributor', id: 'a001fd3d-188f-4b5d-821b-7da978bf7442' },
  { name: 'Cognitive Services Contributor', id: '25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68' },
  { name: 'Key Vault Administrator', id: '00482a5a-887f-4fb3-b363-3b7fe8e74483' },
];

/** One role the system needs on one scope, with every reason it is needed. */
export interface RequiredGrant {
  resource: ResourceKey;
  /** Path below the resource: '' (the resource), `queues/q`, `topics/t`, `topics/t/subscriptions/s`. */
  path: string;
  role: RoleInfo;
  dataAction: string;
  reasons: string[];
}

/** The path below the resource an entity or access entry names. */
export function scopePath(entity: { queue?: string; topic?: string; subscription?: string }): string {
  return entityScopePath(entity);
}

function describeScope(resource: ResourceKey, path: string): string {
  return path ? `${resource}/${path}` : resource;
}

/**
 * The grants the system needs, derived from what the code does (`serviceAccess`: sends → Data Sender and
 * receives → Data Receiver on that entity, `openAi.*` → the OpenAI role, `vision.analyze` → the Vision role) plus
 * {@link platformNeeds}; each with its least-privileged built-in role. `services` limits the code's needs to
 * those services (default: all of `serviceAccess`), e.g. to count what one identity per service would need.
 */
export function requiredGrants(rbac: RbacKnowledge, services: readonly string[] = Object.keys(serviceAccess)): RequiredGrant[] {
  const needs: { resource: ResourceKey; path: string; dataAction: string; reason: string }[] = [];
  const entityText = (entity: EntityRef): string => scopePath(entity).replace('queues/', 'queue ').replace('topics/', 'topic ').replace('/subscriptions/', ' subscription ');
  for (const [service, access] of Object.entries(serviceAccess)) {
    if (!services.includes(service)) continue;
    for (const entity of access.sends) {
      needs.push({ resource: 'serviceBus', path: scopePath(entity), dataAction: rbac.dataActions.serviceBusSend, reason: `${service} sends to ${entityText(entity)}` });
    }
    for (const entity of access.receives) {
      needs.push({ resource: 'serviceBus', path: scopePath(entity), dataAction: rbac.dataActions.serviceBusReceive, reason: `${service} receives from ${entityText(entity)}` });
    }
    for (const operation of access.ai) {
      const [resource, dataAction] =
        operation === 'openAi.embeddings'
          ? (['openAi', rbac.dataActions.openAiEmbeddings] as const)
          : operation === 'openAi.chatCompletions'
            ? (['openAi', rbac.dataActions.openAiChatCompletions] as const)
            : (['vision', rbac.dataActions.visionAnalyze] as const);
      needs.push({ resource, path: '', dataAction, reason: `${service} calls ${operation}` });
    }
  }
  for (const need of platformNeeds) {
    needs.push({ resource: need.resource, path: '', dataAction: rbac.dataActions[need.dataAction], reason: need.reason });
  }

  const required = new Map<string, RequiredGrant>();
  for (const need of needs) {
    const role = rbac.rolesGranting(need.dataAction)[0];
    if (!role) throw new Error(`no built-in role grants ${need.dataAction}`);
    const key = `${need.resource}|${need.path}|${role.id}`;
    const existing = required.get(key);
    if (existing) existing.reasons.push(need.reason);
    else required.set(key, { resource: need.resource, path: need.path, role: { name: role.name, id: role.id }, dataAction: need.dataAction, reasons: [need.reason] });
  }
  return [...required.values()];
}

/**
 * Checks access.json: valid (through the local Azure's validator), every scope declared by the topology, every
 * need of the code granted, nothing granted that no need explains, no privileged role.
 */
export function checkAccess(options: { accessPath: string; file: string; topology?: Topology; rbac: RbacKnowledge }): {
  grants?: AccessGrant[];
  identity?: string;
  databasePrincipals?: DatabasePrincipalDeclaration[];
  problems: InfraProblem[];
} {
  const { accessPath, file, topology, rbac } = options;
  const problems: InfraProblem[] = [];
  let loaded: ReturnType<RbacKnowledge['loadAccessFile']>;
  try {
    loaded = rbac.loadAccessFile(accessPath);
  } catch (error) {
    problems.push({
      code: 'access-file-invalid',
      file,
      message: (error as Error).message,
      fix: 'Use the exact display name and definition id of a built-in data-plane role from the role table (libs/contracts/src/azure-roles.ts) and one of the resource keys serviceBus, openAi, vision, keyVault, appInsights.',
    });
    return { problems };
  }
  const grants = loaded.entries;

  if (topology) {
    grants.forEach((grant, i) => {
      if (grant.resource !== 'serviceBus') return;
      const entry = `assignments[${i}]`;
      const declared = grant.queue
        ? topology.queues.some((q) => q.name === grant.queue)
        : grant.topic && grant.subscription
          ? topology.subscriptions.some((s) => s.topic === grant.topic && s.name === grant.subscription)
          : grant.topic
            ? topology.topics.some((t) => t.name === grant.topic)
            : true;
      if (!declared) {
        problems.push({
          code: 'unknown-scope',
          file,
          entry,
          message: `grants "${grant.role}" on ${describeScope('serviceBus', scopePath(grant))}, which servicebus-topology.json does not declare.`,
          fix: `Correct the entity name in ${entry}, or declare the entity in infra/servicebus-topology.json.`,
        });
      }
    });
  }

  const required = requiredGrants(rbac);
  const seen = new Map<string, number>();
  grants.forEach((grant, i) => {
    const entry = `assignments[${i}]`;
    const path = scopePath(grant);
    const key = `${grant.resource}|${path}|${grant.roleDefinitionId}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      problems.push({ code: 'duplicate-grant', file, entry, message: `repeats assignments[${earlier}] ("${grant.role}" on ${describeScope(grant.resource, path)}).`, fix: `Remove ${entry}.` });
      return;
    }
    seen.set(key, i);
    const privileged = privilegedRoles.find((role) => role.id === grant.roleDefinitionId);
    if (privileged) {
      problems.push({
        code: 'privileged-role',
        file,
        entry,
        message: `grants "${privileged.name}", which manages the resource or all of its data; no service needs that.`,
        fix: `Remove ${entry}; grant the narrowest role each operation needs (see infra/README.md).`,
      });
    }
    if (required.some((need) => `${need.resource}|${need.path}|${need.role.id}` === key)) return;
    const narrower = required.filter((need) => need.resource === grant.resource && need.role.id === grant.roleDefinitionId);
    const why = narrower.length
      ? `broader than needed: the code needs "${grant.role}" only on ${narrower.map((need) => describeScope(need.resource, need.path)).join(', ')}`
      : `nothing the code does (libs/contracts/src/services.ts) or the platform needs (infra/src/checks/access-checks.ts) uses "${grant.role}" on ${grant.resource}`;
    problems.push({
      code: 'unjustified-grant',
      file,
      entry,
      message: `"${grant.role}" on ${describeScope(grant.resource, path)} is not justified: ${why}.`,
      fix: `Remove ${entry}, or narrow it to the scope that is needed; if new code needs it, declare that in serviceAccess first.`,
    });
  });

  for (const need of required) {
    const covered = grants.some((grant) => {
      if (grant.resource !== need.resource) return false;
      const path = scopePath(grant);
      const contains = path === '' || need.path === path || need.path.startsWith(`${path}/`);
      return contains && rbac.rolesGranting(need.dataAction).some((role) => role.id === grant.roleDefinitionId);
    });
    if (covered) continue;
    const scope = need.path.split('/');
    const entityFields =
      scope[0] === 'queues'
        ? `, "queue": "${scope[1]}"`
        : scope[0] === 'topics'
          ? `, "topic": "${scope[1]}"${scope[3] ? `, "subscription": "${scope[3]}"` : ''}`
          : '';
    problems.push({
      code: 'missing-grant',
      file,
      message: `${need.reasons.join('; ')}: that needs "${need.role.name}" on ${describeScope(need.resource, need.path)} (data action ${need.dataAction}), and no assignment grants it.`,
      fix: `Add to assignments: {"role": "${need.role.name}", "roleDefinitionId": "${need.role.id}", "resource": "${need.resource}"${entityFields}, "purpose": "${need.reasons.join('; ')}"}.`,
    });
  }
  const databasePrincipals = loaded.databasePrincipals ?? [];
  problems.push(...checkDatabasePrincipals(databasePrincipals, file));
  return { grants, identity: loaded.identity, databasePrincipals, problems };
}
