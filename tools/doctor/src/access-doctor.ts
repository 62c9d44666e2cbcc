import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AzureClientFactory, AzureIdentityService, isAccessDeniedError, isAuthError, isUnexpectedImageAnalysisResponse, type AccessDeniedError, type PostgresPool, type ServiceBusClient, type WellKnownAudience } from '@keyless/auth';
import { AccessDiagnostics, builtInRoles, isDatabaseAccessDeniedError, knownDataActions, leastPrivilegedRoleFor, readTokenClaims, resolveAuthOptions, wellKnownAudiences, type AccessDenialHint, type ServiceBusEntity } from '@keyless/auth/diagnostics';
import { entityScope, entityScopePath, serviceAccess, type EntityRef } from '@keyless/contracts';
import { isDatabaseUnavailable, migrationsTable } from '@keyless/database';
import type { LoggerService } from '@nestjs/common';
import { checkAccess, type AccessFileEntry, type CheckAccessReport } from './check-access.js';
import { DoctorError, doctorDefaults, localAzureFix, type DoctorOptions } from './doctor-options.js';
import { probeImage } from './probe-image.js';

/**
 * What a probe found.
 * - `ok`: the call succeeded.
 * - `missing-role`: the data plane refused the call for lack of a role.
 * - `propagation-pending`: refused, but access.json grants the role and it was granted less than ten minutes ago.
 * - `identity-not-assigned`: the identity endpoint does not know the identity on this host.
 * - `endpoint-unreachable`: the identity endpoint or the resource could not be reached in time.
 * - `missing-principal`: the database has no principal (login role) for the identity.
 * - `missing-grant`: the database principal lacks a privilege on a table or on schema `public`.
 * - `missing-extension`: pgvector is not installed or not allow-listed on the database server.
 * - `not-configured`: the endpoint or deployment variable is not set, so nothing was called.
 * - `failed`: any other failure (the detail says what).
 */
export type ProbeStatus =
  | 'ok'
  | 'missing-role'
  | 'propagation-pending'
  | 'identity-not-assigned'
  | 'endpoint-unreachable'
  | 'missing-principal'
  | 'missing-grant'
  | 'missing-extension'
  | 'not-configured'
  | 'failed';

/** The resource a probe exercises (`identity`: a token request). */
export type ProbeResource = 'identity' | 'serviceBus' | 'openAi' | 'vision' | 'postgres';

/** One row of the doctor's report. */
export interface ProbeResult {
  resource: ProbeResource;
  /** What was done, e.g. `peek queue recommendation-requests`. */
  check: string;
  /** The built-in role the call needs (none for token requests). */
  roleNeeded?: string;
  /** The data action the call exercises (none for token requests). */
  dataAction?: string;
  /** ARM scope of that role, when the resource id is configured. */
  scope?: string;
  status: ProbeStatus;
  /** What went wrong, in the words of the platform. */
  detail?: string;
  /** What fixes it: a command, or what to set. */
  fix?: string;
  /** The same fix for the local Azure's CLI, when running against it. */
  localFix?: string;
  durationInMs: number;
}

/** The doctor's findings. */
export interface DoctorReport {
  identity: { clientId: string; principalId?: string };
  /** True when every probe is `ok` and, with `--check-access`, no data action access.json grants is missing. */
  ok: boolean;
  results: ProbeResult[];
  /** With `--check-access`: the identity's effective data actions on each scope, against access.json. */
  checkAccess?: CheckAccessReport;
}

/** The audiences the probes get a token for (ARM only with `--check-access`: it reads the role assignments). */
const audienceOf = (name: WellKnownAudience): { name: WellKnownAudience; resource: string } => ({ name, resource: wellKnownAudiences[name].resource });
const dataPlaneAudiences = (['serviceBus', 'cognitiveServices', 'keyVault', 'postgres'] as const).map(audienceOf);
const resourceManagerAudience = audienceOf('resourceManager');

/**
 * The tables of the shared database: the migrations record, the handled-message store (recommendation, vision) and
 * the catalog (recommendation). The services create them at start.
 */
const databaseTables = [migrationsTable, 'messaging_handled_messages', 'catalog_products', 'catalog_vision'] as const;

/** Node and AMQP error codes that mean "could not reach it", not "refused". */
const unreachableCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'ServiceCommunicationError', 'ServiceTimeout', 'IdentityEndpointUnreachable', 'IdentityEndpointTimeout']);

/** Keeps the auth library's warnings and errors (on stderr), drops its informational lines. */
const quietLogger: LoggerService = {
  log: () => undefined,
  warn: (message: unknown) => process.stderr.write(`${String(message)}\n`),
  error: (message: unknown) => process.stderr.write(`${String(message)}\n`),
};

class ProbeTimeoutError extends Error {
  override readonly name = 'ProbeTimeoutError';
}

/** A probe's own finding (a missing grant or extension), with its fix. */
class ProbeFinding extends Error {
  override readonly name = 'ProbeFinding';

  constructor(readonly finding: Pick<ProbeResult, 'status' | 'detail' | 'fix' | 'localFix'>) {
    super(finding.detail);
  }
}

/**
 * Runs every probe for the identity configured in `options` and reports each: a token per audience the system
 * uses, a peek on every entity the services receive from, a short-lived send to the diagnostics queue, a tiny
 * embeddings call, a tiny chat call and a tiny image analysis. Same code against the local Azure and Azure.
 * Never throws for a failed probe; throws {@link DoctorError} only when the repository files cannot be read.
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const access = readJson<{ assignments: AccessFileEntry[] }>(join(options.repoRoot, 'infra/access.json'));
  const topology = readJson<{ UserConfig: { Namespaces: { Queues?: { Name: string; Properties?: { RequiresSession?: boolean } }[] }[] } }>(
    join(options.repoRoot, 'infra/servicebus-topology.json'),
  );
  const sessionQueues = new Set((topology.UserConfig.Namespaces[0]?.Queues ?? []).filter((q) => q.Properties?.RequiresSession).map((q) => q.Name));

  const resolved = resolveAuthOptions({
    clientId: options.clientId,
    // The report is the output; the library's own log lines would interleave with it (and break --json).
    logger: quietLogger,
    startupAccessCheck: false,
    tokenRequestTimeoutInMs: options.probeTimeoutInMs,
    maxRetries: 1,
    resources: {
      ...(options.serviceBus ? { serviceBus: options.serviceBus } : {}),
      ...(options.postgres?.user ? { postgres: options.postgres } : {}),
      ...(options.openAi ? { openAi: { endpoint: options.openAi.endpoint, ...pick(options.openAi, 'resourceId', 'apiVersion') } } : {}),
      ...(options.vision ? { vision: options.vision } : {}),
    },
  });
  const identity = new AzureIdentityService(resolved);
  const diagnostics = new AccessDiagnostics(resolved, identity);
  const clients = new AzureClientFactory(resolved, identity, diagnostics);
  const results: ProbeResult[] = [];
  let principalId: string | undefined;
  let accessView: CheckAccessReport | undefined;

  const probe = async (
    row: Omit<ProbeResult, 'status' | 'durationInMs'>,
    call: () => Promise<unknown>,
    hint: AccessDenialHint & { accessPath?: string; accessResource?: string } = {},
  ): Promise<ProbeResult> => {
    const started = performance.now();
    let result: ProbeResult;
    try {
      await withDeadline(call(), options.probeTimeoutInMs);
      result = { ...row, status: 'ok', durationInMs: 0 };
    } catch (error) {
      result = { ...row, ...classify(error, hint, row), durationInMs: 0 };
    }
    result.durationInMs = Math.round(performance.now() - started);
    results.push(result);
    return result;
  };

  const classify = (error: unknown, hint: AccessDenialHint & { accessPath?: string; accessResource?: string }, row: Omit<ProbeResult, 'status' | 'durationInMs'>): Pick<ProbeResult, 'status' | 'detail' | 'fix' | 'localFix'> => {
    if (error instanceof ProbeFinding) return { ...error.finding, ...(options.localAzure ? {} : { localFix: undefined }) };
    if (isDatabaseAccessDeniedError(error)) {
      principalId ??= error.principal.objectId;
      return { status: 'missing-principal', detail: error.detail, fix: error.fix, ...(options.localAzure ? { localFix: error.localFix } : {}) };
    }
    if (row.resource === 'postgres' && isDatabaseUnavailable(error)) {
      return { status: 'endpoint-unreachable', detail: describe(error), fix: `Check that ${endpointVariable('postgres')} points at the server and that it is reachable from here (network, firewall rules of the flexible server, private endpoint).` };
    }
    const denial: AccessDeniedError | undefined = isAccessDeniedError(error) ? error : diagnostics.explain(error, hint);
    if (denial) {
      principalId ??= denial.principal.objectId;
      const granted = access.assignments.some((entry) => entry.role === denial.role.name && entry.resource === hint.accessResource && entityScopePath(entry) === (hint.accessPath ?? ''));
      const pendingUntil = options.grantedAt ? new Date(options.grantedAt.getTime() + doctorDefaults.propagationWindowInMs) : undefined;
      if (granted && pendingUntil && pendingUntil > options.now) {
        return {
          status: 'propagation-pending',
          detail: denial.detail,
          fix: `Wait: access.json grants "${denial.role.name}" and roles were granted at ${options.grantedAt!.toISOString()}; Azure applies new assignments within about ten minutes. Re-run after ${pendingUntil.toISOString()}.`,
        };
      }
      return {
        status: 'missing-role',
        detail: `${denial.detail}${granted ? ' (access.json grants this role: the assignment was removed or not deployed)' : ' (access.json does not grant this role: add it there too)'}`,
        fix: denial.fixCommand,
        ...(options.localAzure ? { localFix: localAzureFix(options, denial.localFixCommand) } : {}),
      };
    }
    if (isAuthError(error) && error.code === 'IdentityNotAssigned') {
      return { status: 'identity-not-assigned', detail: error.message, fix: `Assign the user-assigned identity with client id ${options.clientId} to this host (az webapp identity assign --identities <identity resource id>), or run the doctor where it is assigned.` };
    }
    const code = errorCode(error);
    if (error instanceof ProbeTimeoutError || (code !== undefined && unreachableCodes.has(code))) {
      return { status: 'endpoint-unreachable', detail: describe(error), fix: `Check that ${endpointVariable(row.resource)} points at the resource and that it is reachable from here (network, firewall, private endpoint).` };
    }
    const httpStatus = (error as { status?: unknown } | undefined)?.status;
    if (typeof httpStatus === 'number' && (httpStatus === 429 || httpStatus >= 500)) {
      // A role refusal is a 401/403: a throttled or failed call says nothing against the role.
      const what = httpStatus === 429 ? 'throttled the call (429): wait for its quota to refill (retry-after) or raise the quota' : `failed the call (${httpStatus}): retry later, and check the resource's health in Azure`;
      return { status: 'failed', detail: describe(error), fix: `Not an access problem: the resource ${what}.` };
    }
    return { status: 'failed', detail: describe(error) };
  };

  try {
    // Tokens first: without one, the data-plane probes of that audience cannot tell anything new.
    const tokenFailures = new Map<WellKnownAudience, ProbeResult>();
    // Every audience asks the same identity endpoint: once it does not answer, asking again for each audience only
    // makes the operator wait a probe's whole budget per audience (a minute in all) for the same finding.
    let unanswered: ProbeResult | undefined;
    for (const audience of options.checkAccess ? [...dataPlaneAudiences, resourceManagerAudience] : dataPlaneAudiences) {
      const check = `token for ${audience.resource}`;
      if (unanswered) {
        const skippedRow: ProbeResult = { resource: 'identity', check, status: unanswered.status, detail: `not requested: the identity endpoint did not answer the request for a ${unanswered.check}`, ...(unanswered.fix ? { fix: unanswered.fix } : {}), durationInMs: 0 };
        results.push(skippedRow);
        tokenFailures.set(audience.name, skippedRow);
        continue;
      }
      const result = await probe({ resource: 'identity', check }, async () => {
        const token = await identity.getToken(audience.name);
        principalId ??= readTokenClaims(token.token)?.objectId;
      });
      if (result.status !== 'ok') tokenFailures.set(audience.name, result);
      if (result.status === 'endpoint-unreachable') unanswered = result;
    }
    const skipped = (resource: ProbeResource, check: string, audience: WellKnownAudience, extra: Partial<ProbeResult>): boolean => {
      const failure = tokenFailures.get(audience);
      if (!failure) return false;
      results.push({ resource, check, ...extra, status: failure.status, detail: `not called: no token for ${failure.check.replace('token for ', '')}`, durationInMs: 0 });
      return true;
    };
    const notConfigured = (resource: ProbeResource, check: string, variable: string, extra: Partial<ProbeResult> = {}): void => {
      results.push({ resource, check, ...extra, status: 'not-configured', fix: `Set ${variable} (an App Service setting; locally, the host's env file).`, durationInMs: 0 });
    };

    // Service Bus: a peek on every entity a service receives from, a short-lived send to the diagnostics queue.
    const receiverRole = roleName(knownDataActions.serviceBusReceive);
    const senderRole = roleName(knownDataActions.serviceBusSend);
    const receiveEntities = distinct(Object.entries(serviceAccess).flatMap(([service, needs]): readonly EntityRef[] => (service === 'doctor' ? [] : needs.receives)));
    const sendEntities = distinct(serviceAccess.doctor.sends);
    const busScope = (entity: EntityRef): string | undefined => (options.serviceBus?.resourceId ? entityScope(options.serviceBus.resourceId, entity) : undefined);
    let bus: ServiceBusClient | undefined;
    if (!options.serviceBus) {
      for (const entity of receiveEntities) notConfigured('serviceBus', `peek ${describeEntity(entity)}`, 'SERVICEBUS_FULLY_QUALIFIED_NAMESPACE', { roleNeeded: receiverRole, dataAction: knownDataActions.serviceBusReceive });
      for (const entity of sendEntities) notConfigured('serviceBus', `send to ${describeEntity(entity)}`, 'SERVICEBUS_FULLY_QUALIFIED_NAMESPACE', { roleNeeded: senderRole, dataAction: knownDataActions.serviceBusSend });
    } else {
      bus = clients.create('serviceBus', { clientOptions: { retryOptions: { maxRetries: 0, timeoutInMs: options.probeTimeoutInMs } } });
      for (const entity of receiveEntities) {
        const row = { resource: 'serviceBus' as const, check: `peek ${describeEntity(entity)}`, roleNeeded: receiverRole, dataAction: knownDataActions.serviceBusReceive, ...optionalScope(busScope(entity)) };
        if (skipped('serviceBus', row.check, 'serviceBus', row)) continue;
        await probe(row, () => peek(bus!, entity, sessionQueues), { resource: 'serviceBus', entity: toDiagnosticsEntity(entity), operation: 'receive', accessResource: 'serviceBus', accessPath: entityScopePath(entity) });
      }
      for (const entity of sendEntities) {
        const row = {
          resource: 'serviceBus' as const,
          check: `send to ${describeEntity(entity)} (expires in ${doctorDefaults.probeMessageTimeToLiveInMs / 1000} s)`,
          roleNeeded: senderRole,
          dataAction: knownDataActions.serviceBusSend,
          ...optionalScope(busScope(entity)),
        };
        if (skipped('serviceBus', row.check, 'serviceBus', row)) continue;
        await probe(row, () => send(bus!, entity), { resource: 'serviceBus', entity: toDiagnosticsEntity(entity), operation: 'send', accessResource: 'serviceBus', accessPath: entityScopePath(entity) });
      }
    }

    // Azure OpenAI: a tiny embeddings call and a tiny chat call, on the deployments the services use.
    const openAiRole = roleName(knownDataActions.openAiEmbeddings);
    const openAiRow = (check: string, dataAction: string) => ({ resource: 'openAi' as const, check, roleNeeded: openAiRole, dataAction, ...optionalScope(options.openAi?.resourceId) });
    const openAiHint = { resource: 'openAi' as const, accessResource: 'openAi', accessPath: '' };
    const embeddings = options.openAi?.embeddingsDeployment;
    const chat = options.openAi?.chatDeployment;
    if (!options.openAi || !embeddings) notConfigured('openAi', 'embeddings', options.openAi ? 'AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT' : 'AZURE_OPENAI_ENDPOINT', openAiRow('embeddings', knownDataActions.openAiEmbeddings));
    else if (!skipped('openAi', `embeddings (${embeddings})`, 'cognitiveServices', openAiRow(`embeddings (${embeddings})`, knownDataActions.openAiEmbeddings))) {
      const openAi = clients.create('openAi', { maxRetries: 0, timeoutInMs: options.probeTimeoutInMs });
      await probe(openAiRow(`embeddings (${embeddings})`, knownDataActions.openAiEmbeddings), () => openAi.embeddings.create({ model: embeddings, input: 'access doctor probe' }), { ...openAiHint, dataAction: knownDataActions.openAiEmbeddings });
    }
    if (!options.openAi || !chat) notConfigured('openAi', 'chat completion', options.openAi ? 'AZURE_OPENAI_CHAT_DEPLOYMENT' : 'AZURE_OPENAI_ENDPOINT', openAiRow('chat completion', knownDataActions.openAiChatCompletions));
    else if (!skipped('openAi', `chat completion (${chat})`, 'cognitiveServices', openAiRow(`chat completion (${chat})`, knownDataActions.openAiChatCompletions))) {
      const openAi = clients.create('openAi', { maxRetries: 0, timeoutInMs: options.probeTimeoutInMs });
      await probe(openAiRow(`chat completion (${chat})`, knownDataActions.openAiChatCompletions), () => openAi.chat.completions.create({ model: chat, messages: [{ role: 'user', content: 'Reply with OK.' }], max_tokens: 1 }), {
        ...openAiHint,
        dataAction: knownDataActions.openAiChatCompletions,
      });
    }

    // Azure AI Vision: the analysis of a small generated image.
    const visionRow = {
      resource: 'vision' as const,
      check: 'image analysis (tags of a 64×64 image)',
      roleNeeded: roleName(knownDataActions.visionAnalyze),
      dataAction: knownDataActions.visionAnalyze,
      ...optionalScope(options.vision?.resourceId),
    };
    if (!options.vision) notConfigured('vision', visionRow.check, 'AZURE_VISION_ENDPOINT', visionRow);
    else if (!skipped('vision', visionRow.check, 'cognitiveServices', visionRow)) {
      const vision = clients.create('vision', { retryOptions: { maxRetries: 0 } });
      await probe(
        visionRow,
        async () => {
          const response = await vision.path('/imageanalysis:analyze').post({ body: probeImage(), queryParameters: { features: ['Tags'] }, contentType: 'application/octet-stream' });
          if (isUnexpectedImageAnalysisResponse(response)) {
            const denial = diagnostics.explainResponse('vision', Number(response.status), JSON.stringify(response.body), { resource: 'vision' });
            throw denial ?? Object.assign(new Error(`HTTP ${response.status}: ${JSON.stringify(response.body)}`), { status: Number(response.status) });
          }
        },
        { resource: 'vision', accessResource: 'vision', accessPath: '' },
      );
    }
    await bus?.close();

    // PostgreSQL: a sign-in with the identity's token, then SELECT on each table and the pgvector extension.
    await probePostgres({ options, clients, probe, skipped, notConfigured, results });

    if (options.checkAccess) {
      const armToken = tokenFailures.get('resourceManager');
      accessView = await checkAccess({
        options,
        access: access.assignments,
        ...(principalId ? { principalId } : {}),
        ...(armToken ? { tokenProblem: { ...pick(armToken, 'detail', 'fix') } } : { token: async () => (await identity.getToken('resourceManager')).token }),
        probes: results,
      });
    }
  } finally {
    identity.close();
  }
  return {
    identity: { clientId: options.clientId, ...(principalId ? { principalId } : {}) },
    ok: results.every((r) => r.status === 'ok') && (accessView?.counts.missing ?? 0) === 0,
    results,
    ...(accessView ? { checkAccess: accessView } : {}),
  };
}

interface PostgresProbeContext {
  options: DoctorOptions;
  clients: AzureClientFactory;
  probe: (row: Omit<ProbeResult, 'status' | 'durationInMs'>, call: () => Promise<unknown>) => Promise<ProbeResult>;
  skipped: (resource: ProbeResource, check: string, audience: WellKnownAudience, extra: Partial<ProbeResult>) => boolean;
  notConfigured: (resource: ProbeResource, check: string, variable: string, extra?: Partial<ProbeResult>) => void;
  results: ProbeResult[];
}

async function probePostgres({ options, clients, probe, skipped, notConfigured, results }: PostgresProbeContext): Promise<void> {
  const settings = options.postgres;
  const target = settings ? `${settings.host}:${settings.port ?? 5432}/${settings.database}` : 'the database';
  const signIn = { resource: 'postgres' as const, check: `sign in to ${target} as ${settings?.user || '(PGUSER)'}`, roleNeeded: 'database principal' };
  const later = [
    ...databaseTables.map((table) => ({ resource: 'postgres' as const, check: `SELECT on ${table}`, roleNeeded: 'SELECT on the table' })),
    { resource: 'postgres' as const, check: 'extension vector (pgvector)' },
  ];
  if (!settings?.user) {
    notConfigured('postgres', signIn.check, settings ? 'PGUSER (the identity\'s name)' : 'PGHOST, PGDATABASE and PGUSER', signIn);
    return;
  }
  if (skipped('postgres', signIn.check, 'postgres', signIn)) return;
  const pool = clients.create('postgres', { maxConnections: 1, connectionTimeoutInMs: options.probeTimeoutInMs, applicationName: 'keyless-doctor' });
  try {
    const signedIn = await probe(signIn, () => pool.query('SELECT 1'));
    if (signedIn.status !== 'ok') {
      for (const row of later) results.push({ ...row, status: signedIn.status, detail: 'not checked: the sign-in failed', durationInMs: 0 });
      return;
    }
    for (const [i, table] of databaseTables.entries()) await probe(later[i]!, () => selectFrom(pool, table, settings));
    await probe(later.at(-1)!, () => vectorExtension(pool, settings));
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/** SELECT on `table`; a table not created yet passes if the principal may create it (the services do, at start). */
async function selectFrom(pool: PostgresPool, table: string, settings: NonNullable<DoctorOptions['postgres']>): Promise<void> {
  const admin = `as the server's Microsoft Entra administrator, in database "${settings.database}"`;
  const local = `declare the principal as an administrator in infra/access.json ("databasePrincipals") and restart the local Azure`;
  const { rows } = await pool.query<{ present: boolean; can_create: boolean }>(
    "SELECT to_regclass($1) IS NOT NULL AS present, has_schema_privilege('public', 'CREATE') AS can_create",
    [table],
  );
  if (!rows[0]!.present) {
    if (rows[0]!.can_create) return;
    throw new ProbeFinding({
      status: 'missing-grant',
      detail: `table ${table} does not exist yet, and "${settings.user}" may not create tables in schema public (the services create their tables at start)`,
      fix: `${admin}: GRANT CREATE ON SCHEMA public TO "${settings.user}";`,
      localFix: local,
    });
  }
  try {
    await pool.query(`SELECT 1 FROM ${table} LIMIT 1`);
  } catch (error) {
    if ((error as { code?: unknown }).code !== '42501') throw error;
    throw new ProbeFinding({
      status: 'missing-grant',
      detail: `42501: ${(error as Error).message}`,
      fix: `${admin}: GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO "${settings.user}";`,
      localFix: local,
    });
  }
}

/**
 * pgvector: installed in the database, or at least available and allow-listed (Azure's `azure.extensions`), so the
 * recommendation service can create it at start.
 */
async function vectorExtension(pool: PostgresPool, settings: NonNullable<DoctorOptions['postgres']>): Promise<void> {
  const { rows } = await pool.query<{ installed: string | null; available: boolean; allow_list: string | null }>(
    `SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS installed,
            EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS available,
            current_setting('azure.extensions', true) AS allow_list`,
  );
  const { installed, available, allow_list: allowList } = rows[0]!;
  if (installed) return;
  const server = /\/flexibleServers\/([^/]+)/i.exec(settings.resourceId ?? '')?.[1] ?? /^([^.]+)\.postgres\.database\.azure\.com$/i.exec(settings.host)?.[1] ?? '<server name>';
  const group = /\/resourceGroups\/([^/]+)/i.exec(settings.resourceId ?? '')?.[1] ?? '<resource group>';
  if (allowList !== null && allowList !== '' && !allowList.split(',').some((name) => name.trim().toLowerCase() === 'vector')) {
    throw new ProbeFinding({
      status: 'missing-extension',
      detail: `pgvector is not allow-listed on the server (azure.extensions = "${allowList}")`,
      fix: `az postgres flexible-server parameter set --resource-group ${group} --server-name ${server} --name azure.extensions --value ${[...allowList.split(',').map((n) => n.trim()).filter(Boolean), 'VECTOR'].join(',')}`,
      localFix: 'the local PostgreSQL always has pgvector: check the local Azure\'s "postgres.extensions" configuration',
    });
  }
  if (!available) {
    throw new ProbeFinding({
      status: 'missing-extension',
      detail: 'pgvector is not installed on the server',
      fix: 'use a PostgreSQL ≥ 15 with pgvector ≥ 0.8 (Azure Database for PostgreSQL flexible server has it: allow-list VECTOR in azure.extensions)',
      localFix: 'the local PostgreSQL always has pgvector: check the local Azure\'s "postgres.extensions" configuration',
    });
  }
}

async function peek(bus: ServiceBusClient, entity: EntityRef, sessionQueues: ReadonlySet<string>): Promise<void> {
  if ('queue' in entity && sessionQueues.has(entity.queue)) {
    // A session-enabled queue is read through a session: a fresh, empty one, so no instance's replies are touched.
    const receiver = await bus.acceptSession(entity.queue, `doctor-${process.pid}-${Date.now()}`);
    try {
      await receiver.peekMessages(1);
    } finally {
      await receiver.close();
    }
    return;
  }
  const receiver = 'queue' in entity ? bus.createReceiver(entity.queue) : bus.createReceiver(entity.topic, (entity as { subscription: string }).subscription);
  try {
    await receiver.peekMessages(1);
  } finally {
    await receiver.close();
  }
}

async function send(bus: ServiceBusClient, entity: EntityRef): Promise<void> {
  const sender = bus.createSender('queue' in entity ? entity.queue : entity.topic);
  try {
    await sender.sendMessages({ subject: 'doctor.probe', body: { probe: 'access doctor' }, timeToLive: doctorDefaults.probeMessageTimeToLiveInMs });
  } finally {
    await sender.close();
  }
}

function withDeadline<T>(promise: Promise<T>, timeoutInMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeoutError(`no answer within ${timeoutInMs} ms`)), timeoutInMs);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (error) {
    throw new DoctorError('FileUnreadable', `${path}: cannot be read (${(error as Error).message}). Run the doctor from a checkout of the repository.`, { cause: error });
  }
}

function roleName(dataAction: string): string {
  return (leastPrivilegedRoleFor(dataAction) ?? builtInRoles[0]!).name;
}

function describeEntity(entity: EntityRef): string {
  if ('queue' in entity) return `queue ${entity.queue}`;
  return 'subscription' in entity ? `subscription ${entity.topic}/${entity.subscription}` : `topic ${entity.topic}`;
}

function toDiagnosticsEntity(entity: EntityRef): ServiceBusEntity {
  if ('queue' in entity) return { kind: 'queue', name: entity.queue };
  return 'subscription' in entity ? { kind: 'subscription', topic: entity.topic, name: entity.subscription } : { kind: 'topic', name: entity.topic };
}

function distinct(entities: readonly EntityRef[]): EntityRef[] {
  const seen = new Map<string, EntityRef>();
  for (const entity of entities) seen.set(entityScopePath(entity), entity);
  return [...seen.values()];
}

function optionalScope(scope: string | undefined): { scope?: string } {
  return scope ? { scope } : {};
}

function pick<T extends object, K extends keyof T>(value: T, ...keys: K[]): Partial<Pick<T, K>> {
  const result: Partial<Pick<T, K>> = {};
  for (const key of keys) if (value[key] !== undefined) result[key] = value[key];
  return result;
}

function endpointVariable(resource: ProbeResource): string {
  return {
    identity: 'IDENTITY_ENDPOINT (set by App Service)',
    serviceBus: 'SERVICEBUS_FULLY_QUALIFIED_NAMESPACE',
    openAi: 'AZURE_OPENAI_ENDPOINT',
    vision: 'AZURE_VISION_ENDPOINT',
    postgres: 'PGHOST (and PGPORT)',
  }[resource];
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && unreachableCodes.has(code)) return code;
    current = current.cause;
  }
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
