import type { RgbaImage } from './image-decoder.js';

/** A rectangle in image pixels. */
export interface BoundingBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A name with a confidence in (0, 1), as Azure's tags are. */
export interface Tag {
  name: string;
  confidence: number;
}

/** A region that stands out from a plain background, with its shape and colour. */
export interface DetectedObject {
  boundingBox: BoundingBox;
  shape: 'circle' | 'ellipse' | 'square' | 'rectangle' | 'triangle' | 'shape';
  colour: string;
  /** How clearly the region matches its shape (0–1). */
  confidence: number;
}

/** Everything the local model sees in an image. */
export interface ImageReading {
  width: number;
  height: number;
  /** Colour names covering at least 8 % of the opaque pixels, most frequent first, with their share. */
  colours: { name: string; share: number }[];
  /** Mean luminance, 0 (black) to 1 (white). */
  brightness: number;
  /** The plain background's colour (`transparent` included), when the border is mostly one colour. */
  background?: string;
  objects: DetectedObject[];
  /** Flat artwork: a few colours cover almost every pixel. */
  graphic: boolean;
  caption: { text: string; confidence: number };
  tags: Tag[];
}

const defaults = {
  /** Pixels analysed at most: larger images are sampled on a grid. */
  maxSamples: 65_536,
  /** Share of border pixels that must share one colour for a plain background. */
  plainBackgroundShare: 0.6,
  /**
   * RGB distance from the background above which a pixel is foreground: 4 × the background's own noise
   * plus 6, within 6–60 (a flat generated background separates a light-gray product from white; a JPEG's
   * noisy one does not make specks of every artefact).
   */
  foregroundDistance: { base: 6, perSpread: 4, max: 60 },
  /** Smallest object, as a share of the sampled pixels. */
  minObjectShare: 0.004,
  maxObjects: 10,
};

/**
 * The local stand-in for Azure AI Vision's models: honest about what pixel statistics can tell.
 *
 * How it works: the image is sampled on a grid (at most 65,536 points). Each colour is named from its hue,
 * saturation and lightness (16 names). The border decides whether there is a plain background; if so,
 * pixels far from it are foreground, and their connected regions are objects whose shape follows from
 * their row profile (how much of the bounding box's width each row covers) and the box's aspect ratio. Brightness is the mean luminance.
 *
 * Rules:
 * - Tags: object shapes and colours, dominant colours, `graphics` for flat artwork, `dark`/`bright` at the
 *   ends of the brightness scale, `colorful` or `monochrome`, `transparent` backgrounds. Confidences lie in (0, 1).
 * - Caption: the objects on their background ("a red circle on a white background", "a tall blue
 *   rectangle…"), a plain colour ("a plain green image"), or else brightness and main colours ("a dark
 *   image in mostly blue and gray tones").
 * - Objects are reported only on a plain background; a photograph has none.
 * - The same pixels always give the same reading.
 */
export function analyzeImage(image: RgbaImage): ImageReading {
  const samples = sample(image);
  const colours = dominantColours(samples);
  const brightness = meanBrightness(samples);
  const background = plainBackground(samples);
  const objects = background ? findObjects(samples, background, image) : [];
  const graphic = isGraphic(samples);
  const plain = colours.length === 1 && colours[0]!.share > 0.97 && objects.length === 0;
  const caption = describe({ image, colours, brightness, background, objects, plain });
  const tags = tagsFor({ colours, brightness, background, objects, graphic });
  return {
    width: image.width,
    height: image.height,
    colours,
    brightness,
    ...(background ? { background: background.name } : {}),
    objects,
    graphic,
    caption,
    tags,
  };
}

/** Names an sRGB colour (16 names: black, gray, white, silver, red, orange, yellow, olive, green, teal, cyan, blue, navy, purple, pink, brown). */
export function colourName(r: number, g: number, b: number): string {
  const max = Math.max(r, g, b) / 255;
  const min = Math.min(r, g, b) / 255;
  const lightness = (max + min) / 2;
  const chroma = max - min;
  if (chroma < 0.12 || (chroma < 0.2 && (lightness < 0.15 || lightness > 0.9))) {
    if (lightness < 0.18) return 'black';
    if (lightness > 0.88) return 'white';
    return lightness > 0.65 ? 'silver' : 'gray';
  }
  if (lightness < 0.1) return 'black';
  const hue = hueOf(r, g, b);
  if (hue < 15 || hue >= 340) {
    if (lightness > 0.7) return 'pink';
    return lightness < 0.3 && chroma < 0.45 ? 'brown' : 'red';
  }
  if (hue < 45) return lightness < 0.4 || (chroma < 0.35 && lightness < 0.6) ? 'brown' : 'orange';
  if (hue < 70) return lightness < 0.35 ? 'olive' : 'yellow';
  if (hue < 160) return 'green';
  if (hue < 185) return lightness > 0.6 ? 'cyan' : 'teal';
  if (hue < 200) return 'cyan';
  if (hue < 255) return lightness < 0.3 ? 'navy' : 'blue';
  if (hue < 290) return 'purple';
  return lightness > 0.55 ? 'pink' : 'purple';
}

interface Samples {
  width: number;
  height: number;
  /** Grid step in image pixels. */
  step: number;
  rgba: Uint8Array;
}

function sample(image: RgbaImage): Samples {
  const step = Math.max(1, Math.ceil(Math.sqrt((image.width * image.height) / defaults.maxSamples)));
  const width = Math.ceil(image.width / step);
  const height = Math.ceil(image.height / step);
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = ((y * step) * image.width + x * step) * 4;
      rgba.set(image.data.subarray(from, from + 4), (y * width + x) * 4);
    }
  }
  return { width, height, step, rgba };
}

const opaque = (rgba: Uint8Array, i: number): boolean => rgba[i * 4 + 3]! >= 128;

function dominantColours(samples: Samples): { name: string; share: number }[] {
  const counts = new Map<string, number>();
  let total = 0;
  const { rgba } = samples;
  for (let i = 0; i < samples.width * samples.height; i++) {
    if (!opaque(rgba, i)) continue;
    const name = colourName(rgba[i * 4]!, rgba[i * 4 + 1]!, rgba[i * 4 + 2]!);
    counts.set(name, (counts.get(name) ?? 0) + 1);
    total++;
  }
  return [...counts.entries()]
    .map(([name, count]) => ({ name, share: count / Math.max(1, total) }))
    .filter((c) => c.share >= 0.08)
    .sort((a, b) => b.share - a.share || a.name.localeCompare(b.name));
}

function meanBrightness(samples: Samples): number {
  const { rgba } = samples;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < samples.width * samples.height; i++) {
    if (!opaque(rgba, i)) continue;
    sum += (0.2126 * rgba[i * 4]! + 0.7152 * rgba[i * 4 + 1]! + 0.0722 * rgba[i * 4 + 2]!) / 255;
    count++;
  }
  return count ? sum / count : 1;
}

interface Background {
  name: string;
  transparent: boolean;
  rgb: [number, number, number];
  /** RMS distance of the border's background pixels from `rgb`: how noisy the background is. */
  spread: number;
}

/** The border's colour when most of the border is one colour (quantised to 32 levels per channel). */
function plainBackground(samples: Samples): Background | undefined {
  const { width, height, rgba } = samples;
  const bins = new Map<string, { count: number; sum: [number, number, number]; squares: number; transparent: boolean }>();
  let total = 0;
  const visit = (x: number, y: number): void => {
    const i = y * width + x;
    const transparent = !opaque(rgba, i);
    const key = transparent ? 'transparent' : `${rgba[i * 4]! >> 3},${rgba[i * 4 + 1]! >> 3},${rgba[i * 4 + 2]! >> 3}`;
    const bin = bins.get(key) ?? { count: 0, sum: [0, 0, 0], squares: 0, transparent };
    bin.count++;
    bin.sum[0] += rgba[i * 4]!;
    bin.sum[1] += rgba[i * 4 + 1]!;
    bin.sum[2] += rgba[i * 4 + 2]!;
    bin.squares += rgba[i * 4]! ** 2 + rgba[i * 4 + 1]! ** 2 + rgba[i * 4 + 2]! ** 2;
    bins.set(key, bin);
    total++;
  };
  for (let x = 0; x < width; x++) {
    visit(x, 0);
    if (height > 1) visit(x, height - 1);
  }
  for (let y = 1; y < height - 1; y++) {
    visit(0, y);
    if (width > 1) visit(width - 1, y);
  }
  const top = [...bins.values()].sort((a, b) => b.count - a.count)[0];
  if (!top || top.count / total < defaults.plainBackgroundShare) return undefined;
  const rgb: [number, number, number] = [top.sum[0] / top.count, top.sum[1] / top.count, top.sum[2] / top.count];
  const spread = Math.sqrt(Math.max(0, top.squares / top.count - (rgb[0] ** 2 + rgb[1] ** 2 + rgb[2] ** 2)));
  return { transparent: top.transparent, rgb, spread, name: top.transparent ? 'transparent' : colourName(...rgb) };
}

function findObjects(samples: Samples, background: Background, image: RgbaImage): DetectedObject[] {
  const { width, height, rgba, step } = samples;
  const count = width * height;
  const foreground = new Uint8Array(count);
  const { base, perSpread, max } = defaults.foregroundDistance;
  const threshold = Math.min(max, base + perSpread * background.spread);
  for (let i = 0; i < count; i++) {
    if (!opaque(rgba, i)) continue;
    if (background.transparent) {
      foreground[i] = 1;
      continue;
    }
    const dr = rgba[i * 4]! - background.rgb[0];
    const dg = rgba[i * 4 + 1]! - background.rgb[1];
    const db = rgba[i * 4 + 2]! - background.rgb[2];
    if (Math.sqrt(dr * dr + dg * dg + db * db) > threshold) foreground[i] = 1;
  }
  const label = new Int32Array(count);
  const objects: (DetectedObject & { area: number })[] = [];
  const queue = new Int32Array(count);
  let next = 0;
  for (let start = 0; start < count; start++) {
    if (!foreground[start] || label[start]) continue;
    next++;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    label[start] = next;
    let minX = width, minY = height, maxX = 0, maxY = 0, area = 0;
    const sum = [0, 0, 0];
    const rows = new Map<number, number>();
    while (head < tail) {
      const i = queue[head++]!;
      const x = i % width;
      const y = (i - x) / width;
      area++;
      rows.set(y, (rows.get(y) ?? 0) + 1);
      sum[0] += rgba[i * 4]!;
      sum[1] += rgba[i * 4 + 1]!;
      sum[2] += rgba[i * 4 + 2]!;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      for (const n of [x > 0 ? i - 1 : -1, x < width - 1 ? i + 1 : -1, y > 0 ? i - width : -1, y < height - 1 ? i + width : -1]) {
        if (n >= 0 && foreground[n] && !label[n]) {
          label[n] = next;
          queue[tail++] = n;
        }
      }
    }
    // Regions that are specks, or that fill nearly the whole frame (then the "background" was a frame), are not objects.
    if (area < Math.max(4, defaults.minObjectShare * count) || area > 0.9 * count) continue;
    const boxW = maxX - minX + 1;
    const boxH = maxY - minY + 1;
    const { shape, confidence } = classifyShape(Array.from({ length: boxH }, (_, r) => (rows.get(minY + r) ?? 0) / boxW), boxW / boxH);
    const x = minX * step;
    const y = minY * step;
    objects.push({
      area,
      shape,
      confidence,
      colour: colourName(sum[0]! / area, sum[1]! / area, sum[2]! / area),
      boundingBox: { x, y, w: Math.min(image.width - x, boxW * step), h: Math.min(image.height - y, boxH * step) },
    });
  }
  return objects
    .sort((a, b) => b.area - a.area || a.boundingBox.y - b.boundingBox.y || a.boundingBox.x - b.boundingBox.x)
    .slice(0, defaults.maxObjects)
    .map(({ area: _area, ...object }) => object);
}

/**
 * Shape from the region's row profile: the share of the bounding box's width each row covers, top to
 * bottom. It is compared with the ideal profiles — a rectangle covers every row fully, an ellipse
 * √(1 − t²) from its middle, a triangle grows (or shrinks) linearly — and the closest one within a mean
 * deviation of 0.1 wins; near-square boxes make squares and circles. Anything else is a `shape`.
 */
export function classifyShape(rowShares: readonly number[], aspect: number): { shape: DetectedObject['shape']; confidence: number } {
  const rows = rowShares.length;
  const deviation = (ideal: (t: number) => number): number =>
    rowShares.reduce((sum, share, r) => sum + Math.abs(share - ideal((r + 0.5) / rows)), 0) / Math.max(1, rows);
  const squareish = aspect > 0.85 && aspect < 1.18;
  const candidates: [DetectedObject['shape'], number][] = [
    [squareish ? 'square' : 'rectangle', deviation(() => 1)],
    [squareish ? 'circle' : 'ellipse', deviation((t) => Math.sqrt(Math.max(0, 1 - (2 * t - 1) ** 2)))],
    ['triangle', Math.min(deviation((t) => t), deviation((t) => 1 - t))],
  ];
  const [shape, best] = candidates.sort((a, b) => a[1] - b[1])[0]!;
  if (best > 0.1) return { shape: 'shape', confidence: 0.5 };
  return { shape, confidence: round(0.98 - 3 * best) };
}

function isGraphic(samples: Samples): boolean {
  const { rgba } = samples;
  const bins = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < samples.width * samples.height; i++) {
    if (!opaque(rgba, i)) continue;
    const key = ((rgba[i * 4]! >> 4) << 8) | ((rgba[i * 4 + 1]! >> 4) << 4) | (rgba[i * 4 + 2]! >> 4);
    bins.set(key, (bins.get(key) ?? 0) + 1);
    total++;
  }
  const top = [...bins.values()].sort((a, b) => b - a).slice(0, 6).reduce((a, b) => a + b, 0);
  return total > 0 && top / total >= 0.9;
}

const chromatic = (name: string): boolean => !['black', 'white', 'gray', 'silver'].includes(name);

function tagsFor(input: {
  colours: ImageReading['colours'];
  brightness: number;
  background: Background | undefined;
  objects: DetectedObject[];
  graphic: boolean;
}): Tag[] {
  const tags = new Map<string, number>();
  const add = (name: string, confidence: number): void => void tags.set(name, Math.max(tags.get(name) ?? 0, round(confidence)));
  for (const object of input.objects) {
    if (object.shape !== 'shape') add(object.shape, object.confidence);
    add(object.colour, 0.95);
  }
  if (input.objects.length) add('shape', 0.9);
  for (const { name, share } of input.colours) add(name, 0.5 + share / 2);
  if (input.background?.transparent) add('transparent', 0.9);
  if (input.graphic) add('graphics', 0.9);
  if (input.brightness < 0.25) add('dark', 0.6 + (0.25 - input.brightness));
  if (input.brightness > 0.8) add('bright', 0.6 + (input.brightness - 0.8) * 1.5);
  const chromaticColours = input.colours.filter((c) => chromatic(c.name));
  if (chromaticColours.length >= 3) add('colorful', 0.8);
  if (input.colours.length && chromaticColours.length === 0 && !input.objects.some((o) => chromatic(o.colour))) add('monochrome', 0.8);
  return [...tags.entries()].map(([name, confidence]) => ({ name, confidence })).sort((a, b) => b.confidence - a.confidence || a.name.localeCompare(b.name));
}

function describe(input: {
  image: RgbaImage;
  colours: ImageReading['colours'];
  brightness: number;
  background: Background | undefined;
  objects: DetectedObject[];
  plain: boolean;
}): ImageReading['caption'] {
  const { colours, objects, background } = input;
  if (input.plain) return { text: `a plain ${colours[0]!.name} image`, confidence: 0.95 };
  if (objects.length && background) {
    const on = background.transparent ? 'on a transparent background' : `on a ${background.name} background`;
    const groups = new Map<string, number>();
    for (const object of objects) {
      const key = `${orientationOf(object)}${object.colour} ${object.shape}`;
      groups.set(key, (groups.get(key) ?? 0) + 1);
    }
    if (groups.size > 3) {
      const shapeColours = [...new Set(objects.map((o) => o.colour))];
      return { text: `several shapes in ${joinWords(shapeColours.slice(0, 3))} ${on}`, confidence: 0.7 };
    }
    const parts = [...groups.entries()].map(([key, count]) => (count === 1 ? `${article(key)} ${key}` : `${countWord(count)} ${plural(key)}`));
    return { text: `${joinWords(parts)} ${on}`, confidence: round(Math.min(0.95, 0.5 + 0.45 * Math.min(...objects.map((o) => o.confidence)))) };
  }
  const tone = input.brightness < 0.25 ? 'dark ' : input.brightness > 0.8 ? 'bright ' : '';
  const names = colours.map((c) => c.name).slice(0, 3);
  const aspect = input.image.width / input.image.height;
  const frame = aspect > 1.25 ? 'wide ' : aspect < 0.8 ? 'tall ' : '';
  const text = names.length ? `a ${tone}${frame}image in mostly ${joinWords(names)} tones` : `a ${tone}${frame}image`;
  return { text: text.replace(/^a ([aeiou])/, 'an $1'), confidence: 0.5 };
}

/** `tall ` / `wide ` for elongated rectangles and ellipses (a square or circle has no orientation). */
function orientationOf(object: DetectedObject): string {
  if (object.shape !== 'rectangle' && object.shape !== 'ellipse') return '';
  return object.boundingBox.h > object.boundingBox.w ? 'tall ' : 'wide ';
}

function article(phrase: string): string {
  return /^[aeiou]/.test(phrase) ? 'an' : 'a';
}

function plural(phrase: string): string {
  return phrase.endsWith('s') ? phrase : `${phrase}s`;
}

function countWord(count: number): string {
  return ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'][count] ?? String(count);
}

function joinWords(words: readonly string[]): string {
  if (words.length <= 1) return words[0] ?? '';
  return `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

function hueOf(r: number, g: number, b: number): number {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const d = max - min;
  if (d === 0) return 0;
  let hue = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
  hue *= 60;
  return hue < 0 ? hue + 360 : hue;
}

function round(value: number): number {
  return Math.min(0.99, Math.max(0.01, Math.round(value * 10_000) / 10_000));
}
