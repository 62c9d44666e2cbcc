import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { inflateSync } from 'node:zlib';
import decodeWebp, { init as initWebpDecoder } from '@jsquash/webp/decode.js';
import { decode as decodeBmp } from 'bmp-ts';
import { convertIndexedToRgb, decode as decodePng } from 'fast-png';
import { imageSize } from 'image-size';
import jpeg from 'jpeg-js';
import omggif from 'omggif';

/** Formats Azure AI Vision accepts; the local one decodes all but `tiff` and `ico`. */
export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'bmp' | 'webp' | 'tiff' | 'ico';

/** Decoded pixels: 8-bit RGBA, row by row. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** What the header says, before any pixel is decoded. */
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

/** Bytes the decoder cannot read as an image of a decodable format; `message` says why. */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
}

/** Identifies the format by its magic bytes (the content type of a request is not trusted, as on Azure). */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  const ascii = (start: number, text: string): boolean => [...text].every((c, i) => bytes[start + i] === c.charCodeAt(0));
  if (bytes[0] === 0x89 && ascii(1, 'PNG')) return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return 'gif';
  if (ascii(0, 'BM')) return 'bmp';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  if (ascii(0, 'II*\0') || ascii(0, 'MM\0*')) return 'tiff';
  if (bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 1 && bytes[3] === 0) return 'ico';
  return undefined;
}

/**
 * Reads format and dimensions from the header only (`image-size`), so size limits are enforced before
 * any pixel memory is allocated.
 *
 * @throws {ImageDecodeError} for bytes of no known image format or a broken header.
 */
export function readHeader(bytes: Uint8Array): ImageHeader {
  const format = sniffFormat(bytes);
  if (!format) throw new ImageDecodeError('the bytes are not a JPEG, PNG, GIF, BMP, WEBP, TIFF or ICO image');
  try {
    const { width, height } = imageSize(bytes);
    if (!width || !height) throw new Error('no dimensions in the header');
    return { format, width, height };
  } catch (error) {
    throw new ImageDecodeError(`the ${format.toUpperCase()} header is unreadable (${(error as Error).message})`);
  }
}

let webpReady: Promise<void> | undefined;

/**
 * Decodes the first frame of an image to RGBA with maintained pure-JavaScript or WebAssembly decoders:
 * fast-png, jpeg-js, omggif, bmp-ts and @jsquash/webp (libwebp).
 *
 * The size limits are checked on `header` (what `readHeader` read), so no decoder may work on more pixels than
 * the header declares: the decoders run on the event loop and size their memory from their own reading of the
 * file, and a few bytes that declare a small image to the header reader and a huge one to the decoder (a PNG
 * whose data inflates to gigabytes, a second JPEG frame header, a GIF frame larger than its screen) held the
 * local Azure for a minute and gigabytes of memory. A progressive JPEG may have at most 100 scans.
 *
 * @throws {ImageDecodeError} for corrupt data, data that declares more than its header, or a format the local
 * decoders do not handle (TIFF, ICO).
 */
export async function decodeImage(bytes: Uint8Array, header: ImageHeader): Promise<RgbaImage> {
  try {
    switch (header.format) {
      case 'png':
        checkPngData(bytes, header);
        return pngToRgba(bytes);
      case 'jpeg': {
        checkJpegScans(bytes);
        // jpeg-js sizes its buffers from every frame header it meets, the first one only is what the header reader saw.
        const maxResolutionInMP = (header.width * header.height + 1) / 1_000_000;
        const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP, maxMemoryUsageInMB: 1024 });
        return { width: image.width, height: image.height, data: image.data };
      }
      case 'gif': {
        const reader = new omggif.GifReader(bytes);
        // omggif sizes and walks a frame by the frame's own dimensions, which nothing bounds by the screen's.
        const frame = reader.frameInfo(0);
        if (frame.x + frame.width > reader.width || frame.y + frame.height > reader.height) {
          throw new ImageDecodeError(
            `the first GIF frame (${frame.width}x${frame.height} at ${frame.x},${frame.y}) extends beyond the ${reader.width}x${reader.height} image`,
          );
        }
        const data = new Uint8Array(reader.width * reader.height * 4);
        reader.decodeAndBlitFrameRGBA(0, data);
        return { width: reader.width, height: reader.height, data };
      }
      case 'bmp': {
        const image = decodeBmp(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { toRGBA: true });
        const data = new Uint8Array(image.data);
        // Bitmaps without an alpha channel decode with alpha 0: they are opaque.
        if (image.bitPP < 32) for (let i = 3; i < data.length; i += 4) data[i] = 255;
        return { width: image.width, height: image.height, data };
      }
      case 'webp': {
        webpReady ??= loadWebpDecoder();
        await webpReady;
        const copy = bytes.slice().buffer;
        const image = await decodeWebp(copy);
        return { width: image.width, height: image.height, data: new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength) };
      }
      default:
        throw new ImageDecodeError(`${header.format.toUpperCase()} images are accepted by Azure but not decoded by the local Azure AI Vision; use PNG, JPEG, GIF, BMP or WEBP`);
    }
  } catch (error) {
    if (error instanceof ImageDecodeError) throw error;
    if (/^maxResolutionInMP limit exceeded/.test((error as Error)?.message ?? '')) {
      throw new ImageDecodeError(`a JPEG frame header declares more pixels than the ${header.width}x${header.height} image`);
    }
    throw new ImageDecodeError(`the ${header.format.toUpperCase()} data is corrupt (${(error as Error).message ?? String(error)})`);
  }
}

async function loadWebpDecoder(): Promise<void> {
  // The emscripten glue would fetch() its .wasm, which Node cannot do for a file path: hand it the bytes.
  const path = createRequire(import.meta.url).resolve('@jsquash/webp/codec/dec/webp_dec.wasm');
  const wasm = await readFile(path);
  const wasmBinary = wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength);
  await initWebpDecoder({ wasmBinary } as Parameters<typeof initWebpDecoder>[0]);
}

/**
 * Scans a JPEG may have. Each scan of a progressive JPEG is a pass over every block of its components, and a scan
 * that ends every block at once (an end-of-band run) takes some 60 bytes: 2000 of them in 120 KB held the event loop
 * 50 s on a 6000×6000 image (14 s with 10 scans), and 20 MB of them would have held it for over an hour. Encoders
 * write about 10 (libjpeg's progression: 10 for colour, 6 for greyscale); libjpeg-turbo offers a scan limit for the
 * same reason.
 */
const maxJpegScans = 100;

/**
 * Refuses a JPEG with more than {@link maxJpegScans} scans. Counts every Start-of-Scan marker (`FF DA`) in the
 * file: entropy-coded data stuffs every `FF` byte, so only a marker — or a segment's payload, such as an embedded
 * thumbnail — holds the pair, and no parser can see more scans than are counted here.
 */
function checkJpegScans(bytes: Uint8Array): void {
  let scans = 0;
  for (let i = bytes.indexOf(0xff); i >= 0 && i + 1 < bytes.length; i = bytes.indexOf(0xff, i + 1)) {
    if (bytes[i + 1] === 0xda && ++scans > maxJpegScans) {
      throw new ImageDecodeError(`the JPEG has more than ${maxJpegScans} scans (encoders write about 10; each is a pass over the whole image)`);
    }
  }
}

/** Channels per PNG colour type (greyscale, RGB, palette, greyscale + alpha, RGBA). */
const pngChannels: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: first column, first row, column step, row step. */
const adam7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/**
 * Data past the end of a PNG's image data that decoders tolerate (libpng treats "extra compressed data" as a
 * benign error): any bound stops a decompression bomb.
 */
const pngExtraDataBytes = 65_536;
/**
 * What the PNG's ICC profile (iCCP, which fast-png inflates without a bound too, and the local Azure never uses)
 * may inflate to: libpng's limit on a decompressed ancillary chunk (`PNG_USER_CHUNK_MALLOC_MAX`, 8 MB).
 */
const maxPngProfileBytes = 8_000_000;

/**
 * Checks, before fast-png runs, that the PNG has one image header, the one `readHeader` read, that its image
 * data inflates to no more than that header needs (filter byte and samples of every row, and the tolerated
 * extra), and that each ICC profile inflates to at most 8 MB: fast-png inflates both without a bound, and zlib
 * turns 1 KB into 1 MB.
 */
function checkPngData(bytes: Uint8Array, header: ImageHeader): void {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data: Buffer[] = [];
  let needed: number | undefined;
  for (let offset = 8; offset + 8 <= buffer.length; ) {
    const length = buffer.readUInt32BE(offset);
    const type = buffer.toString('latin1', offset + 4, offset + 8);
    const body = buffer.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      if (needed !== undefined) throw new ImageDecodeError('the PNG has more than one IHDR chunk');
      if (body.length < 13) throw new ImageDecodeError('the PNG IHDR chunk is truncated');
      const [width, height, depth, colourType, interlace] = [body.readUInt32BE(0), body.readUInt32BE(4), body[8]!, body[9]!, body[12]!];
      if (width !== header.width || height !== header.height) throw new ImageDecodeError(`the PNG IHDR chunk (${width}x${height}) is not the image's header`);
      const bitsPerPixel = (pngChannels[colourType] ?? 4) * depth;
      const rowBytes = (pixels: number): number => 1 + Math.ceil((pixels * bitsPerPixel) / 8);
      needed = interlace
        ? adam7.reduce((sum, [x, y, dx, dy]) => {
            const columns = Math.ceil((width - x) / dx);
            const rows = Math.ceil((height - y) / dy);
            return columns > 0 && rows > 0 ? sum + rows * rowBytes(columns) : sum;
          }, 0)
        : height * rowBytes(width);
    } else if (type === 'IDAT') data.push(body);
    else if (type === 'iCCP') checkPngProfile(body);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  if (needed === undefined) throw new ImageDecodeError('the PNG has no IHDR chunk');
  try {
    inflateSync(Buffer.concat(data), { maxOutputLength: needed + pngExtraDataBytes });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ImageDecodeError(`the PNG image data inflates to more than the ${needed} bytes a ${header.width}x${header.height} image needs`);
    }
    // Corrupt or truncated data: fast-png says what is wrong with it.
  }
}

/** An iCCP chunk: keyword, NUL, compression method, zlib data (inflated by fast-png, so bounded here first). */
function checkPngProfile(body: Buffer): void {
  try {
    inflateSync(body.subarray(body.indexOf(0) + 2), { maxOutputLength: maxPngProfileBytes });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ImageDecodeError(`the PNG ICC profile (iCCP) inflates to more than ${maxPngProfileBytes / 1_000_000} MB`);
    }
    // Corrupt data: fast-png says what is wrong with it.
  }
}

function pngToRgba(bytes: Uint8Array): RgbaImage {
  const png = decodePng(bytes);
  const { width, height } = png;
  const pixels = width * height;
  const out = new Uint8Array(pixels * 4);
  if (png.palette) {
    const rgb = convertIndexedToRgb(png);
    const channels = rgb.length / pixels;
    for (let i = 0; i < pixels; i++) {
      out[i * 4] = rgb[i * channels]!;
      out[i * 4 + 1] = rgb[i * channels + 1]!;
      out[i * 4 + 2] = rgb[i * channels + 2]!;
      out[i * 4 + 3] = channels === 4 ? rgb[i * channels + 3]! : 255;
    }
    return { width, height, data: out };
  }
  const { channels, data } = png;
  // 16-bit samples keep their high byte.
  const shift = png.depth === 16 ? 8 : 0;
  const scale = png.depth < 8 ? 255 / (2 ** png.depth - 1) : 1;
  const sample = (index: number): number => Math.round((data[index]! >> shift) * scale);
  const alpha = channels === 2 || channels === 4;
  for (let i = 0; i < pixels; i++) {
    const base = i * channels;
    const o = i * 4;
    if (channels <= 2) {
      out[o] = out[o + 1] = out[o + 2] = sample(base);
    } else {
      out[o] = sample(base);
      out[o + 1] = sample(base + 1);
      out[o + 2] = sample(base + 2);
    }
    out[o + 3] = alpha ? sample(base + channels - 1) : 255;
  }
  return { width, height, data: out };
}
