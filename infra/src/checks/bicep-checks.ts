import { checkAlerts } from './alert-checks.js';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { findSecretSettings } from '@keyless/auth/diagnostics';
import { applicationInsightsAllowance } from '@keyless/observability';
import { openAiApiVersion, serviceAccess } from '@keyless/contracts';
import { DeployTimeValue, ResourceInstance, evaluateDeployment, renderString, splitName, type EvaluatedDeployment } from '../bicep/bicep-evaluator.js';
import { parseBicep, type BicepFile, type Expression } from '../bicep/bicep-syntax.js';
import { isInfraCheckError } from '../errors.js';
import { privilegedRoles, scopePath, type AccessGrant, type ResourceKey } from './access-checks.js';
import type { InfraProblem } from './infra-problem.js';
import { checkPostgres, databaseAppSettings, type DatabasePrincipalDeclaration } from './postgres-checks.js';
import type { Topology } from './topology.js';

/**
 * The settings every App Service must carry: the services read them (and nothing else from Azure). The services'
 * own specs hold their schemas' required variables to the Bicep too (`missingAppServiceSettings` of @keyless/testing).
 */
export const requiredAppSettings = [
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'SERVICEBUS_FULLY_QUALIFIED_NAMESPACE',
  'SERVICEBUS_NAMESPACE_RESOURCE_ID',
  'AZURE_OPENAI_ENDPOINT',
  'AZURE_OPENAI_RESOURCE_ID',
  'AZURE_OPENAI_CHAT_DEPLOYMENT',
  'AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT',
  'AZURE_VISION_ENDPOINT',
  'AZURE_VISION_RESOURCE_ID',
  'GATEWAY_AUDIENCE',
  'GATEWAY_APP_ID',
  ...databaseAppSettings,
] as const;

/**
 * What App Service's health check must probe: every service's public readiness endpoint (`@keyless/observability`'s
 * health controller), which is up only once the identity holds its tokens, the bus links are attached and the
 * database answers.
 */
const healthCheckPath = '/health/ready';

/**
 * Text that only appears where a key is used: key listing functions, key-based connection-string fields, key
 * headers, secure parameters (which exist to carry secrets) and local auth switched back on.
 */
const keyPatterns: { pattern: RegExp; what: string }[] = [
  { pattern: /\blist[A-Za-z]*(Keys|Secrets|ConnectionStrings|Sas)\s*\(/i, what: 'a key-listing function' },
  { pattern: /SharedAccessKey/i, what: 'a Service Bus SAS key' },
  { pattern: /AccountKey/i, what: 'a storage account key' },
  { pattern: /api[-_]?key/i, what: 'an API key' },
  { pattern: /Ocp-Apim-Subscription-Key/i, what: 'a Cognitive Services key header' },
  { pattern: /(primary|secondary)(Key|ConnectionString)/i, what: 'a resource key' },
  { pattern: /InstrumentationKey/i, what: 'a bare Application Insights instrumentation key' },
  { pattern: /disableLocalAuth\s*:\s*false/i, what: 'local auth switched on' },
  { pattern: /@secure\s*\(/i, what: 'a secure parameter (a place for a secret)' },
];

/** App setting names that hold a credential by convention. */
const credentialSettingName = /(KEY|SECRET|PASSWORD|PWD|TOKEN|CONNECTION_?STRING|SAS)/i;
/** A connection-string field that carries a credential. */
const credentialInValue = /(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|api-key)\s*=/i;

/**
 * Resource types the checks have reviewed, with how each one turns key (local) authentication off, or why it
 * has none. A type missing here is reported, so a new resource gets the same review.
 */
const localAuthRules: Record<string, { check?: (resource: ResourceInstance, all: ResourceInstance[]) => string | undefined }> = {
  'microsoft.resources/resourcegroups': {},
  'microsoft.managedidentity/userassignedidentities': {},
  'microsoft.authorization/roleassignments': {},
  'microsoft.web/serverfarms': {},
  'microsoft.web/sites/basicpublishingcredentialspolicies': {
    check: (resource) => (property(resource.body, ['properties', 'allow']) === false ? undefined : 'allows publishing with a user name and password (properties.allow must be false)'),
  },
  'microsoft.web/sites': {
    check: (site, all) => {
      const policies = all.filter((r) => r.type.toLowerCase() === 'microsoft.web/sites/basicpublishingcredentialspolicies' && !r.existing && splitName(r.name)[0] === site.name);
      const missing = ['ftp', 'scm'].filter((kind) => !policies.some((policy) => splitName(policy.name)[1] === kind));
      return missing.length ? `has no basicPublishingCredentialsPolicies ${missing.join(' and ')} with allow: false (user name and password publishing stays on)` : undefined;
    },
  },
  'microsoft.servicebus/namespaces': { check: (r) => requireTrue(r, ['properties', 'disableLocalAuth']) },
  'microsoft.servicebus/namespaces/queues': {},
  'microsoft.servicebus/namespaces/topics': {},
  'microsoft.servicebus/namespaces/topics/subscriptions': {},
  'microsoft.servicebus/namespaces/topics/subscriptions/rules': {},
  'microsoft.cognitiveservices/accounts': { check: (r) => requireTrue(r, ['properties', 'disableLocalAuth']) },
  'microsoft.cognitiveservices/accounts/deployments': {},
  'microsoft.insights/components': { check: (r) => requireTrue(r, ['properties', 'DisableLocalAuth']) },
  // Alert rules and the action group hold no keys and accept no logins: nothing to turn off.
  'microsoft.insights/actiongroups': {},
  'microsoft.insights/scheduledqueryrules': {},
  'microsoft.insights/activitylogalerts': {},
  'microsoft.insights/metricalerts': {},
  'microsoft.operationalinsights/workspaces': { check: (r) => requireTrue(r, ['properties', 'features', 'disableLocalAuth']) },
  // Entra authentication only: no administrator login or password, password authentication off.
  'microsoft.dbforpostgresql/flexibleservers': {
    check: (r) => {
      const auth = property(r.body, ['properties', 'authConfig']);
      if (property(auth, ['activeDirectoryAuth']) !== 'Enabled') return 'does not accept Microsoft Entra authentication (properties.authConfig.activeDirectoryAuth must be Enabled)';
      if (property(auth, ['passwordAuth']) !== 'Disabled') return 'accepts passwords (properties.authConfig.passwordAuth must be Disabled)';
      if (property(r.body, ['properties', 'administratorLogin']) !== undefined || property(r.body, ['properties', 'administratorLoginPassword']) !== undefined) {
        return 'has a password administrator (properties.administratorLogin / administratorLoginPassword must be absent)';
      }
      return undefined;
    },
  },
  // The Entra administrator, the allow-list, the database and the firewall rule hold no keys and accept no logins.
  'microsoft.dbforpostgresql/flexibleservers/administrators': {},
  'microsoft.dbforpostgresql/flexibleservers/configurations': {},
  'microsoft.dbforpostgresql/flexibleservers/databases': {},
  'microsoft.dbforpostgresql/flexibleservers/firewallrules': {},
  'microsoft.keyvault/vaults': {
    check: (r) => {
      if (property(r.body, ['properties', 'enableRbacAuthorization']) !== true) return 'is not in RBAC mode (properties.enableRbacAuthorization must be true)';
      const policies = property(r.body, ['properties', 'accessPolicies']);
      return Array.isArray(policies) && policies.length ? 'has access policies, which bypass role assignments' : undefined;
    },
  },
};

function requireTrue(resource: ResourceInstance, path: string[]): string | undefined {
  return property(resource.body, path) === true ? undefined : `does not disable local (key) auth (${path.join('.')} must be true)`;
}

function property(value: unknown, path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || current instanceof DeployTimeValue) return undefined;
    const record = current as Record<string, unknown>;
    const actual = Object.keys(record).find((k) => k.toLowerCase() === key.toLowerCase());
    if (actual === undefined) return undefined;
    current = record[actual];
  }
  return current;
}

/** Emulator property → ARM property, per entity kind: what Bicep must copy from the topology file. */
const propertyMaps = {
  queue: {
    LockDuration: 'lockDuration',
    MaxDeliveryCount: 'maxDeliveryCount',
    DefaultMessageTimeToLive: 'defaultMessageTimeToLive',
    DeadLetteringOnMessageExpiration: 'deadLetteringOnMessageExpiration',
    RequiresSession: 'requiresSession',
    RequiresDuplicateDetection: 'requiresDuplicateDetection',
    DuplicateDetectionHistoryTimeWindow: 'duplicateDetectionHistoryTimeWindow',
    ForwardTo: 'forwardTo',
    ForwardDeadLetteredMessagesTo: 'forwardDeadLetteredMessagesTo',
  },
  topic: {
    DefaultMessageTimeToLive: 'defaultMessageTimeToLive',
    RequiresDuplicateDetection: 'requiresDuplicateDetection',
    DuplicateDetectionHistoryTimeWindow: 'duplicateDetectionHistoryTimeWindow',
  },
  subscription: {
    LockDuration: 'lockDuration',
    MaxDeliveryCount: 'maxDeliveryCount',
    DefaultMessageTimeToLive: 'defaultMessageTimeToLive',
    DeadLetteringOnMessageExpiration: 'deadLetteringOnMessageExpiration',
    RequiresSession: 'requiresSession',
    ForwardTo: 'forwardTo',
    ForwardDeadLetteredMessagesTo: 'forwardDeadLetteredMessagesTo',
  },
  correlationFilter: {
    Label: 'label',
    CorrelationId: 'correlationId',
    MessageId: 'messageId',
    To: 'to',
    ReplyTo: 'replyTo',
    SessionId: 'sessionId',
    ReplyToSessionId: 'replyToSessionId',
    ContentType: 'contentType',
    Properties: 'properties',
  },
} as const;

/** The ARM resource type each access.json resource key is deployed as. */
const resourceTypes: Record<ResourceKey, { type: string; kind?: string }> = {
  serviceBus: { type: 'microsoft.servicebus/namespaces' },
  openAi: { type: 'microsoft.cognitiveservices/accounts', kind: 'OpenAI' },
  vision: { type: 'microsoft.cognitiveservices/accounts', kind: 'ComputerVision' },
  keyVault: { type: 'microsoft.keyvault/vaults' },
  appInsights: { type: 'microsoft.insights/components' },
};

export interface BicepCheckOptions {
  /** Repository root (paths in problems are relative to it). */
  root: string;
  /** The main Bicep file. */
  mainPath: string;
  /** `azure.yaml`. */
  azureYamlPath: string;
  topology?: Topology;
  grants?: AccessGrant[];
  identity?: string;
  /** access.json `databasePrincipals`. */
  databasePrincipals?: DatabasePrincipalDeclaration[];
}

/**
 * Evaluates the Bicep deployment and checks it against the topology file, the access file and the no-keys rule.
 */
export function checkBicep(options: BicepCheckOptions): { deployment?: EvaluatedDeployment; problems: InfraProblem[] } {
  const { root, mainPath } = options;
  const rel = (path: string): string => relative(root, path) || path;
  const problems: InfraProblem[] = [];
  // Text checks read every .bicep file on their own, so they report even when the deployment cannot be evaluated.
  const files: BicepFile[] = [];
  for (const path of bicepFiles(dirname(mainPath))) {
    try {
      files.push(parseBicep(readFileSync(path, 'utf8'), path));
    } catch (error) {
      if (!isInfraCheckError(error)) throw error;
      problems.push({ code: 'bicep-unreadable', file: rel(path), message: error.message, fix: 'Correct the Bicep at the place named (the checks read a subset of Bicep: see infra/src/bicep/bicep-syntax.ts).' });
    }
  }
  checkTextForKeys(files, rel, problems);
  checkLiterals(files, options.topology, rel, problems);
  let deployment: EvaluatedDeployment;
  try {
    // Alert receivers are optional parameters: give both, so their settings are checked too.
    deployment = evaluateDeployment(mainPath, { environmentName: 'check', location: 'check-location', alertEmail: 'alerts@check.invalid', alertWebhookUrl: 'https://check.invalid/alerts' }, files);
  } catch (error) {
    if (!isInfraCheckError(error)) throw error;
    // Syntax and unsupported constructs were reported file by file above.
    if (error.code === 'bicep-evaluation') {
      problems.push({ code: 'bicep-unreadable', file: rel(mainPath), message: error.message, fix: 'Correct the Bicep at the place named (the checks evaluate a subset of Bicep: see infra/src/bicep/bicep-evaluator.ts).' });
    }
    return { problems };
  }
  const deployed = deployment.resources.filter((r) => !r.existing);
  const at = (r: ResourceInstance): string => `${rel(r.file)}:${r.declaration.at.line}`;

  checkLocalAuth(deployed, at, problems);
  if (options.topology) checkEntities(deployed, options.topology, at, problems);
  if (options.grants && options.identity) checkRoleAssignments(deployment, options.grants, options.identity, at, problems);
  checkSites(deployed, options.identity, at, problems);
  checkServices(deployed, options.azureYamlPath, rel, problems);
  checkAlerts(deployed, at, problems);
  checkPostgres(
    { deployed, at, ...(options.identity ? { identity: options.identity } : {}), ...(options.databasePrincipals ? { principals: options.databasePrincipals } : {}) },
    problems,
  );
  return { deployment, problems };
}

function bicepFiles(directory: string): string[] {
  return readdirSync(directory, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.bicep') && !name.split(sep).includes('node_modules'))
    .sort()
    .map((name) => join(directory, name));
}

function checkTextForKeys(files: BicepFile[], rel: (path: string) => string, problems: InfraProblem[]): void {
  for (const file of files) {
    const lines = readFileSync(file.path, 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const { pattern, what } of keyPatterns) {
        if (!pattern.test(line)) continue;
        problems.push({
          code: 'key-based-setting',
          file: rel(file.path),
          entry: `line ${i + 1}`,
          message: `uses ${what}: ${line.trim()}`,
          fix: 'Remove it: every client authenticates with the shared identity and is authorized by access.json; keys stay disabled.',
        });
      }
    });
  }
}

/** Role definition GUIDs and Service Bus entity names must come from the files, never from Bicep literals. */
function checkLiterals(files: BicepFile[], topology: Topology | undefined, rel: (path: string) => string, problems: InfraProblem[]): void {
  const guid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
  for (const file of files) {
    for (const literal of file.literals) {
      const match = guid.exec(literal.text);
      if (!match) continue;
      const privileged = privilegedRoles.find((role) => role.id === match[0].toLowerCase());
      problems.push({
        code: privileged ? 'privileged-role' : 'hand-written-role',
        file: rel(file.path),
        entry: `line ${literal.at.line}`,
        message: privileged
          ? `names the "${privileged.name}" role (${match[0]}); no service needs it.`
          : `writes the GUID ${match[0]} by hand; role definition ids come from access.json.`,
        fix: 'Remove it; add the role the code needs to infra/access.json, which the deployment reads.',
      });
    }
  }
  if (!topology) return;
  const entityNames = new Set<string>([
    ...topology.queues.map((q) => q.name),
    ...topology.topics.map((t) => t.name),
    ...topology.subscriptions.flatMap((s) => [s.name, ...s.rules.map((r) => r.Name)]),
  ]);
  // Literals are checked where entity names could be used: Service Bus resources, role assignments, variables
  // and module parameters (an App Service named after a service is not an entity, so other resources are not).
  for (const file of files) {
    for (const statement of file.statements) {
      if (statement.kind !== 'resource' && statement.kind !== 'var' && statement.kind !== 'module') continue;
      if (statement.kind === 'resource' && !/^microsoft\.(servicebus|authorization)\//i.test(statement.type)) continue;
      // A module's own `name` is its deployment's name; only what it is given (`params`) can carry entity names.
      const scanned = statement.kind === 'module' ? moduleParams(statement.value) : [statement.value];
      for (const text of scanned.flatMap(stringLiterals)) {
        const named = text.split('/').find((segment) => entityNames.has(segment));
        if (named === undefined) continue;
        problems.push({
          code: 'hand-written-entity',
          file: rel(file.path),
          entry: `line ${statement.at.line} (${statement.name})`,
          message: `names the Service Bus entity "${named}" by hand.`,
          fix: 'Read entities from servicebus-topology.json and scopes from access.json (loop over them) instead of writing names in Bicep.',
        });
      }
    }
  }
}

function moduleParams(body: Expression): Expression[] {
  const object = body.kind === 'for' ? (body.body.kind === 'if' ? body.body.body : body.body) : body.kind === 'if' ? body.body : body;
  return object.kind === 'object' ? object.properties.filter((p) => p.key === 'params').map((p) => p.value) : [body];
}

function stringLiterals(expression: Expression): string[] {
  const found: string[] = [];
  const visit = (node: Expression): void => {
    switch (node.kind) {
      case 'string':
        for (const part of node.parts) {
          if (typeof part === 'string') found.push(part);
          else visit(part);
        }
        return;
      case 'object':
        node.properties.forEach((p) => visit(p.value));
        return;
      case 'array':
        node.items.forEach(visit);
        return;
      case 'for':
        visit(node.source);
        visit(node.body);
        return;
      case 'if':
        visit(node.condition);
        visit(node.body);
        return;
      case 'member':
      case 'index':
        visit(node.target);
        if (node.kind === 'index') visit(node.index);
        return;
      case 'call':
        node.args.forEach(visit);
        return;
      case 'lambda':
        visit(node.body);
        return;
      case 'unary':
        visit(node.operand);
        return;
      case 'binary': {
        // `grant.resource == 'vision'` compares with an access.json resource key, not an entity name.
        const isResourceKey = (side: Expression, other: Expression): boolean => side.kind === 'string' && other.kind === 'member' && other.name === 'resource';
        if (!isResourceKey(node.left, node.right)) visit(node.left);
        if (!isResourceKey(node.right, node.left)) visit(node.right);
        return;
      }
      case 'ternary':
        visit(node.condition);
        visit(node.whenTrue);
        visit(node.whenFalse);
        return;
      default:
        return;
    }
  };
  visit(expression);
  return found;
}

function checkLocalAuth(deployed: ResourceInstance[], at: (r: ResourceInstance) => string, problems: InfraProblem[]): void {
  for (const resource of deployed) {
    const rule = localAuthRules[resource.type.toLowerCase()];
    if (!rule) {
      problems.push({
        code: 'unreviewed-resource-type',
        file: at(resource),
        entry: resource.symbol,
        message: `deploys ${resource.type}, which the no-keys review has not covered.`,
        fix: 'Disable its local (key) auth if it has any, then add the type with that check to localAuthRules in infra/src/checks/bicep-checks.ts.',
      });
      continue;
    }
    const complaint = rule.check?.(resource, deployed);
    if (complaint) {
      problems.push({ code: 'local-auth-enabled', file: at(resource), entry: `${resource.symbol} ${resource.name}`, message: `${resource.type} ${complaint}.`, fix: 'Turn key-based access off for this resource.' });
    }
  }
}

function checkEntities(deployed: ResourceInstance[], topology: Topology, at: (r: ResourceInstance) => string, problems: InfraProblem[]): void {
  const ofType = (type: string): ResourceInstance[] => deployed.filter((r) => r.type.toLowerCase() === `microsoft.servicebus/namespaces/${type}`);
  const entityProblem = (resource: ResourceInstance | undefined, file: string, message: string, fix: string): void => {
    problems.push({ code: 'entity-mismatch', file: resource ? at(resource) : file, ...(resource ? { entry: resource.symbol } : {}), message, fix });
  };
  for (const resource of [...ofType('queues'), ...ofType('topics'), ...ofType('topics/subscriptions'), ...ofType('topics/subscriptions/rules')]) {
    if (!resource.loop) {
      problems.push({
        code: 'hand-written-entity',
        file: at(resource),
        entry: resource.symbol,
        message: `declares ${resource.type} "${resource.name}" on its own instead of looping over servicebus-topology.json.`,
        fix: 'Declare the entity in infra/servicebus-topology.json and remove this declaration.',
      });
    }
  }
  const compare = (kind: string, actual: { key: string; resource: ResourceInstance }[], expected: string[]): void => {
    const counts = new Map<string, number>();
    for (const { key, resource } of actual) {
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (!expected.includes(key)) entityProblem(resource, '', `deploys ${kind} "${key}", which servicebus-topology.json does not declare.`, `Declare ${kind} "${key}" in infra/servicebus-topology.json, or stop deploying it.`);
      else if (counts.get(key) === 2) entityProblem(resource, '', `deploys ${kind} "${key}" twice.`, 'Deploy each entity from one loop over the topology file.');
    }
    for (const key of expected) {
      if (!counts.has(key)) entityProblem(undefined, 'infra/modules', `${kind} "${key}" of servicebus-topology.json is not deployed by the Bicep files.`, `Deploy every ${kind} of the topology file (a loop over it in the Service Bus module).`);
    }
  };
  const local = (resource: ResourceInstance): string => splitName(resource.name).slice(1).join('/');
  compare('queue', ofType('queues').map((r) => ({ key: local(r), resource: r })), topology.queues.map((q) => q.name));
  compare('topic', ofType('topics').map((r) => ({ key: local(r), resource: r })), topology.topics.map((t) => t.name));
  compare('subscription', ofType('topics/subscriptions').map((r) => ({ key: local(r), resource: r })), topology.subscriptions.map((s) => `${s.topic}/${s.name}`));
  const rules = ofType('topics/subscriptions/rules');
  compare(
    'rule',
    rules.map((r) => ({ key: local(r), resource: r })),
    topology.subscriptions.flatMap((s) => [...s.rules.map((rule) => `${s.topic}/${s.name}/${rule.Name}`), ...(s.rules.length ? [`${s.topic}/${s.name}/$Default`] : [])]),
  );

  const settingsProblem = (resource: ResourceInstance, message: string): void => {
    problems.push({ code: 'entity-settings-mismatch', file: at(resource), entry: `${resource.symbol} ${local(resource)}`, message, fix: 'Copy every property of the topology entry into the ARM properties (see propertyMaps in infra/src/checks/bicep-checks.ts).' });
  };
  const compareProperties = (resource: ResourceInstance | undefined, source: Record<string, unknown>, map: Record<string, string>, target: unknown, what: string): void => {
    if (!resource) return;
    for (const [emulatorName, value] of Object.entries(source)) {
      const armName = map[emulatorName];
      if (!armName) {
        settingsProblem(resource, `${what} property ${emulatorName} has no ARM counterpart in the checks.`);
        continue;
      }
      const actual = property(target, [armName]);
      if (JSON.stringify(actual) !== JSON.stringify(value)) settingsProblem(resource, `${what} ${armName} is ${JSON.stringify(actual)}, the topology says ${emulatorName} ${JSON.stringify(value)}.`);
    }
  };
  for (const queue of topology.queues) {
    const resource = ofType('queues').find((r) => local(r) === queue.name);
    compareProperties(resource, queue.properties, propertyMaps.queue, resource?.body['properties'], `queue ${queue.name}`);
  }
  for (const topic of topology.topics) {
    const resource = ofType('topics').find((r) => local(r) === topic.name);
    compareProperties(resource, topic.properties, propertyMaps.topic, resource?.body['properties'], `topic ${topic.name}`);
  }
  for (const subscription of topology.subscriptions) {
    const resource = ofType('topics/subscriptions').find((r) => local(r) === `${subscription.topic}/${subscription.name}`);
    compareProperties(resource, subscription.properties, propertyMaps.subscription, resource?.body['properties'], `subscription ${subscription.topic}/${subscription.name}`);
    for (const rule of subscription.rules) {
      const ruleResource = rules.find((r) => local(r) === `${subscription.topic}/${subscription.name}/${rule.Name}`);
      if (!ruleResource) continue;
      const properties = ruleResource.body['properties'];
      if (rule.Properties?.FilterType === 'Correlation') {
        if (property(properties, ['filterType']) !== 'CorrelationFilter') settingsProblem(ruleResource, `rule ${rule.Name} is not deployed as a CorrelationFilter.`);
        compareProperties(ruleResource, rule.Properties.CorrelationFilter ?? {}, propertyMaps.correlationFilter, property(properties, ['correlationFilter']), `rule ${rule.Name} filter`);
      } else if (rule.Properties?.FilterType === 'Sql') {
        if (property(properties, ['filterType']) !== 'SqlFilter' || property(properties, ['sqlFilter', 'sqlExpression']) !== rule.Properties.SqlFilter?.SqlExpression) {
          settingsProblem(ruleResource, `rule ${rule.Name} is not deployed as the SqlFilter the topology declares.`);
        }
      }
    }
    if (subscription.rules.length) {
      const defaultRule = rules.find((r) => local(r) === `${subscription.topic}/${subscription.name}/$Default`);
      if (defaultRule && property(defaultRule.body, ['properties', 'sqlFilter', 'sqlExpression']) !== '1=0') {
        settingsProblem(defaultRule, `the $Default rule of ${subscription.topic}/${subscription.name} still matches messages; the topology's rules alone must select them.`);
      }
    }
  }
}

function checkRoleAssignments(deployment: EvaluatedDeployment, grants: AccessGrant[], identity: string, at: (r: ResourceInstance) => string, problems: InfraProblem[]): void {
  const deployed = deployment.resources.filter((r) => !r.existing);
  const assignments = deployed.filter((r) => r.type.toLowerCase() === 'microsoft.authorization/roleassignments');
  const identities = deployed.filter((r) => r.type.toLowerCase() === 'microsoft.managedidentity/userassignedidentities');
  const shape = (resource: ResourceInstance, message: string, fix: string): void => {
    problems.push({ code: 'assignment-shape', file: at(resource), entry: `${resource.symbol}[${resource.index ?? 0}]`, message, fix });
  };
  if (identities.length !== 1 || identities[0]!.name !== identity) {
    problems.push({
      code: 'app-identity',
      file: 'infra/main.bicep',
      message: `deploys ${identities.length} user-assigned identities (${identities.map((r) => r.name).join(', ') || 'none'}); the system has exactly one, "${identity}" (access.json "identity").`,
      fix: 'Deploy one user-assigned identity named from access.json.',
    });
  }
  const resourceIdOf = (key: ResourceKey): string | undefined => {
    const { type, kind } = resourceTypes[key];
    return deployed.find((r) => r.type.toLowerCase() === type && (!kind || r.body['kind'] === kind))?.id;
  };
  const expected = grants.map((grant, i) => {
    const base = resourceIdOf(grant.resource);
    const path = scopePath(grant);
    return { entry: `assignments[${i}]`, grant, scope: base === undefined ? undefined : path ? `${base}/${path}` : base };
  });
  const matched = new Map<string, number>();
  const names = new Map<string, ResourceInstance>();
  for (const resource of assignments) {
    const body = resource.body;
    const scope = body['scope'];
    const roleDefinitionId = renderString(property(body, ['properties', 'roleDefinitionId']));
    const roleId = /roleDefinitions\/([0-9a-f-]{36})$/i.exec(roleDefinitionId)?.[1]?.toLowerCase();
    const principalId = property(body, ['properties', 'principalId']);
    const name = renderString(body['name']);
    if (!name.startsWith('guid(')) shape(resource, `is named ${JSON.stringify(name)}, not with guid(…).`, 'Name it guid(scope id, principal id, role id): deterministic, so a redeployment updates it.');
    else if (!(scope instanceof ResourceInstance) || !name.includes(scope.id) || !roleId || !name.includes(roleId)) {
      shape(resource, `has a guid() name that does not include its scope and role (${name}).`, 'Name it guid(scope id, principal id, role id).');
    }
    const other = names.get(name);
    if (other) shape(resource, `has the same name as ${other.symbol}[${other.index ?? 0}] (${name}).`, 'Make the guid() inputs differ (scope, principal, role).');
    names.set(name, resource);
    if (property(body, ['properties', 'principalType']) !== 'ServicePrincipal') {
      shape(resource, 'has no principalType ServicePrincipal.', "Set principalType: 'ServicePrincipal' (ARM then skips the directory lookup that fails while a new identity replicates).");
    }
    const origin = principalId instanceof DeployTimeValue ? principalId.origin : undefined;
    if (!origin || origin.resource.type.toLowerCase() !== 'microsoft.managedidentity/userassignedidentities' || origin.resource.name !== identity || origin.path.join('.') !== 'properties.principalId') {
      shape(resource, `is granted to ${renderString(principalId)}, not to the principal of the shared identity "${identity}".`, `Grant roles only to ${identity}'s properties.principalId.`);
    }
    if (!(scope instanceof ResourceInstance)) {
      shape(resource, 'has no resource scope (it would apply to the whole resource group).', 'Scope it to the resource or entity access.json names.');
      continue;
    }
    const match = expected.find((e) => e.scope === scope.id && e.grant.roleDefinitionId === roleId);
    if (!match) {
      problems.push({
        code: 'assignment-mismatch',
        file: at(resource),
        entry: `${resource.symbol}[${resource.index ?? 0}]`,
        message: `deploys role ${roleId ?? roleDefinitionId} on ${scope.id}, which no access.json entry declares.`,
        fix: 'Generate role assignments only from access.json entries (one loop per kind of scope in modules/access.bicep).',
      });
      continue;
    }
    matched.set(match.entry, (matched.get(match.entry) ?? 0) + 1);
  }
  for (const { entry, grant, scope } of expected) {
    const count = matched.get(entry) ?? 0;
    if (count === 1) continue;
    problems.push({
      code: 'assignment-mismatch',
      file: 'infra/access.json',
      entry,
      message:
        count === 0
          ? `"${grant.role}" on ${grant.resource}${scopePath(grant) ? `/${scopePath(grant)}` : ''} is not deployed by the Bicep files${scope ? '' : ` (no ${grant.resource} resource is deployed)`}.`
          : `is deployed ${count} times.`,
      fix: 'Every entry must be picked by exactly one role-assignment loop in modules/access.bicep.',
    });
  }
}

function checkSites(deployed: ResourceInstance[], identity: string | undefined, at: (r: ResourceInstance) => string, problems: InfraProblem[]): void {
  const sites = deployed.filter((r) => r.type.toLowerCase() === 'microsoft.web/sites');
  const identityResource = deployed.find((r) => r.type.toLowerCase() === 'microsoft.managedidentity/userassignedidentities' && (!identity || r.name === identity));
  const components = deployed.filter((r) => r.type.toLowerCase() === 'microsoft.insights/components');
  for (const site of sites) {
    const entry = `${site.symbol} ${site.name}`;
    const complain = (code: InfraProblem['code'], message: string, fix: string): void => {
      problems.push({ code, file: at(site), entry, message, fix });
    };
    const identities = property(site.body, ['identity', 'userAssignedIdentities']);
    const keys = identities && typeof identities === 'object' ? Object.keys(identities) : [];
    if (property(site.body, ['identity', 'type']) !== 'UserAssigned' || keys.length !== 1 || keys[0] !== identityResource?.id) {
      complain('app-identity', `does not run as exactly the shared identity (identity.type must be 'UserAssigned' with ${identity ?? 'the identity'} alone, no system-assigned one).`, 'Assign the one user-assigned identity and nothing else.');
    }
    if (property(site.body, ['properties', 'keyVaultReferenceIdentity']) !== identityResource?.id) {
      complain('app-identity', 'does not resolve Key Vault references with the shared identity.', 'Set properties.keyVaultReferenceIdentity to the identity id.');
    }
    const settings = property(site.body, ['properties', 'siteConfig', 'appSettings']);
    const list = Array.isArray(settings) ? (settings as { name?: unknown; value?: unknown }[]) : [];
    const named = new Map(list.map((setting) => [String(setting.name), setting.value]));
    for (const name of requiredAppSettings) {
      if (!named.has(name)) complain('missing-app-setting', `has no ${name} app setting, which the services read.`, `Add ${name} to the App Service settings.`);
    }
    const probed = property(site.body, ['properties', 'siteConfig', 'healthCheckPath']);
    if (probed !== healthCheckPath) {
      complain(
        'health-check-mismatch',
        probed === undefined
          ? `has no health check: App Service never probes ${healthCheckPath}, so an instance that stays unready keeps its traffic and is never replaced.`
          : `has the health check path ${renderString(probed)}, not the services' readiness endpoint ${healthCheckPath}.`,
        `Set properties.siteConfig.healthCheckPath: '${healthCheckPath}'.`,
      );
    }
    // The api-version is declared once, in @keyless/contracts; the services default to it.
    if (named.has('OPENAI_API_VERSION') && named.get('OPENAI_API_VERSION') !== openAiApiVersion) {
      complain(
        'hand-written-api-version',
        `sets OPENAI_API_VERSION to ${renderString(named.get('OPENAI_API_VERSION'))}, not to the api-version the code declares (${openAiApiVersion}).`,
        'Remove the setting (the services default to openAiApiVersion of libs/contracts/src/services.ts); change the version there.',
      );
    }
    const clientId = named.get('AZURE_CLIENT_ID');
    if (named.has('AZURE_CLIENT_ID') && !(clientId instanceof DeployTimeValue && clientId.origin?.resource === identityResource && clientId.origin?.path.join('.') === 'properties.clientId')) {
      complain('app-identity', `sets AZURE_CLIENT_ID to ${renderString(clientId)}, not to the shared identity's client id.`, "Set AZURE_CLIENT_ID to the identity's properties.clientId.");
    }
    // The services run @keyless/auth's secret-settings guard over their environment at boot: a setting it
    // refuses would stop every service from starting.
    for (const refused of findSecretSettings(Object.fromEntries([...named].map(([name, value]) => [name, renderString(value)])), { allow: applicationInsightsAllowance })) {
      complain('key-based-setting', `has the app setting ${refused.name}, which the services refuse at boot (${refused.reason}).`, `Remove it (${refused.instead}).`);
    }
    for (const [name, value] of named) {
      if (name === 'APPLICATIONINSIGHTS_CONNECTION_STRING') {
        // Allowed exactly as justified in infra/README.md: the component's own connection string, whose ikey
        // identifies the component and authorizes nothing because the component refuses local auth.
        const origin = value instanceof DeployTimeValue ? value.origin : undefined;
        const component = origin && components.find((c) => c.name === origin.resource.name);
        if (!origin || origin.path.join('.') !== 'properties.ConnectionString' || !component || property(component.body, ['properties', 'DisableLocalAuth']) !== true) {
          complain('key-based-setting', `sets APPLICATIONINSIGHTS_CONNECTION_STRING to ${renderString(value)}; only the connection string of a component with DisableLocalAuth: true is allowed (its ikey then grants nothing).`, 'Use the component\'s properties.ConnectionString and keep DisableLocalAuth: true.');
        }
        continue;
      }
      if (credentialSettingName.test(name)) {
        complain('key-based-setting', `has an app setting named ${name}, a name for a credential.`, 'Remove it: the services authenticate with the shared identity; a third-party secret belongs in Key Vault, referenced as @Microsoft.KeyVault(…).');
      }
      if (typeof value === 'string' && credentialInValue.test(value)) {
        complain('key-based-setting', `sets ${name} to a value with a credential in it.`, 'Remove the credential; use the shared identity.');
      }
    }
  }
}

function checkServices(deployed: ResourceInstance[], azureYamlPath: string, rel: (path: string) => string, problems: InfraProblem[]): void {
  const expected = Object.keys(serviceAccess).filter((name) => name !== 'doctor').sort();
  const sites = deployed
    .filter((r) => r.type.toLowerCase() === 'microsoft.web/sites')
    .map((r) => property(r.body, ['tags', 'azd-service-name']))
    .filter((name): name is string => typeof name === 'string')
    .sort();
  if (JSON.stringify(sites) !== JSON.stringify(expected)) {
    problems.push({
      code: 'service-mismatch',
      file: 'infra/modules/app-services.bicep',
      message: `deploys App Services for [${sites.join(', ')}]; the code has the services [${expected.join(', ')}] (serviceAccess).`,
      fix: 'Deploy one App Service per service, tagged azd-service-name: <service>.',
    });
  }
  let yaml: string;
  try {
    yaml = readFileSync(azureYamlPath, 'utf8');
  } catch {
    problems.push({ code: 'service-mismatch', file: rel(azureYamlPath), message: 'is missing; `azd up` needs it.', fix: 'Add azure.yaml at the repository root.' });
    return;
  }
  // Service names are the two-space-indented keys under `services:`.
  const block = /^services:\s*\n((?:[ \t].*\n?|\s*\n)*)/m.exec(yaml)?.[1] ?? '';
  const declared = [...block.matchAll(/^ {2}([a-z][\w-]*):\s*$/gm)].map((m) => m[1]!).sort();
  if (JSON.stringify(declared) !== JSON.stringify(expected)) {
    problems.push({
      code: 'service-mismatch',
      file: rel(azureYamlPath),
      message: `declares the services [${declared.join(', ')}]; the code has [${expected.join(', ')}].`,
      fix: 'Declare one azd service per service (project: ./apps/<service>, host: appservice).',
    });
  }
  // Each service deploys the complete folder tools/packager writes (prepackage hook), node_modules included.
  for (const service of declared) {
    // The service's lines: everything indented deeper than its key, blank lines included.
    const body = new RegExp(`^ {2}${service}:[ \\t]*\\n((?:(?: {3,}.*|[ \\t]*)(?:\\n|$))*)`, 'm').exec(block)?.[1] ?? '';
    const setting = (name: string): string | undefined => new RegExp(`^ +${name}:[ \\t]*['"]?([^'"\\s#]+)`, 'm').exec(body)?.[1];
    const prepackage = /^ +prepackage:[ \t]*\n((?:(?: {6,}.*|[ \t]*)(?:\n|$))*)/m.exec(body)?.[1] ?? '';
    const missing = [
      ...(setting('dist') === `../../dist/deploy/${service}` ? [] : [`dist: ../../dist/deploy/${service}`]),
      ...(setting('remoteBuild') === 'false' ? [] : ['remoteBuild: false (azd leaves node_modules out of the zip otherwise)']),
      ...(prepackage.includes(`nx run ${service}:package`) ? [] : [`a prepackage hook running npx nx run ${service}:package`]),
    ];
    if (missing.length > 0) {
      problems.push({
        code: 'service-mismatch',
        file: rel(azureYamlPath),
        entry: `services.${service}`,
        message: `does not deploy the package of ${service}: it lacks ${missing.join('; ')}. App Service would get a folder without its dependencies.`,
        fix: `Set dist: ../../dist/deploy/${service}, remoteBuild: false and hooks: prepackage: { shell: sh, run: npx nx run ${service}:package }.`,
      });
    }
  }
}
