import type { HealthCheckResult } from '@nestjs/terminus';
import { withoutDetails } from './health.controller.js';

describe(withoutDetails.name, () => {
  it('keeps each check’s status and nothing else, in info, error and details', () => {
    const full: HealthCheckResult = {
      status: 'error',
      info: { identity: { status: 'up', identity: { clientId: 'c-1', endpoint: 'http://127.0.0.1:1/msi' }, soonestExpiry: '2030-01-01T00:00:00Z' } },
      error: { servicebus: { status: 'down', replySession: { sessionId: 'gateway-x', state: 'reconnecting' }, receivers: [{ entityPath: 'replies' }] } },
      details: {
        identity: { status: 'up', identity: { clientId: 'c-1' } },
        servicebus: { status: 'down', replySession: { sessionId: 'gateway-x' } },
      },
    };
    expect(withoutDetails(full)).toEqual({
      status: 'error',
      info: { identity: { status: 'up' } },
      error: { servicebus: { status: 'down' } },
      details: { identity: { status: 'up' }, servicebus: { status: 'down' } },
    });
  });
});
