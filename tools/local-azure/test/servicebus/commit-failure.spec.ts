import { join } from 'node:path';
import { withFullDisk } from './full-disk.js';
import { receiveExactly, startServiceBus, type TestServiceBus } from './support.js';

// The local Azure runs in the test's process, so the journal's descriptor can be pointed at /dev/full.
describe('Service Bus when the disk refuses a commit', () => {
  let bus: TestServiceBus;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
  });

  afterAll(() => bus.stop());

  it('rejects the send, delivers none of it, and stores and delivers sends again once the disk takes writes', async () => {
    const client = bus.client();
    const sender = client.createSender('plain');
    const receiver = client.createReceiver('plain', { receiveMode: 'receiveAndDelete' });
    await sender.sendMessages({ body: 'before' });
    expect((await receiveExactly(receiver, 1)).map((m) => m.body)).toEqual(['before']);

    await withFullDisk(join(bus.test.home, 'data', 'servicebus.journal'), async () => {
      await expect(sender.sendMessages({ body: 'refused' })).rejects.toThrow(/could not be stored/);
      await expect(sender.sendMessages([{ body: 'refused-batch-1' }, { body: 'refused-batch-2' }])).rejects.toThrow(/could not be stored/);
    });

    await sender.sendMessages({ body: 'after' });
    // Only what was stored is delivered: nothing of the refused sends, before or after the disk recovered.
    expect((await receiveExactly(receiver, 1)).map((m) => m.body)).toEqual(['after']);
    expect(await receiver.receiveMessages(10, { maxWaitTimeInMs: 500 })).toEqual([]);
  });
});
