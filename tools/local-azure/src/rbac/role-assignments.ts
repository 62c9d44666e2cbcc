import type { DatabaseSync } from 'node:sqlite';
import { deterministicGuid } from '../util/ids.js';
import { findRole, type RoleDefinition } from './built-in-roles.js';
import { normalizeScope } from './scope.js';

/** A role assignment: a principal holds a role at a scope. */
export interface RoleAssignment {
  /** `{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}`, as ARM prints it. */
  id: string;
  /** The assignment's GUID (the last segment of `id`). */
  name: string;
  principalId: string;
  /** `User` or `ServicePrincipal`, as ARM's `principalType`. */
  principalType: PrincipalType;
  roleDefinitionId: string;
  roleDefinitionName: string;
  scope: string;
  /**
   * Where it came from: the access file or the local Azure's configuration (both re-applied at every start),
   * the CLI's `role assignment create`, the ARM-shaped API (`PUT …/roleAssignments/{guid}`), or the portal.
   */
  source: 'access-file' | 'config' | 'cli' | 'api' | 'portal';
  purpose?: string;
  description?: string;
  createdOn: string;
  updatedOn: string;
  /** Object id of who created it (absent for assignments the local Azure applies itself). */
  createdBy?: string;
  updatedBy?: string;
}

export type PrincipalType = 'User' | 'ServicePrincipal';

/** Criteria for listing or deleting assignments (all optional; a scope matches exactly). */
export interface RoleAssignmentFilter {
  principalId?: string;
  role?: RoleDefinition;
  scope?: string;
}

/** What a new assignment needs. */
export interface NewRoleAssignment {
  principalId: string;
  /** **Default**: `ServicePrincipal` (managed identities; users must say `User`). */
  principalType?: PrincipalType;
  role: RoleDefinition;
  scope: string;
  source: RoleAssignment['source'];
  /** The assignment's GUID. Default: derived from scope, principal and role (re-applying is idempotent). */
  name?: string;
  purpose?: string;
  description?: string;
  createdBy?: string;
}

const columns = {
  id: 'TEXT PRIMARY KEY',
  principal_id: 'TEXT NOT NULL',
  role_definition_id: 'TEXT NOT NULL',
  scope: 'TEXT NOT NULL',
  source: 'TEXT NOT NULL',
  purpose: 'TEXT',
  created_on: 'TEXT NOT NULL',
  principal_type: "TEXT NOT NULL DEFAULT 'ServicePrincipal'",
  description: 'TEXT',
  updated_on: 'TEXT',
  created_by: 'TEXT',
  updated_by: 'TEXT',
} as const;

/**
 * Role assignments, persisted in SQLite and cached in memory for the hot authorization path. Access-file and
 * configuration assignments are re-applied at every start, like a redeployment; the others persist until deleted.
 */
export class RoleAssignmentStore {
  private cache: RoleAssignment[] | undefined;
  private readonly changeListeners = new Set<() => void>();
  /** SQLite's `data_version` when the cache was filled: it changes when another connection commits. */
  private cachedVersion: number | undefined;

  constructor(private readonly db: DatabaseSync) {
    db.exec(`CREATE TABLE IF NOT EXISTS role_assignments (${Object.entries(columns).map(([name, type]) => `${name} ${type}`).join(', ')})`);
    // Homes written before a column existed gain it.
    const existing = new Set((db.prepare('PRAGMA table_info(role_assignments)').all() as { name: string }[]).map((c) => c.name));
    for (const [name, type] of Object.entries(columns)) if (!existing.has(name)) db.exec(`ALTER TABLE role_assignments ADD COLUMN ${name} ${type}`);
  }

  /** All assignments (cached). */
  all(): readonly RoleAssignment[] {
    if (!this.cache) {
      this.cachedVersion = this.dataVersion();
      this.cache = (this.db.prepare('SELECT * FROM role_assignments ORDER BY created_on, id').all() as unknown as Row[]).map(fromRow);
    }
    return this.cache;
  }

  /**
   * Picks up changes another process committed to the database (they bypass this store's cache and
   * listeners): when there are any, the cache is dropped and the change listeners run. Cheap (one pragma);
   * data planes call it before re-checking access they granted earlier.
   */
  refresh(): void {
    if (this.cache && this.dataVersion() !== this.cachedVersion) this.changed();
  }

  list(filter: RoleAssignmentFilter = {}): RoleAssignment[] {
    return this.all().filter(
      (a) =>
        (!filter.principalId || a.principalId === filter.principalId) &&
        (!filter.role || a.roleDefinitionId === filter.role.id) &&
        (!filter.scope || a.scope.toLowerCase() === normalizeScope(filter.scope).toLowerCase()),
    );
  }

  /** The assignment with this id (case-insensitive), if any. */
  get(id: string): RoleAssignment | undefined {
    return this.all().find((a) => a.id.toLowerCase() === id.toLowerCase());
  }

  /** The assignment of `role` to `principalId` at exactly `scope`, if any. */
  find(principalId: string, role: RoleDefinition, scope: string): RoleAssignment | undefined {
    return this.list({ principalId, role, scope })[0];
  }

  /** Creates an assignment; creating one that exists (same scope, principal and role) returns the existing one. */
  create(input: NewRoleAssignment): RoleAssignment {
    const scope = normalizeScope(input.scope);
    const existing = this.find(input.principalId, input.role, scope);
    if (existing) return existing;
    const name = input.name ?? deterministicGuid(scope, input.principalId, input.role.id);
    const id = `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`;
    const now = new Date().toISOString();
    this.db
      .prepare(
        'INSERT INTO role_assignments (id, principal_id, role_definition_id, scope, source, purpose, created_on, principal_type, description, updated_on, created_by, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(id, input.principalId, input.role.id, scope, input.source, input.purpose ?? null, now, input.principalType ?? 'ServicePrincipal', input.description ?? null, now, input.createdBy ?? null, input.createdBy ?? null);
    this.changed();
    return this.get(id)!;
  }

  /** Changes an assignment's description (the only property ARM lets a PUT change). */
  updateDescription(id: string, description: string | undefined, updatedBy: string): RoleAssignment {
    this.db.prepare('UPDATE role_assignments SET description = ?, updated_on = ?, updated_by = ? WHERE id = ?').run(description ?? null, new Date().toISOString(), updatedBy, id);
    this.changed();
    return this.get(id)!;
  }

  /** Deletes the assignments matching `filter` (at least one criterion required); returns them. */
  delete(filter: RoleAssignmentFilter & { id?: string }): RoleAssignment[] {
    const victims = filter.id ? this.all().filter((a) => a.id.toLowerCase() === filter.id!.toLowerCase()) : this.list(filter);
    for (const victim of victims) this.db.prepare('DELETE FROM role_assignments WHERE id = ?').run(victim.id);
    if (victims.length) this.changed();
    return victims;
  }

  /** Replaces every assignment of `source` with `assignments` (re-applying the access file or the configuration). */
  replaceSource(source: RoleAssignment['source'], assignments: NewRoleAssignment[]): void {
    this.db.exec('BEGIN');
    try {
      this.db.prepare('DELETE FROM role_assignments WHERE source = ?').run(source);
      this.cache = undefined;
      for (const assignment of assignments) this.create(assignment);
      this.db.exec('COMMIT');
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    } finally {
      this.changed();
    }
  }

  /** Called after every change (caches of decisions subscribe). */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private dataVersion(): number {
    return Number((this.db.prepare('PRAGMA data_version').get() as { data_version: number }).data_version);
  }

  private changed(): void {
    this.cache = undefined;
    for (const listener of this.changeListeners) listener();
  }
}

interface Row {
  id: string;
  principal_id: string;
  principal_type: PrincipalType;
  role_definition_id: string;
  scope: string;
  source: RoleAssignment['source'];
  purpose: string | null;
  description: string | null;
  created_on: string;
  updated_on: string | null;
  created_by: string | null;
  updated_by: string | null;
}

function fromRow(row: Row): RoleAssignment {
  return {
    id: row.id,
    name: row.id.slice(row.id.lastIndexOf('/') + 1),
    principalId: row.principal_id,
    principalType: row.principal_type,
    roleDefinitionId: row.role_definition_id,
    roleDefinitionName: findRole(row.role_definition_id)?.name ?? row.role_definition_id,
    scope: row.scope,
    source: row.source,
    ...(row.purpose ? { purpose: row.purpose } : {}),
    ...(row.description ? { description: row.description } : {}),
    createdOn: row.created_on,
    updatedOn: row.updated_on ?? row.created_on,
    ...(row.created_by ? { createdBy: row.created_by } : {}),
    ...(row.updated_by ? { updatedBy: row.updated_by } : {}),
  };
}
