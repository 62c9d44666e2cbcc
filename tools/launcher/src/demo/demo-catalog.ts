import type { Product } from '@keyless/contracts';
import { encodePng } from './png.js';

/** A colour the demo products come in, with the RGB its image is drawn in. */
interface Colour {
  name: string;
  rgb: [number, number, number];
}

/** A kind of product: how its name, description, price and image are made. */
interface ProductType {
  noun: string;
  adjectives: readonly string[];
  features: readonly string[];
  priceRange: [number, number];
}

/** Image silhouettes by category, so each category looks alike to the vision model and to people. */
type Shape = 'shoe' | 'shirt' | 'pan' | 'device' | 'tent' | 'vase';

const colours: readonly Colour[] = [
  { name: 'red', rgb: [200, 40, 40] },
  { name: 'blue', rgb: [40, 80, 200] },
  { name: 'green', rgb: [40, 150, 70] },
  { name: 'black', rgb: [25, 25, 25] },
  { name: 'white', rgb: [235, 235, 235] },
  { name: 'orange', rgb: [240, 130, 30] },
  { name: 'yellow', rgb: [235, 205, 40] },
  { name: 'purple', rgb: [120, 50, 160] },
  { name: 'grey', rgb: [128, 128, 128] },
  { name: 'teal', rgb: [20, 140, 140] },
];

const brands = ['Aero', 'Summit', 'Nordic', 'Urban', 'Terra', 'Pulse', 'Atlas', 'Luma', 'Vela', 'Kite'] as const;

const catalog: Record<string, { shape: Shape; types: readonly ProductType[] }> = {
  shoes: {
    shape: 'shoe',
    types: [
      { noun: 'running shoe', adjectives: ['lightweight', 'cushioned', 'responsive'], features: ['breathable mesh upper', 'foam midsole for long runs', 'grippy road outsole'], priceRange: [70, 180] },
      { noun: 'trail running shoe', adjectives: ['rugged', 'lightweight', 'grippy'], features: ['lugged outsole for muddy trails', 'rock plate underfoot', 'quick lacing'], priceRange: [90, 190] },
      { noun: 'walking shoe', adjectives: ['comfortable', 'supportive', 'everyday'], features: ['soft leather upper', 'arch support', 'slip-resistant sole'], priceRange: [50, 130] },
      { noun: 'hiking boot', adjectives: ['waterproof', 'sturdy', 'ankle-high'], features: ['waterproof membrane', 'stiff sole for rocky ground', 'padded collar'], priceRange: [110, 260] },
      { noun: 'sneaker', adjectives: ['classic', 'casual', 'canvas'], features: ['canvas upper', 'vulcanised rubber sole', 'cotton laces'], priceRange: [40, 110] },
      { noun: 'sandal', adjectives: ['summer', 'adjustable', 'light'], features: ['adjustable straps', 'contoured footbed', 'quick-drying'], priceRange: [25, 90] },
    ],
  },
  apparel: {
    shape: 'shirt',
    types: [
      { noun: 'rain jacket', adjectives: ['waterproof', 'packable', 'breathable'], features: ['taped seams', 'adjustable hood', 'packs into its pocket'], priceRange: [80, 240] },
      { noun: 'fleece hoodie', adjectives: ['warm', 'cosy', 'soft'], features: ['brushed fleece inside', 'kangaroo pocket', 'recycled polyester'], priceRange: [45, 110] },
      { noun: 'merino t-shirt', adjectives: ['odour-resistant', 'soft', 'lightweight'], features: ['fine merino wool', 'flatlock seams', 'regulates temperature'], priceRange: [40, 95] },
      { noun: 'running shorts', adjectives: ['light', 'quick-drying', 'stretchy'], features: ['built-in liner', 'zip pocket for keys', 'reflective details'], priceRange: [25, 70] },
      { noun: 'down vest', adjectives: ['warm', 'packable', 'insulated'], features: ['responsibly sourced down', 'water-repellent shell', 'zip hand pockets'], priceRange: [90, 210] },
      { noun: 'wool socks', adjectives: ['cushioned', 'warm', 'durable'], features: ['merino blend', 'reinforced heel and toe', 'arch support band'], priceRange: [12, 30] },
    ],
  },
  kitchen: {
    shape: 'pan',
    types: [
      { noun: 'coffee grinder', adjectives: ['precise', 'quiet', 'burr'], features: ['conical steel burrs', '40 grind settings', 'low-static container'], priceRange: [60, 280] },
      { noun: 'espresso machine', adjectives: ['compact', 'programmable', 'stainless'], features: ['15-bar pump', 'steam wand for milk', 'removable water tank'], priceRange: [200, 900] },
      { noun: "chef's knife", adjectives: ['sharp', 'balanced', 'forged'], features: ['high-carbon steel blade', 'full tang', 'ergonomic handle'], priceRange: [40, 220] },
      { noun: 'cast iron skillet', adjectives: ['pre-seasoned', 'heavy', 'versatile'], features: ['even heat retention', 'oven safe', 'pour spouts'], priceRange: [30, 120] },
      { noun: 'electric kettle', adjectives: ['fast', 'temperature-controlled', 'cordless'], features: ['variable temperature for tea', 'keep-warm function', 'auto shut-off'], priceRange: [35, 150] },
      { noun: 'blender', adjectives: ['powerful', 'high-speed', 'easy-clean'], features: ['1200 W motor', 'crushes ice', 'self-cleaning program'], priceRange: [60, 450] },
    ],
  },
  electronics: {
    shape: 'device',
    types: [
      { noun: 'wireless headphones', adjectives: ['noise-cancelling', 'over-ear', 'comfortable'], features: ['active noise cancelling', '30-hour battery', 'multipoint Bluetooth'], priceRange: [80, 400] },
      { noun: 'bluetooth speaker', adjectives: ['portable', 'waterproof', 'loud'], features: ['IP67 waterproof', '360° sound', '20-hour battery'], priceRange: [40, 250] },
      { noun: 'smartwatch', adjectives: ['sporty', 'slim', 'connected'], features: ['GPS tracking', 'heart-rate sensor', 'week-long battery'], priceRange: [120, 500] },
      { noun: 'e-reader', adjectives: ['glare-free', 'light', 'waterproof'], features: ['300 ppi e-ink screen', 'adjustable warm light', 'weeks of battery'], priceRange: [90, 280] },
      { noun: 'USB-C charger', adjectives: ['fast', 'compact', 'multi-port'], features: ['65 W power delivery', 'charges a laptop and phone together', 'foldable plug'], priceRange: [20, 90] },
      { noun: 'fitness tracker', adjectives: ['slim', 'waterproof', 'long-lasting'], features: ['step and sleep tracking', 'swim-proof', '10-day battery'], priceRange: [40, 160] },
    ],
  },
  outdoor: {
    shape: 'tent',
    types: [
      { noun: 'camping tent', adjectives: ['two-person', 'lightweight', 'freestanding'], features: ['quick pitch poles', 'full rain fly', 'two vestibules'], priceRange: [120, 550] },
      { noun: 'sleeping bag', adjectives: ['warm', 'compressible', 'three-season'], features: ['rated to -5 °C', 'draft collar', 'compression sack'], priceRange: [70, 380] },
      { noun: 'hiking backpack', adjectives: ['ventilated', 'adjustable', '40-litre'], features: ['suspended mesh back panel', 'hip-belt pockets', 'integrated rain cover'], priceRange: [80, 260] },
      { noun: 'trekking poles', adjectives: ['collapsible', 'carbon', 'light'], features: ['cork grips', 'quick-lock adjustment', 'tungsten tips'], priceRange: [50, 180] },
      { noun: 'headlamp', adjectives: ['bright', 'rechargeable', 'light'], features: ['400 lumen beam', 'red night mode', 'USB-C charging'], priceRange: [20, 90] },
      { noun: 'insulated water bottle', adjectives: ['leak-proof', 'insulated', 'durable'], features: ['keeps drinks cold 24 hours', 'stainless steel', 'wide mouth'], priceRange: [20, 55] },
    ],
  },
  home: {
    shape: 'vase',
    types: [
      { noun: 'desk lamp', adjectives: ['adjustable', 'dimmable', 'modern'], features: ['warm to cool light', 'touch dimmer', 'swivel arm'], priceRange: [30, 160] },
      { noun: 'throw blanket', adjectives: ['soft', 'chunky', 'woven'], features: ['knitted cotton', 'machine washable', 'tasselled edges'], priceRange: [30, 120] },
      { noun: 'ceramic vase', adjectives: ['handmade', 'glazed', 'minimal'], features: ['hand-thrown stoneware', 'watertight glaze', 'matte finish'], priceRange: [25, 140] },
      { noun: 'wall clock', adjectives: ['silent', 'minimal', 'large'], features: ['silent sweep movement', 'oak frame', '40 cm face'], priceRange: [30, 130] },
      { noun: 'plant pot', adjectives: ['self-watering', 'ceramic', 'modern'], features: ['water reservoir', 'drainage saucer', 'frost resistant'], priceRange: [15, 80] },
      { noun: 'scented candle', adjectives: ['hand-poured', 'long-burning', 'soy'], features: ['soy wax', 'cotton wick', '50-hour burn time'], priceRange: [15, 60] },
    ],
  },
};

/** A demo product with the PNG its image URL serves. */
export interface DemoProduct {
  product: Product;
  image: Buffer;
}

/** Options of {@link demoCatalog}. */
export interface DemoCatalogOptions {
  /** Products per product type (36 types). **Default**: 8, i.e. 288 products. */
  variantsPerType?: number;
  /** Base URL the images will be served from (`<base>/<id>.png`). */
  imageBaseUrl: string;
  /** Seed of the generator: the same seed gives the same catalog. **Default**: 7. */
  seed?: number;
}

/**
 * A deterministic demo catalog: six categories, six product types each, variants in brand and colour,
 * with descriptions, prices and a small generated image per product (a category silhouette in the
 * product's colour), so vision has something real to analyse. Nothing is downloaded.
 */
export function demoCatalog(options: DemoCatalogOptions): DemoProduct[] {
  const random = mulberry32(options.seed ?? 7);
  const variants = options.variantsPerType ?? 8;
  const products: DemoProduct[] = [];
  for (const [category, { shape, types }] of Object.entries(catalog)) {
    for (const type of types) {
      for (let v = 0; v < variants; v++) {
        const brand = brands[(v * 3 + types.indexOf(type)) % brands.length]!;
        const colour = colours[Math.floor(random() * colours.length)]!;
        const adjective = type.adjectives[v % type.adjectives.length]!;
        const [low, high] = type.priceRange;
        const price = Math.round((low + random() * (high - low)) * 100) / 100;
        const id = `${slug(type.noun)}-${slug(brand)}-${v + 1}`;
        const featureList = [...type.features].sort(() => random() - 0.5).slice(0, 2);
        products.push({
          product: {
            id,
            name: `${brand} ${capitalise(adjective)} ${capitalise(type.noun)}`,
            description: `A ${adjective} ${colour.name} ${type.noun} by ${brand} with ${featureList.join(' and ')}.`,
            category,
            price,
            imageUrl: `${options.imageBaseUrl}/${id}.png`,
            available: random() > 0.08,
          },
          image: drawProductImage(shape, colour.rgb, random),
        });
      }
    }
  }
  return products;
}

const imageSize = 128;

/** Draws a category silhouette in `rgb` on a light, slightly varied background. */
export function drawProductImage(shape: Shape, rgb: readonly [number, number, number], random: () => number = Math.random): Buffer {
  const pixels = new Uint8Array(imageSize * imageSize * 3);
  const background = 240 + Math.floor(random() * 12);
  const inside = insideShape(shape);
  for (let y = 0; y < imageSize; y++) {
    for (let x = 0; x < imageSize; x++) {
      const u = x / (imageSize - 1);
      const v = y / (imageSize - 1);
      const colour = inside(u, v) ? rgb : [background, background, background - 4];
      pixels.set(colour, (y * imageSize + x) * 3);
    }
  }
  return encodePng(imageSize, imageSize, pixels);
}

/** Whether the unit-square point (u, v) lies inside the silhouette (v grows downwards). */
function insideShape(shape: Shape): (u: number, v: number) => boolean {
  switch (shape) {
    case 'shoe': // a sole and a rising upper
      return (u, v) => (v > 0.62 && v < 0.75 && u > 0.1 && u < 0.9) || (v > 0.35 && v <= 0.62 && u > 0.12 && u < 0.12 + 0.5 + (v - 0.35) * 0.9);
    case 'shirt': // body and sleeves
      return (u, v) => (u > 0.3 && u < 0.7 && v > 0.2 && v < 0.85) || (v > 0.2 && v < 0.4 && u > 0.12 && u < 0.88);
    case 'pan': // a round body and a handle
      return (u, v) => (u - 0.42) ** 2 + (v - 0.5) ** 2 < 0.09 || (v > 0.46 && v < 0.54 && u > 0.7 && u < 0.95);
    case 'device': // a rounded rectangle
      return (u, v) => u > 0.22 && u < 0.78 && v > 0.12 && v < 0.88 && !((u < 0.27 || u > 0.73) && (v < 0.17 || v > 0.83));
    case 'tent': // a triangle
      return (u, v) => v > 0.2 && v < 0.82 && Math.abs(u - 0.5) < (v - 0.2) * 0.7;
    case 'vase': // a narrow neck over a round belly
      return (u, v) => (u - 0.5) ** 2 / 0.06 + (v - 0.62) ** 2 / 0.06 < 1 || (v > 0.15 && v < 0.45 && Math.abs(u - 0.5) < 0.09);
  }
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

function capitalise(text: string): string {
  return text.replace(/(^|[\s-])([a-z])/g, (_m, space: string, letter: string) => `${space}${letter.toUpperCase()}`);
}

/** A small seeded PRNG: deterministic demo data on every machine. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
