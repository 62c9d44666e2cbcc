import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:net';
import { chmodSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { envFileLine, shellWord } from '@keyless/contracts';
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
import type { ConsoleLog, DatabasePrincipal, DataPlane, RunningDataPlane } from './data-plane.js';
import { Directory } from './entra/directory.js';
import { HomeCredential } from './entra/home-credential.js';
import { entraClientErrorShape, loginEndpoints } from './entra/login-endpoints.js';
import { identityEndpointPaths, isKnownResource, ManagedIdentityEndpoint } from './entra/managed-identity-endpoint.js';
import type { FaultMode } from './faults/fault-catalog.js';
import { LocalFaults } from './faults/local-faults.js';
import { SigningKeys } from './entra/signing-keys.js';
import { TokenEndpoint } from './entra/token-endpoint.js';
import { TokenIssuer } from './entra/token-issuer.js';
import { UserSessions } from './entra/user-sessions.js';
import { guardDefaults, ResourceGuard } from './guard/resource-guard.js';
import { LocalAzureHome } from './home.js';
import { ControlPlaneGuard } from './management/control-plane-guard.js';
import { ManagementApi } from './management/management-api.js';
import { roleAssignmentsApi } from './management/role-assignments-api.js';
import { listen, type BoundListener } from './net/listen.js';
import { answeringClientErrors, listenerOptions } from './http/http-kit.js';
import { PortBook, PortInUseError, type NewPortChoice, type PortChoice } from './net/port-book.js';
import { controlPlaneAuthority } from './portal/operator-authority.js';
import { startPortal, type LocalPortal } from './portal/portal-server.js';
import { entryScope, loadAccessFile } from './rbac/access-file.js';
import { Authorizer } from './rbac/authorizer.js';
import { findRole } from './rbac/built-in-roles.js';
import { RoleAssignmentStore, type NewRoleAssignment } from './rbac/role-assignments.js';
import { processStartMark } from './runtime/process-identity.js';
import { removeRuntimeRecord, writeRuntimeRecord, type RuntimeRecord } from './runtime/runtime-record.js';
import { readStatus } from './runtime/status.js';
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
  /**
   * Abandons the start when aborted (a Ctrl-C or SIGTERM while starting): the data planes give up what they wait on
   * (the PostgreSQL engine's start), everything started is stopped, and `start` rejects with the signal's reason.
   */
  signal?: AbortSignal;
  /**
   * Where a listener with neither a configured nor a kept port gets one: `stable` picks a free port below the OS's
   * range for outgoing connections, so that no client takes it while the local Azure is stopped and a restart keeps
   * it; `system` lets the OS pick (from that range). Default: `stable`. Test processes that never restart a home pass
   * `system`, which leaves the stable range to the ones that do: with many local Azures starting side by side, a
   * stable pick could take a port a stopped one keeps and is about to bind again.
   */
  newPorts?: NewPortChoice;
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

export type { RuntimeInfo } from './runtime/runtime-record.js';

/**
 * The local Azure: Entra ID with managed-identity endpoints, RBAC with audit logs, and the data planes
 * it is given, all sharing one CA. `start` returns once every listener is ready, every host's env file is
 * written and `runtime.json` says ready; `stop` closes everything and removes `runtime.json`.
 *
 * A restart on the same home serves the same endpoints with the same tenant, keys and certificates: each
 * listener binds the port it had before (`ports.json`, see {@link PortBook}) unless the configuration names
 * one. Env files are configuration (they stay after a stop and stay true across restarts); whether it
 * runs is `readStatus` (`npm run local-azure -- status`).
 */
export class LocalAzure {
  private readonly running: RunningDataPlane[] = [];
  private readonly resourceEndpoints = new Map<ResourceKey, string>();
  /** The address clients connect to, per running resource. */
  private readonly resourceAddresses = new Map<ResourceKey, string>();
  private identityListener: BoundListener | undefined;
  private listeners: BoundListener[] = [];
  private principals: readonly DatabasePrincipal[] = [];
  private stopped = false;
  /** The alert rules over the logs, running once the data planes run. */
  alerts: LocalAlerts | undefined;
  /** The portal, running once the alerts run. */
  portal: LocalPortal | undefined;

  private constructor(
    /** Random per start: the management API's anonymous `/health` answers it, which is how `readStatus` knows it is this instance. */
    readonly instanceId: string,
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
    private readonly portBook: PortBook,
    private readonly record: RuntimeRecord,
    readonly endpoints: LocalAzureEndpoints,
  ) {}

  /**
   * Starts the local Azure on `options.home`.
   *
   * @throws {ConfigError} when the configuration or the access file is invalid (naming file, entry, field),
   *   when the home is the root of a git work tree or was written by a newer version, when a local Azure already
   *   runs for the home, or
   *   ({@link PortInUseError}) when a listener's port is taken; with `options.signal`'s reason when it is aborted
   *   before the start is done.
   */
  static async start(options: LocalAzureOptions): Promise<LocalAzure> {
    const log = options.log ?? (() => undefined);
    const home = new LocalAzureHome(options.home);
    const config = parseConfig(options.config ?? {});
    const already = await readStatus(home);
    if (already.earlierVersion) throw new ConfigError(already.detail);
    if (already.state !== 'stopped') {
      throw new ConfigError(
        `A local Azure already runs for ${home.root} (${already.state}, pid ${already.pid}${already.management ? `, management API ${already.management}` : ''}). ` +
          `Stop it first (Ctrl-C in its terminal, or kill ${already.pid}), or set LOCAL_AZURE_HOME to another folder to run a second one.`,
      );
    }
    home.create();
    home.claimFormat();
    const processStart = processStartMark(process.pid);
    const record: RuntimeRecord = {
      pid: process.pid,
      ...(processStart ? { processStart } : {}),
      instanceId: randomUUID(),
      state: 'starting',
      startedAt: new Date().toISOString(),
    };
    writeRuntimeRecord(home.runtimeFile, record);
    let azure: LocalAzure | undefined;
    try {
      const tls = await loadOrCreateServerCredentials(home.tlsDir, { extraNames: [config.network.publicHost] });
      // A retired key stays published while a token it signed can be valid: the longest lifetime plus the skew verifiers allow.
      const keys = await SigningKeys.loadOrCreate(join(home.dataDir, 'signing-keys.json'), () => (Math.max(config.tokenLifetimeSeconds, config.userTokenLifetimeSeconds) + guardDefaults.clockSkewSeconds) * 1000);
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
      const identityEndpoint = new ManagedIdentityEndpoint(directory, issuer, auditLog, faults, config.identityEndpoint.throttling);
      const tokenEndpoint = new TokenEndpoint(directory, issuer, userSessions, credential, auditLog, (resource) => isKnownResource(directory, resource));
      const { bind, publicHost } = config.network;
      const url = (scheme: string, port: number): string => `${scheme}://${publicHost}:${port}`;
      const book = PortBook.load(home.portsFile, options.newPorts);
      azure = new LocalAzure(record.instanceId, home, config, tls, keys, directory, auditLog, roleAssignments, guard, userSessions, identityEndpoint, faults, () => db.close(), log, book, record, {
        identity: '',
        login: '',
        management: '',
        portal: '',
      });
      const self = azure;
      self.applyAccessFile();
      self.applyUserAssignments();
      const limits = listenerOptions(config.network.limits);
      const tlsOptions = { cert: tls.certPem, key: tls.keyPem, ...limits };
      const controlPlane = new ControlPlaneGuard(guard, authorizer, directory, auditLog, () => self.endpoints.login);
      // Data planes add their operator routes to the same API once they run.
      const management = new ManagementApi(controlPlane, log)
        .add(...adminRoutes(self), ...roleAssignmentsApi(directory, roleAssignments, (id) => self.childResourceIds(id)))
        .health(() => ({ status: 'ok', instanceId: self.instanceId }));
      const [identity, login, managementListener] = await settleAll([
        self.bindListener('identity', () => answeringClientErrors(createHttpServer(limits, identityEndpoint.listener(log)), { listener: 'identity', auditLog, log })),
        self.bindListener('login', () =>
          answeringClientErrors(createHttpsServer(tlsOptions, loginEndpoints(directory, keys, () => self.endpoints.login, tokenEndpoint, self.home, log)), { listener: 'login', auditLog, log }, entraClientErrorShape),
        ),
        self.bindListener('management', () => answeringClientErrors(createHttpsServer(tlsOptions, management.listener()), { listener: 'management', auditLog, log })),
      ]);
      // Managed-identity endpoints are plain HTTP on the host's loopback, like App Service's.
      Object.assign(self.endpoints, {
        identity: `http://${publicHost === 'localhost' ? '127.0.0.1' : publicHost}:${identity.port}`,
        login: url('https', login.port),
        management: url('https', managementListener.port),
      });
      const signal = options.signal ?? new AbortController().signal;
      const context = { home, config, directory, guard, auditLog, tls, publicHost, faults, log, signal, listen: (name: string, create: () => Server) => self.bindListener(name, create), databasePrincipals: () => self.principals };
      const planes = options.dataPlanes ?? [];
      const started = await settleAll(
        planes.map(async (plane) => {
          const choice = await book.reserve(plane.resource, configuredPort(config, plane.resource), bind);
          const running = await plane.start({ ...context, bind: { port: choice.port, bind } }).catch(portInUse(plane.resource, choice, book.file));
          book.record(plane.resource, running.port);
          // Here already, so that a failure of another plane stops this one.
          self.running.push(running);
          running.adminRoutes?.(management);
          return running;
        }),
      );
      // A stop asked for while the planes started undoes the start here (by the catch below), one asked for later before ready.
      signal.throwIfAborted();
      // In the configured order, not the order the planes finished starting in: the env files and the state file list
      // each plane's variables and endpoints in this order, and a restart must write the same files.
      self.running.splice(0, self.running.length, ...started);
      started.forEach((running, index) => {
        self.resourceEndpoints.set(planes[index]!.resource, running.summary);
        self.resourceAddresses.set(planes[index]!.resource, running.endpoint ?? running.summary);
      });
      const serviceBus = self.running.find((plane) => plane.serviceBus)?.serviceBus;
      self.alerts = startLocalAlerts({
        db,
        config,
        directory,
        auditLog,
        roleAssignments,
        identityEndpointFault: () => String(faults.get('identity-endpoint').mode),
        ...(serviceBus ? { serviceBus } : {}),
        log,
      });
      self.alerts.adminRoutes(management);
      const portalPort = await book.reserve('portal', configuredPort(config, 'portal'), bind);
      self.portal = await startPortal({
        home,
        directory,
        roleAssignments,
        auditLog,
        alerts: self.alerts,
        ...(serviceBus ? { serviceBus } : {}),
        authority: controlPlaneAuthority(controlPlane, directory),
        tls,
        bind: { port: portalPort.port, bind },
        limits: config.network.limits,
        publicHost,
        sharedIdentity: loadAccessFile(self.accessFilePath).identity,
        sessions: { linkLifetimeInMs: config.portal.linkLifetimeInSeconds * 1000, sessionLifetimeInMs: config.portal.sessionLifetimeInSeconds * 1000 },
        log,
      }).catch(portInUse('portal', portalPort, book.file));
      book.record('portal', Number(new URL(self.portal.url).port));
      self.portal.adminRoutes(management);
      self.endpoints.portal = self.portal.url;
      faults.onChange((target, setting) => {
        log(`[fault] ${target} ${String(setting.mode)}${setting.delayInMs !== undefined ? ` ${setting.delayInMs} ms` : ''}`);
        return target === 'identity-endpoint' ? self.applyIdentityEndpointFault(setting.mode as FaultMode<'identity-endpoint'>) : undefined;
      });
      for (const [target, fault] of Object.entries(config.faults)) await faults.set(target, typeof fault === 'string' ? { mode: fault } : fault);
      signal.throwIfAborted();
      book.save();
      self.writeEnvFiles();
      self.markReady();
      return self;
    } catch (error) {
      if (azure) await azure.stop();
      else removeRuntimeRecord(home.runtimeFile, record.instanceId);
      throw error;
    }
  }

  /** Endpoint summary of an emulated resource, if it runs. */
  resourceEndpoint(key: ResourceKey): string | undefined {
    return this.resourceEndpoints.get(key);
  }

  /**
   * The ARM ids of the child resources of a top-level resource, when a running data plane models them (the Service Bus
   * namespace's queues, topics and subscriptions); undefined otherwise.
   */
  childResourceIds(resourceId: string): string[] | undefined {
    const serviceBus = this.running.find((plane) => plane.serviceBus)?.serviceBus;
    return serviceBus && serviceBus.status().resourceId.toLowerCase() === resourceId.toLowerCase() ? serviceBus.resourceIds() : undefined;
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
      ...Object.assign({}, ...this.running.map((plane) => plane.hostEnv?.(host))),
      ...host.env,
    };
  }

  /** The database principals the access file declares (see {@link DatabasePrincipal}). */
  databasePrincipals(): readonly DatabasePrincipal[] {
    return this.principals;
  }

  /**
   * Re-applies the access file: the shared identity's assignments and database principals become exactly
   * what the file says (like a redeployment); assignments made through the CLI are kept. Returns what was
   * applied.
   */
  applyAccessFile(): { identity: string; principalId: string; applied: number; databasePrincipals: number } {
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
    this.principals = access.databasePrincipals.map((entry) => ({
      resource: entry.resource,
      name: identity.name,
      principalId: identity.principalId,
      clientId: identity.clientId,
      administrator: entry.administrator,
      purpose: entry.purpose,
    }));
    return { identity: identity.name, principalId: identity.principalId, applied: access.entries.length, databasePrincipals: this.principals.length };
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
      this.identityListener = await listen(() => answeringClientErrors(createHttpServer(listenerOptions(this.config.network.limits), this.identityEndpoint.listener(this.log)), { listener: 'identity', auditLog: this.auditLog, log: this.log }), {
        port,
        bind: this.config.network.bind,
      });
      this.log('identity endpoint listening again');
    }
    this.alerts?.engine.evaluate();
  }

  /**
   * Stops every listener and data plane, closes the stores and removes `runtime.json`. The env files stay:
   * the next start serves the same endpoints.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.alerts?.stop();
    removeRuntimeRecord(this.home.runtimeFile, this.instanceId);
    await this.portal?.stop();
    await Promise.all([
      ...this.running.map((plane) => plane.stop()),
      ...this.listeners.map((listener) => listener.close()),
      this.identityListener?.close(),
    ]);
    this.closeDatabase();
  }

  /**
   * Binds a listener on the port {@link PortBook} chooses for `name` (the configured one, else the one it had
   * before, else a free one), records the port it got, and closes it on stop. The local Azure's own listeners
   * and data planes' extra ones (`DataPlaneContext.listen`) are bound here.
   */
  private async bindListener(name: string, create: () => Server): Promise<BoundListener> {
    const choice = await this.portBook.reserve(name, configuredPort(this.config, name), this.config.network.bind);
    const listener = await listen(create, { port: choice.port, bind: this.config.network.bind }).catch(portInUse(name, choice, this.portBook.file));
    if (name === 'identity') this.identityListener = listener;
    else this.listeners.push(listener);
    this.portBook.record(name, listener.port);
    return listener;
  }

  /** Rewrites `runtime.json` as ready: from now on `readStatus` probes the management API's `/health`. */
  private markReady(): void {
    Object.assign(this.record, {
      state: 'ready',
      readyAt: new Date().toISOString(),
      management: this.endpoints.management,
      login: this.endpoints.login,
      tenantId: this.directory.tenantId,
      tenantDomain: this.directory.domain,
      operator: this.directory.operator.userPrincipalName,
      caCertPath: this.tls.caCertPath,
      endpoints: { identity: this.endpoints.identity, login: this.endpoints.login, management: this.endpoints.management, portal: this.endpoints.portal, resources: Object.fromEntries(this.resourceAddresses) },
      ports: this.portBook.entries(),
    } satisfies Partial<RuntimeRecord>);
    writeRuntimeRecord(this.home.runtimeFile, this.record);
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
   * service mounts the folder). Env files of hosts no longer configured are removed.
   */
  private writeEnvFiles(): void {
    const hosts = this.directory.hosts();
    const written = new Set(['operator.env', ...hosts.map((host) => `${host.name}.env`)]);
    for (const file of readdirSync(this.home.envDir)) {
      if (file.endsWith('.tmp') || (file.endsWith('.env') && !written.has(file))) rmSync(join(this.home.envDir, file), { force: true });
    }
    writeAtomic(
      this.home.envFile('operator'),
      [
        "# Written by the local Azure for the operator's tools: the portal's and the management API's addresses (no secrets;",
        `# sign in with \`${this.home.command('npm run local-azure -- login')}\`, open the portal with \`${this.home.command('npm run -s local-azure -- portal')}\`).`,
        ...Object.entries(this.operatorEnv()).map(([key, value]) => envFileLine(key, value)),
        '',
      ].join('\n'),
      0o600,
    );
    for (const host of hosts) {
      const env = this.hostEnv(host.name);
      writeAtomic(this.home.envFile(host.name), envFileText(host.name, this.home.envFile(host.name), env, this.home), 0o600);
      const dir = this.config.hostEnvDirs[host.name];
      if (!dir) continue;
      mkdirSync(dir, { recursive: true });
      const ca = join(dir, 'ca.pem');
      writeAtomic(ca, this.tls.caCertPem, 0o644);
      const file = join(dir, `${host.name}.env`);
      writeAtomic(file, envFileText(host.name, file, { ...env, NODE_EXTRA_CA_CERTS: ca }, this.home), 0o644);
    }
  }
}

function envFileText(hostName: string, file: string, env: Record<string, string>, home: LocalAzureHome): string {
  return [
    `# Written by the local Azure for host "${hostName}": endpoints and ids, and this host's own identity header and`,
    '# IMDS address, which get its tokens and nobody else\'s (like App Service\'s, they belong to this host only).',
    `# It stays true across restarts (same ports, tenant and CA); whether the local Azure runs: \`${home.command('npm run local-azure -- status')}\`.`,
    `# Export it before Node starts, e.g. \`set -a; . ${shellWord(file)}; set +a\` — Node reads NODE_EXTRA_CA_CERTS only at`,
    '# start-up, so `node --env-file` is too late for it.',
    ...Object.entries(env).map(([key, value]) => envFileLine(key, value)),
    '',
  ].join('\n');
}

function writeAtomic(path: string, text: string, mode: number): void {
  writeFileSync(`${path}.tmp`, text, { mode });
  chmodSync(`${path}.tmp`, mode);
  renameSync(`${path}.tmp`, path);
}

/** The port the configuration names for a listener (0 when it names none: the port book decides). */
function configuredPort(config: LocalAzureConfig, name: string): number {
  return (config.network.ports as Record<string, number | undefined>)[name] ?? 0;
}

/** A rejection handler that turns EADDRINUSE on listener `name`'s port into a {@link PortInUseError}. */
function portInUse(name: string, choice: PortChoice, file: string): (error: unknown) => never {
  return (error) => {
    throw (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE' ? new PortInUseError(name, choice.port, choice.source, file, { cause: error }) : error;
  };
}

/** Like Promise.all, but waits for every promise to settle before rejecting (so nothing still binds while the start is undone). */
async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
