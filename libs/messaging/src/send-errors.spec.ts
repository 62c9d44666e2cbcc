import { ServiceBusError } from '@azure/service-bus';
import { isTransientSendError } from './send-errors.js';

describe(isTransientSendError.name, () => {
  it('counts a connection that closed before it opened (rhea-promise\'s bare "Failed to connect") as transient', () => {
    expect(isTransientSendError(new Error('Failed to connect'))).toBe(true);
  });

  it('counts socket errors and retryable SDK errors as transient, and AggregateErrors of them', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(isTransientSendError(reset)).toBe(true);
    expect(isTransientSendError(new ServiceBusError('busy', 'ServiceBusy'))).toBe(true);
    expect(isTransientSendError(new AggregateError([reset, new Error('Failed to connect')]))).toBe(true);
  });

  it('counts permanent Service Bus errors, other errors and mixed AggregateErrors as permanent', () => {
    expect(isTransientSendError(new ServiceBusError('too big', 'MessageSizeExceeded'))).toBe(false);
    expect(isTransientSendError(new ServiceBusError('no role', 'UnauthorizedAccess'))).toBe(false);
    expect(isTransientSendError(new TypeError('Failed to connect'))).toBe(false);
    expect(isTransientSendError(new Error('something else'))).toBe(false);
    expect(isTransientSendError(new AggregateError([new Error('Failed to connect'), new Error('bug')]))).toBe(false);
  });
});
