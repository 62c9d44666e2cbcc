import { Inject, Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { ServiceBusClientProxy } from './client/service-bus.client-proxy.js';
import { ServiceBusServer } from './server/service-bus.server.js';

/**
 * Terminus health indicator: up when the server (if any) listens, every receiver is receiving and the reply
 * session (if any) is attached; the details name each link, its state and its last error.
 */
@Injectable()
export class MessagingHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    @Optional() @Inject(ServiceBusServer) private readonly server: ServiceBusServer | null,
    @Optional() @Inject(ServiceBusClientProxy) private readonly proxy: ServiceBusClientProxy | null,
  ) {}

  check<const Key extends string>(key: Key): HealthIndicatorResult<Key> {
    const receivers = this.server?.health() ?? [];
    const replySession = this.proxy?.health();
    const listening = this.server ? this.server.isListening() : true;
    const details = { receivers, ...(replySession ? { replySession } : {}), ...(listening ? {} : { message: 'not receiving yet' }) };
    const healthy = listening && receivers.every((r) => r.state === 'receiving') && (!replySession || replySession.state === 'attached');
    const session = this.indicators.check(key);
    return healthy ? session.up(details) : session.down(details);
  }
}
