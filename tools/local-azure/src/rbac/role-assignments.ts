import type { DatabaseSync } from 'node:sqlite';
import { deterministicGuid } from '../util/ids.js';
import { findRole, type RoleDefinition } from './built-in-roles.js';
import { normalizeScope } from './scope.js';

/** A role assignment: a principal holds a role at a scope. */
export interface RoleAssignment {
  /** `{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}`, as ARM prints it. */
  id: string;
  principalId: string;
  roleDefinitionId: string;
  roleDefinitionName: string;
  scope: string;
  /** Where it came from: the access file, the local Azure's configuration, or the CLI/admin API. */
  source: 'access-file' | 'cli';
  purpose?: string;
  createdOn: string;
}

/** Criteria for listing or deleting assignments (all optional; a scope matches exactly). */
export interface RoleAssignmentFilter {
  principalId?: string;
  role?: RoleDefinition;
  scope?: string;
}

/**
 * Role assignments, persisted in SQLite and cached in memory for the hot authorization path. Access-file
 * assignments are re-applied at every start, like a redeployment; CLI changes persist until then.
 */
export class RoleAssignmentStore {
  private cache: RoleAssignment[] | undefined;
  private readonly changeListeners = new Set<() => void>();
  /** SQLite's `data_version` when the cache was filled: it changes when another connection commits. */
  private cachedVersion: number | undefined;

  constructor(private readonly db: DatabaseSync) {
    db.exec(`CREATE TABLE IF NOT EXISTS role_assignments (
      id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, role_definition_id TEXT NOT NULL,
      scope TEXT NOT NULL, source TEXT NOT NULL, purpose TEXT, created_on TEXT NOT NULL)`);
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

  /** Creates an assignment; creating one that exists returns the existing one (as `az` does). */
  create(input: { principalId: string; role: RoleDefinition; scope: string; source: RoleAssignment['source']; purpose?: string }): RoleAssignment {
    const scope = normalizeScope(input.scope);
    const guid = deterministicGuid(scope, input.principalId, input.role.id);
    const id = `${scope}/providers/Microsoft.Authorization/roleAssignments/${guid}`;
    const existing = this.all().find((a) => a.id === id);
    if (existing) return existing;
    this.db
      .prepare('INSERT INTO role_assignments VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, input.principalId, input.role.id, scope, input.source, input.purpose ?? null, new Date().toISOString());
    this.changed();
    return this.all().find((a) => a.id === id)!;
  }

  /** Deletes the assignments matching `filter` (at least one criterion required); returns them. */
  delete(filter: RoleAssignmentFilter & { id?: string }): RoleAssignment[] {
    const victims = filter.id ? this.all().filter((a) => a.id.toLowerCase() === filter.id!.toLowerCase()) : this.list(filter);
    for (const victim of victims) this.db.prepare('DELETE FROM role_assignments WHERE id = ?').run(victim.id);
    if (victims.length) this.changed();
    return victims;
  }

  /** Replaces every assignment of `source` with `assignments` (re-applying the access file). */
  replaceSource(source: RoleAssignment['source'], assignments: Parameters<RoleAssignmentStore['create']>[0][]): void {
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
  role_definition_id: string;
  scope: string;
  source: RoleAssignment['source'];
  purpose: string | null;
  created_on: string;
}

function fromRow(row: Row): RoleAssignment {
  return {
    id: row.id,
    principalId: row.principal_id,
    roleDefinitionId: row.role_definition_id,
    roleDefinitionName: findRole(row.role_definition_id)?.name ?? row.role_definition_id,
    scope: row.scope,
    source: row.source,
    ...(row.purpose ? { purpose: row.purpose } : {}),
    createdOn: row.created_on,
  };
}
