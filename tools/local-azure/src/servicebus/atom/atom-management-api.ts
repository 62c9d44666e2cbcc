import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConsoleLog } from '../../data-plane.js';
import type { Directory } from '../../entra/directory.js';
import { TokenRejectedError, type Caller, type ResourceGuard } from '../../guard/resource-guard.js';
import { BodyTooLargeError, parseRequestUrl, readBody, sendInvalidUrl, type ClientErrorShape } from '../../http/http-kit.js';
import { dataActions } from '../../rbac/built-in-roles.js';
import { missingRoleText } from '../access-refusal.js';
import { isBrokerError } from '../amqp/broker-error.js';
import { childNameProblem, entityNameProblem, type QueueDefinition, type SubscriptionDefinition } from '../entities/entity-definitions.js';
import { compileRule, defaultRule, type RuleDefinition, type RuleSpec } from '../filters/rule-definition.js';
import { countDetailsOf, sizeOf, type AnyEntity, type QueueEntity, type ServiceBusNamespace, type SubscriptionEntity, type TopicEntity } from '../entities/service-bus-namespace.js';
import { SqlSyntaxError } from '../filters/sql-filter.js';
import {
  DescriptionError,
  namespaceInfoXml,
  queueXml,
  readDefaultRule,
  readQueue,
  readRule,
  readSubscription,
  readTopic,
  ruleXml,
  subscriptionXml,
  topicXml,
  type EntityRuntime,
} from './atom-descriptions.js';
import { childElement, escapeXml, parseXml, XmlSyntaxError, xmlNamespaces, type XmlElement } from './xml.js';

/** Options of {@link AtomManagementApi}. */
export interface AtomManagementApiOptions {
  namespace: ServiceBusNamespace;
  /** The namespace's name, as `getNamespaceProperties()` reports it. */
  namespaceName: string;
  /** ARM id of the namespace: the scope of list operations and of the namespace's properties. */
  namespaceId: string;
  guard: ResourceGuard;
  directory: Directory;
  log: ConsoleLog;
}

const defaults = {
  /** Token audience Service Bus accepts for Entra ID tokens. */
  audience: 'https://servicebus.azure.net/',
  /** Entries per page when the client asks for none (`$top`), as Service Bus does. */
  pageSize: 100,
  /** Largest request body read. */
  maxBodyBytes: 1024 * 1024,
};

/** Service Bus's Standard-tier quotas the management API enforces (403 QuotaExceeded). */
const quotas = {
  queuesAndTopics: 10_000,
  subscriptionsPerTopic: 2_000,
  sqlFiltersPerTopic: 2_000,
  correlationFiltersPerTopic: 100_000,
};

/** A refusal with the HTTP status and the detail the SDK turns into its error message. */
class AtomError extends Error {
  override readonly name = 'AtomError';

  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What a request addresses. */
type Target =
  | { kind: 'namespace' }
  | { kind: 'list'; of: 'queues' | 'topics' }
  | { kind: 'entity'; name: string }
  | { kind: 'subscriptions'; topic: string }
  | { kind: 'subscription'; topic: string; name: string }
  | { kind: 'rules'; topic: string; subscription: string }
  | { kind: 'rule'; topic: string; subscription: string; name: string };

/** One request: what the handlers need. */
interface Exchange {
  request: IncomingMessage;
  response: ServerResponse;
  url: URL;
  /** `https://<host:port>` as the client addressed the namespace (ids and links use it). */
  base: string;
  trackingId: string;
  caller: Caller;
}

/** Service Bus's `<Error><Code/><Detail/></Error>` body, for a request the namespace's HTTP parser refused. */
export const atomClientErrorShape: ClientErrorShape = ({ status, detail }) => ({
  contentType: 'application/xml; charset=utf-8',
  body: `<Error><Code>${status}</Code><Detail>${escapeXml(detail)}</Detail></Error>`,
});

/**
 * The Service Bus management API (ATOM over HTTPS) on the namespace's own host and port, as
 * `ServiceBusAdministrationClient` calls it: queues, topics, subscriptions and rules — create, get,
 * update, delete, list with paging — with their runtime figures, and the namespace's properties.
 * Authorized like Azure: an Entra ID token for `https://servicebus.azure.net` whose identity holds the
 * Manage right (Azure Service Bus Data Owner) on the entity or an enclosing scope; every decision is
 * logged. Errors are Azure's `<Error><Code/><Detail/></Error>` bodies.
 */
export class AtomManagementApi {
  private readonly namespace: ServiceBusNamespace;

  constructor(private readonly options: AtomManagementApiOptions) {
    this.namespace = options.namespace;
  }

  /** The request listener for the namespace's HTTPS side. */
  readonly handle = (request: IncomingMessage, response: ServerResponse): void => {
    const trackingId = randomUUID();
    this.serve(request, response, trackingId).catch((error: unknown) => this.fail(response, error, trackingId));
  };

  private async serve(request: IncomingMessage, response: ServerResponse, trackingId: string): Promise<void> {
    const url = parseRequestUrl(request, 'https://namespace');
    if (!url) return sendInvalidUrl(response);
    const base = `https://${request.headers.host ?? 'localhost'}`;
    const target = parseTarget(url.pathname);
    const caller = await this.authenticate(request.headers.authorization);
    const exchange: Exchange = { request, response, url, base, trackingId, caller };
    const method = request.method ?? 'GET';
    if (method !== 'GET' && method !== 'PUT' && method !== 'DELETE') throw new AtomError(405, `The method ${method} is not supported: use GET, PUT or DELETE.`);
    if ((target.kind === 'namespace' || target.kind === 'list' || target.kind === 'subscriptions' || target.kind === 'rules') && method !== 'GET') {
      throw new AtomError(405, `Only GET is supported on ${url.pathname}.`);
    }
    switch (target.kind) {
      case 'namespace':
        this.authorize(exchange, this.options.namespaceId, 'read', 'get namespace properties');
        return this.sendEntry(exchange, 200, `${base}/$namespaceinfo`, this.options.namespaceName, namespaceInfoXml(this.options.namespaceName, this.namespace.createdAt));
      case 'list':
        this.authorize(exchange, this.options.namespaceId, 'read', `list ${target.of}`);
        return this.sendList(exchange, target.of === 'queues' ? 'Queues' : 'Topics', [...(target.of === 'queues' ? this.namespace.queues : this.namespace.topics).values()]);
      case 'entity':
        return this.entity(exchange, method, target.name);
      case 'subscriptions': {
        // Authorized on the names as requested, before looking anything up: a refusal says nothing of what exists.
        this.authorize(exchange, this.topicArmId(target.topic), 'read', `list subscriptions of ${target.topic}`);
        return this.sendList(exchange, 'Subscriptions', this.topic(target.topic).subscriptions);
      }
      case 'subscription':
        return this.subscription(exchange, method, target.topic, target.name);
      case 'rules': {
        this.authorize(exchange, this.subscriptionArmId(target.topic, target.subscription), 'read', `list rules of ${target.topic}/Subscriptions/${target.subscription}`);
        const subscription = this.subscriptionOf(target.topic, target.subscription);
        return this.sendList(
          exchange,
          'Rules',
          subscription.definition.rules.map((rule) => ({ kind: 'rule' as const, subscription, rule })),
        );
      }
      case 'rule':
        return this.rule(exchange, method, target);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Queues and topics

  private async entity(exchange: Exchange, method: string, name: string): Promise<void> {
    const existing = this.namespace.findSendTarget(name);
    if (method === 'GET') {
      this.authorize(exchange, existing?.armId ?? `${this.options.namespaceId}/queues/${name}`, 'read', `get ${name}`);
      // Service Bus answers a missing queue or topic with an empty feed (the SDK reports MessagingEntityNotFound).
      if (!existing) return this.sendEmptyFeed(exchange);
      return this.sendEntity(exchange, 200, existing);
    }
    if (method === 'DELETE') {
      this.authorize(exchange, existing?.armId ?? `${this.options.namespaceId}/queues/${name}`, 'delete', `delete ${name}`);
      if (!existing) throw notFound(name);
      this.namespace.delete(existing);
      return this.afterCommit(exchange, () => this.sendEmpty(exchange));
    }
    const description = await this.readDescription(exchange, ['QueueDescription', 'TopicDescription']);
    const kind = description.localName === 'QueueDescription' ? 'queue' : 'topic';
    const armId = existing?.armId ?? `${this.options.namespaceId}/${kind === 'queue' ? 'queues' : 'topics'}/${name}`;
    this.authorize(exchange, armId, 'write', `${existing ? 'update' : 'create'} ${kind} ${name}`);
    const update = isUpdate(exchange);
    if (update && !existing) throw notFound(name);
    if (!update && existing) throw alreadyExists(existing.name);
    if (existing && existing.kind !== kind) {
      throw new AtomError(400, `'${existing.name}' is a ${existing.kind}: update it with a ${existing.kind === 'queue' ? 'QueueDescription' : 'TopicDescription'}.`);
    }
    if (!existing) {
      checkName(entityNameProblem(name), name);
      if (this.namespace.queues.size + this.namespace.topics.size >= quotas.queuesAndTopics) {
        throw new AtomError(403, `The maximum number of queues and topics in a namespace (${quotas.queuesAndTopics}) has been reached. Delete an entity first.`);
      }
    }
    const now = Date.now();
    let entity: QueueEntity | TopicEntity;
    if (kind === 'queue') {
      const current = existing as QueueEntity | undefined;
      const definition = described(() => readQueue(description, current?.name ?? name, current?.definition));
      await this.checkForwarding(exchange, definition, definition.name);
      entity = current ? this.namespace.update(current, definition, now) : this.namespace.createQueue(definition, now);
    } else {
      const current = existing as TopicEntity | undefined;
      const definition = described(() => readTopic(description, current?.name ?? name, current?.definition));
      entity = current ? this.namespace.update(current, definition, now) : this.namespace.createTopic(definition, now);
    }
    return this.afterCommit(exchange, () => this.sendEntity(exchange, existing ? 200 : 201, entity));
  }

  // -------------------------------------------------------------------------------------------------
  // Subscriptions

  private async subscription(exchange: Exchange, method: string, topicName: string, name: string): Promise<void> {
    const access = method === 'GET' ? 'read' : method === 'DELETE' ? 'delete' : 'write';
    this.authorize(exchange, this.subscriptionArmId(topicName, name), access, `${method} ${topicName}/Subscriptions/${name}`);
    const topic = this.topic(topicName);
    const existing = topic.subscription(name);
    if (method === 'GET') {
      if (!existing) throw notFound(`${topic.name}/Subscriptions/${name}`);
      return this.sendEntity(exchange, 200, existing);
    }
    if (method === 'DELETE') {
      if (!existing) throw notFound(`${topic.name}/Subscriptions/${name}`);
      this.namespace.delete(existing);
      return this.afterCommit(exchange, () => this.sendEmpty(exchange));
    }
    const description = await this.readDescription(exchange, ['SubscriptionDescription']);
    const update = isUpdate(exchange);
    if (update && !existing) throw notFound(`${topic.name}/Subscriptions/${name}`);
    if (!update && existing) throw alreadyExists(existing.path);
    const now = Date.now();
    const definition: SubscriptionDefinition = described(() => readSubscription(description, topic.name, existing?.name ?? name, existing?.definition));
    await this.checkForwarding(exchange, definition, topic.name);
    if (existing) {
      this.namespace.update(existing, definition, now);
      return this.afterCommit(exchange, () => this.sendEntity(exchange, 200, existing));
    }
    checkName(childNameProblem(name), name);
    if (topic.subscriptions.length >= quotas.subscriptionsPerTopic) {
      throw new AtomError(403, `The maximum number of subscriptions of a topic (${quotas.subscriptionsPerTopic}) has been reached for ${topic.name}.`);
    }
    const ruleSpec = described(() => readDefaultRule(description));
    const rule = ruleSpec ? compiled(ruleSpec, now) : defaultRule(now);
    this.checkRuleQuota(topic, rule);
    const created = this.namespace.createSubscription(topic, { ...definition, rules: [rule] }, now);
    return this.afterCommit(exchange, () => this.sendEntity(exchange, 201, created));
  }

  // -------------------------------------------------------------------------------------------------
  // Rules

  private async rule(exchange: Exchange, method: string, target: Extract<Target, { kind: 'rule' }>): Promise<void> {
    const access = method === 'GET' ? 'read' : method === 'DELETE' ? 'delete' : 'write';
    this.authorize(exchange, this.subscriptionArmId(target.topic, target.subscription), access, `${method} ${target.topic}/Subscriptions/${target.subscription}/Rules/${target.name}`);
    const subscription = this.subscriptionOf(target.topic, target.subscription);
    const existing = subscription.rule(target.name);
    const path = `${subscription.path}/Rules/${target.name}`;
    if (method === 'GET') {
      if (!existing) throw notFound(path);
      return this.sendEntry(exchange, 200, ruleId(exchange.base, subscription, existing.name), existing.name, ruleXml(existing));
    }
    if (method === 'DELETE') {
      if (!existing) throw notFound(path);
      this.namespace.removeRule(subscription, existing.name, Date.now());
      return this.afterCommit(exchange, () => this.sendEmpty(exchange));
    }
    const description = await this.readDescription(exchange, ['RuleDescription']);
    const update = isUpdate(exchange);
    if (update && !existing) throw notFound(path);
    if (!update && existing) throw alreadyExists(`${subscription.path}/Rules/${existing.name}`);
    if (!existing) checkName(childNameProblem(target.name), target.name);
    const now = Date.now();
    const spec = described(() => readRule(description, existing?.name ?? target.name));
    const rule = compiled(spec, existing?.createdAt ?? now);
    if (!existing) this.checkRuleQuota(subscription.topic, rule);
    this.namespace.putRule(subscription, rule, now);
    return this.afterCommit(exchange, () => this.sendEntry(exchange, existing ? 200 : 201, ruleId(exchange.base, subscription, rule.name), rule.name, ruleXml(rule)));
  }

  private checkRuleQuota(topic: TopicEntity, rule: RuleDefinition): void {
    const rules = topic.subscriptions.flatMap((subscription) => subscription.definition.rules);
    if (rule.filterType === 'Sql' && rules.filter((r) => r.filterType === 'Sql').length >= quotas.sqlFiltersPerTopic) {
      throw new AtomError(403, `The maximum number of SQL filters of a topic (${quotas.sqlFiltersPerTopic}) has been reached for ${topic.name}.`);
    }
    if (rule.filterType === 'Correlation' && rules.filter((r) => r.filterType === 'Correlation').length >= quotas.correlationFiltersPerTopic) {
      throw new AtomError(403, `The maximum number of correlation filters of a topic (${quotas.correlationFiltersPerTopic}) has been reached for ${topic.name}.`);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Authorization

  private async authenticate(header: string | undefined): Promise<Caller> {
    if (header && /^SharedAccessSignature\s/i.test(header)) {
      this.options.log('[servicebus] management API: refused a shared access signature: local authentication is disabled');
      throw new AtomError(
        401,
        'Shared access signatures are not accepted: this namespace has local (SAS key) authentication disabled, as Keyless deploys it. Authenticate with a Microsoft Entra ID token (a TokenCredential such as ManagedIdentityCredential).',
      );
    }
    try {
      return await this.options.guard.authenticate(header, [defaults.audience]);
    } catch (error) {
      if (!(error instanceof TokenRejectedError)) throw error;
      this.options.log(`[servicebus] management API: refused a token: ${error.message} (${error.reason})`);
      const reason = error.reason === 'missing' ? 'MissingToken' : error.reason === 'expired' ? 'ExpiredToken' : 'InvalidToken';
      throw new AtomError(401, `${reason}: the Authorization header carries no valid Microsoft Entra ID token for https://servicebus.azure.net: ${error.message}.`);
    }
  }

  /** RBAC: the Manage right on `scope` (logged by the guard). @throws {AtomError} 401 with Azure's claim wording. */
  private authorize(exchange: Exchange, scope: string, access: 'read' | 'write' | 'delete', operation: string): void {
    const action = dataActions.serviceBusManage;
    const decision = this.options.guard.authorize(exchange.caller, action, scope, { resource: 'serviceBus', operation: `management API: ${operation}` });
    if (decision.allowed) return;
    const claims =
      access === 'read'
        ? 'Manage,EntityRead claims required for this operation.'
        : `Authorization failed for specified action: Manage,${access === 'write' ? 'EntityWrite' : 'EntityDelete'}.`;
    throw new AtomError(401, `${claims} ${missingRoleText(this.options.directory, exchange.caller, action, scope, decision.roleNeeded?.name ?? 'Azure Service Bus Data Owner')}`);
  }

  /**
   * Forwarding needs the right to send to the destination: the SDK puts a token for it in
   * `ServiceBusSupplementaryAuthorization` (ForwardTo) and `ServiceBusDlqSupplementaryAuthorization`
   * (ForwardDeadLetteredMessagesTo). The destination must exist, and forwarding must not loop back.
   */
  private async checkForwarding(exchange: Exchange, definition: QueueDefinition | SubscriptionDefinition, origin: string): Promise<void> {
    const fields = [
      ['forwardTo', 'ForwardTo', 'servicebussupplementaryauthorization'],
      ['forwardDeadLetteredMessagesTo', 'ForwardDeadLetteredMessagesTo', 'servicebusdlqsupplementaryauthorization'],
    ] as const;
    for (const [field, property, header] of fields) {
      const name = definition[field];
      if (name === undefined) continue;
      const destination = this.namespace.findSendTarget(name);
      if (!destination) throw new AtomError(400, `The ${property} destination '${name}' does not exist: create it first.`);
      definition[field] = destination.name;
      if (field === 'forwardTo' && this.forwardsBackTo(destination, origin.toLowerCase(), new Set())) {
        throw new AtomError(400, `Setting ${property} to '${destination.name}' would make messages loop back to '${origin}'.`);
      }
      const token = exchange.request.headers[header];
      if (typeof token !== 'string' || !token) {
        throw new AtomError(401, `Setting ${property} needs the right to send to '${destination.name}': send a token for https://servicebus.azure.net in the ${property === 'ForwardTo' ? 'ServiceBusSupplementaryAuthorization' : 'ServiceBusDlqSupplementaryAuthorization'} header (the SDK does).`);
      }
      const caller = await this.authenticate(token);
      const decision = this.options.guard.authorize(caller, dataActions.serviceBusSend, destination.armId, {
        resource: 'serviceBus',
        operation: `management API: forward to ${destination.name}`,
      });
      if (!decision.allowed) {
        throw new AtomError(
          401,
          `Authorization failed for specified action: Send on the ${property} destination '${destination.name}'. ${missingRoleText(this.options.directory, caller, dataActions.serviceBusSend, destination.armId, decision.roleNeeded?.name ?? 'Azure Service Bus Data Sender')}`,
        );
      }
    }
  }

  /** Whether messages sent to `entity` reach the queue or topic `origin` by auto-forwarding. */
  private forwardsBackTo(entity: QueueEntity | TopicEntity, origin: string, seen: Set<string>): boolean {
    if (entity.name.toLowerCase() === origin) return true;
    if (seen.has(entity.storeKey)) return false;
    seen.add(entity.storeKey);
    const next = entity.kind === 'queue' ? [entity.definition.forwardTo] : entity.subscriptions.map((subscription) => subscription.definition.forwardTo);
    return next.some((name) => {
      const target = name ? this.namespace.findSendTarget(name) : undefined;
      return !!target && this.forwardsBackTo(target, origin, seen);
    });
  }

  // -------------------------------------------------------------------------------------------------
  // Lookups and request bodies

  /** ARM ids from the names as requested (RBAC compares them case-insensitively), for checks made before any lookup. */
  private topicArmId(topic: string): string {
    return `${this.options.namespaceId}/topics/${topic}`;
  }

  private subscriptionArmId(topic: string, subscription: string): string {
    return `${this.topicArmId(topic)}/subscriptions/${subscription}`;
  }

  private topic(name: string): TopicEntity {
    const topic = this.namespace.topics.get(name.toLowerCase());
    if (!topic) throw notFound(name);
    return topic;
  }

  private subscriptionOf(topicName: string, name: string): SubscriptionEntity {
    const topic = this.topic(topicName);
    const subscription = topic.subscription(name);
    if (!subscription) throw notFound(`${topic.name}/Subscriptions/${name}`);
    return subscription;
  }

  /** The description in an ATOM entry (`<entry><content><QueueDescription>…`). */
  private async readDescription(exchange: Exchange, expected: string[]): Promise<XmlElement> {
    let body: Buffer;
    try {
      body = await readBody(exchange.request, defaults.maxBodyBytes);
    } catch (error) {
      if (error instanceof BodyTooLargeError) throw new AtomError(413, `The request body is larger than ${defaults.maxBodyBytes} bytes.`);
      throw error;
    }
    let root: XmlElement;
    try {
      root = parseXml(body.toString('utf8'));
    } catch (error) {
      if (error instanceof XmlSyntaxError) throw new AtomError(400, `The request body is not valid XML: ${error.message}.`);
      throw error;
    }
    const content = root.localName === 'entry' && root.namespace === xmlNamespaces.atom ? childElement(root, 'content') : undefined;
    const description = content?.children[0] ?? (expected.includes(root.localName) ? root : undefined);
    if (!description || !expected.includes(description.localName)) {
      throw new AtomError(400, `The request body must be an ATOM entry whose content is a ${expected.join(' or ')}.`);
    }
    return description;
  }

  // -------------------------------------------------------------------------------------------------
  // Responses

  private sendEntity(exchange: Exchange, status: number, entity: AnyEntity): void {
    this.sendEntry(exchange, status, `${exchange.base}/${entity.path}`, entity.name, descriptionOf(entity, exchange.base));
  }

  private sendEntry(exchange: Exchange, status: number, id: string, title: string, content: string): void {
    this.send(exchange.response, status, 'application/atom+xml;type=entry;charset=utf-8', entryXml(`${id}?api-version=2021-05`, title, content, this.options.namespaceName));
  }

  /** A page of a list, with a `next` link only when more entries follow (a `next` on the last page loops the SDK forever). */
  private sendList(exchange: Exchange, title: string, items: (QueueEntity | TopicEntity | SubscriptionEntity | RuleItem)[]): void {
    const skip = pagingNumber(exchange.url.searchParams.get('$skip'), '$skip') ?? 0;
    const top = pagingNumber(exchange.url.searchParams.get('$top'), '$top') ?? defaults.pageSize;
    const sorted = [...items].sort((a, b) => nameOf(a).localeCompare(nameOf(b), 'en', { sensitivity: 'base' }));
    const page = sorted.slice(skip, skip + top);
    const self = new URL(exchange.url.pathname, exchange.base);
    self.searchParams.set('api-version', '2021-05');
    const links = [`<link rel="self" href="${escapeXml(self.toString())}"/>`];
    if (skip + page.length < sorted.length && page.length) {
      const next = new URL(self);
      next.searchParams.set('$skip', String(skip + page.length));
      next.searchParams.set('$top', String(top));
      links.push(`<link rel="next" href="${escapeXml(next.toString())}"/>`);
    }
    const entries = page.map((item) => {
      if (item.kind === 'rule') return entryBody(`${ruleId(exchange.base, item.subscription, item.rule.name)}?api-version=2021-05`, item.rule.name, ruleXml(item.rule), this.options.namespaceName);
      return entryBody(`${exchange.base}/${item.path}?api-version=2021-05`, item.name, descriptionOf(item, exchange.base), this.options.namespaceName);
    });
    const body =
      `<?xml version="1.0" encoding="utf-8"?><feed xmlns="${xmlNamespaces.atom}"><title type="text">${title}</title><id>${escapeXml(self.toString())}</id>` +
      `<updated>${new Date().toISOString()}</updated>${links.join('')}${entries.join('')}</feed>`;
    this.send(exchange.response, 200, 'application/atom+xml;type=feed;charset=utf-8', body);
  }

  private sendEmptyFeed(exchange: Exchange): void {
    const body =
      `<?xml version="1.0" encoding="utf-8"?><feed xmlns="${xmlNamespaces.atom}"><title type="text">Publicly Listed Services</title>` +
      `<subtitle type="text">No queue or topic of this name.</subtitle><id>uuid:${exchange.trackingId}</id><updated>${new Date().toISOString()}</updated></feed>`;
    this.send(exchange.response, 200, 'application/atom+xml;type=feed;charset=utf-8', body);
  }

  private sendEmpty(exchange: Exchange): void {
    exchange.response.writeHead(200, { 'content-length': 0 });
    exchange.response.end();
  }

  /** Answers once the change is committed to the store, so an acknowledged change survives a kill. */
  private afterCommit(exchange: Exchange, respond: () => void): void {
    this.namespace.store.afterCommit((error) => {
      if (error) this.fail(exchange.response, error, exchange.trackingId);
      else respond();
    });
  }

  private send(response: ServerResponse, status: number, contentType: string, body: string): void {
    if (response.headersSent) return;
    response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    response.end(body);
  }

  private fail(response: ServerResponse, error: unknown, trackingId: string): void {
    let status: number;
    let detail: string;
    if (error instanceof AtomError) {
      status = error.status;
      detail = error.message;
    } else if (isBrokerError(error) && error.code === 'entity-already-exists') {
      status = 409;
      detail = error.message;
    } else {
      this.options.log(`[servicebus] management API: internal error ${trackingId}: ${(error as Error)?.stack ?? String(error)}`);
      status = 500;
      detail = 'The local Service Bus failed to process the request; its console shows why.';
    }
    const body = `<Error><Code>${status}</Code><Detail>${escapeXml(`${detail} TrackingId:${trackingId}, Timestamp:${new Date().toISOString()}`)}</Detail></Error>`;
    this.send(response, status, 'application/xml; charset=utf-8', body);
  }
}

/** Parses the request path: `$namespaceinfo`, `$Resources/Queues|Topics`, `<name>`, `<topic>/Subscriptions[/<s>[/Rules[/<r>]]]`. */
function parseTarget(pathname: string): Target {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    throw new AtomError(400, `The path '${pathname}' is not a valid entity address.`);
  }
  const parts = path.replace(/^\/+/, '').split('/');
  const trailing = parts[parts.length - 1] === '';
  if (trailing) parts.pop();
  const first = parts[0]?.toLowerCase() ?? '';
  if (parts.length === 1 && first === '$namespaceinfo') return { kind: 'namespace' };
  if (first === '$resources' && parts.length === 2) {
    const of = parts[1]!.toLowerCase();
    if (of === 'queues' || of === 'topics') return { kind: 'list', of };
  }
  if (!parts.length || parts.some((part) => !part) || first.startsWith('$')) throw new AtomError(400, `The path '${pathname}' addresses no queue, topic, subscription or rule.`);
  const at = parts.findIndex((part) => part.toLowerCase() === 'subscriptions');
  if (at < 0) return { kind: 'entity', name: parts.join('/') };
  const topic = parts.slice(0, at).join('/');
  const rest = parts.slice(at + 1);
  if (!topic) throw new AtomError(400, `The path '${pathname}' names no topic.`);
  if (!rest.length) return { kind: 'subscriptions', topic };
  if (rest.length === 1) return { kind: 'subscription', topic, name: rest[0]! };
  if (rest[1]!.toLowerCase() !== 'rules' || rest.length > 3) throw new AtomError(400, `The path '${pathname}' addresses no subscription or rule.`);
  if (rest.length === 2) return { kind: 'rules', topic, subscription: rest[0]! };
  return { kind: 'rule', topic, subscription: rest[0]!, name: rest[2]! };
}

function isUpdate(exchange: Exchange): boolean {
  return exchange.request.headers['if-match'] !== undefined;
}

function pagingNumber(value: string | null, name: string): number | undefined {
  if (value === null) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new AtomError(400, `${name} must be a non-negative integer, not '${value}'.`);
  return number;
}

function checkName(problem: string | undefined, name: string): void {
  if (problem) throw new AtomError(400, `SubCode=40000. The entity name '${name}' ${problem}.`);
}

/** Runs a description reader, turning what it refuses into a 400. */
function described<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof DescriptionError) throw new AtomError(400, `SubCode=40000. ${error.message}`);
    throw error;
  }
}

function compiled(spec: RuleSpec, createdAt: number): RuleDefinition {
  try {
    return compileRule(spec, createdAt);
  } catch (error) {
    if (error instanceof SqlSyntaxError) throw new AtomError(400, `SubCode=40000. The SQL of rule '${spec.name}' is invalid ${error.message}.`);
    throw error;
  }
}

function notFound(path: string): AtomError {
  return new AtomError(404, `The messaging entity '${path}' could not be found. To know more visit https://aka.ms/sbResourceMgrExceptions.`);
}

function alreadyExists(path: string): AtomError {
  return new AtomError(409, `The messaging entity '${path}' already exists.`);
}

/** A rule in a list of rules. */
interface RuleItem {
  kind: 'rule';
  subscription: SubscriptionEntity;
  rule: RuleDefinition;
}

function nameOf(item: QueueEntity | TopicEntity | SubscriptionEntity | RuleItem): string {
  return item.kind === 'rule' ? item.rule.name : item.name;
}

function ruleId(base: string, subscription: SubscriptionEntity, name: string): string {
  return `${base}/${subscription.path}/Rules/${name}`;
}

function entryXml(id: string, title: string, content: string, author: string): string {
  return `<?xml version="1.0" encoding="utf-8"?>${entryBody(id, title, content, author)}`;
}

function entryBody(id: string, title: string, content: string, author: string): string {
  const now = new Date().toISOString();
  return (
    `<entry xmlns="${xmlNamespaces.atom}"><id>${escapeXml(id)}</id><title type="text">${escapeXml(title)}</title>` +
    `<published>${now}</published><updated>${now}</updated><author><name>${escapeXml(author)}</name></author>` +
    `<link rel="self" href="${escapeXml(id)}"/><content type="application/xml">${content}</content></entry>`
  );
}

/** An entity's description with its runtime figures; forwarding targets as Service Bus echoes them (`sb://host/name`). */
function descriptionOf(entity: AnyEntity, base: string): string {
  const forwardUri = (name: string): string => `sb://${base.slice('https://'.length)}/${name}`;
  const runtime = runtimeOf(entity);
  if (entity.kind === 'queue') return queueXml(entity.definition, runtime, forwardUri);
  if (entity.kind === 'topic') return topicXml(entity.definition, runtime);
  return subscriptionXml(entity.definition, runtime, forwardUri);
}

/** What a queue, topic or subscription reports besides its definition. */
function runtimeOf(entity: AnyEntity): EntityRuntime {
  const times = { createdAt: entity.createdAt, updatedAt: entity.updatedAt, accessedAt: entity.accessedAt };
  if (entity.kind !== 'topic') return { ...times, sizeInBytes: sizeOf(entity), counts: countDetailsOf(entity) };
  return {
    ...times,
    sizeInBytes: entity.subscriptions.reduce((sum, subscription) => sum + sizeOf(subscription), 0),
    counts: countDetailsOf(entity),
    subscriptionCount: entity.subscriptions.length,
  };
}
