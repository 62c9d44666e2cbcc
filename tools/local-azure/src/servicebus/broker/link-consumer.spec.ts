import rhea from 'rhea';
import { decodeMessageFast, decodeMessage, encodeMessage, type AmqpMessage } from '../amqp/amqp-message.js';
import { encodeDelivered } from './link-consumer.js';
import type { MessageQueue } from '../queue/message-queue.js';
import { StoredMessage } from '../queue/stored-message.js';

function stored(bytes: Buffer | undefined, amqp: AmqpMessage, assignedMessageId?: string): StoredMessage {
  const message = new StoredMessage(42, amqp, 1_700_000_000_000, 1_700_000_060_000, undefined, false, 2, undefined, 'orders', {} as MessageQueue);
  message.payload = bytes;
  message.assignedMessageId = assignedMessageId;
  return message;
}

describe(encodeDelivered.name, () => {
  const sent = encodeMessage({
    durable: true,
    delivery_annotations: { 'x-opt-hint': 'kept' },
    message_annotations: { 'x-opt-partition-key': 'k' },
    message_id: 'order-1',
    application_properties: { attempt: 1 },
    body: rhea.message.data_section(Buffer.from('{"productId":"p-1"}')),
    footer: { checksum: 'c' },
  } as AmqpMessage);

  describe('when the bytes as sent are at hand', () => {
    it('delivers the same message as encoding it whole', () => {
      const lockedUntil = 1_700_000_030_000;
      const fromBytes = decodeMessage(encodeDelivered(stored(sent, decodeMessageFast(sent)), lockedUntil));
      const whole = decodeMessage(encodeDelivered(stored(undefined, decodeMessage(sent)), lockedUntil));
      expect(fromBytes).toEqual(whole);
      expect(fromBytes.delivery_count).toBe(2);
      expect(fromBytes.ttl).toBe(60_000);
      expect(fromBytes.message_annotations).toMatchObject({ 'x-opt-partition-key': 'k', 'x-opt-sequence-number': 42, 'x-opt-deadletter-source': 'orders' });
      expect(fromBytes.delivery_annotations).toEqual({ 'x-opt-hint': 'kept' });
      expect(fromBytes.footer).toEqual({ checksum: 'c' });
    });
  });

  describe('when the broker assigned the message id', () => {
    it('delivers the id the bytes as sent lack', () => {
      const withoutId = encodeMessage({ body: rhea.message.data_section(Buffer.from('x')) } as AmqpMessage);
      const amqp = { ...decodeMessageFast(withoutId), message_id: 'assigned' };
      expect(decodeMessage(encodeDelivered(stored(withoutId, amqp, 'assigned'), undefined)).message_id).toBe('assigned');
    });
  });
});
