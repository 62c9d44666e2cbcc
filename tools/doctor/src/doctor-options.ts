import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandForHome, type LocalAzureHomeRef } from '@keyless/contracts';

/**
 * Stable codes of {@link DoctorError}.
 * - `IdentityNotConfigured`: no `AZURE_CLIENT_ID`: the doctor does not know which identity to check.
 * - `ArgumentInvalid`: a command-line argument the doctor does not understand.
 * - `FileUnreadable`: `infra/access.json` or `infra/servicebus-topology.json` could not be read.
 */
export type DoctorErrorCode = 'IdentityNotConfigured' | 'ArgumentInvalid' | 'FileUnreadable';

/** The doctor cannot run; the message names the variable, argument or file, and the fix. */
export class DoctorError extends Error {
  override readonly name = 'DoctorError';

  constructor(
    readonly code: DoctorErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Type guard by name. */
export function isDoctorError(error: unknown): error is DoctorError {
  return error instanceof Error && error.name === 'DoctorError';
}

/** Defaults of the doctor, in one place. */
export const doctorDefaults = {
  /** Budget of one probe (token request or data-plane call), in ms. */
  probeTimeoutInMs: 15_000,
  /** Time-to-live of the diagnostics message, in ms (the queue's own default is one minute too). */
  probeMessageTimeToLiveInMs: 60_000,
  /** How long Azure RBAC may take to apply a new assignment, in ms (Azure documents up to about ten minutes). */
  propagationWindowInMs: 10 * 60_000,
} as const;

/** The resources of `infra/access.json`, as its `resource` field names them. */
export type AccessResource = 'serviceBus' | 'openAi' | 'vision' | 'keyVault' | 'appInsights';

/** The variable that holds each resource's ARM id (App Service settings in Azure, a host's env file locally). */
export const resourceIdVariables: Readonly<Record<AccessResource, string>> = {
  serviceBus: 'SERVICEBUS_NAMESPACE_RESOURCE_ID',
  openAi: 'AZURE_OPENAI_RESOURCE_ID',
  vision: 'AZURE_VISION_RESOURCE_ID',
  keyVault: 'AZURE_KEY_VAULT_RESOURCE_ID',
  appInsights: 'APPLICATIONINSIGHTS_RESOURCE_ID',
};

/** Azure Resource Manager in Azure's public cloud (`AZURE_RESOURCE_MANAGER_ENDPOINT` overrides it). */
export const azureResourceManagerEndpoint = 'https://management.azure.com';

/** How the report is printed: `table` for people, `json` (only JSON on stdout) for automation. */
export type DoctorOutput = 'table' | 'json';

/** What the doctor checks, read from a host's environment. */
export interface DoctorOptions {
  /** `AZURE_CLIENT_ID`: the user-assigned identity. */
  clientId: string;
  serviceBus?: { fullyQualifiedNamespace: string; resourceId?: string };
  openAi?: { endpoint: string; resourceId?: string; apiVersion?: string; chatDeployment?: string; embeddingsDeployment?: string };
  vision?: { endpoint: string; resourceId?: string };
  /** The shared PostgreSQL, from libpq's variables (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`). */
  postgres?: { host: string; port?: number; database: string; user: string; resourceId?: string };
  /** Whether the identity endpoint and authority are the local Azure's (fix commands for its CLI are shown too). */
  localAzure: boolean;
  /**
   * The local Azure home its CLI's fix commands act on: `LOCAL_AZURE_HOME` (as the shell that runs the doctor has it),
   * else `.local-azure/` at {@link repoRoot}. A command printed for another home starts with `LOCAL_AZURE_HOME=…`.
   */
  localAzureHome: LocalAzureHomeRef;
  /** When role assignments were last granted (`--granted-at`): denials within the propagation window are "propagation pending". */
  grantedAt?: Date;
  /**
   * `--check-access`: also read the identity's role assignments through ARM and show, on every scope of
   * `infra/access.json`, its effective data actions and the assignment that grants each. Default: false.
   */
  checkAccess: boolean;
  /** `--output json|table` (`--json` is `--output json`). Default: `table`. */
  output: DoctorOutput;
  /** The ARM id of each resource whose `*_RESOURCE_ID` variable is set ({@link resourceIdVariables}). */
  resourceIds: Partial<Record<AccessResource, string>>;
  /**
   * Azure Resource Manager: `AZURE_RESOURCE_MANAGER_ENDPOINT`, else {@link azureResourceManagerEndpoint} when the
   * authority is Azure's public cloud's or unset. Undefined otherwise (the local Azure's ARM has no fixed address).
   */
  resourceManagerEndpoint?: string;
  /** The folder that holds `infra/access.json` and `infra/servicebus-topology.json`. Default: {@link repoRoot}. */
  repoRoot: string;
  /** Budget of one probe in ms. Default: {@link doctorDefaults}.probeTimeoutInMs. */
  probeTimeoutInMs: number;
  /** The current time (for the propagation window). Default: `new Date()`. */
  now: Date;
}

/**
 * The nearest folder above this file with `infra/access.json`: the repository root in a checkout, the
 * doctor's own package folder in a deployed service (tools/packager copies the two files there).
 */
export const repoRoot = findInfraRoot(dirname(fileURLToPath(import.meta.url)));

function findInfraRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'infra', 'access.json'))) return dir;
    // Not found: the repository layout, so the error names the path a checkout would have.
    if (dirname(dir) === dir) return resolve(from, '../../..');
  }
}

const hostEnvHint =
  'Load the environment of a host that runs as the shared identity first: locally `set -a; . "${LOCAL_AZURE_HOME:-.local-azure}/env/recommendation.env"; set +a` ' +
  '(with `npm run local-azure` or `npm start` running; the env files are in its home); in Azure, run the doctor inside an App Service (its settings are the environment).';

/** The usage line, in every message about an argument. */
export const doctorUsage = 'Usage: npm run doctor -- [--json] [--granted-at <ISO time>] [--check-access] [--output json|table]';

/** What `--help` adds to the usage line: the options, the environment it needs, the exit codes. */
export const doctorHelp = [
  '',
  'Checks that the shared identity gets its tokens and can do what infra/access.json grants, resource by resource.',
  '  --check-access          also read the identity\'s role assignments through ARM (needs Reader on the scope)',
  '  --granted-at <ISO time> when the role assignments were last created (a refusal soon after is propagation)',
  '  --output json|table     the report format (--json: the same as --output json); JSON goes to stdout only',
  '',
  `Environment: ${hostEnvHint}`,
  'Exit codes: 0 all is well, 1 a probe failed or a granted data action is missing, 2 the doctor could not run.',
].join('\n');

/**
 * Whether the arguments ask for JSON (`--json`, `--output json`, `--output=json`, `-o json`), decided before
 * anything else so that even a refusal of the other arguments is printed as JSON.
 */
export function wantsJson(args: readonly string[]): boolean {
  return args.some((arg, i) => arg === '--json' || arg === '--output=json' || ((arg === '--output' || arg === '-o') && args[i + 1] === 'json'));
}

/**
 * Reads the doctor's options from a host's environment (the variables the services read) and its arguments.
 * Rules:
 * - `AZURE_CLIENT_ID` is required (the identity to check); without it a {@link DoctorError} names it and the fix.
 * - A resource whose endpoint variable is missing is reported as "not configured", not an error.
 * - `--granted-at <ISO time>` is when role assignments were last created.
 * - `--check-access` adds the check-access view; `--output json|table` (or `--json`) chooses the format.
 * - The ARM endpoint is `AZURE_RESOURCE_MANAGER_ENDPOINT`, else Azure's public cloud's when the authority is its
 *   (or unset, as on App Service) — never a guess for the local Azure, whose ARM only that variable names.
 *
 * @throws {DoctorError} `IdentityNotConfigured`, `ArgumentInvalid`.
 */
export function readDoctorOptions(env: Readonly<Record<string, string | undefined>>, args: readonly string[] = [], now = new Date()): DoctorOptions {
  const value = (name: string): string | undefined => env[name]?.trim() || undefined;
  const clientId = value('AZURE_CLIENT_ID');
  if (!clientId) {
    throw new DoctorError('IdentityNotConfigured', `AZURE_CLIENT_ID is not set, so there is no identity to check. ${hostEnvHint}`);
  }
  let grantedAt: Date | undefined;
  let checkAccess = false;
  let output: DoctorOutput = 'table';
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if (arg === '--json') {
      output = 'json';
      continue;
    }
    if (arg === '--check-access') {
      checkAccess = true;
      continue;
    }
    if (arg === '--output' || arg === '-o' || arg.startsWith('--output=')) {
      const text = arg.startsWith('--output=') ? arg.slice('--output='.length) : args[(i += 1)];
      if (text !== 'json' && text !== 'table') throw new DoctorError('ArgumentInvalid', `--output takes json or table, got ${JSON.stringify(text ?? '')}. ${doctorUsage}`);
      output = text;
      continue;
    }
    if (arg === '--granted-at') {
      const text = args[i + 1];
      const date = text ? new Date(text) : undefined;
      if (!date || Number.isNaN(date.getTime())) {
        throw new DoctorError('ArgumentInvalid', `--granted-at needs an ISO date and time (e.g. ${now.toISOString()}), got ${JSON.stringify(text ?? '')}.`);
      }
      grantedAt = date;
      i += 1;
      continue;
    }
    throw new DoctorError('ArgumentInvalid', `Unknown argument ${JSON.stringify(arg)}. ${doctorUsage}`);
  }
  const namespace = value('SERVICEBUS_FULLY_QUALIFIED_NAMESPACE');
  const openAiEndpoint = value('AZURE_OPENAI_ENDPOINT');
  const visionEndpoint = value('AZURE_VISION_ENDPOINT');
  const pgHost = value('PGHOST');
  const pgPort = value('PGPORT');
  if (pgPort !== undefined && !/^\d{1,5}$/.test(pgPort)) throw new DoctorError('ArgumentInvalid', `PGPORT must be a port number, got ${JSON.stringify(pgPort)}.`);
  const authority = value('AZURE_AUTHORITY_HOST');
  // Azure's authority is login.microsoftonline.com (or a sovereign cloud's); the local Azure sets its own.
  const localAzure = authority !== undefined && !/login\.(microsoftonline|chinacloudapi|microsoftonline\.us)/i.test(authority);
  // Without the variable: Azure's public cloud when its authority is (App Service sets none), else unknown.
  const publicCloud = authority === undefined || /^https:\/\/login\.microsoftonline\.com\/?$/i.test(authority);
  const resourceManagerEndpoint = value('AZURE_RESOURCE_MANAGER_ENDPOINT') ?? (publicCloud ? azureResourceManagerEndpoint : undefined);
  const resourceIds: Partial<Record<AccessResource, string>> = {};
  for (const [resource, variable] of Object.entries(resourceIdVariables) as [AccessResource, string][]) {
    const id = value(variable);
    if (id) resourceIds[resource] = id;
  }
  const optional = <K extends string>(key: K, name: string): Partial<Record<K, string>> => {
    const found = value(name);
    return found ? ({ [key]: found } as Record<K, string>) : {};
  };
  return {
    clientId,
    ...(namespace ? { serviceBus: { fullyQualifiedNamespace: namespace, ...optional('resourceId', resourceIdVariables.serviceBus) } } : {}),
    ...(openAiEndpoint
      ? {
          openAi: {
            endpoint: openAiEndpoint,
            ...optional('resourceId', resourceIdVariables.openAi),
            ...optional('apiVersion', 'OPENAI_API_VERSION'),
            ...optional('chatDeployment', 'AZURE_OPENAI_CHAT_DEPLOYMENT'),
            ...optional('embeddingsDeployment', 'AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT'),
          },
        }
      : {}),
    ...(visionEndpoint ? { vision: { endpoint: visionEndpoint, ...optional('resourceId', resourceIdVariables.vision) } } : {}),
    ...(pgHost
      ? {
          postgres: {
            host: pgHost,
            ...(pgPort ? { port: Number(pgPort) } : {}),
            database: value('PGDATABASE') ?? 'keyless',
            user: value('PGUSER') ?? '',
            ...optional('resourceId', 'POSTGRES_SERVER_RESOURCE_ID'),
          },
        }
      : {}),
    localAzure,
    localAzureHome: localAzureHomeOf(value('LOCAL_AZURE_HOME')),
    ...(grantedAt ? { grantedAt } : {}),
    checkAccess,
    output,
    resourceIds,
    ...(resourceManagerEndpoint ? { resourceManagerEndpoint: resourceManagerEndpoint.replace(/\/+$/, '') } : {}),
    repoRoot,
    probeTimeoutInMs: doctorDefaults.probeTimeoutInMs,
    now,
  };
}

/** The home `LOCAL_AZURE_HOME` names (relative to the working directory, as the local Azure reads it), else the default. */
function localAzureHomeOf(setting: string | undefined): LocalAzureHomeRef {
  const defaultRoot = resolve(repoRoot, '.local-azure');
  const root = setting ? resolve(setting) : defaultRoot;
  return { root, isDefault: root === defaultRoot };
}

/** A fix for the local Azure as the user must type it: an `npm run local-azure …` command names a custom home. */
export function localAzureFix(options: Pick<DoctorOptions, 'localAzureHome'>, fix: string): string {
  return fix.startsWith('npm ') ? commandForHome(fix, options.localAzureHome) : fix;
}
