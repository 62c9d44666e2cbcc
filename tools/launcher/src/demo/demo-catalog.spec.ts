import { inflateSync } from 'node:zlib';
import { productSchema } from '@keyless/contracts';
import { demoCatalog, drawProductImage } from './demo-catalog.js';

/** Reads width, height and the RGB of pixel (x, y) from a PNG written by encodePng. */
function pixel(png: Buffer, x: number, y: number): { width: number; height: number; rgb: number[] } {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const idatLength = png.readUInt32BE(33);
  const raw = inflateSync(png.subarray(41, 41 + idatLength));
  const offset = y * (width * 3 + 1) + 1 + x * 3;
  return { width, height, rgb: [...raw.subarray(offset, offset + 3)] };
}

describe('demoCatalog', () => {
  const catalog = demoCatalog({ imageBaseUrl: 'http://127.0.0.1:9/images' });

  it('makes 288 valid products with unique ids across six categories', () => {
    expect(catalog).toHaveLength(288);
    expect(new Set(catalog.map((p) => p.product.id)).size).toBe(288);
    expect(new Set(catalog.map((p) => p.product.category))).toEqual(new Set(['shoes', 'apparel', 'kitchen', 'electronics', 'outdoor', 'home']));
    for (const { product } of catalog) expect(productSchema.parse(product)).toEqual(product);
  });

  it('is the same catalog on every run', () => {
    expect(demoCatalog({ imageBaseUrl: 'http://127.0.0.1:9/images' }).map((p) => p.product)).toEqual(catalog.map((p) => p.product));
  });

  it('draws each image as a 128×128 PNG with the product colour inside the silhouette', () => {
    const red = drawProductImage('device', [200, 40, 40], () => 0.5);
    expect(pixel(red, 64, 64)).toEqual({ width: 128, height: 128, rgb: [200, 40, 40] });
    expect(pixel(red, 2, 2).rgb).toEqual([246, 246, 242]);
  });
});
