import { Inject, Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { ServiceBusClientProxy } from './client/service-bus.client-proxy.js';
import { ServiceBusServer } from './server/service-bus.server.js';

/**
 * Terminus health indicator: up when the server (if any) listens, every receiver is receiving and the reply
 * session (if any) is attached; the details name each link, its state and its last error, and when it is down a
 * `message` says what it waits for: each link not receiving, for how long, and its last error.
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
    const waitingFor = [
      ...(listening ? [] : ['the server to listen']),
      ...receivers.filter((r) => r.state !== 'receiving').map((r) => waiting(r.entityPath, r.state, r.since, r.lastError)),
      ...(replySession && replySession.state !== 'attached' ? [waiting(`reply session ${replySession.sessionId}`, replySession.state, undefined, replySession.lastError)] : []),
    ];
    const details = { receivers, ...(replySession ? { replySession } : {}), ...(waitingFor.length ? { message: `waiting for ${waitingFor.join('; ')}` } : {}) };
    const session = this.indicators.check(key);
    return waitingFor.length ? session.down(details) : session.up(details);
  }
}

/** `<link> (<state> for 12.3 s, last error: …)`: what the readiness waits for, first the state, as the log quotes it shortened. */
function waiting(link: string, state: string, since: string | undefined, lastError: string | undefined): string {
  const elapsed = since ? ` for ${((Date.now() - Date.parse(since)) / 1000).toFixed(1)} s` : '';
  return `${link} (${state}${elapsed}${lastError ? `, last error: ${lastError}` : ''})`;
}
