// The CLI's commands (`start` and the calls to a running local Azure), loaded by main.ts once the process runs as
// `start` needs it (runtime/memory-tuning.ts).
import { resolve } from 'node:path';
import { readSetting } from '@keyless/contracts';
import { ConfigError, loadConfigFile, type LocalAzureConfig, type LocalAzureConfigInput } from '../config/local-azure-config.js';
import { faultCatalog, faultModesOf, faultTargets } from '../faults/fault-catalog.js';
import { LocalAzureHome } from '../home.js';
import type { LocalAzure } from '../local-azure.js';
import { readStatus, statusExitCodes, waitUntilRunning, type LocalAzureStatus } from '../runtime/status.js';
import { AdminClient, AdminClientError } from './admin-client.js';
import { parseCliArguments } from './arguments.js';
import { formatOutput } from './output.js';
import { consoleLine } from '../util/console-line.js';

const usage = `Usage: npm run local-azure -- [command] [options]

Runs a local Azure (Entra ID + managed identity, RBAC, and the emulated resources) in the foreground,
or talks to the one that runs. State lives in $LOCAL_AZURE_HOME (default: .local-azure/ in the repo).

Commands:
  start                                   run in the foreground (the default); Ctrl-C stops
  status                 [--wait S]       whether it runs for $LOCAL_AZURE_HOME, and where; exit code 0 running,
                                          3 not running, 4 starting or not answering; --wait: up to S seconds for running
  login [--username U]                    sign in as a user of the local tenant (default: the operator)
  logout                                  sign out; commands refuse until the next login
  account show                            who the CLI is signed in as
  resource list                           ARM ids of the local resources
  identity list                           managed identities (client and object ids)
  host list                               hosts, their identities, endpoints and env files
  role definition list                    built-in roles, their actions and data actions
  role assignment list   [--assignee X] [--role R] [--scope S] [--all]
  role assignment create  --assignee X --role R --scope S
                         (az's --assignee-object-id X --assignee-principal-type ServicePrincipal work too)
  role assignment delete [--ids ID] [--assignee X] [--role R] [--scope S]
  role assignment reset                   re-apply the access file (as a redeployment would)
  log sign-ins           [--principal X] [--limit N]   token requests, newest first
  log authorizations     [--principal X] [--limit N]   access decisions and refusals, newest first
  keys rotate                             roll the token-signing key over (old keys stay published while their tokens last)
  openai deployment list                  Azure OpenAI deployments, their quotas and tokens left this minute
  fault <target> <mode> [ms]              inject a fault; <target> none heals it (targets and modes below)
  fault list                              every fault target with its current mode
  servicebus show                         the namespace: endpoint, ARM id, topology file, open connections
  servicebus entity list                  queues, topics and subscriptions (from the topology file or created at
                                          run time) with active, scheduled, deferred, locked and dead-letter counts
  servicebus peek <entity> [--dlq] [--limit N]   messages in sequence order, without locking them
  servicebus purge <entity> [--dlq]       delete every message of the entity (or of its dead-letter queue) but
                                          those a receiver holds locked, as Azure's purge does
  servicebus resubmit <entity>            move the entity's dead-lettered messages back to it
  postgres show                           the PostgreSQL server: endpoint, database, principals, connections, buffers, session
  portal                                  a one-time sign-in link to the portal for the signed-in user (5 minutes, once)
  alert list             [--state Fired|Resolved] [--rule R] [--limit N]   alerts, newest first
  alert show <id>                         one alert, with what fired it and its webhook deliveries
  alert rule list                         the alert rules: what each watches, and its fix

Options:
  -o, --output F         output format: json or table (default: table)
  --config FILE          configuration file for start (default: $LOCAL_AZURE_CONFIG, else built-in defaults)
  --dlq                  servicebus peek/purge: the entity's dead-letter queue
  --all                  role assignment list: az's "at every scope" (a list here always spans the subscription)
  -u, --username U       login: the user (a name such as reader, or a UPN; default: the operator)
  --verbose              start: print every sign-in and RBAC decision, not only failures
  --state, --rule        alert list: only alerts that are Fired or Resolved, or of one rule
  --wait S               status: wait up to S seconds until it runs
  -h, --help             this help

Commands other than start act as the signed-in user, like a signed-in az: the CLI gets an Entra token for
ARM from the local tenant (signing in with the home credential, which only the local Azure's OS user can
read), caches it in $LOCAL_AZURE_HOME/cli (mode 0600) and renews it. Before the first login it signs in as
the operator (Owner of the subscription). Every request is authorized by Azure RBAC.

--assignee takes an identity name, client id, user name or UPN, or an object id; --role a role name or id;
--scope an ARM id, subscription, resourceGroup, or the short form <resource>[/queues/<q>|/topics/<t>[/subscriptions/<s>]]
(resources: see resource list).
<entity> is a queue name or <topic>/<subscription>. Service Bus entities come from
infra/servicebus-topology.json (or the file $LOCAL_AZURE_SERVICEBUS_CONFIG names), applied at every start,
and from the management API (ServiceBusAdministrationClient), kept across restarts.

Fault targets and modes (\`delay\` takes milliseconds, default 2000):
${faultTargets.map((target) => `  ${target.padEnd(24)} ${faultModesOf(target).join('|').padEnd(34)} ${faultCatalog[target].description}`).join('\n')}`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCliArguments(argv);
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (values.output !== 'json' && values.output !== 'table') throw new AdminClientError(`--output must be json or table, not "${values.output}"`);
  if (values.limit !== undefined && !/^[1-9]\d*$/.test(values.limit)) throw new AdminClientError(`--limit takes a whole number of at least 1, not "${values.limit}"`);
  values.assignee ??= values['assignee-object-id'];
  // A blank setting (LOCAL_AZURE_HOME=) means the default, never the current folder.
  const home = new LocalAzureHome(readSetting(process.env, 'LOCAL_AZURE_HOME') ?? LocalAzureHome.defaultRoot);
  const command = positionals.join(' ');
  if (command === '' || command === 'start') return serve(home, values.config ?? readSetting(process.env, 'LOCAL_AZURE_CONFIG'), values.verbose);
  if (command === 'status') return status(home, values.output, values.wait);

  const { client: admin, session } = AdminClient.forHome(home);
  const print = (rows: Record<string, unknown>[] | Record<string, unknown>, columns?: string[]): number => {
    // An empty table prints nothing, as az's does (not a blank line).
    const text = formatOutput(rows, values.output!, columns);
    if (text) process.stdout.write(`${text}\n`);
    return 0;
  };
  const accountColumns = ['username', 'name', 'objectId', 'tenantId'];
  const query = (params: Record<string, string | undefined>): string => {
    const search = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => !!e[1]));
    return search.size ? `?${search}` : '';
  };
  const assignmentColumns = ['principalId', 'roleDefinitionName', 'scope', 'source'];
  switch (command) {
    case 'login':
      return print({ ...(await session.login(values.username)) }, accountColumns);
    case 'logout': {
      const account = session.logout();
      process.stdout.write(account ? `Signed out ${account.username}.\n` : 'Nobody was signed in.\n');
      return 0;
    }
    case 'account show': {
      // Like every other command, the first one signs the operator in; after `logout` this refuses, naming login.
      if (!session.account()) await session.accessToken();
      const account = session.account();
      if (!account) throw new AdminClientError(`Not signed in. Run \`${home.command('npm run local-azure -- login')}\`.`);
      return print({ ...account }, accountColumns);
    }
    case 'openai deployment list':
      return print(await admin.call('GET', '/openai/deployments'), ['name', 'model', 'capability', 'tokensPerMinute', 'remainingTokens']);
    case 'resource list':
      return print(await admin.call('GET', '/resources'), ['key', 'name', 'id', 'endpoint']);
    case 'identity list':
      return print(await admin.call('GET', '/identities'), ['name', 'kind', 'clientId', 'principalId']);
    case 'host list':
      return print(await admin.call('GET', '/hosts'), ['name', 'identityEndpoint', 'envFile']);
    case 'role definition list':
      return print(await admin.call('GET', '/roleDefinitions'), ['name', 'id', 'actions', 'dataActions']);
    case 'role assignment list':
      return print(await admin.call('GET', `/roleAssignments${query({ assignee: values.assignee, role: values.role, scope: values.scope })}`), assignmentColumns);
    case 'role assignment create':
      return print(
        await admin.call('POST', '/roleAssignments', { assignee: values.assignee, role: values.role, scope: values.scope, assigneePrincipalType: values['assignee-principal-type'] }),
        assignmentColumns,
      );
    case 'role assignment delete': {
      const deleted = await admin.call<Record<string, unknown>[]>('DELETE', `/roleAssignments${query({ id: values.ids, assignee: values.assignee, role: values.role, scope: values.scope })}`);
      if (deleted.length === 0) process.stderr.write('No role assignment matched: nothing was deleted (role assignment list shows what there is).\n');
      return print(deleted, assignmentColumns);
    }
    case 'role assignment reset':
      return print(await admin.call('POST', '/roleAssignments:reset'));
    case 'log sign-ins':
      return print(await admin.call('GET', `/logs/signIns${query({ principal: values.principal, limit: values.limit })}`), [
        'time', 'host', 'identity', 'resource', 'outcome', 'reason',
      ]);
    case 'log authorizations':
      return print(await admin.call('GET', `/logs/authorizations${query({ principal: values.principal, limit: values.limit })}`), [
        'time', 'resource', 'identity', 'action', 'dataAction', 'scope', 'decision', 'role', 'reason',
      ]);
    case 'keys rotate':
      return print(await admin.call('POST', '/signingKeys:rotate'));
    case 'servicebus show':
      return print(await admin.call('GET', '/servicebus'));
    case 'postgres show':
      return print(await admin.call('GET', '/postgres'));
    case 'servicebus entity list':
      return print(await admin.call('GET', '/servicebus/entities'), ['name', 'type', 'origin', 'active', 'scheduled', 'deferred', 'locked', 'deadLetter']);
    case 'portal': {
      const link = await admin.call<{ url: string; expiresOn: string; operator: string }>('POST', '/portal/signInLinks');
      if (values.output === 'json') return print(link);
      process.stdout.write(`${link.url}\n`);
      process.stderr.write(`One-time sign-in link for ${link.operator}, valid until ${link.expiresOn}; open it in a browser that trusts the local CA.\n`);
      return 0;
    }
    case 'alert list':
      return print(await admin.call('GET', `/alerts${query({ state: values.state, rule: values.rule, limit: values.limit })}`), [
        'id', 'monitorCondition', 'severity', 'ruleName', 'summary', 'firedAt', 'resolvedAt',
      ]);
    case 'alert rule list':
      return print(await admin.call('GET', '/alerts/rules'), ['id', 'severity', 'signalType', 'name']);
    default: {
      const alert = command.match(/^alert show (\S+)$/);
      if (alert) return print(await admin.call('GET', `/alerts/${encodeURIComponent(alert[1]!)}`));
      if (command === 'fault list') return print(await admin.call('GET', '/faults'), ['target', 'mode', 'delayInMs', 'effect']);
      const fault = command.match(/^fault (\S+) (\S+)(?: (\S+))?$/);
      if (fault) {
        const [, target, mode, delay] = fault;
        if (delay !== undefined && !/^\d+$/.test(delay)) throw new AdminClientError(`The delay must be a whole number of milliseconds (0 or more), not "${delay}".`);
        const body = { fault: mode, ...(delay !== undefined ? { delayInMs: Number(delay) } : {}) };
        return print(await admin.call('PUT', `/faults/${encodeURIComponent(target!)}`, body), ['target', 'mode', 'delayInMs', 'effect']);
      }
      const serviceBus = command.match(/^servicebus (peek|purge|resubmit) (\S+)$/);
      if (serviceBus) {
        const [, action, entity] = serviceBus;
        const path = `/servicebus/entities/${entity!.split('/').map(encodeURIComponent).join('/')}`;
        const dlq = values.dlq ? '?dlq=true' : '';
        if (action === 'peek') {
          return print(await admin.call('GET', `${path}/messages${query({ dlq: values.dlq ? 'true' : undefined, limit: values.limit })}`), [
            'sequenceNumber', 'messageId', 'subject', 'sessionId', 'state', 'enqueuedTime', 'deliveryCount', 'deadLetterReason', 'body',
          ]);
        }
        if (action === 'purge') return print(await admin.call('DELETE', `${path}/messages${dlq}`));
        return print(await admin.call('POST', `${path}/deadLetters:resubmit`));
      }
      // A command begun but not finished (`fault openai`, `alert show`): its own forms, not the whole usage.
      const forms = formsBegunBy(command.split(' '));
      if (forms.length) throw new AdminClientError(`"${command}" is not a whole command. It takes:\n${forms.join('\n')}\n(--help lists every command)`);
      throw new AdminClientError(`Unknown command "${command}".\n\n${usage}`);
    }
  }
}

async function serve(home: LocalAzureHome, configFile: string | undefined, verbose: boolean): Promise<number> {
  const startedAt = performance.now();
  // Every line goes through consoleLine: callers' text (a resource, a URL, a reason) reaches the console in records
  // and data planes' lines, and must neither start a line of its own nor drive the operator's terminal.
  const out = (line: string): void => void process.stdout.write(`${consoleLine(line)}\n`);
  const fileConfig = configFile ? loadConfigFile(configFile) : undefined;
  const topologyFile = readSetting(process.env, 'LOCAL_AZURE_SERVICEBUS_CONFIG');
  const withTopology = topologyFile ? withTopologyFile(fileConfig, resolve(topologyFile)) : fileConfig;
  const webhookUrl = readSetting(process.env, 'LOCAL_AZURE_ALERT_WEBHOOK');
  const config = webhookUrl ? { ...withTopology, alerts: { ...withTopology?.alerts, webhookUrl } } : withTopology;
  // The signal handlers come first: a launcher may stop the process as soon as it is ready, and without a handler
  // SIGTERM would kill it on the spot, with no clean stop.
  const running: { azure?: LocalAzure; stopWhenStarted?: () => void } = {};
  // A stop while starting abandons the start (the PostgreSQL engine's start alone can take seconds), not waits for it.
  const abandonStart = new AbortController();
  const stopped = new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        out(`${signal} again: exiting without a clean stop.`);
        process.exit(130);
      }
      stopping = true;
      out(`${signal}: stopping…`);
      const run = (): void =>
        void running.azure!.stop().then(
          () => {
            out('Local Azure stopped.');
            resolveExit(0);
          },
          (error: unknown) => {
            process.stderr.write(`error while stopping: ${(error as Error).message}\n`);
            resolveExit(1);
          },
        );
      if (running.azure) run();
      else {
        running.stopWhenStarted = run;
        abandonStart.abort();
      }
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  // Loaded here, not at the top: the other commands (status, the admin calls) stay quick and small.
  const [{ LocalAzure }, { dataPlanes }] = await Promise.all([import('../local-azure.js'), import('../data-planes.js')]);
  const azure = await LocalAzure.start({ home: home.root, ...(config ? { config } : {}), dataPlanes, log: out, signal: abandonStart.signal }).catch((error: unknown) => {
    if (error !== abandonStart.signal.reason) throw error;
  });
  if (!azure) {
    // The start was abandoned, and what it had started is stopped.
    out('Local Azure stopped.');
    return 0;
  }
  running.azure = azure;
  running.stopWhenStarted?.();
  const elapsed = Math.round(performance.now() - startedAt);
  out(`Local Azure ready in ${elapsed} ms — home ${home.root}`);
  out(`  Tenant        ${azure.directory.tenantId}  (authority ${azure.endpoints.login})`);
  out(`  Identity      ${azure.endpoints.identity}/hosts/<host>/msi/token, IMDS ${azure.endpoints.identity}/imds/<capability> (per host, in its env file)`);
  out(`  Management    ${azure.endpoints.management}  (ARM: Entra token for https://management.azure.com/ + RBAC)`);
  out(`  Operator      ${azure.directory.operator.userPrincipalName} (Owner of /subscriptions/${azure.directory.subscriptionId}); the CLI signs in as it`);
  out(`  Portal        ${azure.endpoints.portal}  (sign in: ${home.command('npm run -s local-azure -- portal')})`);
  for (const resource of azure.directory.resources()) {
    const endpoint = azure.resourceEndpoint(resource.key);
    if (endpoint) out(`  ${resource.key.padEnd(13)} ${endpoint}`);
  }
  out(`  Hosts         ${azure.directory.hosts().map((h) => h.name).join(', ')} → env files in ${home.envDir}`);
  out(`  CA            ${azure.tls.caCertPath} (NODE_EXTRA_CA_CERTS)`);
  out(`  Ports         kept in ${home.portsFile}: a restart serves the same endpoints`);
  const webhook = azure.alerts?.webhook ? new URL(azure.alerts.webhook.url) : undefined;
  out(`  Alerts        ${webhook ? `webhook ${webhook.origin}${webhook.pathname}` : 'no webhook (set LOCAL_AZURE_ALERT_WEBHOOK)'}; \`alert list\` lists them`);
  out('Sign-in failures, RBAC denials, requests the HTTP parsers refused and alerts are printed below. Ctrl-C stops.');
  azure.auditLog.onRecord((kind, record) => {
    if (kind === 'sign-in' && 'outcome' in record) {
      // The PostgreSQL data plane prints its refused logins itself, with the fix; successes show with --verbose.
      if (record.endpoint === 'postgres') {
        if (verbose && record.outcome === 'success') out(`[sign-in] success postgres user=${record.user} database=${record.database} identity=${record.identity ?? '-'} client=${record.client}`);
      } else if (verbose || record.outcome === 'failure') {
        const where = record.host ? `host=${record.host}` : `endpoint=${record.endpoint}${record.grantType ? ` grant=${record.grantType}` : ''}`;
        out(`[sign-in] ${record.outcome} ${where} identity=${record.identity ?? '-'} resource=${record.resource ?? '-'}${record.reason ? ` reason="${record.reason}"` : ''}`);
      }
    }
    if (kind === 'authorization' && 'decision' in record && (verbose || record.decision === 'denied')) {
      const what = record.action ?? record.dataAction ?? record.operation ?? '-';
      const who = record.identity ?? (record.principalId || 'anonymous');
      out(`[rbac] ${record.decision} ${who} ${what} on ${record.scope}${record.role ? ` via ${record.role}` : ''}${record.reason ? ` reason="${record.reason}"` : ''}`);
    }
  });

  return stopped;
}

/**
 * `status`: the one ready signal (see `readStatus`), as JSON or as a short table; the exit code says the
 * state (0 running, 3 not running, 4 starting or not answering).
 */
async function status(home: LocalAzureHome, output: string, wait: string | undefined): Promise<number> {
  let result: LocalAzureStatus;
  if (wait === undefined) result = await readStatus(home);
  else {
    const seconds = Number(wait);
    if (!Number.isFinite(seconds) || seconds < 0) throw new AdminClientError(`--wait takes a number of seconds (0 or more), not "${wait}"`);
    result = await waitUntilRunning(home, seconds * 1000);
  }
  if (output === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    const rows: [string, string | number | undefined][] = [
      ['State', result.state],
      ['Home', result.home],
      ['Pid', result.pid],
      ['Started', result.startedAt],
      ['Admin API', result.management],
      ['Identity', result.endpoints?.identity],
      ['Authority', result.endpoints?.login],
      ['Portal', result.endpoints?.portal],
      ...Object.entries(result.endpoints?.resources ?? {}).map(([key, endpoint]): [string, string] => [key, endpoint]),
    ];
    const lines = rows.filter(([, value]) => value !== undefined && value !== '').map(([label, value]) => `${label.padEnd(12)}${value}`);
    process.stdout.write(`${[...lines, '', result.detail].join('\n')}\n`);
  }
  return statusExitCodes[result.state];
}

/**
 * The lines of the usage's command list whose command `words` begin without finishing it: each typed word is the
 * form's word or fills its `<placeholder>`, and words are missing (`fault openai` of `fault <target> <mode> [ms]`).
 */
function formsBegunBy(words: readonly string[]): string[] {
  const commandLines = usage.slice(usage.indexOf('\nCommands:') + 1, usage.indexOf('\nOptions:')).split('\n').filter((line) => /^ {2}\S/.test(line));
  return commandLines.filter((line) => {
    const [form = ''] = line.trim().split(/\s{2,}/);
    const tokens = form.split(' ');
    const optionsAt = tokens.findIndex((token) => /^[[-]/.test(token));
    const required = optionsAt === -1 ? tokens : tokens.slice(0, optionsAt);
    return words.length < required.length && words.every((word, i) => required[i]!.startsWith('<') || required[i] === word);
  });
}

/** `LOCAL_AZURE_SERVICEBUS_CONFIG` names the Service Bus topology file (relative to the working directory). */
function withTopologyFile(config: LocalAzureConfig | undefined, topologyFile: string): LocalAzureConfigInput {
  return { ...config, resources: { ...config?.resources, serviceBus: { ...config?.resources.serviceBus, topologyFile } } };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // parseArgs' refusals (an unknown option, an option without its value) are the operator's to fix, like ours.
    const parseRefusal = String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_');
    const known = error instanceof ConfigError || error instanceof AdminClientError || parseRefusal;
    process.stderr.write(`local-azure: ${known ? `${(error as Error).message}${parseRefusal ? ' (--help lists the commands and their options)' : ''}` : (error as Error).stack ?? String(error)}\n`);
    process.exit(known ? 2 : 1);
  },
);
