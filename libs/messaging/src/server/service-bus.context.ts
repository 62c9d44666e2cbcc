import type { ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import { BaseRpcContext } from '@nestjs/microservices';

type ServiceBusContextArgs = [ServiceBusReceivedMessage, ServiceBusReceiver, string];

/**
 * What a handler can know about the message it handles: the second argument of an `@OnRequest`/`@OnEvent`
 * handler (or the parameter decorated with `@Ctx()` when the handler decorates its parameters).
 */
export class ServiceBusContext extends BaseRpcContext<ServiceBusContextArgs> {
  /** The received message: ids, subject, application properties, enqueued time. */
  getMessage(): ServiceBusReceivedMessage {
    return this.args[0];
  }

  /** The receiver it came from (its entity path names the queue or subscription). */
  getReceiver(): ServiceBusReceiver {
    return this.args[1];
  }

  /** The message pattern (the message's subject). */
  getPattern(): string {
    return this.args[2];
  }

  /** Earlier deliveries of this message (0 on the first delivery). */
  getDeliveryCount(): number {
    return this.args[0].deliveryCount ?? 0;
  }
}
