import type { Connection, Delivery, link, Receiver, Sender } from 'rhea';

/**
 * The few rhea 3.0 internals the broker relies on, typed in one place (rhea's typings do not
 * declare them). Each use says why the public API is not enough.
 */
interface LinkInternals {
  /** Endpoint state: `open_requests` counts attach frames still to be written. */
  state: { open_requests: number };
  local: { attach: Record<string, unknown> };
  remote: { attach?: { handle?: number } };
  session: { outgoing: { available(): number } };
  connection: { _register(): void };
}

interface SenderInternals extends LinkInternals {
  credit: number;
  delivery_count: number;
  /** Set by the peer's flow with `drain: true`. */
  _draining: boolean;
  _drained: boolean;
  _get_drain(): boolean;
}

function internals<T>(value: unknown): T {
  return value as T;
}

/** The local attach frame fields of a link (set before rhea writes the attach reply). */
export function localAttach(target: link): Record<string, unknown> {
  return internals<LinkInternals>(target).local.attach;
}

/**
 * Holds back the attach reply rhea would write on the next tick, so the broker can answer later
 * (accepting the next available session waits until one has messages). rhea has no public way to
 * defer an attach: it replies to every incoming attach as soon as the event handler returns.
 */
export function holdAttach(target: link): void {
  internals<LinkInternals>(target).state.open_requests = 0;
}

/** Writes an attach reply held by {@link holdAttach}. */
export function releaseAttach(target: link): void {
  const link = internals<LinkInternals>(target);
  if (link.state.open_requests === 0) link.state.open_requests = 1;
  link.connection._register();
}

/**
 * A sender's credit window in absolute terms: the delivery-count the peer allows up to. Invariant
 * between flows (rhea moves credit into delivery_count as it transmits), so the broker can count
 * what it has handed to rhea but rhea has not transmitted yet.
 */
export function creditLimit(sender: Sender): number {
  const s = internals<SenderInternals>(sender);
  return s.credit + s.delivery_count;
}

/** How many deliveries rhea has transmitted on this sender (its delivery-count). */
export function transmittedCount(sender: Sender): number {
  return internals<SenderInternals>(sender).delivery_count;
}

/** Free slots in the session's outgoing delivery buffer (rhea throws when it overflows). */
export function outgoingCapacity(sender: Sender): number {
  return internals<SenderInternals>(sender).session.outgoing.available();
}

/** Whether the peer's last flow asked this sender to drain. */
export function isDraining(sender: Sender): boolean {
  return internals<SenderInternals>(sender)._draining;
}

/**
 * Makes rhea answer a drain even at zero credit. AMQP requires the sender to reply to a drain with a
 * flow (drain=true) once credit is used up; rhea only does so while credit remains, and the SDK
 * closes its receiver link when a drain goes unanswered.
 */
export function answerDrainsAtZeroCredit(sender: Sender): void {
  const s = internals<SenderInternals>(sender);
  s._get_drain = function (this: SenderInternals): boolean {
    if (!this._draining || !this._drained) return false;
    this.delivery_count += this.credit;
    this.credit = 0;
    return true;
  };
}

/**
 * Records that the peer has settled a delivery the broker sent: rhea frees a sent delivery only once
 * both sides settled it, and has no public way to note a settlement the peer makes without a frame.
 */
export function markRemoteSettled(delivery: Delivery): void {
  (delivery as unknown as { remote_settled: boolean }).remote_settled = true;
}

/** The socket of a connection (to end it at stop). */
export function connectionSocket(connection: Connection): { destroy(): void } | undefined {
  return (connection as unknown as { socket?: { destroy(): void } }).socket;
}

interface ReceiverInternals {
  credit: number;
  flow(credit: number): void;
}

/**
 * Puts a receiver's credit top-ups behind `held`: rhea's flow controller grants credit by calling `flow()` as
 * messages arrive, and offers no way to pause it. Returns a function that tops the credit up to `window` again
 * (called when the hold ends).
 */
export function gateCredit(receiver: Receiver, held: () => boolean, window: number): () => void {
  const link = internals<ReceiverInternals>(receiver);
  const flow = link.flow.bind(link);
  link.flow = (credit: number) => {
    if (!held()) flow(credit);
  };
  return () => {
    const missing = window - link.credit;
    if (missing > 0) flow(missing);
  };
}
