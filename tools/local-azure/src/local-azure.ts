import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { chmodSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { adminRoutes } from './admin/admin-api.js';
import { startLocalAlerts, type LocalAlerts } from './alerts/local-alerts.js';
import { AuditLog } from './audit/audit-log.js';
import {
  ConfigError,
  parseConfig,
  repoRoot,
  type LocalAzureConfig,
  type LocalAzureConfigInput,
  type ResourceKey,
} from './config/local-azure-config.js';
import type { ConsoleLog, DataPlane, RunningDataPlane } from './data-plane.js';
import { Directory } from './entra/directory.js';
import { HomeCredential } from './entra/home-credential.js';
import { loginEndpoints } from './entra/login-endpoints.js';
import { identityEndpointPaths, isKnownResource, ManagedIdentityEndpoint } from './entra/managed-identity-endpoint.js';
import type { FaultMode } from './faults/fault-catalog.js';
import { LocalFaults } from './faults/local-faults.js';
import { SigningKeys } from './entra/signing-keys.js';
import { TokenEndpoint } from './entra/token-endpoint.js';
import { TokenIssuer } from './entra/token-issuer.js';
import { UserSessions } from './entra/user-sessions.js';
import { ResourceGuard } from './guard/resource-guard.js';
import { LocalAzureHome } from './home.js';
import { ControlPlaneGuard } from './management/control-plane-guard.js';
import { ManagementApi } from './management/management-api.js';
import { roleAssignmentsApi } from './management/role-assignments-api.js';
import { listen, type BoundListener } from './net/listen.js';
import { controlPlaneAuthority } from './portal/operator-authority.js';
import { startPortal, type LocalPortal } from './portal/portal-server.js';
import { entryScope, loadAccessFile } from './rbac/access-file.js';
import { Authorizer } from './rbac/authorizer.js';
import { findRole } from './rbac/built-in-roles.js';
import { RoleAssignmentStore, type NewRoleAssignment } from './rbac/role-assignments.js';
import { loadOrCreateServerCredentials, type ServerCredentials } from './tls/certificate-authority.js';
import { openDatabase } from './util/database.js';

/** Options of {@link LocalAzure.start}. */
export interface LocalAzureOptions {
  /** State folder (`$LOCAL_AZURE_HOME`). */
  home: string;
  /** Configuration (validated; defaults fill what is missing). Default: the built-in defaults. */
  config?: LocalAzureConfigInput;
  /** Data planes to run besides identity and RBAC. Default: none. */
  dataPlanes?: readonly DataPlane[];
  /** Console output. Default: silent. */
  log?: ConsoleLog;
}

/** URLs of the local Azure's own endpoints. */
export interface LocalAzureEndpoints {
  /** Base of the managed-identity endpoints (plain HTTP on loopback, as on App Service). */
  identity: string;
  /** The authority host (`AZURE_AUTHORITY_HOST`): OIDC discovery and JWKS, HTTPS. */
  login: string;
  /** The management API (ARM's counterpart, `AZURE_RESOURCE_MANAGER_ENDPOINT`), HTTPS. */
  management: string;
  /** The portal, HTTPS (`https://<host>:<port>/`). */
  portal: string;
}

/** What `runtime.json` in the home tells the CLI about the running instance (no secrets). */
export interface RuntimeInfo {
  pid: number;
  /** The management API. */
  management: string;
  /** The authority host (token endpoint under `/{tenantId}/oauth2/v2.0/token`). */
  login: string;
  tenantId: string;
  /** The tenant's domain: `login --username reader` means `reader@<tenantDomain>`. */
  tenantDomain: string;
  /** The operator's UPN: who the CLI signs in as unless told otherwise. */
  operator: string;
  caCertPath: string;
}

/**
 * The local Azure: Entra ID with managed-identity endpoints, RBAC with audit logs, and the data planes
 * it is given, all sharing one CA. `start` returns once every listener is ready and every host's env
 * file is written; `stop` closes everything and removes the env files.
 */
export class LocalAzure {
  private readonly running: RunningDataPlane[] = [];
  private readonly resourceEndpoints = new Map<ResourceKey, string>();
  private identityListener: BoundListener | undefined;
  private listeners: BoundListener[] = [];
  private stopped = false;
  /** The alert rules over the logs, running once the data planes run. */
  alerts: LocalAlerts | undefined;
  /** The portal, running once the alerts run. */
  portal: LocalPortal | undefined;

  private constructor(
    readonly home: LocalAzureHome,
    readonly config: LocalAzureConfig,
    readonly tls: ServerCredentials,
    readonly keys: SigningKeys,
    readonly directory: Directory,
    readonly auditLog: AuditLog,
    readonly roleAssignments: RoleAssignmentStore,
    readonly guard: ResourceGuard,
    /** Users' sessions at the token endpoint (refresh tokens, one-time sign-in codes). */
    readonly userSessions: UserSessions,
    private readonly identityEndpoint: ManagedIdentityEndpoint,
    /** Faults injected now (`fault <target> <mode>` on the CLI, `faults` in the config, or a test). */
    readonly faults: LocalFaults,
    private readonly closeDatabase: () => void,
    private readonly log: ConsoleLog,
    readonly endpoints: LocalAzureEndpoints,
  ) {}

  /**
   * Starts the local Azure. Stale env files are removed first, so their presence always means "ready".
   *
   * @throws {ConfigError} when the configuration or the access file is invalid (naming file, entry, field).
   */
  static async start(options: LocalAzureOptions): Promise<LocalAzure> {
    const log = options.log ?? (() => undefined);
    const home = new LocalAzureHome(options.home);
    const config = parseConfig(options.config ?? {});
    removeEnvFiles(home, config);
    const tls = await loadOrCreateServerCredentials(home.tlsDir, { extraNames: [config.network.publicHost] });
    const keys = await SigningKeys.loadOrCreate(join(home.dataDir, 'signing-keys.json'));
    const directory = Directory.loadOrCreate(join(home.dataDir, 'directory.json'), config);
    const db = openDatabase(join(home.dataDir, 'local-azure.db'));
    const auditLog = new AuditLog(db);
    const roleAssignments = new RoleAssignmentStore(db);
    const userSessions = new UserSessions(db);
    const credential = HomeCredential.loadOrCreate(home.homeCredentialFile);
    const authorizer = new Authorizer(roleAssignments, directory, auditLog);
    const guard = new ResourceGuard(directory, keys, authorizer);
    const issuer = new TokenIssuer(directory, keys, () => config.tokenLifetimeSeconds, () => config.userTokenLifetimeSeconds);
    const faults = new LocalFaults();
    const identityEndpoint = new ManagedIdentityEndpoint(directory, issuer, auditLog, faults);
    const tokenEndpoint = new TokenEndpoint(directory, issuer, userSessions, credential, auditLog, (resource) => isKnownResource(directory, resource));
    const { ports, bind, publicHost } = config.network;
    const url = (scheme: string, port: number): string => `${scheme}://${publicHost}:${port}`;

    const azure = new LocalAzure(home, config, tls, keys, directory, auditLog, roleAssignments, guard, userSessions, identityEndpoint, faults, () => db.close(), log, {
      identity: '',
      login: '',
      management: '',
      portal: '',
    });
    try {
      azure.applyAccessFile();
      azure.applyUserAssignments();
      const tlsOptions = { cert: tls.certPem, key: tls.keyPem };
      const controlPlane = new ControlPlaneGuard(guard, authorizer, directory, auditLog, () => azure.endpoints.login);
      // Data planes add their operator routes to the same API once they run.
      const management = new ManagementApi(controlPlane, log).add(...adminRoutes(azure), ...roleAssignmentsApi(directory, roleAssignments));
      const [identity, login, managementListener] = await Promise.all([
        listen(() => createHttpServer(identityEndpoint.listener()), { port: ports.identity, bind }),
        listen(() => createHttpsServer(tlsOptions, loginEndpoints(directory, keys, () => azure.endpoints.login, tokenEndpoint)), { port: ports.login, bind }),
        listen(() => createHttpsServer(tlsOptions, management.listener()), { port: ports.management, bind }),
      ]);
      azure.identityListener = identity;
      azure.listeners.push(login, managementListener);
      // Managed-identity endpoints are plain HTTP on the host's loopback, like App Service's.
      Object.assign(azure.endpoints, {
        identity: `http://${publicHost === 'localhost' ? '127.0.0.1' : publicHost}:${identity.port}`,
        login: url('https', login.port),
        management: url('https', managementListener.port),
      });
      const context = { home, config, directory, guard, auditLog, tls, publicHost, faults, log };
      const planes = await Promise.all(
        (options.dataPlanes ?? []).map(async (plane) => {
          const running = await plane.start({ ...context, bind: { port: ports[plane.resource as keyof typeof ports] ?? 0, bind } });
          return { plane, running };
        }),
      );
      for (const { plane, running } of planes) {
        azure.running.push(running);
        azure.resourceEndpoints.set(plane.resource, running.summary);
        running.adminRoutes?.(management);
      }
      const serviceBus = azure.running.find((plane) => plane.serviceBus)?.serviceBus;
      azure.alerts = startLocalAlerts({
        db,
        config,
        directory,
        auditLog,
        roleAssignments,
        identityEndpointFault: () => String(faults.get('identity-endpoint').mode),
        ...(serviceBus ? { serviceBus } : {}),
        log,
      });
      azure.alerts.adminRoutes(management);
      azure.portal = await startPortal({
        home,
        directory,
        roleAssignments,
        auditLog,
        alerts: azure.alerts,
        ...(serviceBus ? { serviceBus } : {}),
        authority: controlPlaneAuthority(controlPlane, directory),
        tls,
        bind: { port: ports.portal, bind },
        publicHost,
        sharedIdentity: loadAccessFile(azure.accessFilePath).identity,
        sessions: { linkLifetimeInMs: config.portal.linkLifetimeInSeconds * 1000, sessionLifetimeInMs: config.portal.sessionLifetimeInSeconds * 1000 },
        log,
      });
      azure.portal.adminRoutes(management);
      azure.endpoints.portal = azure.portal.url;
      faults.onChange((target, setting) => {
        log(`[fault] ${target} ${String(setting.mode)}${setting.delayInMs !== undefined ? ` ${setting.delayInMs} ms` : ''}`);
        return target === 'identity-endpoint' ? azure.applyIdentityEndpointFault(setting.mode as FaultMode<'identity-endpoint'>) : undefined;
      });
      for (const [target, fault] of Object.entries(config.faults)) await faults.set(target, typeof fault === 'string' ? { mode: fault } : fault);
      azure.writeEnvFiles();
      writeJsonAtomic(home.runtimeFile, {
        pid: process.pid,
        management: azure.endpoints.management,
        login: azure.endpoints.login,
        tenantId: directory.tenantId,
        tenantDomain: directory.domain,
        operator: directory.operator.userPrincipalName,
        caCertPath: tls.caCertPath,
      } satisfies RuntimeInfo);
      return azure;
    } catch (error) {
      await azure.stop();
      throw error;
    }
  }

  /** Endpoint summary of an emulated resource, if it runs. */
  resourceEndpoint(key: ResourceKey): string | undefined {
    return this.resourceEndpoints.get(key);
  }

  /**
   * The identity endpoint URLs of a host, in both shapes. The IMDS base URL holds the host's capability: it is
   * as secret as the identity header and goes into the host's env file only.
   */
  identityEndpointsOf(hostName: string): { identityEndpoint: string; imdsAuthorityHost: string } {
    const host = this.directory.host(hostName);
    if (!host) throw new ConfigError(`no host named "${hostName}"`);
    const paths = identityEndpointPaths(host);
    return { identityEndpoint: `${this.endpoints.identity}${paths.appService}`, imdsAuthorityHost: `${this.endpoints.identity}${paths.imdsAuthorityHost}` };
  }

  /** Everything a process on `host` needs, as written to its env file. */
  hostEnv(hostName: string): Record<string, string> {
    const host = this.directory.host(hostName);
    if (!host) throw new ConfigError(`no host named "${hostName}"`);
    const clientId = host.userAssigned[0]?.clientId;
    const identity = this.identityEndpointsOf(hostName);
    return {
      IDENTITY_ENDPOINT: identity.identityEndpoint,
      IDENTITY_HEADER: host.identityHeader,
      AZURE_POD_IDENTITY_AUTHORITY_HOST: identity.imdsAuthorityHost,
      ...(clientId ? { AZURE_CLIENT_ID: clientId } : {}),
      AZURE_TENANT_ID: this.directory.tenantId,
      AZURE_AUTHORITY_HOST: this.endpoints.login,
      AZURE_RESOURCE_MANAGER_ENDPOINT: this.endpoints.management,
      NODE_EXTRA_CA_CERTS: this.tls.caCertPath,
      // The resources with no local data plane, by ARM id: the access doctor's check-access view reads the
      // identity's role assignments there (the data planes add their own *_RESOURCE_ID beside their endpoints).
      AZURE_KEY_VAULT_RESOURCE_ID: this.directory.resourceId('keyVault'),
      APPLICATIONINSIGHTS_RESOURCE_ID: this.directory.resourceId('appInsights'),
      ...Object.assign({}, ...this.running.map((plane) => plane.env)),
      ...host.env,
    };
  }

  /**
   * Re-applies the access file: the shared identity's assignments become exactly what the file says
   * (like a redeployment); assignments made through the CLI are kept. Returns what was applied.
   */
  applyAccessFile(): { identity: string; principalId: string; applied: number } {
    const path = this.accessFilePath;
    const access = loadAccessFile(path);
    const identity = this.directory.userAssignedIdentity(access.identity);
    if (!identity) {
      throw new ConfigError(`${path}: identity: "${access.identity}" is not a user-assigned identity of the local Azure (configured: ${Object.keys(this.config.identities).join(', ')})`);
    }
    this.roleAssignments.replaceSource(
      'access-file',
      access.entries.map((entry) => ({
        principalId: identity.principalId,
        role: entry.definition,
        scope: entryScope(entry, this.directory.resourceId(entry.resource)),
        source: 'access-file' as const,
        purpose: entry.purpose,
      })),
    );
    return { identity: identity.name, principalId: identity.principalId, applied: access.entries.length };
  }

  /**
   * Re-applies the role assignments of the directory's users: the operator's (Owner of the subscription, Azure
   * Service Bus Data Owner on the namespace) and those the configuration gives further users. Like the access
   * file, at every start: an operator who removed their own Owner assignment gets it back with a restart.
   */
  applyUserAssignments(): void {
    const [operator, ...others] = this.directory.users();
    const assignment = (principalId: string, role: string, scope: string): NewRoleAssignment => ({
      principalId,
      principalType: 'User',
      role: findRole(role)!,
      scope: this.directory.resolveScope(scope),
      source: 'config',
    });
    this.roleAssignments.replaceSource('config', [
      assignment(operator!.principalId, 'Owner', 'subscription'),
      assignment(operator!.principalId, 'Azure Service Bus Data Owner', 'serviceBus'),
      ...others.flatMap((user) => (this.config.users[user.name]?.roleAssignments ?? []).map((a) => assignment(user.principalId, a.role, a.scope))),
    ]);
  }

  /** The access file (`infra/access.json` unless configured). */
  get accessFilePath(): string {
    return isAbsolute(this.config.accessFile) ? this.config.accessFile : resolve(repoRoot, this.config.accessFile);
  }

  /** Makes the identity endpoint misbehave (`error`, `garbage`, `hang`, `delay`), stop listening (`stopped`), or recover (`none`). */
  async setIdentityEndpointFault(fault: FaultMode<'identity-endpoint'>, delayInMs?: number): Promise<void> {
    await this.faults.set('identity-endpoint', { mode: fault, delayInMs });
  }

  /** Closes or re-opens the identity listener as the `identity-endpoint` fault says (the other modes act per request). */
  private async applyIdentityEndpointFault(fault: FaultMode<'identity-endpoint'>): Promise<void> {
    if (fault === 'stopped') {
      await this.identityListener?.close();
      this.identityListener = undefined;
      this.log('identity endpoint stopped (fault injected)');
      this.alerts?.engine.evaluate();
      return;
    }
    if (!this.identityListener && !this.stopped) {
      const port = Number(new URL(this.endpoints.identity).port);
      this.identityListener = await listen(() => createHttpServer(this.identityEndpoint.listener()), { port, bind: this.config.network.bind });
      this.log('identity endpoint listening again');
    }
    this.alerts?.engine.evaluate();
  }

  /** Stops every listener and data plane, removes the env files, and closes the stores. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.alerts?.stop();
    removeEnvFiles(this.home, this.config);
    await this.portal?.stop();
    rmSync(this.home.runtimeFile, { force: true });
    await Promise.all([
      ...this.running.map((plane) => plane.stop()),
      ...this.listeners.map((listener) => listener.close()),
      this.identityListener?.close(),
    ]);
    this.closeDatabase();
  }

  /** What the operator's tools need (the portal's and the management API's addresses), as written to `env/operator.env`. */
  operatorEnv(): Record<string, string> {
    return {
      LOCAL_AZURE_PORTAL_URL: this.endpoints.portal,
      AZURE_RESOURCE_MANAGER_ENDPOINT: this.endpoints.management,
      AZURE_AUTHORITY_HOST: this.endpoints.login,
      AZURE_TENANT_ID: this.directory.tenantId,
      NODE_EXTRA_CA_CERTS: this.tls.caCertPath,
    };
  }

  /**
   * Writes each host's env file into the home (mode 0600), and, for hosts with a `hostEnvDirs` folder, a copy
   * there beside a copy of the CA certificate (mode 0644: the service reading it runs as another user; only that
   * service mounts the folder).
   */
  private writeEnvFiles(): void {
    writeAtomic(
      this.home.envFile('operator'),
      [
        "# Written by the local Azure for the operator's tools: the portal's and the management API's addresses (no secrets;",
        '# sign in with `npm run local-azure -- login`, open the portal with `npm run -s local-azure -- portal`).',
        ...Object.entries(this.operatorEnv()).map(([key, value]) => `${key}=${value}`),
        '',
      ].join('\n'),
      0o600,
    );
    for (const host of this.directory.hosts()) {
      const env = this.hostEnv(host.name);
      writeAtomic(this.home.envFile(host.name), envFileText(host.name, this.home.envFile(host.name), env), 0o600);
      const dir = this.config.hostEnvDirs[host.name];
      if (!dir) continue;
      mkdirSync(dir, { recursive: true });
      const ca = join(dir, 'ca.pem');
      writeAtomic(ca, this.tls.caCertPem, 0o644);
      const file = join(dir, `${host.name}.env`);
      writeAtomic(file, envFileText(host.name, file, { ...env, NODE_EXTRA_CA_CERTS: ca }), 0o644);
    }
  }
}

function envFileText(hostName: string, file: string, env: Record<string, string>): string {
  return [
    `# Written by the local Azure for host "${hostName}": endpoints and ids, and this host's own identity header and`,
    '# IMDS address, which get its tokens and nobody else\'s (like App Service\'s, they belong to this host only).',
    `# Export it before Node starts, e.g. \`set -a; . ${file}; set +a\` — Node reads NODE_EXTRA_CA_CERTS only at`,
    '# start-up, so `node --env-file` is too late for it.',
    ...Object.entries(env).map(([key, value]) => `${key}=${value}`),
    '',
  ].join('\n');
}

function writeAtomic(path: string, text: string, mode: number): void {
  writeFileSync(`${path}.tmp`, text, { mode });
  chmodSync(`${path}.tmp`, mode);
  renameSync(`${path}.tmp`, path);
}

/** Removes the env files (home and per-host folders), so their presence always means "ready". */
function removeEnvFiles(home: LocalAzureHome, config: LocalAzureConfig): void {
  for (const file of readdirSync(home.envDir)) {
    if (file.endsWith('.env') || file.endsWith('.tmp')) rmSync(join(home.envDir, file), { force: true });
  }
  for (const [host, dir] of Object.entries(config.hostEnvDirs)) rmSync(join(dir, `${host}.env`), { force: true });
}

function writeJsonAtomic(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(value, null, 2));
  renameSync(`${path}.tmp`, path);
}
