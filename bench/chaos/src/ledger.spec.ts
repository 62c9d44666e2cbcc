import { derivedVisionEventId, Ledger, type LedgerObservations, type ProductReading } from './ledger.js';

describe(Ledger.name, () => {
  const observe = (overrides: Partial<{ products: Map<string, ProductReading | undefined>; handled: Record<string, Record<string, number>>; deadLettered: string[] }>): LedgerObservations => ({
    products: overrides.products ?? new Map(),
    handledRuns: new Map(Object.entries(overrides.handled ?? {}).map(([entity, byId]) => [entity, new Map(Object.entries(byId))])),
    deadLettered: new Set(overrides.deadLettered ?? []),
  });

  const acknowledged = (ledger: Ledger, eventId: string, withImage = false) => {
    const entry = ledger.open('s', 'fault', withImage);
    ledger.acknowledge(entry, eventId);
    return entry;
  };

  describe('when an upsert was refused to the caller (rule 1)', () => {
    it('counts it by status, never as lost', () => {
      const ledger = new Ledger('r');
      ledger.refuse(ledger.open('s', 'fault', false), 503);
      ledger.refuse(ledger.open('s', 'fault', false), 'network-error');
      const verdict = ledger.reconcile(observe({}));
      expect(verdict).toMatchObject({ sent: 2, acknowledged: 0, lost: 0, refused: { '503': 1, 'network-error': 1 } });
    });
  });

  describe('when an acknowledged upsert reads back with its name (rule 2)', () => {
    it('counts it applied, and indexed once the pipeline finished', () => {
      const ledger = new Ledger('r');
      const a = acknowledged(ledger, 'e-a');
      const b = acknowledged(ledger, 'e-b');
      const verdict = ledger.reconcile(observe({ products: new Map([[a.productId, { name: a.name, state: 'indexed' }], [b.productId, { name: b.name, state: 'pending-embedding' }]]) }));
      expect(verdict).toMatchObject({ acknowledged: 2, applied: 2, indexed: 1, lost: 0 });
      expect(verdict.samples.notIndexed).toEqual([`${b.productId}: pending-embedding`]);
    });
  });

  describe('when an acknowledged upsert never shows up', () => {
    it('counts it lost (rule 4) unless its event or the vision event derived from it is dead-lettered (rule 3)', () => {
      const ledger = new Ledger('r');
      const lost = acknowledged(ledger, 'e-lost');
      acknowledged(ledger, 'e-dlq');
      acknowledged(ledger, 'e-vision-dlq', true);
      const verdict = ledger.reconcile(observe({ products: new Map([[lost.productId, undefined]]), deadLettered: ['e-dlq', derivedVisionEventId('e-vision-dlq')] }));
      expect(verdict).toMatchObject({ acknowledged: 3, lost: 1, deadLettered: 2 });
      expect(verdict.samples.lost[0]).toContain(lost.productId);
    });

    it('counts a product that reads back with another name as lost', () => {
      const ledger = new Ledger('r');
      const entry = acknowledged(ledger, 'e-1');
      expect(ledger.reconcile(observe({ products: new Map([[entry.productId, { name: 'someone else', state: 'indexed' }]]) })).lost).toBe(1);
    });
  });

  describe('when a message was handled twice on one entity (rule 5)', () => {
    it('counts it applied twice, for the upsert and for the vision event derived from it', () => {
      const ledger = new Ledger('r');
      const once = acknowledged(ledger, 'e-once');
      const twice = acknowledged(ledger, 'e-twice');
      const visionTwice = acknowledged(ledger, 'e-vision', true);
      const products = new Map([once, twice, visionTwice].map((e) => [e.productId, { name: e.name, state: 'indexed' }]));
      const verdict = ledger.reconcile(
        observe({
          products,
          handled: {
            'events/Subscriptions/recommendation': { 'e-once': 1, 'e-twice': 2, 'e-vision': 1, [derivedVisionEventId('e-vision')]: 2 },
            'events/Subscriptions/vision': { 'e-once': 1, 'e-twice': 1 },
          },
        }),
      );
      expect(verdict).toMatchObject({ handled: 3, appliedTwice: 2 });
    });

    it('does not count one run on each of two subscriptions as twice', () => {
      const ledger = new Ledger('r');
      const entry = acknowledged(ledger, 'e-1');
      const verdict = ledger.reconcile(observe({ products: new Map([[entry.productId, { name: entry.name, state: 'indexed' }]]), handled: { a: { 'e-1': 1 }, b: { 'e-1': 1 } } }));
      expect(verdict.appliedTwice).toBe(0);
    });
  });

  it('reconciles one scenario at a time', () => {
    const ledger = new Ledger('r');
    ledger.acknowledge(ledger.open('first', 'fault', false), 'e-1');
    ledger.acknowledge(ledger.open('second', 'fault', false), 'e-2');
    expect(ledger.reconcile(observe({}), 'second')).toMatchObject({ sent: 1, lost: 1 });
    expect(ledger.reconcile(observe({}))).toMatchObject({ sent: 2, lost: 2 });
  });
});
