import { readFileSync } from 'node:fs';
import { formatProblem, type InfraProblem } from '../src/index.js';
import { openAiApiVersion } from '@keyless/contracts';
import { PlantedCopy } from './planted-copy.js';

interface AccessJson {
  assignments: Record<string, string>[];
  databasePrincipals: { resource: string; administrator: boolean; purpose: string }[];
}
interface TopologyJson {
  UserConfig: { Namespaces: { Queues: { Name: string; Properties: Record<string, unknown> }[]; Topics: { Name: string }[] }[] };
}

const sender = { role: 'Azure Service Bus Data Sender', roleDefinitionId: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39', resource: 'serviceBus' };
const receiver = { role: 'Azure Service Bus Data Receiver', roleDefinitionId: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0', resource: 'serviceBus' };

let copy: PlantedCopy;
beforeEach(() => (copy = new PlantedCopy()));
afterEach(() => copy.remove());

/** The problems of one code, as lines a reader sees. */
function found(problems: InfraProblem[], code: InfraProblem['code']): string[] {
  return problems.filter((p) => p.code === code).map(formatProblem);
}

describe('checkInfrastructure with planted mismatches', () => {
  it('finds nothing in an untouched copy (so every failure below is the planted one)', () => {
    expect(copy.check()).toEqual([]);
  });

  describe('when the access file is wrong', () => {
    it('refuses a role that grants no data action (Owner: the services could change their own access), naming the file, entry and fix', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => json.assignments.push({ role: 'Owner', roleDefinitionId: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635', resource: 'serviceBus', purpose: 'p' }));
      const problems = found(copy.check(), 'access-file-invalid');
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^infra\/access\.json: .*access\.json: assignments\[14\]\.role: "Owner" grants no data action.* Fix: Use the exact display name/);
    });

    it('refuses a scope the topology does not declare', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => json.assignments.push({ ...receiver, queue: 'audit', purpose: 'p' }));
      expect(found(copy.check(), 'unknown-scope')).toEqual([
        'infra/access.json (assignments[14]): grants "Azure Service Bus Data Receiver" on serviceBus/queues/audit, which servicebus-topology.json does not declare. Fix: Correct the entity name in assignments[14], or declare the entity in infra/servicebus-topology.json.',
      ]);
    });

    it('reports a need of the code that no assignment grants, with the entry to add', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => {
        json.assignments = json.assignments.filter((a) => a.role !== 'Cognitive Services OpenAI User');
      });
      const problems = found(copy.check(), 'missing-grant');
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('recommendation calls openAi.embeddings; recommendation calls openAi.chatCompletions: that needs "Cognitive Services OpenAI User" on openAi');
      expect(problems[0]).toContain('Fix: Add to assignments: {"role": "Cognitive Services OpenAI User", "roleDefinitionId": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd", "resource": "openAi"');
    });

    it('reports a missing receive on a subscription', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => {
        json.assignments = json.assignments.filter((a) => a.subscription !== 'vision');
      });
      expect(found(copy.check(), 'missing-grant')).toEqual([expect.stringContaining('vision receives from topic events subscription vision: that needs "Azure Service Bus Data Receiver" on serviceBus/topics/events/subscriptions/vision')]);
    });

    it('reports an assignment that no need explains', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => json.assignments.push({ ...receiver, queue: 'diagnostics', purpose: 'p' }));
      expect(found(copy.check(), 'unjustified-grant')).toEqual([expect.stringMatching(/^infra\/access\.json \(assignments\[14\]\): "Azure Service Bus Data Receiver" on serviceBus\/queues\/diagnostics is not justified: broader than needed/)]);
    });

    it('reports a namespace-wide grant as broader than the entities that need it', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => json.assignments.push({ ...sender, purpose: 'everything' }));
      const [problem] = found(copy.check(), 'unjustified-grant');
      expect(problem).toContain('"Azure Service Bus Data Sender" on serviceBus is not justified: broader than needed: the code needs "Azure Service Bus Data Sender" only on serviceBus/queues/recommendation-requests');
    });

    it('reports a Data Owner as privileged and unjustified', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => json.assignments.push({ role: 'Azure Service Bus Data Owner', roleDefinitionId: '090c5cfd-751d-490a-894a-3ce6f1109419', resource: 'serviceBus', queue: 'replies', purpose: 'p' }));
      const problems = copy.check();
      expect(found(problems, 'privileged-role')).toEqual([expect.stringContaining('(assignments[14]): grants "Azure Service Bus Data Owner"')]);
      expect(found(problems, 'unjustified-grant')).toHaveLength(1);
    });

    it('reports a repeated assignment', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => json.assignments.push({ ...json.assignments[0]! }));
      expect(found(copy.check(), 'duplicate-grant')).toEqual([expect.stringContaining('(assignments[14]): repeats assignments[0]')]);
    });
  });

  describe('when the topology file is wrong', () => {
    it('reports an entity named twice, with both places', () => {
      copy.editJson<TopologyJson>('infra/servicebus-topology.json', (json) => {
        const queues = json.UserConfig.Namespaces[0]!.Queues;
        queues.push({ ...queues[2]! });
      });
      expect(found(copy.check(), 'duplicate-entity')).toEqual([
        'infra/servicebus-topology.json (UserConfig.Namespaces[0].Queues[4].Name): queue "replies" is declared twice (also UserConfig.Namespaces[0].Queues[2]). Fix: Remove one of the two declarations of "replies" (names are case-insensitive in Service Bus).',
      ]);
    });

    it('reports a queue and a topic sharing a name', () => {
      copy.editJson<TopologyJson>('infra/servicebus-topology.json', (json) => json.UserConfig.Namespaces[0]!.Topics.push({ Name: 'Replies' }));
      expect(found(copy.check(), 'duplicate-entity')).toEqual([expect.stringContaining('"Replies" names both a queue and a topic')]);
    });
  });

  describe('when the Bicep drifts from the files', () => {
    it('reports a topology entity the Bicep does not deploy', () => {
      copy.replace('infra/modules/service-bus.bicep', 'for queue in queues:', 'for queue in take(queues, 3):');
      expect(found(copy.check(), 'entity-mismatch')).toEqual([expect.stringContaining('queue "diagnostics" of servicebus-topology.json is not deployed by the Bicep files')]);
    });

    it('reports an entity declared in Bicep by hand', () => {
      copy.append('infra/modules/service-bus.bicep', "resource auditQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {\n  parent: serviceBus\n  name: 'audit'\n}");
      const problems = copy.check();
      expect(found(problems, 'hand-written-entity')).toEqual([expect.stringMatching(/^infra\/modules\/service-bus\.bicep:\d+ \(auditQueue\): declares Microsoft\.ServiceBus\/namespaces\/queues ".*\/audit" on its own/)]);
      expect(found(problems, 'entity-mismatch')).toEqual([expect.stringContaining('deploys queue "audit", which servicebus-topology.json does not declare')]);
    });

    it('reports a topology entity name written in Bicep', () => {
      copy.replace('infra/modules/access.bicep', 'name: grant.queue', "name: 'replies'");
      expect(found(copy.check(), 'hand-written-entity')).toEqual([expect.stringContaining('names the Service Bus entity "replies" by hand')]);
    });

    it('reports a setting of the topology that the Bicep does not copy', () => {
      copy.replace('infra/modules/service-bus.bicep', 'requiresSession: queue.?Properties.?RequiresSession', 'requiresSession: false');
      expect(found(copy.check(), 'entity-settings-mismatch')).toEqual([expect.stringContaining('queue replies requiresSession is false, the topology says RequiresSession true')]);
    });

    it('reports a hand-written Contributor assignment as privileged and not from access.json', () => {
      copy.append(
        'infra/modules/access.bicep',
        [
          "resource extra 'Microsoft.Authorization/roleAssignments@2022-04-01' = {",
          "  name: guid(serviceBus.id, principalId, 'b24988ac-6180-42a0-ab88-20f7382dd24c')",
          '  scope: serviceBus',
          '  properties: {',
          "    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b24988ac-6180-42a0-ab88-20f7382dd24c')",
          '    principalId: principalId',
          "    principalType: 'ServicePrincipal'",
          '  }',
          '}',
        ].join('\n'),
      );
      const problems = copy.check();
      expect(found(problems, 'privileged-role')).toEqual([expect.stringContaining('names the "Contributor" role'), expect.stringContaining('names the "Contributor" role')]);
      expect(found(problems, 'assignment-mismatch')).toEqual([expect.stringMatching(/\(extra\[0\]\): deploys role b24988ac-6180-42a0-ab88-20f7382dd24c on .*sb-keyless-.*, which no access\.json entry declares/)]);
    });

    it('reports an access entry no role-assignment loop picks', () => {
      copy.replace('infra/modules/access.bicep', "grant.resource == 'openAi'", "grant.resource == 'openai'");
      expect(found(copy.check(), 'assignment-mismatch')).toEqual([expect.stringContaining('infra/access.json (assignments[10]): "Cognitive Services OpenAI User" on openAi is not deployed by the Bicep files')]);
    });

    it('reports a role assignment without a guid() name or without principalType', () => {
      copy.replace('infra/modules/access.bicep', 'name: guid(openAi.id, principalId, grant.roleDefinitionId)', "name: 'openai-user'");
      copy.replace('infra/modules/access.bicep', "principalType: 'ServicePrincipal'\n    description: grant.purpose\n  }\n}]\n\nresource queueAssignments", "description: grant.purpose\n  }\n}]\n\nresource queueAssignments");
      const problems = found(copy.check(), 'assignment-shape');
      expect(problems).toEqual(expect.arrayContaining([expect.stringContaining('(openAiAssignments[0]): is named "openai-user", not with guid(…)')]));
      // The namespace loop has no entries today: drop principalType from a loop that does.
      copy.replace('infra/modules/access.bicep', "    principalType: 'ServicePrincipal'\n    description: grant.purpose\n  }\n}]\n\nresource topicAssignments", "    description: grant.purpose\n  }\n}]\n\nresource topicAssignments");
      expect(found(copy.check(), 'assignment-shape')).toEqual(expect.arrayContaining([expect.stringContaining('(queueAssignments[0]): has no principalType ServicePrincipal')]));
    });
  });

  describe('when a key or a privileged setting creeps in', () => {
    it('reports listKeys', () => {
      copy.append('infra/modules/service-bus.bicep', "output rootKey string = serviceBus.listKeys('RootManageSharedAccessKey', serviceBus.apiVersion).primaryKey");
      const problems = found(copy.check(), 'key-based-setting');
      expect(problems).toEqual(expect.arrayContaining([expect.stringContaining('uses a key-listing function'), expect.stringContaining('uses a Service Bus SAS key'), expect.stringContaining('uses a resource key')]));
    });

    it('reports local auth switched back on, in the text and in the evaluated resource', () => {
      copy.replace('infra/modules/openai.bicep', 'disableLocalAuth: true', 'disableLocalAuth: false');
      const problems = copy.check();
      expect(found(problems, 'key-based-setting')).toEqual([expect.stringContaining('infra/modules/openai.bicep (line')]);
      expect(found(problems, 'local-auth-enabled')).toEqual([expect.stringContaining('Microsoft.CognitiveServices/accounts does not disable local (key) auth (properties.disableLocalAuth must be true)')]);
    });

    it('reports a Service Bus namespace that keeps its SAS keys (the property left out)', () => {
      copy.replace('infra/modules/service-bus.bicep', '    disableLocalAuth: true\n', '');
      expect(found(copy.check(), 'local-auth-enabled')).toEqual([expect.stringContaining('Microsoft.ServiceBus/namespaces does not disable local (key) auth')]);
    });

    it('reports an app setting holding a key', () => {
      copy.replace('infra/main.bicep', '      AZURE_VISION_ENDPOINT: vision.outputs.endpoint', "      AZURE_VISION_ENDPOINT: vision.outputs.endpoint\n      AZURE_OPENAI_TOKEN: 'not-a-real-value'");
      expect(found(copy.check(), 'key-based-setting')).toEqual(expect.arrayContaining([expect.stringContaining('has an app setting named AZURE_OPENAI_TOKEN, a name for a credential')]));
    });

    it('reports an OPENAI_API_VERSION other than the one the code declares', () => {
      copy.replace('infra/main.bicep', '      AZURE_VISION_ENDPOINT: vision.outputs.endpoint', "      AZURE_VISION_ENDPOINT: vision.outputs.endpoint\n      OPENAI_API_VERSION: '2024-02-01'");
      expect(found(copy.check(), 'hand-written-api-version')).toEqual(
        expect.arrayContaining([expect.stringContaining(`sets OPENAI_API_VERSION to 2024-02-01, not to the api-version the code declares (${openAiApiVersion})`)]),
      );
    });

    it('reports an App Insights connection string from a component that accepts its ikey', () => {
      copy.replace('infra/modules/monitoring.bicep', 'DisableLocalAuth: true', 'DisableLocalAuth: false');
      const problems = copy.check();
      expect(found(problems, 'local-auth-enabled')).toEqual([expect.stringContaining('Microsoft.Insights/components does not disable local (key) auth')]);
      expect(found(problems, 'key-based-setting')).toEqual(
        expect.arrayContaining([expect.stringContaining('only the connection string of a component with DisableLocalAuth: true is allowed')]),
      );
    });

    it('reports an App Insights connection string that is not the component\'s own', () => {
      copy.replace('infra/main.bicep', 'appInsightsConnectionString: monitoring.outputs.connectionString', "appInsightsConnectionString: 'InstrumentationKey=${guid(resourceToken)};IngestionEndpoint=https://example.invalid/'");
      expect(found(copy.check(), 'key-based-setting')).toEqual(
        expect.arrayContaining([expect.stringContaining('only the connection string of a component with DisableLocalAuth: true is allowed')]),
      );
    });

    it('reports publishing with user name and password left on', () => {
      copy.replace('infra/modules/app-services.bicep', "  name: 'scm'\n  properties: { allow: false }", "  name: 'scm'\n  properties: { allow: true }");
      expect(found(copy.check(), 'local-auth-enabled')).toHaveLength(3);
    });

    it('reports an App Service that App Service does not probe at the readiness endpoint', () => {
      copy.replace('infra/modules/app-services.bicep', "      healthCheckPath: '/health/ready'\n", '');
      const problems = found(copy.check(), 'health-check-mismatch');
      expect(problems).toHaveLength(3); // one per App Service
      expect(problems[0]).toMatch(/^infra\/modules\/app-services\.bicep:\d+ \(sites app-gateway-.*\): has no health check: App Service never probes \/health\/ready.* Fix: Set properties\.siteConfig\.healthCheckPath: '\/health\/ready'\.$/);
    });

    it('reports a health check on another path', () => {
      copy.replace('infra/modules/app-services.bicep', "healthCheckPath: '/health/ready'", "healthCheckPath: '/health/live'");
      expect(found(copy.check(), 'health-check-mismatch')).toEqual(Array(3).fill(expect.stringContaining("has the health check path /health/live, not the services' readiness endpoint /health/ready")));
    });

    it('reports an App Service with a second identity', () => {
      copy.replace('infra/modules/app-services.bicep', "type: 'UserAssigned'", "type: 'SystemAssigned, UserAssigned'");
      expect(found(copy.check(), 'app-identity')).toHaveLength(3);
    });

    it('reports a resource type nobody reviewed for local auth', () => {
      copy.append('infra/modules/key-vault.bicep', "resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'st${uniqueString(name)}'\n  location: location\n  kind: 'StorageV2'\n  sku: { name: 'Standard_LRS' }\n}");
      expect(found(copy.check(), 'unreviewed-resource-type')).toEqual([expect.stringContaining('deploys Microsoft.Storage/storageAccounts, which the no-keys review has not covered')]);
    });
  });

  it('reports azure.yaml without a service of the code', () => {
    copy.replace('azure.yaml', '  vision:\n    project: ./apps/vision\n    language: ts\n    host: appservice\n    dist: ../../dist/deploy/vision\n    remoteBuild: false\n    hooks:\n      prepackage:\n        shell: sh\n        run: npx nx run vision:package\n', '');
    expect(found(copy.check(), 'service-mismatch')).toEqual([expect.stringContaining('azure.yaml: declares the services [gateway, recommendation]; the code has [gateway, recommendation, vision]')]);
  });

  it('reports a service deployed as its project folder instead of its package (no dependencies on App Service)', () => {
    copy.replace('azure.yaml', '    dist: ../../dist/deploy/recommendation\n', '');
    expect(found(copy.check(), 'service-mismatch')).toEqual([
      expect.stringMatching(/^azure\.yaml \(services\.recommendation\): does not deploy the package of recommendation: it lacks dist: \.\.\/\.\.\/dist\/deploy\/recommendation\. .* Fix: Set dist: /),
    ]);
  });

  it('reports a package whose node_modules azd would leave out of the zip (remoteBuild not false)', () => {
    copy.replace('azure.yaml', '    dist: ../../dist/deploy/gateway\n    remoteBuild: false\n', '\n    dist: "../../dist/deploy/gateway"\n');
    expect(found(copy.check(), 'service-mismatch')).toEqual([
      expect.stringContaining('azure.yaml (services.gateway): does not deploy the package of gateway: it lacks remoteBuild: false (azd leaves node_modules out of the zip otherwise).'),
    ]);
  });

  it('reports Bicep outside the subset it reads, at file:line:column', () => {
    copy.append('infra/modules/vision.bicep', "func prefix(name string) string => 'cv-${name}'");
    expect(found(copy.check(), 'bicep-unreadable')).toEqual([expect.stringMatching(/^infra\/modules\/vision\.bicep: .*vision\.bicep:\d+:1: "func" declarations are outside the Bicep subset/)]);
  });
});

describe('checkInfrastructure with an entity list passed to a module by hand', () => {
  let planted: PlantedCopy;
  beforeEach(() => (planted = new PlantedCopy()));
  afterEach(() => planted.remove());

  it('reports the entity names written in the module parameters', () => {
    planted.replace('infra/main.bicep', 'namespaceConfig: topology.UserConfig.Namespaces[0]', "namespaceConfig: { Name: 'sb', Queues: [{ Name: 'replies' }] }");
    const problems = planted.check();
    // The line of the module declaration, wherever other parameters or modules put it.
    const line = readFileSync(new URL('../main.bicep', import.meta.url), 'utf8').split('\n').findIndex((text) => text.startsWith('module serviceBus ')) + 1;
    expect(found(problems, 'hand-written-entity')).toEqual([expect.stringContaining(`(line ${line} (serviceBus)): names the Service Bus entity "replies" by hand`)]);
    expect(found(problems, 'entity-mismatch').length).toBeGreaterThan(0);
  });
});

describe('checkInfrastructure with planted alert mismatches', () => {
  it('reports a local alert rule without its Azure counterpart', () => {
    copy.replace('infra/modules/alerts.bicep', 'resource deadLetterAlert ', 'resource deadLetterWatch ');
    expect(found(copy.check(), 'alert-mismatch')).toEqual([
      expect.stringMatching(/^infra\/modules\/alerts\.bicep \(dead-lettered-messages\): deploys no alert "deadLetterAlert" for the local rule "Dead-lettered messages"\. Fix: Add a microsoft\.insights\/metricalerts resource named deadLetterAlert/),
    ]);
  });

  it('reports another severity than the local rule', () => {
    copy.replace('infra/modules/alerts.bicep', "description: 'A queue or subscription holds dead-lettered messages. Fix: peek the dead-letter queue, fix the cause, resubmit or purge.'\n    severity: 2", "description: 'A queue or subscription holds dead-lettered messages. Fix: peek the dead-letter queue, fix the cause, resubmit or purge.'\n    severity: 4");
    expect(found(copy.check(), 'alert-mismatch')).toEqual([expect.stringContaining('(deadLetterAlert): has severity 4, the local rule "Dead-lettered messages" Sev2.')]);
  });

  it('reports a receiver without the common alert schema, and an alert that notifies no action group', () => {
    copy.replace('infra/modules/alerts.bicep', "serviceUri: alertWebhookUrl\n        useCommonAlertSchema: true", 'serviceUri: alertWebhookUrl\n        useCommonAlertSchema: false');
    copy.replace('infra/modules/alerts.bicep', "    actions: [{ actionGroupId: actionGroup.id }]\n", '    actions: []\n');
    const problems = found(copy.check(), 'alert-mismatch');
    expect(problems).toEqual(
      expect.arrayContaining([expect.stringContaining('(actionGroup webhookReceivers operations-webhook): does not use the common alert schema.'), expect.stringContaining('(deadLetterAlert): notifies no action group of this deployment.')]),
    );
    expect(problems).toHaveLength(2);
  });

  it('reports an activity-log alert that does not watch role-assignment deletes', () => {
    copy.replace('infra/modules/alerts.bicep', "equals: 'Microsoft.Authorization/roleAssignments/delete'", "equals: 'Microsoft.Authorization/roleAssignments/write'");
    expect(found(copy.check(), 'alert-mismatch')).toEqual([expect.stringContaining('(roleAssignmentDeletedAlert): does not watch Microsoft.Authorization/roleAssignments/delete.')]);
  });
});

describe('checkInfrastructure with planted PostgreSQL mismatches', () => {
  describe('when access.json and the code disagree on the database principal', () => {
    it('reports a missing principal, with the entry to add', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => (json.databasePrincipals = []));
      expect(found(copy.check(), 'database-principal-mismatch')).toEqual([
        expect.stringMatching(/^infra\/access\.json: declares no database principal on postgres: .* Fix: Add to databasePrincipals: \{"resource": "postgres", "administrator": true/),
      ]);
    });

    it('reports a plain login principal, which can neither run the migrations nor be deployed', () => {
      copy.editJson<AccessJson>('infra/access.json', (json) => (json.databasePrincipals[0]!.administrator = false));
      expect(found(copy.check(), 'database-principal-mismatch')).toEqual([
        expect.stringMatching(/^infra\/access\.json \(databasePrincipals\[0\]\): makes the identity a plain login on postgres, .*pgaadauth_create_principal.* Fix: Set "administrator": true/),
      ]);
    });
  });

  describe('when the server accepts passwords', () => {
    it('reports password authentication switched on', () => {
      copy.replace('infra/modules/postgres.bicep', "passwordAuth: 'Disabled'", "passwordAuth: 'Enabled'");
      expect(found(copy.check(), 'local-auth-enabled')).toEqual([expect.stringContaining('Microsoft.DBforPostgreSQL/flexibleServers accepts passwords (properties.authConfig.passwordAuth must be Disabled)')]);
    });

    it('reports Entra authentication switched off', () => {
      copy.replace('infra/modules/postgres.bicep', "activeDirectoryAuth: 'Enabled'", "activeDirectoryAuth: 'Disabled'");
      expect(found(copy.check(), 'local-auth-enabled')).toEqual([expect.stringContaining('does not accept Microsoft Entra authentication')]);
    });

    it('reports a password administrator', () => {
      copy.replace('infra/modules/postgres.bicep', '    version: version\n', "    version: version\n    administratorLogin: 'pgadmin'\n");
      expect(found(copy.check(), 'local-auth-enabled')).toEqual([expect.stringContaining('has a password administrator')]);
    });
  });

  describe('when the Entra administrator is not the shared identity', () => {
    it('reports an administrator named by something other than the identity\'s principal id', () => {
      copy.replace('infra/modules/postgres.bicep', '  name: identityPrincipalId\n', "  name: 'keyless-admin'\n");
      expect(found(copy.check(), 'database-principal-mismatch')).toEqual([
        expect.stringMatching(/^infra\/modules\/postgres\.bicep:\d+ \(administrators\[0\]\): is named keyless-admin, not by the shared identity's principal \(object\) id\./),
      ]);
    });

    it('reports another principal name and type', () => {
      copy.replace('infra/modules/postgres.bicep', 'principalName: identityName', "principalName: 'keyless-admins'");
      copy.replace('infra/modules/postgres.bicep', "principalType: 'ServicePrincipal'", "principalType: 'Group'");
      expect(found(copy.check(), 'database-principal-mismatch')).toEqual([
        expect.stringContaining('has principalName keyless-admins, not "id-keyless" (access.json identity)'),
        expect.stringContaining('has principalType Group.'),
      ]);
    });

    it('reports an administrator that access.json does not declare', () => {
      copy.append(
        'infra/modules/postgres.bicep',
        "resource extraAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {\n  parent: server\n  name: identityPrincipalId\n  properties: {\n    principalName: identityName\n    principalType: 'ServicePrincipal'\n    tenantId: tenant().tenantId\n  }\n}",
      );
      expect(found(copy.check(), 'database-principal-mismatch')).toEqual([expect.stringContaining('(server): deploys 2 Entra administrators; access.json declares 1 administrator principal on postgres.')]);
    });
  });

  it('reports pgvector missing from the extension allow-list', () => {
    copy.replace('infra/main.bicep', "param postgresExtensions array = ['VECTOR']", "param postgresExtensions array = ['PG_TRGM']");
    expect(found(copy.check(), 'database-extension-missing')).toEqual([
      expect.stringMatching(/^infra\/modules\/postgres\.bicep:\d+ \(extensionAllowList\): does not allow-list VECTOR \(azure\.extensions is PG_TRGM\); .* Fix: Add VECTOR to the server's azure\.extensions/),
    ]);
  });

  describe('when the App Services cannot reach the database as the principal', () => {
    it.each([
      ["PGSSLMODE: 'verify-full'", "PGSSLMODE: 'require'", 'sets PGSSLMODE to require: the server certificate and host name must be verified.'],
      ['PGUSER: access.identity', "PGUSER: 'postgres'", 'sets PGUSER to postgres: the services sign in as the role named after the shared identity, "id-keyless".'],
      ["PGPORT: '5432'", "PGPORT: '6432'", 'sets PGPORT to 6432: Azure Database for PostgreSQL listens on 5432.'],
      ['PGDATABASE: postgres.outputs.databaseName', "PGDATABASE: 'postgres'", 'sets PGDATABASE to postgres: no database of that name is deployed on the server.'],
      ['PGHOST: postgres.outputs.host', "PGHOST: 'localhost'", 'sets PGHOST to localhost: not the host name of the deployed PostgreSQL server.'],
    ])('reports %s changed to %s', (search, replacement, message) => {
      copy.replace('infra/main.bicep', search, replacement);
      const problems = found(copy.check(), 'database-setting-mismatch');
      expect(problems).toHaveLength(3); // one per App Service
      expect(problems[0]).toContain(message);
    });

    it('reports a password setting as a credential the services refuse', () => {
      copy.replace('infra/main.bicep', "      PGSSLMODE: 'verify-full'\n", "      PGSSLMODE: 'verify-full'\n      PGPASSWORD: postgres.outputs.id\n");
      expect(found(copy.check(), 'key-based-setting')).toEqual(expect.arrayContaining([expect.stringContaining('PGPASSWORD')]));
    });

    it("reports a missing AZURE_TENANT_ID (the tenant of the gateway's callers; without it the gateway refuses to start)", () => {
      copy.replace('infra/main.bicep', '      AZURE_TENANT_ID: tenant().tenantId\n', '');
      expect(found(copy.check(), 'missing-app-setting')).toEqual(Array(3).fill(expect.stringContaining('has no AZURE_TENANT_ID app setting, which the services read.')));
    });

    it('reports a missing PG* setting', () => {
      copy.replace('infra/main.bicep', "      PGSSLMODE: 'verify-full'\n", '');
      expect(found(copy.check(), 'missing-app-setting')).toEqual([
        expect.stringContaining('has no PGSSLMODE app setting, which the services read.'),
        expect.stringContaining('has no PGSSLMODE app setting'),
        expect.stringContaining('has no PGSSLMODE app setting'),
      ]);
    });
  });
});
