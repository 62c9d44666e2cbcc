// The injected Service Bus faults (`npm run local-azure -- fault servicebus-<target> <mode>`): the few hooks the
// broker calls (connection admission, sender credit, deliveries, put-token, session renewal) and what each fault
// does to them and to the store; see `BrokerFaults`.

import type { Duplex } from 'node:stream';
import type { Receiver } from 'rhea';
import type { ConsoleLog } from '../../data-plane.js';
import type { FaultSetting, FaultTarget } from '../../faults/fault-catalog.js';
import type { LocalFaults } from '../../faults/local-faults.js';
import { BrokerError } from '../amqp/broker-error.js';
import type { MessageStore } from '../store/message-store.js';
import { gateCredit } from '../amqp/rhea-internals.js';
import type { ServiceBusNamespace } from '../entities/service-bus-namespace.js';

/** What the faults act on. */
export interface BrokerFaultTargets {
  /** The open client sockets, now. */
  sockets(): Iterable<Duplex>;
  namespace: ServiceBusNamespace;
  store: MessageStore;
  log: ConsoleLog;
}

/** A client sender link whose credit top-ups can be held back. */
interface GatedReceiver {
  receiver: Receiver;
  /** Tops its credit up again. */
  release: () => void;
}

/**
 * The Service Bus faults (`npm run local-azure -- fault servicebus-<target> <mode>`), in one place: what the broker,
 * its links and its store do while each is injected, and how each heals. The broker calls the hooks below at the
 * few points they concern; nothing else in it knows about faults.
 *
 * - `servicebus-cbs refuse|delay`: every put-token (attach and renewal) is answered 401, or only after the delay.
 * - `servicebus-connections drop`: every open connection is reset at once, and every new one as it arrives.
 *   `half-open`: every connection, open or new, is frozen — not read, not written, never closed — so clients see
 *   silence, not an error; healing resets the frozen ones (as a middlebox that lost the flow answers the next
 *   packet with a reset).
 * - `servicebus-credit stall`: receivers get no deliveries whatever credit they granted, and senders get no new
 *   credit (the credit they hold runs out); links stay attached. Healing grants what was held back and delivers.
 * - `servicebus-session-lock expire`: every held session lock expires at once (its receiver is detached with
 *   `session-lock-lost`, its messages go back), and session lock renewals are refused while the fault holds.
 * - `servicebus-store stall`: commits are held, so sends and scheduling are not acknowledged; healing commits
 *   everything held, in order.
 */
export class BrokerFaults {
  private readonly frozen = new Set<Duplex>();
  private readonly gated = new Set<GatedReceiver>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly faults: LocalFaults,
    private readonly targets: BrokerFaultTargets,
  ) {
    this.unsubscribe = faults.onChange((target, setting) => this.apply(target, setting));
  }

  /** A new client connection: dropped or frozen while those faults hold. Returns whether the broker may serve it. */
  admit(socket: Duplex): boolean {
    const { mode } = this.faults.get('servicebus-connections');
    if (mode === 'drop') {
      reset(socket);
      return false;
    }
    if (mode === 'half-open') this.freeze(socket);
    return true;
  }

  /**
   * Before a put-token is checked: waits out a `delay`, or refuses with the reason to send as a 401.
   *
   * @returns `undefined` to go on, or the description of an injected refusal.
   */
  async beforePutToken(): Promise<string | undefined> {
    const fault = this.faults.get('servicebus-cbs');
    if (fault.mode === 'delay') await new Promise((resolve) => setTimeout(resolve, fault.delayInMs));
    if (this.faults.is('servicebus-cbs', 'refuse')) return 'Unauthorized access. The token could not be verified (fault injected by the local Azure: servicebus-cbs refuse).';
    return undefined;
  }

  /** Whether receivers may be delivered to now. */
  deliveriesStalled(): boolean {
    return this.faults.is('servicebus-credit', 'stall');
  }

  /** Puts a client sender link's credit top-ups (up to `window`) behind the credit stall. */
  gateSenderCredit(receiver: Receiver, window: number): void {
    const gate: GatedReceiver = { receiver, release: gateCredit(receiver, () => this.deliveriesStalled(), window) };
    this.gated.add(gate);
    receiver.once('receiver_close', () => this.gated.delete(gate));
  }

  /** @throws {BrokerError} `session-lock-lost` while session locks are being expired. */
  checkSessionRenewal(sessionId: unknown): void {
    if (!this.faults.is('servicebus-session-lock', 'expire')) return;
    throw new BrokerError('session-lock-lost', `The session lock has expired on the MessageSession '${String(sessionId)}' (fault injected by the local Azure: servicebus-session-lock expire).`);
  }

  stop(): void {
    this.unsubscribe();
    for (const socket of this.frozen) socket.destroy();
    this.frozen.clear();
  }

  private apply(target: FaultTarget, setting: FaultSetting): void {
    switch (target) {
      case 'servicebus-connections':
        if (setting.mode === 'drop') for (const socket of [...this.targets.sockets()]) reset(socket);
        else if (setting.mode === 'half-open') for (const socket of this.targets.sockets()) this.freeze(socket);
        else {
          for (const socket of this.frozen) reset(socket);
          this.frozen.clear();
        }
        return;
      case 'servicebus-credit':
        if (setting.mode === 'none') {
          for (const gate of this.gated) if (gate.receiver.is_open()) gate.release();
          for (const queue of this.targets.namespace.allQueues()) queue.schedulePump();
        }
        return;
      case 'servicebus-session-lock':
        if (setting.mode === 'expire') {
          const now = Date.now();
          for (const queue of this.targets.namespace.allQueues()) queue.sessions.expireLocks(now);
        }
        return;
      case 'servicebus-store':
        this.targets.store.hold(setting.mode === 'stall');
        return;
      default:
        return;
    }
  }

  /** Stops reading and writing a connection without closing it. */
  private freeze(socket: Duplex): void {
    if (this.frozen.has(socket) || socket.destroyed) return;
    this.frozen.add(socket);
    socket.pause();
    const write = socket.write.bind(socket);
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (this.frozen.has(socket)) {
        // Dropped on the floor, as a network that lost the flow would; callbacks still run so rhea does not stall.
        const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      }
      return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as Duplex['write'];
    socket.once('close', () => this.frozen.delete(socket));
  }
}

/** Closes a connection with a TCP reset where the socket allows it (no AMQP close, no TLS close_notify). */
function reset(socket: Duplex): void {
  const tcp = socket as Duplex & { resetAndDestroy?: () => void };
  try {
    if (tcp.resetAndDestroy) tcp.resetAndDestroy();
    else socket.destroy();
  } catch {
    socket.destroy();
  }
}
