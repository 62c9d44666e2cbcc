import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Duplex } from 'node:stream';
import { parseRequestUrl } from '../../http/http-kit.js';

/** The path and subprotocol of AMQP over WebSockets on Service Bus (`wss://<namespace>/$servicebus/websocket`). */
export const amqpWebSocket = {
  path: '/$servicebus/websocket',
  protocol: 'AMQPWSB10',
} as const;

const limits = {
  /** Largest frame payload accepted (a 256 KiB message travels in far smaller AMQP frames; batches too). */
  framePayloadBytes: 16 * 1024 * 1024,
};

const opcodes = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
const closeCodes = { normal: 1000, protocolError: 1002, unsupportedData: 1003, tooBig: 1009 } as const;
const handshakeGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * Answers a WebSocket upgrade for AMQP (RFC 6455 handshake, subprotocol `AMQPWSB10`) and returns the
 * byte stream it carries, or writes an HTTP refusal and returns `undefined`.
 */
export function acceptAmqpWebSocket(request: IncomingMessage, socket: Duplex, head: Buffer): Duplex | undefined {
  const refuse = (status: string, reason: string): undefined => {
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(reason)}\r\nConnection: close\r\n\r\n${reason}`);
    return undefined;
  };
  const path = parseRequestUrl(request, 'https://namespace')?.pathname;
  if (path === undefined) return refuse('400 Bad Request', 'The request URL is invalid.');
  if (path.toLowerCase() !== amqpWebSocket.path.toLowerCase()) return refuse('404 Not Found', `WebSocket upgrades are served at ${amqpWebSocket.path} (AMQP over WebSockets).`);
  const key = request.headers['sec-websocket-key'];
  const protocols = String(request.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((protocol) => protocol.trim());
  if ((request.headers.upgrade ?? '').toLowerCase() !== 'websocket' || typeof key !== 'string' || request.headers['sec-websocket-version'] !== '13') {
    return refuse('400 Bad Request', 'Not a WebSocket version 13 upgrade.');
  }
  if (!protocols.includes(amqpWebSocket.protocol)) return refuse('400 Bad Request', `The WebSocket subprotocol must be ${amqpWebSocket.protocol}.`);
  const accept = createHash('sha1').update(`${key}${handshakeGuid}`).digest('base64');
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${amqpWebSocket.protocol}\r\n\r\n`,
  );
  return new WebSocketStream(socket, head);
}

/**
 * The binary payload of a server-side WebSocket as a byte stream: reads unmask the client's data frames
 * (fragmented or not) and answer pings; writes go out as binary frames (writes of one turn, corked
 * together, make one frame). A close frame, a protocol error or the socket's end ends the stream.
 */
class WebSocketStream extends Duplex {
  private buffer: Buffer = Buffer.alloc(0);
  /** Reads kept apart while a frame is still arriving, and their size. */
  private arriving: Buffer[] = [];
  private arrivingBytes = 0;
  /** Bytes (header included) the frame at the start of the buffer needs, once its header has arrived; else 0. */
  private frameBytes = 0;
  private closing = false;
  private readEnded = false;

  constructor(
    private readonly socket: Duplex,
    head: Buffer,
  ) {
    super();
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    // The reader (rhea) must see 'end' to let the connection go: end the readable side, then destroy.
    socket.on('end', () => this.endReading());
    socket.on('close', () => this.endReading());
    socket.on('error', (error) => this.destroy(error));
    this.once('end', () => this.destroy());
    if (head.length) this.receive(head);
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.sendFrame(opcodes.binary, chunk, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.sendFrame(opcodes.binary, Buffer.concat(chunks.map(({ chunk }) => chunk)), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.close(closeCodes.normal, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  private receive(chunk: Buffer): void {
    if (this.closing) return;
    // A frame still arriving is joined once, when it is whole: joined at every read (a TLS record, 16 KiB at most), a
    // 16 MiB frame from a client nobody has authenticated cost some 8 GiB of copying.
    this.arriving.push(chunk);
    this.arrivingBytes += chunk.length;
    if (this.buffer.length + this.arrivingBytes < this.frameBytes) return;
    this.buffer = !this.buffer.length && this.arriving.length === 1 ? chunk : Buffer.concat([this.buffer, ...this.arriving], this.buffer.length + this.arrivingBytes);
    this.arriving = [];
    this.arrivingBytes = 0;
    this.frameBytes = 0;
    for (;;) {
      const frame = this.nextFrame();
      if (!frame) return;
      switch (frame.opcode) {
        case opcodes.binary:
        case opcodes.continuation:
          if (!this.push(frame.payload)) this.socket.pause();
          break;
        case opcodes.ping:
          this.sendFrame(opcodes.pong, frame.payload);
          break;
        case opcodes.pong:
          break;
        case opcodes.close:
          this.close(closeCodes.normal);
          this.endReading();
          return;
        default:
          // AMQP travels in binary frames only.
          this.close(closeCodes.unsupportedData);
          return;
      }
    }
  }

  private endReading(): void {
    if (this.readEnded) return;
    this.readEnded = true;
    this.push(null);
  }

  /** The next complete frame in the buffer (payload unmasked), or `undefined` until more bytes arrive. */
  private nextFrame(): { opcode: number; payload: Buffer } | undefined {
    const b = this.buffer;
    if (b.length < 2) return undefined;
    const opcode = b[0]! & 0x0f;
    const masked = (b[1]! & 0x80) !== 0;
    let length = b[1]! & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      length = big > BigInt(limits.framePayloadBytes) ? Number.POSITIVE_INFINITY : Number(big);
      offset = 10;
    }
    if (!masked || length > limits.framePayloadBytes) {
      // Clients must mask their frames (RFC 6455 §5.1); oversized frames are refused.
      this.close(masked ? closeCodes.tooBig : closeCodes.protocolError);
      this.buffer = Buffer.alloc(0);
      return undefined;
    }
    if (b.length < offset + 4 + length) {
      this.frameBytes = offset + 4 + length;
      return undefined;
    }
    const mask = b.subarray(offset, offset + 4);
    const payload = Buffer.from(b.subarray(offset + 4, offset + 4 + length));
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
    this.buffer = b.subarray(offset + 4 + length);
    return { opcode, payload };
  }

  private sendFrame(opcode: number, payload: Buffer, callback?: (error?: Error | null) => void): void {
    if (this.socket.destroyed || !this.socket.writable) {
      callback?.(new Error('the WebSocket is closed'));
      return;
    }
    const length = payload.length;
    const header = length < 126 ? Buffer.alloc(2) : length < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    if (length < 126) header[1] = length;
    else if (length < 65_536) {
      header[1] = 126;
      header.writeUInt16BE(length, 2);
    } else {
      header[1] = 127;
      header.writeBigUInt64BE(BigInt(length), 2);
    }
    this.socket.write(Buffer.concat([header, payload]), callback);
  }

  private close(code: number, callback?: (error?: Error | null) => void): void {
    if (this.closing) {
      callback?.();
      return;
    }
    this.closing = true;
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code, 0);
    this.sendFrame(opcodes.close, payload, () => {
      this.socket.end();
      callback?.();
    });
  }
}
