import { Catch, UseFilters, type RpcExceptionFilter } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import type { EventOf, EventPattern as EventPatternName, ParsedRequestOf, ReplyOf, RequestPattern } from '@keyless/contracts';
import { throwError, type Observable } from 'rxjs';
import type { ServiceBusContext } from './service-bus.context.js';

/**
 * Hands a handler's error to the transport unchanged. Nest's default RPC filter replaces unknown errors by
 * "Internal server error", which would hide from the settlement policy what failed and whether to retry.
 */
@Catch()
export class ErrorPassthroughFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown): Observable<never> {
    return throwError(() => exception);
  }
}

type RequestHandler<P extends RequestPattern> = (payload: ParsedRequestOf<P>, context: ServiceBusContext) => ReplyOf<P> | Promise<ReplyOf<P>>;
type EventHandler<P extends EventPatternName> = (payload: EventOf<P>, context: ServiceBusContext) => void | Promise<void>;

/**
 * Nest hands a handler only its payload unless parameters are decorated (`@Payload()`, `@Ctx()`). The
 * typed handlers promise `(payload, context)`, so a handler without parameter decorators gets both.
 * Parameter decorators run before method decorators, so explicit ones are seen here and kept as they are.
 */
function passPayloadAndContext(target: object, key: string | symbol): void {
  if (Reflect.getMetadata(ROUTE_ARGS_METADATA, target.constructor, key)) return;
  Payload()(target, key, 0);
  Ctx()(target, key, 1);
}

/** Options of {@link OnRequest}. */
export interface OnRequestOptions {
  /**
   * Whether handling the request changes anything. `false` declares a query: the handler only reads (and may call
   * side-effect-free services such as a chat model), so running it again for a copy of the request — a requester's
   * re-send, a redelivery after a lost lock or reply send — only computes the answer again. The server then skips
   * the idempotency store for it: no claim and no remembered reply (two database round trips less per request),
   * and each copy is answered by running the handler. Leave it unset for a command, whose effect must happen once:
   * its copies are answered with the remembered reply. **Default**: true.
   */
  sideEffects?: boolean;
}

/** Key, in Nest's handler extras, of {@link OnRequestOptions.sideEffects}. */
export const sideEffectsExtra = 'keyless.messaging.sideEffects';

/**
 * Marks a method as the handler of a request pattern. Its parameter and return types must match the
 * pattern's contract (a mismatch does not compile); the payload arrives validated, the
 * {@link ServiceBusContext} as the second argument.
 *
 * @example
 * // A query: copies are answered by running it again, without the idempotency store.
 * @OnRequest('recommendation.get-product', { sideEffects: false })
 * async getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>) { … }
 */
export function OnRequest<P extends RequestPattern>(pattern: P, options: OnRequestOptions = {}) {
  return <H extends RequestHandler<P>>(target: object, key: string | symbol, descriptor: TypedPropertyDescriptor<H>): void => {
    passPayloadAndContext(target, key);
    MessagePattern(pattern, { [sideEffectsExtra]: options.sideEffects ?? true })(target, key, descriptor);
    UseFilters(ErrorPassthroughFilter)(target, key, descriptor);
  };
}

/** Marks a method as a handler of an event pattern (typed and validated like {@link OnRequest}). */
export function OnEvent<P extends EventPatternName>(pattern: P) {
  return <H extends EventHandler<P>>(target: object, key: string | symbol, descriptor: TypedPropertyDescriptor<H>): void => {
    passPayloadAndContext(target, key);
    (EventPattern(pattern as string) as MethodDecorator)(target, key, descriptor);
    UseFilters(ErrorPassthroughFilter)(target, key, descriptor);
  };
}
