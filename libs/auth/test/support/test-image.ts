import { encode } from 'fast-png';

/** A PNG of a red disc on white, drawn at run time (no binary fixtures). */
export function redDiscPng(size = 64): Uint8Array {
  const data = new Uint8Array(size * size * 4).fill(255);
  const centre = size / 2;
  const radius = size / 3;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if ((x - centre) ** 2 + (y - centre) ** 2 <= radius ** 2) data.set([220, 30, 30, 255], (y * size + x) * 4);
    }
  }
  return encode({ width: size, height: size, data, channels: 4, depth: 8 });
}
