import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import rhea from 'rhea';
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

/**
 * Whether rhea holds the first part of a frame whose rest has not arrived yet (a large transfer, such as a
 * batch, comes in several reads): rhea keeps the bytes in `chunks` while `frame_size` is set, or in
 * `previous_input` while even the frame's size is incomplete.
 */
export function hasPartialFrame(connection: Connection): boolean {
  const state = connection as unknown as { frame_size?: number; previous_input?: Buffer | null };
  return !!state.frame_size || !!state.previous_input;
}

/**
 * Makes rhea treat a socket that closes without `end` or `error` (destroyed: the broker's stop, a dropped or
 * frozen connection of the connection faults) as disconnected, as it does after `end`. rhea listens only to
 * `end` and `error`, so a destroyed socket left its idle timers armed (`heartbeat_in` = 2 × idle_time_out,
 * 4 minutes), which kept the process alive minutes after the local Azure stopped, and never dispatched
 * `disconnected` (the broker's cleanup of the connection). `eof` is what rhea itself calls on `end`.
 */
export function disconnectOnClose(connection: Connection, socket: Duplex): void {
  let disconnected = false;
  const seen = (): void => {
    disconnected = true;
  };
  socket.once('end', seen);
  socket.once('error', seen);
  socket.once('close', () => {
    if (!disconnected) (connection as unknown as { eof(): void }).eof();
  });
}

/** The socket of a connection (to end it at stop). */
export function connectionSocket(connection: Connection): { destroy(): void } | undefined {
  return (connection as unknown as { socket?: { destroy(): void } }).socket;
}

interface RheaWriter {
  buffer: Buffer;
  position: number;
  skip(bytes: number): void;
  write_uint(value: number, width: number): void;
  write(value: unknown): void;
}

interface RheaFrame {
  type: number;
  channel?: number;
  performative?: unknown;
  payload?: Buffer;
}

/** Initial size of the shared encoding buffer; one grown past `maxScratchBytes` is not kept. */
const scratchBytes = 64 * 1024;
const maxScratchBytes = 1024 * 1024;

/**
 * Makes rhea encode into one reused buffer and hand out exact-size copies. rhea starts every encoding (each
 * frame, each message) in a fresh zero-filled 1 KiB `Buffer.alloc`, returns a slice of it, and copies a
 * transfer's payload into it: per delivered message two native allocations of at least 1 KiB, freed only
 * when V8 collects their wrappers — after a burst glibc's heap kept their high-water mark. The copies come
 * from Node's buffer pool (8 KiB slabs shared by many small buffers) and frames copy their payload once.
 * Installed once per process; rhea's `Writer` and `write_frame` are internals of rhea 3.0.
 */
export function encodeIntoReusedBuffer(): void {
  const require = createRequire(import.meta.url);
  const types = require('rhea/lib/types.js') as { Writer: { new (buffer?: Buffer): RheaWriter; prototype: RheaWriter & { toBuffer(): Buffer } } };
  const frames = require('rhea/lib/frames.js') as { TYPE_AMQP: number; TYPE_SASL: number; write_frame(frame: RheaFrame): Buffer; [installed]?: true };
  if (frames[installed]) return;
  frames[installed] = true;
  const Writer = types.Writer;
  let scratch: Buffer | undefined = Buffer.allocUnsafe(scratchBytes);
  /** A writer on the shared buffer (a fresh one if it is in use: encodings do not nest today). */
  const take = (): RheaWriter => {
    const buffer = scratch ?? Buffer.allocUnsafe(scratchBytes);
    scratch = undefined;
    return new Writer(buffer);
  };
  const give = (writer: RheaWriter): void => {
    if (writer.buffer.length <= maxScratchBytes) scratch = writer.buffer;
    else scratch ??= Buffer.allocUnsafe(scratchBytes);
  };
  const message = rhea.message as unknown as { encode(message: unknown): Buffer };
  const encode = message.encode.bind(message);
  // rhea.message.encode builds its writer with `new types.Writer()`: the constructor is swapped for the call.
  message.encode = (value: unknown): Buffer => {
    const writer = take();
    types.Writer = function PooledWriter(): RheaWriter {
      return writer;
    } as unknown as typeof Writer;
    try {
      encode(value);
      return copyOut(writer.buffer, writer.position);
    } finally {
      types.Writer = Writer;
      give(writer);
    }
  };
  frames.write_frame = (frame: RheaFrame): Buffer => {
    const writer = take();
    try {
      writer.skip(4);
      writer.write_uint(2, 1);
      writer.write_uint(frame.type, 1);
      if (frame.type === frames.TYPE_AMQP) writer.write_uint(frame.channel ?? 0, 2);
      else if (frame.type === frames.TYPE_SASL) writer.write_uint(0, 2);
      else throw new Error(`Unknown frame type ${frame.type}`);
      const payload = frame.performative ? frame.payload : undefined;
      if (frame.performative) writer.write(frame.performative);
      const size = writer.position + (payload?.length ?? 0);
      const out = Buffer.allocUnsafe(size);
      writer.buffer.copy(out, 0, 0, writer.position);
      payload?.copy(out, writer.position);
      out.writeUInt32BE(size, 0);
      return out;
    } finally {
      give(writer);
    }
  };
}

const installed = Symbol('keyless.encodeIntoReusedBuffer');

/** The bytes each message rhea decoded came in as, by the decoded message. */
const decodedFrom = new WeakMap<object, Buffer>();
const keepsDecodedBytes = Symbol('keyless.keepDecodedBytes');

/**
 * Makes rhea remember the bytes it decodes a message from ({@link takeDecodedBytes}). rhea hands a transfer of format 0
 * (a single message) over decoded and drops its bytes; the broker stores and delivers a message's bytes as sent, so
 * without them it encoded every single message again (~20 µs for a 2.7 KB reply-shaped message, against a ~1.5 µs
 * copy). Batches arrive as bytes already. Installed once per process; rhea's session calls `message.decode` through
 * the module object this patches.
 */
export function keepDecodedBytes(): void {
  const message = rhea.message as unknown as { decode(buffer: Buffer): unknown; [keepsDecodedBytes]?: true };
  if (message[keepsDecodedBytes]) return;
  message[keepsDecodedBytes] = true;
  const decode = message.decode.bind(message);
  message.decode = (buffer: Buffer): unknown => {
    const decoded = decode(buffer);
    if (typeof decoded === 'object' && decoded !== null) decodedFrom.set(decoded, buffer);
    return decoded;
  };
}

/**
 * The bytes `message` was decoded from by rhea (once {@link keepDecodedBytes} is installed), forgotten here: a view
 * into rhea's read buffer, to be copied before it is kept (a stored message must not hold the whole read buffer).
 */
export function takeDecodedBytes(message: object): Buffer | undefined {
  const bytes = decodedFrom.get(message);
  decodedFrom.delete(message);
  return bytes;
}

function copyOut(buffer: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  buffer.copy(out, 0, 0, length);
  return out;
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

/** Largest frame the broker takes, and announces in its open: Azure Service Bus's (`max-frame-size` 65536). */
export const maxFrameSizeInBytes = 65_536;

/** How the broker bounds what one of its connections may make it buffer. */
export interface IncomingLimits {
  /** Largest delivery (a message or a batch, over any number of frames) it buffers, in bytes. */
  maxDeliveryBytes: number;
  /** Settles a delivery that grew past `maxDeliveryBytes`; its frames were dropped, not buffered. */
  refuse(delivery: Delivery, receivedBytes: number): void;
}

interface TransportInternals {
  handler: { connection?: object } | object;
}

interface SessionInternals {
  connection: object;
  incoming: { next_transfer_id: number };
  _get_link(frame: TransferFrame): ReceiverLinkInternals;
}

interface TransferFrame {
  payload?: Buffer;
  performative: { more?: boolean };
}

interface PartialDelivery {
  frames: Buffer[];
  /** Bytes of the delivery so far (counted here; rhea does not). */
  receivedBytes?: number;
  /** Past the limit: its frames are dropped. */
  oversized?: boolean;
  update(settled: boolean, state: unknown): void;
}

interface ReceiverLinkInternals {
  credit: number;
  delivery_count: number;
  _incomplete?: PartialDelivery;
  get_option(name: 'credit_window', fallback: number): number;
  flow(credit: number): void;
}

const incomingLimits = new WeakMap<object, IncomingLimits>();
const limitsInstalled = Symbol('keyless.limitIncoming');

/**
 * Bounds what a client connection can make the broker buffer before anything is authorized. rhea reads a frame whose
 * header announces any size up to 4 GiB, and buffers a delivery's frames for as long as the client says `more`: one
 * anonymous connection could make the local Azure hold gigabytes. With this:
 * - a frame larger than {@link maxFrameSizeInBytes} (what the broker announces) ends the connection as a framing error
 *   once its header arrives (only a frame that spans reads is looked at: a complete one is already in memory);
 * - a delivery that grows past `maxDeliveryBytes` is not buffered further: its remaining frames are dropped, and once
 *   its last frame arrives it is refused (`limits.refuse`), as Azure refuses a message above the namespace's limit.
 * rhea's `Transport.peek_size` and `Session.on_transfer` are internals of rhea 3.0; the transfer hook does one more
 * property check per transfer and its work only for a delivery of several frames. Only connections given limits here
 * are affected (rhea's clients in the same process are not).
 */
export function limitIncoming(connection: Connection, limits: IncomingLimits): void {
  incomingLimits.set(connection, limits);
  const require = createRequire(import.meta.url);
  const transport = require('rhea/lib/transport.js') as { prototype: { peek_size(this: TransportInternals, buffer: Buffer): number | undefined; [limitsInstalled]?: true } };
  if (transport.prototype[limitsInstalled]) return;
  transport.prototype[limitsInstalled] = true;
  const errors = require('rhea/lib/errors.js') as { ProtocolError: new (message: string) => Error };
  const session = require('rhea/lib/session.js') as { prototype: { on_transfer(this: SessionInternals, frame: TransferFrame): void } };

  const peekSize = transport.prototype.peek_size;
  transport.prototype.peek_size = function (this: TransportInternals, buffer: Buffer): number | undefined {
    const size = peekSize.call(this, buffer);
    const owner = 'connection' in this.handler && this.handler.connection ? this.handler.connection : this.handler;
    if (size !== undefined && size > maxFrameSizeInBytes && incomingLimits.has(owner)) {
      throw new errors.ProtocolError(`amqp:connection:framing-error: a frame of ${size} bytes exceeds the max-frame-size of ${maxFrameSizeInBytes}`);
    }
    return size;
  };

  const onTransfer = session.prototype.on_transfer;
  session.prototype.on_transfer = function (this: SessionInternals, frame: TransferFrame): void {
    const link = this._get_link(frame);
    const partial = link._incomplete;
    if (!partial && !frame.performative.more) return onTransfer.call(this, frame);
    const limits = incomingLimits.get(this.connection);
    if (!limits) return onTransfer.call(this, frame);
    if (partial?.oversized) {
      // What rhea does for a frame of a delivery, without keeping its bytes; on the last, what it does for a whole one.
      this.incoming.next_transfer_id++;
      partial.receivedBytes! += frame.payload?.length ?? 0;
      if (frame.performative.more) return;
      link._incomplete = undefined;
      if (link.credit > 0) link.credit--;
      link.delivery_count++;
      limits.refuse(partial as unknown as Delivery, partial.receivedBytes!);
      // rhea's flow controller gives credit back as messages arrive, and a refused delivery never does: each took a
      // credit for good, and a link whose window was spent this way could take nothing more. Given back as rhea would.
      const window = link.get_option('credit_window', 1000);
      if (window > 0 && window - link.credit >= window / 4) link.flow(window - link.credit);
      return;
    }
    onTransfer.call(this, frame);
    const current = link._incomplete;
    if (!current) return;
    current.receivedBytes = (current.receivedBytes ?? 0) + (frame.payload?.length ?? 0);
    if (current.receivedBytes > limits.maxDeliveryBytes) {
      current.oversized = true;
      current.frames = [];
    }
  };
}

interface ConnectionSessionsInternals {
  local_channel_map: Record<string, { links: Record<string, unknown> }>;
}

/**
 * The sessions rhea holds for a connection and the links in them — a link the broker refused included, until the
 * client answers its detach (rhea forgets a link only then). rhea itself caps neither.
 */
export function heldSessionsAndLinks(connection: Connection): { sessions: number; links: number } {
  const sessions = Object.values((connection as unknown as ConnectionSessionsInternals).local_channel_map);
  let links = 0;
  for (const session of sessions) for (const _ in session.links) links++;
  return { sessions: sessions.length, links };
}
