// Images drawn at run time for the Vision tests (no binary fixtures), encoded with real encoders.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import encodeWebp, { init as initWebpEncoder } from '@jsquash/webp/encode.js';
import { encode as encodeBmp } from 'bmp-ts';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import omggif from 'omggif';
import { crc32, deflateSync } from 'node:zlib';

export type Rgba = [number, number, number, number];

/** An RGBA canvas to draw simple product pictures on. */
export class Canvas {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgba = [255, 255, 255, 255],
  ) {
    this.data = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) this.data.set(background, i * 4);
  }

  private plot(x: number, y: number, colour: Rgba): void {
    if (x >= 0 && y >= 0 && x < this.width && y < this.height) this.data.set(colour, (y * this.width + x) * 4);
  }

  circle(cx: number, cy: number, radius: number, colour: Rgba): this {
    for (let y = cy - radius; y <= cy + radius; y++) {
      for (let x = cx - radius; x <= cx + radius; x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2) this.plot(x, y, colour);
    }
    return this;
  }

  rect(x0: number, y0: number, w: number, h: number, colour: Rgba): this {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) this.plot(x, y, colour);
    return this;
  }

  /** An upright isosceles triangle inside the given box. */
  triangle(x0: number, y0: number, w: number, h: number, colour: Rgba): this {
    for (let y = 0; y < h; y++) {
      const half = ((y + 1) / h) * (w / 2);
      for (let x = Math.round(w / 2 - half); x < Math.round(w / 2 + half); x++) this.plot(x0 + x, y0 + y, colour);
    }
    return this;
  }

  /** Pseudo-random noise, like a photograph's texture (deterministic). */
  noise(seed = 1): this {
    let state = seed;
    for (let i = 0; i < this.width * this.height; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      this.data.set([state & 255, (state >> 8) & 255, (state >> 16) & 255, 255], i * 4);
    }
    return this;
  }

  png(): Uint8Array {
    return encodePng({ width: this.width, height: this.height, data: this.data, channels: 4, depth: 8 });
  }

  jpeg(): Uint8Array {
    return new Uint8Array(jpeg.encode({ width: this.width, height: this.height, data: Buffer.from(this.data) }, 95).data);
  }

  /** A GIF with a palette of the canvas's colours (at most 256). */
  gif(): Uint8Array {
    const palette: number[] = [];
    const indexes: number[] = [];
    for (let i = 0; i < this.width * this.height; i++) {
      const rgb = (this.data[i * 4]! << 16) | (this.data[i * 4 + 1]! << 8) | this.data[i * 4 + 2]!;
      let index = palette.indexOf(rgb);
      if (index < 0) index = palette.push(rgb) - 1;
      indexes.push(index);
    }
    while (palette.length < 2 || (palette.length & (palette.length - 1)) !== 0) palette.push(0);
    const buffer = new Uint8Array(this.width * this.height * 2 + 2048);
    const writer = new omggif.GifWriter(buffer, this.width, this.height, { palette });
    writer.addFrame(0, 0, this.width, this.height, indexes);
    return buffer.slice(0, writer.end());
  }

  bmp(): Uint8Array {
    const abgr = Buffer.alloc(this.width * this.height * 4);
    for (let i = 0; i < this.width * this.height; i++) {
      abgr[i * 4] = this.data[i * 4 + 3]!;
      abgr[i * 4 + 1] = this.data[i * 4 + 2]!;
      abgr[i * 4 + 2] = this.data[i * 4 + 1]!;
      abgr[i * 4 + 3] = this.data[i * 4]!;
    }
    return new Uint8Array(encodeBmp({ width: this.width, height: this.height, data: abgr, bitPP: 24 }).data);
  }

  async webp(): Promise<Uint8Array> {
    webpEncoderReady ??= loadWebpEncoder();
    await webpEncoderReady;
    const image = { width: this.width, height: this.height, data: new Uint8ClampedArray(this.data), colorSpace: 'srgb' as const };
    return new Uint8Array(await encodeWebp(image as unknown as Parameters<typeof encodeWebp>[0], { lossless: 1 }));
  }
}

let webpEncoderReady: Promise<void> | undefined;

async function loadWebpEncoder(): Promise<void> {
  const path = createRequire(import.meta.url).resolve('@jsquash/webp/codec/enc/webp_enc_simd.wasm');
  const wasm = await readFile(path);
  await initWebpEncoder({ wasmBinary: wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength) } as Parameters<typeof initWebpEncoder>[0]);
}

export const colours = {
  white: [255, 255, 255, 255],
  black: [0, 0, 0, 255],
  red: [220, 30, 40, 255],
  blue: [30, 70, 200, 255],
  green: [40, 160, 60, 255],
  yellow: [250, 210, 30, 255],
  transparent: [0, 0, 0, 0],
} satisfies Record<string, Rgba>;

/**
 * Images whose header declares a small picture while their data makes a decoder work on a huge one: what a
 * decompression bomb or a crafted header looks like. Each is 100×100 to a header reader.
 */
export const craftedImages = {
  /** A 100×100 RGBA PNG whose image data inflates to `inflatedBytes` (zeros compress some 1000:1). */
  pngBomb(inflatedBytes: number): Buffer {
    return pngFile(deflateSync(Buffer.alloc(inflatedBytes), { level: 9 }));
  },
  /** A valid 100×100 RGBA PNG with an ICC profile (iCCP) that inflates to `inflatedBytes`. */
  pngWithIccProfile(inflatedBytes: number): Buffer {
    const profile = Buffer.concat([Buffer.from('bomb\0', 'latin1'), Buffer.from([0]), deflateSync(Buffer.alloc(inflatedBytes), { level: 9 })]);
    return pngFile(deflateSync(Buffer.alloc(100 * 401)), [['iCCP', profile]]);
  },
  /** A 100×100 GIF (logical screen) whose only frame is `size`×`size`. */
  gifWithOversizedFrame(size: number): Buffer {
    const le = (n: number): number[] => [n & 0xff, n >> 8];
    return Buffer.from([
      ...Buffer.from('GIF89a', 'latin1'),
      ...le(100), ...le(100), 0x80, 0, 0, // screen, a global palette of two colours
      0, 0, 0, 255, 255, 255,
      0x2c, ...le(0), ...le(0), ...le(size), ...le(size), 0, // image descriptor
      2, 2, 0x4c, 0x01, 0, // LZW minimum code size, one sub-block, terminator
      0x3b,
    ]);
  },
  /** A JPEG whose first frame header says 100×100 and a second `size`×`size` (greyscale). */
  jpegWithSecondFrameHeader(size: number): Buffer {
    const frameHeader = (height: number, width: number): number[] => [0xff, 0xc0, 0, 11, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0];
    const quantization = [0xff, 0xdb, 0, 67, 0, ...new Array<number>(64).fill(1)];
    return Buffer.from([0xff, 0xd8, ...quantization, ...frameHeader(100, 100), ...frameHeader(size, size), 0xff, 0xd9]);
  },
  /**
   * A progressive greyscale JPEG of `size`×`size` with `scans` AC scans that each end every block at once: one
   * Huffman code (1 bit) for an end-of-band run of class 14, repeated until the runs cover every block.
   */
  progressiveJpeg(size: number, scans: number): Buffer {
    const u16 = (n: number): number[] => [n >> 8, n & 0xff];
    const quantization = [0xff, 0xdb, ...u16(67), 0, ...new Array<number>(64).fill(1)];
    const frameHeader = [0xff, 0xc2, ...u16(11), 8, ...u16(size), ...u16(size), 1, 1, 0x11, 0];
    const acTable = [0xff, 0xc4, ...u16(20), 0x10, 1, ...new Array<number>(15).fill(0), 0xe0];
    // Each run: the code 0, then 14 one bits, for 2 × 16383 blocks.
    const blocks = Math.ceil(size / 8) ** 2;
    const bits = '0'.concat('1'.repeat(14)).repeat(Math.ceil(blocks / 32_766)).padEnd(Math.ceil((15 * Math.ceil(blocks / 32_766)) / 8) * 8, '1');
    const data = (bits.match(/.{8}/g) ?? []).flatMap((byte) => (byte === '11111111' ? [0xff, 0] : [parseInt(byte, 2)]));
    const scan = [0xff, 0xda, ...u16(8), 1, 1, 0x00, 1, 63, 0x00, ...data];
    return Buffer.from([0xff, 0xd8, ...quantization, ...frameHeader, ...acTable, ...new Array<number[]>(scans).fill(scan).flat(), 0xff, 0xd9]);
  },
};

/** A 100×100 RGBA PNG file with `imageData` as its one IDAT chunk, after the `extra` chunks. */
function pngFile(imageData: Buffer, extra: [string, Buffer][] = []): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    typed.copy(out, 4);
    out.writeUInt32BE(crc32(typed), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(100, 0);
  header.writeUInt32BE(100, 4);
  header.set([8, 6], 8); // 8 bits, RGBA
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', header), ...extra.map(([type, data]) => chunk(type, data)), chunk('IDAT', imageData), chunk('IEND', Buffer.alloc(0))]);
}
