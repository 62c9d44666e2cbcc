import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { LocalAzureConfig, ResourceKey } from '../config/local-azure-config.js';
import { InvalidScopeError, isArmScope, normalizeScope } from '../rbac/scope.js';
import { newGuid, randomToken } from '../util/ids.js';
import { secretEquals } from '../util/secret-compare.js';
import { trimChars } from '../util/trim-chars.js';

/** A managed identity: a service principal whose tokens come from a managed-identity endpoint. */
export interface ManagedIdentity {
  kind: 'userAssigned' | 'systemAssigned';
  /** `id-keyless` for a user-assigned identity, `<host>/system` for a host's system-assigned one. */
  name: string;
  /** Application (client) id: `appid` in tokens, `client_id` / `AZURE_CLIENT_ID` for callers. */
  clientId: string;
  /** Object id of the service principal: `oid`/`sub` in tokens, the assignee of role assignments. */
  principalId: string;
  /** ARM id of the identity (user-assigned) or of its host site (system-assigned): `xms_mirid`. */
  resourceId: string;
}

/** A user of the tenant (a person at the keyboard): the operator, or a user the configuration declares. */
export interface DirectoryUser {
  kind: 'user';
  /** Short name, as the configuration names the user (`operator`, `reader`). */
  name: string;
  /** `<name>@<tenant domain>`: `upn` in tokens, what `login --username` takes. */
  userPrincipalName: string;
  displayName: string;
  /** Object id: `oid` in tokens, the assignee of role assignments. */
  principalId: string;
}

/** Anyone who can hold a role assignment locally: a managed identity (service principal) or a user. */
export type Principal = ManagedIdentity | DirectoryUser;

/** ARM's `principalType` of a principal. */
export function principalTypeOf(principal: Principal): 'User' | 'ServicePrincipal' {
  return principal.kind === 'user' ? 'User' : 'ServicePrincipal';
}

/** How logs and errors name a principal: a user's UPN, an identity's name. */
export function principalNameOf(principal: Principal): string {
  return principal.kind === 'user' ? principal.userPrincipalName : principal.name;
}

/** An App-Service-like host: its identity header and the identities assigned to it. */
export interface Host {
  name: string;
  /** Value the host's processes send in `X-IDENTITY-HEADER` (App Service's `IDENTITY_HEADER`). */
  identityHeader: string;
  /**
   * The unguessable path segment of the host's IMDS base URL (`AZURE_POD_IDENTITY_AUTHORITY_HOST`): whoever
   * knows it can get the host's tokens, so it is as secret as the identity header.
   */
  imdsCapability: string;
  systemAssigned?: ManagedIdentity;
  userAssigned: ManagedIdentity[];
  /** Extra variables for the host's env file. */
  env: Record<string, string>;
}

/** An API registered in the tenant: callers get tokens for its identifier URI. */
export interface AppRegistration {
  name: string;
  appId: string;
  identifierUri: string;
  servicePrincipalId: string;
  appRoles: string[];
}

/** What the directory remembers between starts (generated ids are stable for a given home). */
interface DirectoryState {
  tenantId: string;
  subscriptionId: string;
  /** Epoch seconds, published as `xms_tcdt`. */
  tenantCreatedAt: number;
  identities: Record<string, { clientId: string; principalId: string }>;
  systemIdentities: Record<string, { clientId: string; principalId: string }>;
  identityHeaders: Record<string, string>;
  /** Per host: the path segment of its IMDS base URL. */
  imdsCapabilities: Record<string, string>;
  apps: Record<string, { appId: string; servicePrincipalId: string }>;
  /** Directory users (the operator and the configured users), by name. */
  users: Record<string, { objectId: string }>;
}

const resourceProviders: Record<ResourceKey, string> = {
  serviceBus: 'Microsoft.ServiceBus/namespaces',
  openAi: 'Microsoft.CognitiveServices/accounts',
  vision: 'Microsoft.CognitiveServices/accounts',
  keyVault: 'Microsoft.KeyVault/vaults',
  appInsights: 'Microsoft.Insights/components',
  postgres: 'Microsoft.DBforPostgreSQL/flexibleServers',
};

/**
 * The local tenant: its ids, managed identities, hosts and app registrations, reconciled with the
 * configuration at every start. Ids are generated once per `$LOCAL_AZURE_HOME` and kept; a host's
 * system-assigned identity is created with the host and deleted with it, as in Azure.
 */
export class Directory {
  private constructor(
    private readonly config: LocalAzureConfig,
    private readonly state: DirectoryState,
  ) {}

  /** Loads the state from `file` (creating it on first start) and reconciles it with `config`. */
  static loadOrCreate(file: string, config: LocalAzureConfig): Directory {
    const state: DirectoryState = existsSync(file)
      ? (JSON.parse(readFileSync(file, 'utf8')) as DirectoryState)
      : {
          tenantId: newGuid(),
          subscriptionId: newGuid(),
          tenantCreatedAt: Math.floor(Date.now() / 1000),
          identities: {},
          systemIdentities: {},
          identityHeaders: {},
          imdsCapabilities: {},
          apps: {},
          users: {},
        };
    const reconciled: DirectoryState = {
      ...state,
      identities: pick(state.identities, Object.keys(config.identities), () => ({ clientId: newGuid(), principalId: newGuid() })),
      systemIdentities: pick(
        state.systemIdentities,
        Object.entries(config.hosts)
          .filter(([, host]) => host.systemAssigned)
          .map(([name]) => name),
        () => ({ clientId: newGuid(), principalId: newGuid() }),
      ),
      identityHeaders: pick(state.identityHeaders, Object.keys(config.hosts), () => randomToken(24)),
      // Lowercase hex: MSAL lower-cases the whole IMDS URL before it sends it (UrlString.canonicalizeUri).
      imdsCapabilities: pick(state.imdsCapabilities ?? {}, Object.keys(config.hosts), () => randomBytes(32).toString('hex')),
      apps: pick(state.apps, Object.keys(config.appRegistrations), () => ({ appId: newGuid(), servicePrincipalId: newGuid() })),
      users: pick(state.users ?? {}, [config.operator.name, ...Object.keys(config.users)], () => ({ objectId: newGuid() })),
    };
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(reconciled, null, 2), { mode: 0o600 });
    renameSync(tmp, file);
    return new Directory(config, reconciled);
  }

  get tenantId(): string {
    return this.state.tenantId;
  }

  get subscriptionId(): string {
    return this.state.subscriptionId;
  }

  /** The tenant's initial domain, the part of users' UPNs after `@`. */
  get domain(): string {
    return this.config.tenantDomain;
  }

  get tenantCreatedAt(): number {
    return this.state.tenantCreatedAt;
  }

  /** `/subscriptions/{id}/resourceGroups/{rg}`. */
  get resourceGroupId(): string {
    return `/subscriptions/${this.subscriptionId}/resourceGroups/${this.config.resourceGroup}`;
  }

  /** ARM id of one of the emulated resources. */
  resourceId(key: ResourceKey): string {
    return `${this.resourceGroupId}/providers/${resourceProviders[key]}/${this.config.resources[key].name}`;
  }

  /** Every emulated resource: key, ARM id, type. */
  resources(): { key: ResourceKey; id: string; type: string; name: string }[] {
    return (Object.keys(resourceProviders) as ResourceKey[]).map((key) => ({
      key,
      id: this.resourceId(key),
      type: resourceProviders[key],
      name: this.config.resources[key].name,
    }));
  }

  userAssignedIdentity(name: string): ManagedIdentity | undefined {
    // Own keys only: a name from a request such as `constructor` must not find Object.prototype's.
    if (!Object.hasOwn(this.state.identities, name)) return undefined;
    const ids = this.state.identities[name]!;
    return {
      kind: 'userAssigned',
      name,
      ...ids,
      resourceId: `/subscriptions/${this.subscriptionId}/resourcegroups/${this.config.resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`,
    };
  }

  /** Every managed identity: user-assigned ones, then the hosts' system-assigned ones. */
  identities(): ManagedIdentity[] {
    return [
      ...Object.keys(this.state.identities).map((name) => this.userAssignedIdentity(name)!),
      ...this.hosts().flatMap((host) => (host.systemAssigned ? [host.systemAssigned] : [])),
    ];
  }

  host(name: string): Host | undefined {
    // Own keys only: `/hosts/__proto__/msi/token` found Object.prototype here and failed reading it as a host.
    if (!Object.hasOwn(this.config.hosts, name)) return undefined;
    const config = this.config.hosts[name]!;
    const system = this.state.systemIdentities[name];
    return {
      name,
      identityHeader: this.state.identityHeaders[name]!,
      imdsCapability: this.state.imdsCapabilities[name]!,
      systemAssigned: system && {
        kind: 'systemAssigned',
        name: `${name}/system`,
        ...system,
        resourceId: `/subscriptions/${this.subscriptionId}/resourcegroups/${this.config.resourceGroup}/providers/Microsoft.Web/sites/${name}`,
      },
      userAssigned: config.userAssigned.map((identity) => this.userAssignedIdentity(identity)!),
      env: config.env,
    };
  }

  hosts(): Host[] {
    return Object.keys(this.config.hosts).map((name) => this.host(name)!);
  }

  /**
   * The host whose IMDS capability `capability` is. Every host's capability is compared, each in constant time,
   * so the time taken says nothing about which host (if any) matched or how close a guess was.
   */
  hostByImdsCapability(capability: string): Host | undefined {
    let found: Host | undefined;
    for (const host of this.hosts()) if (secretEquals(capability, host.imdsCapability)) found = host;
    return found;
  }

  /**
   * Finds an identity by name, client id or principal (object) id — what `az` accepts as `--assignee`.
   */
  findIdentity(nameOrId: string): ManagedIdentity | undefined {
    const key = nameOrId.trim().toLowerCase();
    return this.identities().find(
      (identity) => identity.name === key || identity.clientId === key || identity.principalId === key,
    );
  }

  /** The directory's users: the operator first, then the configured users. */
  users(): DirectoryUser[] {
    return [this.config.operator.name, ...Object.keys(this.config.users)].map((name) => {
      const displayName = name === this.config.operator.name ? this.config.operator.displayName : (this.config.users[name]?.displayName ?? name);
      return {
        kind: 'user' as const,
        name,
        userPrincipalName: `${name}@${this.config.tenantDomain}`,
        displayName,
        principalId: this.state.users[name]!.objectId,
      };
    });
  }

  /** The operator user (Owner of the subscription). */
  get operator(): DirectoryUser {
    return this.users()[0]!;
  }

  /** A user by UPN (case-insensitive), short name or object id. */
  findUser(nameUpnOrId: string): DirectoryUser | undefined {
    const key = nameUpnOrId.trim().toLowerCase();
    return this.users().find((user) => user.userPrincipalName.toLowerCase() === key || user.name === key || user.principalId === key);
  }

  /** Any principal by identity name, client id, UPN, user name or object id (identities first, as `--assignee`). */
  findPrincipal(nameOrId: string): Principal | undefined {
    return this.findIdentity(nameOrId) ?? this.findUser(nameOrId);
  }

  /**
   * Turns a scope into an ARM id under the local subscription: an ARM id is taken as it is (it must be in the
   * subscription); `subscription` and `resourceGroup` name those; anything else is the access file's short form
   * `<resource>[/queues/<q>|/topics/<t>[/subscriptions/<s>]]`.
   *
   * @throws {InvalidScopeError} naming what is accepted.
   */
  resolveScope(scope: string): string {
    if (isArmScope(scope)) {
      const normalized = normalizeScope(scope);
      if (normalized.split('/')[2]!.toLowerCase() !== this.subscriptionId) {
        throw new InvalidScopeError(`Scope '${scope}' is not in the local subscription ${this.subscriptionId}.`);
      }
      return normalized;
    }
    const [key, ...rest] = normalizeScope(scope).slice(1).split('/');
    if (rest.length === 0 && key === 'subscription') return `/subscriptions/${this.subscriptionId}`;
    if (rest.length === 0 && key === 'resourceGroup') return this.resourceGroupId;
    const resource = this.resources().find((r) => r.key.toLowerCase() === key?.toLowerCase());
    if (!resource) {
      throw new InvalidScopeError(
        `Scope '${scope}' is neither an ARM id (/subscriptions/…), subscription, resourceGroup, nor <resource>[/…] with resource one of ${this.resources()
          .map((r) => r.key)
          .join(', ')}.`,
      );
    }
    return normalizeScope([resource.id, ...rest].join('/'));
  }

  /**
   * ARM ids of every resource the local subscription holds: the emulated resources, the user-assigned identities
   * and the hosts' sites (what a role assignment's scope may name, besides the subscription and resource group).
   */
  resourceIds(): string[] {
    return [
      ...this.resources().map((r) => r.id),
      ...Object.keys(this.state.identities).map((name) => this.userAssignedIdentity(name)!.resourceId),
      ...this.hosts().map((host) => `${this.resourceGroupId}/providers/Microsoft.Web/sites/${host.name}`),
    ];
  }

  appRegistrations(): AppRegistration[] {
    return Object.entries(this.config.appRegistrations).map(([name, app]) => ({
      name,
      ...this.state.apps[name]!,
      identifierUri: app.identifierUri,
      appRoles: app.appRoles,
    }));
  }

  /** The app registration a token audience (identifier URI or app id) refers to. */
  appRegistrationFor(audience: string): AppRegistration | undefined {
    const key = trimChars(audience, '/', 'end').toLowerCase();
    return this.appRegistrations().find((app) => app.identifierUri.toLowerCase() === key || app.appId === key);
  }

  /** App roles `identity` holds on `app` (the `roles` claim of its tokens for that app). */
  appRolesOf(identity: ManagedIdentity, app: AppRegistration): string[] {
    return this.config.appRoleAssignments
      .filter((grant) => grant.app === app.name && grant.identity === identity.name)
      .flatMap((grant) => grant.roles);
  }
}

function pick<T>(existing: Record<string, T>, names: string[], create: () => T): Record<string, T> {
  return Object.fromEntries(names.map((name) => [name, existing[name] ?? create()]));
}
