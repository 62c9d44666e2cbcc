/**
 * The ledger of catalog upserts the chaos suite sent through the gateway, and the reconciliation of what was
 * acknowledged against what the system handled and applied.
 *
 * Every upsert creates a product of its own (a fresh id, a name that carries the sequence number), so "applied" is
 * observable from outside, honestly and whatever the store: the product reads back through the gateway with that
 * name. "Handled" and "applied twice" come from the services' consumer spans (each `<pattern> process` span carries
 * the message id and the transport's outcome: `handled` when the handler ran and resolved, `duplicate` when the
 * idempotency guard answered instead), so one message whose handler resolved twice on one subscription is seen.
 *
 * Rules:
 * 1. Acknowledged = the gateway answered 202 (Service Bus accepted the event). Anything else was refused to the
 *    caller and is not owed: it is counted by status, never as lost.
 * 2. Applied = the product reads back with the upsert's name. Indexed = it also reached `indexed` (vision and
 *    embeddings done), the end of the pipeline.
 * 3. Dead-lettered = the event's id (or the vision event derived from it) is in a dead-letter queue: not lost, but
 *    reported, since the pipeline did not finish.
 * 4. Lost = acknowledged, not applied and not dead-lettered.
 * 5. Applied twice = a message id with two or more `handled` spans on the same entity (a redelivery that ran the
 *    handler again instead of the guard answering).
 */

/** Where in a scenario something happened. */
export type Phase = 'before' | 'fault' | 'after';

/** One upsert the suite sent. */
export interface LedgerEntry {
  seq: number;
  scenario: string;
  phase: Phase;
  productId: string;
  /** The name the product must read back with. */
  name: string;
  /** Whether it has an image (then vision analyses it before it is embedded). */
  withImage: boolean;
  sentAt: number;
  /** The gateway's status, or `network-error`. */
  status?: number | 'network-error';
  /** The event's message id, from the 202 body. */
  eventId?: string;
}

/** A product as read back through the gateway at the end. */
export interface ProductReading {
  name: string;
  state: string;
}

/** What the suite observed after the scenario settled. */
export interface LedgerObservations {
  /** Products read back, by id; missing or `undefined` = 404. */
  products: ReadonlyMap<string, ProductReading | undefined>;
  /** `handled` consumer spans, by entity and message id. */
  handledRuns: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Message ids in the dead-letter queues (all entities together). */
  deadLettered: ReadonlySet<string>;
}

/** The reconciliation (see the rules above). */
export interface LedgerVerdict {
  sent: number;
  acknowledged: number;
  /** Refused sends by status (`network-error` when the gateway could not be reached). */
  refused: Record<string, number>;
  /** Acknowledged events whose id has a `handled` span on at least one subscription. */
  handled: number;
  applied: number;
  indexed: number;
  deadLettered: number;
  lost: number;
  appliedTwice: number;
  /** A few examples of each problem, for the report. */
  samples: { lost: string[]; appliedTwice: string[]; notIndexed: string[]; deadLettered: string[] };
}

const sampleSize = 5;

/** The event id of the `vision.image.analyzed` event the vision service derives from an upsert (see vision.handlers.ts). */
export function derivedVisionEventId(eventId: string): string {
  return `vision-${eventId}`;
}

export class Ledger {
  private readonly entries: LedgerEntry[] = [];
  private nextSeq = 0;

  constructor(readonly runId: string) {}

  /** Records an upsert about to be sent and returns its entry (complete it with {@link acknowledge} or {@link refuse}). */
  open(scenario: string, phase: Phase, withImage: boolean): LedgerEntry {
    const seq = this.nextSeq++;
    const entry: LedgerEntry = { seq, scenario, phase, productId: `chaos-${this.runId}-${seq}`, name: `Chaos product ${this.runId} #${seq}`, withImage, sentAt: Date.now() };
    this.entries.push(entry);
    return entry;
  }

  acknowledge(entry: LedgerEntry, eventId: string): void {
    entry.status = 202;
    entry.eventId = eventId;
  }

  refuse(entry: LedgerEntry, status: number | 'network-error'): void {
    entry.status = status;
  }

  /** Entries of one scenario (all when omitted). */
  of(scenario?: string): LedgerEntry[] {
    return scenario === undefined ? [...this.entries] : this.entries.filter((e) => e.scenario === scenario);
  }

  /** Applies the rules to the entries of `scenario` (all when omitted). */
  reconcile(observations: LedgerObservations, scenario?: string): LedgerVerdict {
    const entries = this.of(scenario);
    const verdict: LedgerVerdict = {
      sent: entries.length,
      acknowledged: 0,
      refused: {},
      handled: 0,
      applied: 0,
      indexed: 0,
      deadLettered: 0,
      lost: 0,
      appliedTwice: 0,
      samples: { lost: [], appliedTwice: [], notIndexed: [], deadLettered: [] },
    };
    const sample = (list: string[], value: string): void => void (list.length < sampleSize && list.push(value));
    for (const entry of entries) {
      if (entry.status !== 202 || !entry.eventId) {
        const key = String(entry.status ?? 'unanswered');
        verdict.refused[key] = (verdict.refused[key] ?? 0) + 1;
        continue;
      }
      verdict.acknowledged++;
      const ids = [entry.eventId, derivedVisionEventId(entry.eventId)];
      const runs = [...observations.handledRuns.values()].map((byId) => ids.map((id) => byId.get(id) ?? 0));
      if (runs.some((counts) => counts[0]! > 0)) verdict.handled++;
      if (runs.some((counts) => counts.some((n) => n > 1))) {
        verdict.appliedTwice++;
        sample(verdict.samples.appliedTwice, `${entry.productId} (event ${entry.eventId})`);
      }
      const product = observations.products.get(entry.productId);
      const applied = product?.name === entry.name;
      const deadLettered = ids.some((id) => observations.deadLettered.has(id));
      if (applied) verdict.applied++;
      if (applied && product!.state === 'indexed') verdict.indexed++;
      else if (applied) sample(verdict.samples.notIndexed, `${entry.productId}: ${product!.state}`);
      if (deadLettered) {
        verdict.deadLettered++;
        sample(verdict.samples.deadLettered, `${entry.productId} (event ${entry.eventId})`);
      }
      if (!applied && !deadLettered) {
        verdict.lost++;
        sample(verdict.samples.lost, `${entry.productId} (event ${entry.eventId}, sent ${new Date(entry.sentAt).toISOString()}, ${entry.phase})`);
      }
    }
    return verdict;
  }
}
