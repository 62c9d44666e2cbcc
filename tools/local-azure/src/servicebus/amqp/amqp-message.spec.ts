import rhea from 'rhea';
import { amqpTypes, decodeBatch, decodeMessageFast, decodeMessage, encodeMessage, scanSections, sectionCodes, sectionsFrom, type AmqpMessage } from './amqp-message.js';
import { BrokerError } from './broker-error.js';

/** A message as `@azure/service-bus` encodes it (empty header, empty annotations map, data body). */
function sdkMessage(overrides: AmqpMessage = {}): Buffer {
  return encodeMessage({
    message_annotations: {},
    message_id: 'order-1',
    subject: 'orders.placed',
    group_id: 'session-a',
    application_properties: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', attempt: 1 },
    body: rhea.message.data_section(Buffer.from(JSON.stringify({ productId: 'p-1' }))),
    ...overrides,
  });
}

function withoutBody(bytes: Buffer): Buffer {
  return bytes.subarray(0, sectionsFrom(scanSections(bytes), sectionCodes.data, bytes.length));
}

function batchOf(messages: Buffer[]): Buffer {
  return encodeMessage({ message_id: 'envelope', body: rhea.message.data_sections(messages) } as AmqpMessage);
}

describe('scanSections', () => {
  it('finds every section of a message in order, with its span', () => {
    const bytes = sdkMessage();
    const sections = scanSections(bytes);
    expect(sections.map((section) => section.code)).toEqual([
      sectionCodes.header,
      sectionCodes.messageAnnotations,
      sectionCodes.properties,
      sectionCodes.applicationProperties,
      sectionCodes.data,
    ]);
    expect(sections[0]!.start).toBe(0);
    expect(sections.at(-1)!.end).toBe(bytes.length);
    for (let i = 1; i < sections.length; i++) expect(sections[i]!.start).toBe(sections[i - 1]!.end);
  });

  describe('when the bytes are not well-formed', () => {
    it.each([
      ['cut off inside the body', (bytes: Buffer) => bytes.subarray(0, bytes.length - 3)],
      ['not a described section', (bytes: Buffer) => Buffer.concat([bytes, Buffer.from([0x45])])],
      ['an unknown type code inside the application properties', (bytes: Buffer) => corruptApplicationProperties(bytes)],
    ])('refuses a message %s with a decode-error', (_case, corrupt) => {
      expect(() => scanSections(corrupt(sdkMessage()))).toThrow(BrokerError);
      expect(() => scanSections(corrupt(sdkMessage()))).toThrow(/could not be decoded as AMQP 1.0/);
    });
  });
});

/** Replaces the type code of the first application property's value with 0x3f (no such code). */
function corruptApplicationProperties(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const section = scanSections(copy).find((s) => s.code === sectionCodes.applicationProperties)!;
  // map8 (0xc1, size, count), then the key (str8: 0xa1, length, text): the value's type code follows.
  const keyAt = section.valueStart + 3;
  copy[keyAt + 2 + copy[keyAt + 1]!] = 0x3f;
  return copy;
}

describe(decodeMessageFast.name, () => {
  it.each([
    ['as the SDK sends it', sdkMessage()],
    ['with a header, annotations, timestamps and typed properties', sdkMessage({
      durable: true,
      priority: 4,
      ttl: 60_000,
      delivery_count: 3,
      creation_time: new Date(1_700_000_000_000),
      content_type: 'application/json',
      group_sequence: 7,
      message_annotations: { 'x-opt-partition-key': 'k', 'x-opt-scheduled-enqueue-time': new Date(1_700_000_100_000) },
      delivery_annotations: { hint: -5 },
      application_properties: { text: 'é', count: 70_000, negative: -70_000, ratio: 0.25, flag: false, missing: null, big: 2 ** 40 },
    })],
    ['with values rhea decodes itself (binary, uuid id, a list property)', sdkMessage({
      message_id: amqpTypes.wrap_uuid(Buffer.alloc(16, 7)),
      user_id: Buffer.from('user'),
      application_properties: { list: amqpTypes.wrap_list([1, 'two']), bytes: Buffer.from('b') },
    })],
    ['with longs (as .NET sends 64-bit properties) in the properties and annotations', sdkMessage({
      message_annotations: { 'x-opt-sequence-number': amqpTypes.wrap_long(5_000_000_000) },
      application_properties: { count: amqpTypes.wrap_long(5_000_000_000), small: amqpTypes.wrap_long(7), negative: amqpTypes.wrap_long(-3) },
    })],
    ['with several data sections', encodeMessage({ message_id: 'm', body: rhea.message.data_sections([Buffer.from('a'), Buffer.from('b')]) } as AmqpMessage)],
    ['with a value body and a footer', encodeMessage({ message_id: 'm', body: { any: 'value' }, footer: { checksum: 'c' } } as AmqpMessage)],
    ['without a body', withoutBody(encodeMessage({ message_id: 'm' } as AmqpMessage))],
  ])('decodes a message %s as rhea does', (_case, bytes) => {
    expect({ ...decodeMessageFast(bytes) }).toEqual({ ...decodeMessage(bytes) });
  });

  it('decodes short strings seen in earlier messages to their own text (remembered by a hash of their bytes)', () => {
    // Same length, different bytes; repeated; and non-ASCII (never remembered): each message gets its own texts.
    const subjects = ['orders.placed', 'orders.placee', 'orders.placed', 'órders.placed', 'órders.placed', 'x'.repeat(32), 'x'.repeat(33)];
    for (const subject of subjects) {
      const bytes = sdkMessage({ subject, application_properties: { [subject]: subject } });
      expect({ ...decodeMessageFast(bytes) }).toEqual({ ...decodeMessage(bytes) });
    }
    const decoded = subjects.map((subject) => decodeMessageFast(sdkMessage({ subject })).subject);
    expect(decoded).toEqual(subjects);
  });

  it('re-encodes to the bytes it was decoded from', () => {
    const bytes = sdkMessage();
    expect(encodeMessage(decodeMessageFast(bytes)).equals(bytes)).toBe(true);
  });
});

describe('decodeBatch', () => {
  it('returns each message of a batch with its bytes as sent', () => {
    const messages = [sdkMessage({ message_id: 'a' }), sdkMessage({ message_id: 'b' }), sdkMessage({ message_id: 'c', group_id: 'session-b' })];
    const decoded = decodeBatch(batchOf(messages));
    expect(decoded.map((m) => m.amqp.message_id)).toEqual(['a', 'b', 'c']);
    expect(decoded[2]!.amqp.group_id).toBe('session-b');
    decoded.forEach((m, i) => expect(m.payload!.equals(messages[i]!)).toBe(true));
  });

  it('unpacks a batch of one message (one data section)', () => {
    expect(decodeBatch(batchOf([sdkMessage()])).map((m) => m.amqp.message_id)).toEqual(['order-1']);
  });

  it('refuses an envelope whose body is not data sections', () => {
    const envelope = encodeMessage({ message_id: 'envelope', body: amqpTypes.wrap_string('not a batch') } as AmqpMessage);
    expect(() => decodeBatch(envelope)).toThrow(/must carry its messages as data sections/);
  });

  it('refuses a batch holding a malformed message', () => {
    const bad = sdkMessage().subarray(0, 20);
    expect(() => decodeBatch(batchOf([sdkMessage(), bad]))).toThrow(/could not be decoded as AMQP 1.0/);
  });
});
