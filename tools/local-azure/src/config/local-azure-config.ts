import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { findRole, gatewayAppRoles, localGatewayAudience } from '@keyless/contracts';
import { InvalidFaultError, validateFault } from '../faults/local-faults.js';
import { normalizeHostPort } from '../util/host-port.js';

/** Repository root, from this file's place in the tree (src/ or dist/ under tools/local-azure/). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** Resources whose data plane Azure RBAC guards: the targets of the access file's role assignments. */
export const roleAssignableResourceKeys = ['serviceBus', 'openAi', 'vision', 'keyVault', 'appInsights'] as const;
/**
 * The kinds of Azure resources the local Azure knows, as the access file names them. PostgreSQL has no RBAC
 * data actions: its sign-ins are governed by database principals (see the access file's `databasePrincipals`).
 */
export const resourceKeys = [...roleAssignableResourceKeys, 'postgres'] as const;
export type ResourceKey = (typeof resourceKeys)[number];

const name = z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'lowercase letters, digits and dashes, starting with a letter');
const port = z.number().int().min(0).max(65535);

const hostSchema = z.strictObject({
  /** Whether the host has a system-assigned identity (created and deleted with the host). */
  systemAssigned: z.boolean().default(false),
  /** Names of user-assigned identities assigned to the host. */
  userAssigned: z.array(name).default([]),
  /** Extra variables written to the host's env file (e.g. `GATEWAY_URL` for callers). */
  env: z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/), z.string()).default({}),
});

const userSchema = z.strictObject({
  /** Shown in tokens (`name`) and listings. Default: the user's name. */
  displayName: z.string().min(1).optional(),
  /**
   * Role assignments the user holds, re-applied at every start like the access file. `scope` is `subscription`,
   * `resourceGroup`, or a resource in the access file's short form (`serviceBus`, `serviceBus/queues/orders`, …).
   */
  roleAssignments: z.array(z.strictObject({ role: z.string().min(1), scope: z.string().min(1) })).default([]),
});

const appRegistrationSchema = z.strictObject({
  /** Application ID URI callers request tokens for (`api://…`). */
  identifierUri: z.string().regex(/^api:\/\/[\w.-]+$/, 'an application ID URI such as api://my-api'),
  /** App roles the API defines (values as they appear in the `roles` claim). */
  appRoles: z.array(z.string().regex(/^[A-Za-z][\w.]*$/)).default([]),
});

const deploymentSchema = z.strictObject({
  /** The model behind the deployment (`gpt-4o-mini`, `text-embedding-3-small`, …): picks tokenizer, limits, dimension. */
  model: z.string().min(1),
  /** Tokens-per-minute quota of the deployment (Azure's "capacity" × 1000). */
  tokensPerMinute: z.number().int().positive(),
  /**
   * What the deployment serves. Default: `embeddings` when the model name contains "embedding", else `chat`.
   * The first deployment of each kind is written to the env files (`AZURE_OPENAI_CHAT_DEPLOYMENT`,
   * `AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT`).
   */
  capability: z.enum(['chat', 'embeddings']).optional(),
  /**
   * A real model behind a chat deployment: an OpenAI-compatible server (llama.cpp's `llama-server`, Ollama, vLLM)
   * that answers its chat completions instead of the local stand-in model. Entra authentication, RBAC, the
   * deployment name, the quota and Azure's response and error shapes stay in front. No key is sent.
   * Default: none (the local model answers).
   */
  backend: z
    .strictObject({
      /** Base URL of the server's OpenAI API, e.g. `http://127.0.0.1:11434/v1`; `POST <url>/chat/completions` is called. */
      url: z.string().regex(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, 'an http:// or https:// base URL such as http://127.0.0.1:8080/v1'),
      /** The model name the server knows. Default: the deployment's `model`. */
      model: z.string().min(1).optional(),
      /** How long one completion may take, in ms. Default: 120000. */
      timeoutInMs: z.number().int().min(100).max(600_000).default(120_000),
    })
    .optional(),
});

export const localAzureConfigSchema = z.strictObject({
  resourceGroup: name.default('rg-keyless-local'),
  resources: z
    .strictObject({
      serviceBus: z
        .strictObject({
          name: name.default('sb-keyless-local'),
          /** The entities (emulator `Config.json` format), relative to the repo root. Default: infra/servicebus-topology.json. */
          topologyFile: z.string().min(1).default('infra/servicebus-topology.json'),
          /** Largest message or batch a sender may send, in bytes. Default: 262144 (256 KiB, Azure Standard tier). */
          maxMessageSizeInBytes: z.number().int().min(1024).max(100 * 1024 * 1024).default(262_144),
          /**
           * The bound on how long an open link outlives the role that authorized it: every open link (and every
           * cached `$management` decision) is re-checked at this interval, besides at once on every role
           * assignment change and at every put-token. Default: 30 s.
           */
          reauthorizationIntervalInSeconds: z.number().int().min(1).max(300).default(30),
          /**
           * AMQP connections open at once; one more is closed with `amqp:resource-limit-exceeded` (SDK: `QuotaExceeded`)
           * once it opens. Default: 5000 (Azure's Standard tier).
           */
          maxConnections: z.number().int().min(1).max(100_000).default(5000),
          /**
           * A connection without links is closed (`amqp:connection:forced`), as Azure closes one: this long after it
           * was made if no link was attached (one that never opens included; until a token is accepted on it, its `$cbs` link does not count), and this long after its
           * last link closed. Default: 60000 and 300000 ms (Azure's).
           */
          linklessConnectionTimeouts: z
            .strictObject({
              newConnectionInMs: z.number().int().min(100).max(3_600_000).default(60_000),
              afterLastLinkInMs: z.number().int().min(100).max(3_600_000).default(300_000),
            })
            .prefault({}),
        })
        .prefault({}),
      openAi: z
        .strictObject({
          name: name,
          deployments: z.record(z.string().regex(/^[\w.-]+$/), deploymentSchema),
        })
        .default({
          name: 'oai-keyless-local',
          deployments: {
            'gpt-4o-mini': { model: 'gpt-4o-mini', tokensPerMinute: 200_000 },
            'text-embedding-3-small': { model: 'text-embedding-3-small', tokensPerMinute: 1_000_000 },
          },
        }),
      vision: z
        .strictObject({
          name: name.default('vision-keyless-local'),
          /**
           * Hosts the local Vision may fetch `{url}` images from although they are not on the internet
           * (loopback, private addresses): `host:port` exactly as in the URL, e.g. `127.0.0.1:3001`. Everything
           * else that is not globally routable is refused, as Azure's service cannot reach it either.
           * Default: none (the launcher adds its demo image server).
           */
          allowedImageHosts: z.array(z.string().refine((value) => normalizeHostPort(value) !== undefined, 'host:port, e.g. 127.0.0.1:3001, localhost:8080 or [::1]:3001')).default([]),
        })
        .prefault({}),
      keyVault: z.strictObject({ name: name }).default({ name: 'kv-keyless-local' }),
      appInsights: z.strictObject({ name: name }).default({ name: 'appi-keyless-local' }),
      postgres: z
        .strictObject({
          name: name.default('psql-keyless-local'),
          /** The database that exists at start and that clients connect to. Default: keyless. */
          database: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lowercase PostgreSQL identifier').default('keyless'),
          /**
           * Extensions a database principal may create (Azure's `azure.extensions` allow-list). Default: vector
           * (pgvector), the only extension the local engine ships.
           */
          extensions: z.array(z.enum(['vector'])).default(['vector']),
          /** Connections served at once (Azure's `max_connections`); one more gets "too many clients". Default: 100. */
          maxConnections: z.number().int().min(1).max(5000).default(100),
          /**
           * How long a connection may sit idle inside a transaction before it is closed and its transaction rolled
           * back (PostgreSQL's `idle_in_transaction_session_timeout`), in ms; 0 never. The local engine has one
           * session shared by every connection, so an abandoned transaction would stall all of them. Default: 60000.
           */
          idleInTransactionTimeoutInMs: z.number().int().min(0).default(60_000),
          /**
           * How long one statement may run, in ms; 0 never. PGlite cannot interrupt a statement, and while one runs
           * every other connection waits: past this, the engine is ended and restarted, and every connection gets
           * 57P02. Default: 300000 (5 minutes).
           */
          maxStatementDurationInMs: z.number().int().min(0).default(300_000),
          /**
           * How often tables are vacuumed and analyzed past PostgreSQL's autovacuum thresholds (its
           * `autovacuum_naptime`), in ms; 0 never. PGlite has no autovacuum of its own, so without this every
           * UPDATE's and DELETE's dead row stays and the data folder only grows. Default: 60000.
           */
          autovacuumIntervalInMs: z.number().int().min(0).default(60_000),
        })
        .prefault({}),
    })
    .prefault({}),
  /** User-assigned identities, by name. */
  identities: z.record(name, z.strictObject({ description: z.string().optional() })).default({
    'id-keyless': { description: 'the one identity shared by gateway, recommendation and vision' },
    'id-storefront': { description: 'a caller of the gateway API (the storefront)' },
  }),
  /** App-Service-like hosts: each gets a managed-identity endpoint, an identity header and an env file. */
  hosts: z.record(name, hostSchema).default({
    gateway: { systemAssigned: false, userAssigned: ['id-keyless'], env: {} },
    recommendation: { systemAssigned: false, userAssigned: ['id-keyless'], env: {} },
    vision: { systemAssigned: false, userAssigned: ['id-keyless'], env: {} },
    storefront: { systemAssigned: false, userAssigned: ['id-storefront'], env: { GATEWAY_AUDIENCE: localGatewayAudience } },
  }),
  /**
   * Extra env-file variables per host, merged into `hosts` (so a launcher can add `GATEWAY_URL` to the
   * storefront without restating every host).
   */
  hostEnv: z.record(name, z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/), z.string())).default({}),
  /**
   * Extra folders per host that receive the host's env file and a copy of the CA certificate (public), besides
   * `$LOCAL_AZURE_HOME/env/` — under docker compose, a volume only that host's service mounts. Files there are
   * readable by everyone who can enter the folder (the service runs as another user). Absolute paths.
   */
  hostEnvDirs: z.record(name, z.string().regex(/^\//, 'an absolute path')).default({}),
  /** The tenant's initial domain: users sign in as `<name>@<tenantDomain>`. */
  tenantDomain: z
    .string()
    .regex(/^[a-z0-9]+(\.[a-z0-9-]+)+$/, 'a domain name such as keylesslocal.onmicrosoft.com')
    .default('keylesslocal.onmicrosoft.com'),
  /**
   * The operator: a directory user created at first start with Owner on the subscription and Azure Service Bus
   * Data Owner on the namespace. The CLI signs in as it unless told otherwise (`login --username`).
   */
  operator: z
    .strictObject({
      name: name.default('operator'),
      displayName: z.string().min(1).default('Local Azure operator'),
    })
    .prefault({}),
  /**
   * Further directory users, by name, and the roles they hold. Default: `reader`, with Reader on the subscription
   * (to see what an operator without write rights gets: `login --username reader`).
   */
  users: z.record(name, userSchema).default({
    reader: { displayName: 'Local Azure reader', roleAssignments: [{ role: 'Reader', scope: 'subscription' }] },
  }),
  /** Lifetime of users' access tokens in seconds. Default: 3600 (Entra gives users 60 to 90 minutes). */
  userTokenLifetimeSeconds: z.number().int().min(60).max(86_400).default(3600),
  /** Entra app registrations (APIs that accept tokens), by name. */
  appRegistrations: z.record(name, appRegistrationSchema).default({
    'keyless-gateway': {
      identifierUri: localGatewayAudience,
      appRoles: Object.keys(gatewayAppRoles),
    },
  }),
  /** App roles granted to identities (`identity` is a user-assigned name or `<host>/system`). */
  appRoleAssignments: z
    .array(z.strictObject({ identity: z.string(), app: name, roles: z.array(z.string()).min(1) }))
    .default([
      {
        identity: 'id-storefront',
        app: 'keyless-gateway',
        roles: Object.keys(gatewayAppRoles),
      },
    ]),
  /** The access file (role assignments of the shared identity), relative to the repo root. */
  accessFile: z.string().default('infra/access.json'),
  /** Lifetime of issued access tokens in seconds. Default: 86400 (24 h, like Azure managed identity). */
  tokenLifetimeSeconds: z.number().int().min(60).max(7 * 86400).default(86_400),
  /** The hosts' managed-identity endpoints (both shapes). */
  identityEndpoint: z
    .strictObject({
      /**
       * How many token requests one host may make, counted over both shapes (docs/local-azure.md, "Throttling").
       * Past either bound the request gets 429, as IMDS answers a VM past its managed-identity limits: 20 requests
       * per second and 5 at once per VM. A test that needs more configures the local Azure it starts.
       */
      throttling: z
        .strictObject({
          /** Requests a host may make in any `windowInMs`. Default: 20. */
          requestsPerWindow: z.number().int('a whole number of requests').min(1, 'at least 1 request').max(100_000).default(20),
          /** The sliding window `requestsPerWindow` counts over, in ms. Default: 1000. */
          windowInMs: z.number().int('a whole number of ms').min(10, 'at least 10 ms').max(3_600_000).default(1000),
          /** Requests of a host in progress at once. Default: 5. */
          maxConcurrentRequests: z.number().int('a whole number of requests').min(1, 'at least 1 request').max(10_000).default(5),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Faults injected from the start, by target: a mode (`"openai": "429"`) or `{ "mode": "delay", "delayInMs": 3000 }`
   * (targets and modes: src/faults/fault-catalog.ts, `npm run local-azure -- fault list`). Default: none.
   */
  faults: z.record(z.string(), z.union([z.string(), z.strictObject({ mode: z.string(), delayInMs: z.number().optional() })])).default({}),
  /** Alert rules over the logs (see src/alerts/alert-rules.ts) and where they are sent. */
  alerts: z
    .strictObject({
      /**
       * Webhook that receives every alert and its resolution in Azure Monitor's common alert schema (http or https).
       * `LOCAL_AZURE_ALERT_WEBHOOK` overrides it. Default: none.
       */
      webhookUrl: z
        .string()
        .refine((value) => /^https?:\/\/[^\s/]+/.test(value), 'an http:// or https:// URL')
        .optional(),
      /** How often every rule is evaluated in full (events are evaluated as they happen). Default: 10 s. */
      evaluationIntervalInSeconds: z.number().min(0.1).max(60).default(10),
      /** Look-back window of the log rules. Default: 300 s (5 minutes, as the Azure rules). */
      windowInSeconds: z.number().min(1).max(86_400).default(300),
      /** Waits before each webhook retry, in seconds. Default: 1, 5, 20, 60. */
      webhookRetryDelaysInSeconds: z.array(z.number().min(0).max(3600)).max(10).default([1, 5, 20, 60]),
    })
    .prefault({}),
  /** The portal's sign-in (see docs/local-azure.md). */
  portal: z
    .strictObject({
      /** How long a one-time sign-in link works. Default: 300 s (5 minutes); at most 300. */
      linkLifetimeInSeconds: z.number().min(1).max(300).default(300),
      /** How long a browser session lasts from sign-in. Default: 28800 s (8 hours). */
      sessionLifetimeInSeconds: z.number().int().min(60).max(86_400).default(28_800),
    })
    .prefault({}),
  network: z
    .strictObject({
      /** `loopback` (127.0.0.1 and ::1) or `all` (containers). */
      bind: z.enum(['loopback', 'all']).default('loopback'),
      /** Host name written into env files and URLs (`local-azure` under docker compose). */
      publicHost: z.string().default('localhost'),
      /**
       * How long every listener waits for a slow client: a client that trickles its request, or connects and sends
       * nothing, holds a connection (and its memory) only this long (docs/local-azure.md, "Limits on clients").
       */
      limits: z
        .strictObject({
          /** A client that has not sent a request's headers by then gets 408 and its connection closed, in ms. Default: 10000. */
          httpHeadersTimeoutInMs: z.number().int().min(100).max(300_000).default(10_000),
          /**
           * The same for a whole request, headers and body, in ms; OpenAI and Vision, whose bodies are up to 16 and 20 MB,
           * keep their own longer limits (120 and 60 s). Default: 30000.
           */
          httpRequestTimeoutInMs: z.number().int().min(100).max(300_000).default(30_000),
          /** A TLS client that has not finished its handshake by then is disconnected, in ms (Node's own: 120000). Default: 10000. */
          tlsHandshakeTimeoutInMs: z.number().int().min(100).max(120_000).default(10_000),
        })
        // Node refuses to create a server whose headers timeout is past its request timeout (ERR_OUT_OF_RANGE at start).
        .refine((limits) => limits.httpHeadersTimeoutInMs <= limits.httpRequestTimeoutInMs, {
          path: ['httpHeadersTimeoutInMs'],
          error: (issue) => `at most httpRequestTimeoutInMs (${(issue.input as { httpRequestTimeoutInMs: number }).httpRequestTimeoutInMs}): the headers are part of the request`,
        })
        .prefault({}),
      /** Ports; 0 takes the one kept in `ports.json`, else a free one, then kept (the env files carry the actual ones). */
      ports: z
        .strictObject({
          identity: port.default(0),
          login: port.default(0),
          management: port.default(0),
          serviceBus: port.default(0),
          openAi: port.default(0),
          vision: port.default(0),
          postgres: port.default(0),
          portal: port.default(0),
        })
        .prefault({}),
    })
    .prefault({}),
});

/** Configuration of the local Azure (see {@link localAzureConfigSchema} for fields and defaults). */
export type LocalAzureConfig = z.infer<typeof localAzureConfigSchema>;
/** What a caller may pass: every field optional, defaults filled in by {@link parseConfig}. */
export type LocalAzureConfigInput = z.input<typeof localAzureConfigSchema>;

/** A configuration file or access file that cannot be used; the message names file, entry and field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates `input`, fills defaults and checks cross references (hosts → identities, app roles). */
export function parseConfig(input: LocalAzureConfigInput, source = 'configuration'): LocalAzureConfig {
  const result = localAzureConfigSchema.safeParse(input);
  if (!result.success) throw new ConfigError(describeIssues(source, result.error.issues));
  const config = result.data;
  const problems: string[] = [];
  for (const [hostName, env] of Object.entries(config.hostEnv)) {
    const host = config.hosts[hostName];
    if (!host) problems.push(`hostEnv.${hostName}: no host named "${hostName}" in hosts`);
    // New objects: the defaults are shared by every parse, and must not keep one configuration's variables.
    else config.hosts = { ...config.hosts, [hostName]: { ...host, env: { ...host.env, ...env } } };
  }
  for (const [hostName, host] of Object.entries(config.hosts)) {
    host.userAssigned.forEach((identity, i) => {
      if (!config.identities[identity]) {
        problems.push(`hosts.${hostName}.userAssigned[${i}]: no identity named "${identity}" in identities`);
      }
    });
  }
  for (const [name, deployment] of Object.entries(config.resources.openAi.deployments)) {
    const capability = deployment.capability ?? (/embedding/i.test(deployment.model) ? 'embeddings' : 'chat');
    if (deployment.backend && capability !== 'chat') problems.push(`resources.openAi.deployments.${name}.backend: only chat deployments forward to a model server`);
  }
  for (const [hostName, dir] of Object.entries(config.hostEnvDirs)) {
    if (!config.hosts[hostName]) problems.push(`hostEnvDirs.${hostName}: no host named "${hostName}" in hosts (${dir})`);
  }
  if (config.users[config.operator.name]) problems.push(`users.${config.operator.name}: the operator is already a user; give the user another name`);
  for (const [userName, user] of Object.entries(config.users)) {
    user.roleAssignments.forEach((assignment, i) => {
      const at = `users.${userName}.roleAssignments[${i}]`;
      if (!findRole(assignment.role)) problems.push(`${at}.role: "${assignment.role}" is not a built-in role this system knows`);
      const [root] = assignment.scope.split('/');
      if (!['subscription', 'resourceGroup', ...resourceKeys].includes(root ?? '')) {
        problems.push(`${at}.scope: "${assignment.scope}" is not subscription, resourceGroup or <resource>[/…] with resource one of ${resourceKeys.join(', ')}`);
      }
    });
  }
  config.appRoleAssignments.forEach((grant, i) => {
    const app = config.appRegistrations[grant.app];
    if (!app) problems.push(`appRoleAssignments[${i}].app: no app registration named "${grant.app}"`);
    if (!isKnownIdentity(config, grant.identity)) {
      problems.push(`appRoleAssignments[${i}].identity: "${grant.identity}" is neither a user-assigned identity nor <host>/system`);
    }
    grant.roles.forEach((role, j) => {
      if (app && !app.appRoles.includes(role)) {
        problems.push(`appRoleAssignments[${i}].roles[${j}]: "${role}" is not an app role of ${grant.app}`);
      }
    });
  });
  for (const [target, fault] of Object.entries(config.faults)) {
    try {
      validateFault(target, typeof fault === 'string' ? { mode: fault } : fault);
    } catch (error) {
      if (!(error instanceof InvalidFaultError)) throw error;
      problems.push(`faults.${target}: ${error.message}`);
    }
  }
  if (problems.length) throw new ConfigError(`${source}: ${problems.join('; ')}`);
  return config;
}

/** Loads a JSON configuration file (partial; defaults fill the rest). */
export function loadConfigFile(path: string): LocalAzureConfig {
  const file = resolve(path);
  if (!existsSync(file)) throw new ConfigError(`${file}: configuration file not found`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  return parseConfig(json as LocalAzureConfigInput, file);
}

export function isKnownIdentity(config: LocalAzureConfig, identity: string): boolean {
  if (config.identities[identity]) return true;
  const [host, system] = identity.split('/');
  return system === 'system' && !!config.hosts[host ?? '']?.systemAssigned;
}

/** Formats zod issues as `source: path.to.field: message; …`. */
export function describeIssues(source: string, issues: readonly z.core.$ZodIssue[]): string {
  const lines = issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
  return `${source}: ${lines.join('; ')}`;
}
