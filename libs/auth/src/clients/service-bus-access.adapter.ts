import type { MessageHandlers, ProcessErrorArgs, ServiceBusClient } from '@azure/service-bus';
import type { AccessDenialHint, AccessDiagnostics, ServiceBusEntity } from '../diagnostics/access-diagnostics.js';

/** What the adapter knows about the link an object serves. */
interface LinkContext {
  operation: 'send' | 'receive';
  entity?: ServiceBusEntity;
}

/**
 * Makes the Service Bus client's role refusals (`UnauthorizedAccess`, "'Send' claim(s) are required")
 * arrive as `AccessDeniedError` (the `ServiceBusError` is its `cause`), like the OpenAI and Vision
 * clients' do. Covered: promises of the client, its senders and receivers (`sendMessages`,
 * `receiveMessages`, `acceptSession`, settlement, …), and the `error` that `subscribe`'s `processError`
 * receives. Every other error, and every other behaviour, is the SDK's own; `instanceof` still holds.
 * Async iterators (`getMessageIterator`) are passed through unchanged.
 *
 * Receivers know their entity (one name is a queue, two a subscription); senders do not know whether
 * their name is a queue or a topic, so their scope comes from the refusal or falls back to the namespace.
 *
 * Why a Proxy and not an error boundary in each caller: the `ServiceBusClient` that `create('serviceBus')` hands
 * out is a public product of this library, used directly by the messaging transport (its server's receivers and
 * reply senders, its client proxy's senders and session receivers), by the doctor's probes and by tests, and its
 * documented promise is the OpenAI and Vision clients' one: a role refusal is an `AccessDeniedError` naming the
 * fix. The SDK offers no hook for its errors (no pipeline policy as the REST clients have), so the translation
 * has to sit around its methods. Replacing the Proxy means moving that promise to the callers: an explicit
 * `explain(error, hint)` in the transport's send and receive error paths (where the entity is known) and in the
 * doctor (which already calls `AccessDiagnostics.explain` itself), with `service-bus-access.spec.ts` moving to the
 * transport's tests. Until then the Proxy is confined to this file, leaves `instanceof` and every other behaviour
 * to the SDK, and passes async iterators through.
 */
export function withAccessDiagnostics(client: ServiceBusClient, diagnostics: AccessDiagnostics): ServiceBusClient {
  return adapt(client, diagnostics, undefined, (method, args) => {
    const names = args.filter((a): a is string => typeof a === 'string');
    switch (method) {
      case 'createSender':
        return { operation: 'send' };
      case 'createReceiver':
      case 'acceptNextSession':
        return { operation: 'receive', entity: entityOf(names) };
      case 'acceptSession':
        // The last string is the session id.
        return { operation: 'receive', entity: entityOf(names.slice(0, -1)) };
      default:
        return undefined;
    }
  });
}

function entityOf(names: string[]): ServiceBusEntity | undefined {
  if (names.length === 1) return { kind: 'queue', name: names[0]! };
  if (names.length === 2) return { kind: 'subscription', topic: names[0]!, name: names[1]! };
  return undefined;
}

type ChildContext = (method: string, args: unknown[]) => LinkContext | undefined;

function adapt<T extends object>(target: T, diagnostics: AccessDiagnostics, context: LinkContext | undefined, childContext?: ChildContext): T {
  const hint: AccessDenialHint = { resource: 'serviceBus', ...(context?.operation ? { operation: context.operation } : {}), ...(context?.entity ? { entity: context.entity } : {}) };
  const translate = (error: unknown): unknown => diagnostics.explain(error, hint) ?? error;
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function' || property === 'constructor' || property === 'getMessageIterator') return value;
      return (...args: unknown[]) => {
        const link = childContext?.(String(property), args);
        if (property === 'subscribe' && args[0] && typeof args[0] === 'object') {
          args[0] = subscribeHandlers(args[0] as MessageHandlers, translate);
        }
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(object, args);
        } catch (error) {
          throw translate(error);
        }
        const wrap = (produced: unknown): unknown => (link && produced && typeof produced === 'object' ? adapt(produced, diagnostics, link) : produced);
        if (result instanceof Promise) {
          return result.then(wrap, (error: unknown) => {
            throw translate(error);
          });
        }
        return wrap(result);
      };
    },
  });
}

function subscribeHandlers(handlers: MessageHandlers, translate: (error: unknown) => unknown): MessageHandlers {
  return {
    ...handlers,
    processError: (args: ProcessErrorArgs) => handlers.processError({ ...args, error: translate(args.error) as Error }),
  };
}
