import { letterDigitRuns } from './pre-tokenizer.js';
import { productConcepts } from './product-lexicon.js';

/** What the model read in a text: its content words (stemmed → first surface form) and the concepts they evoke. */
export interface TextReading {
  /** Stem → the word as first written in the text (lower case). */
  words: Map<string, string>;
  /** Concept names (keys of the product lexicon) the text evokes. */
  concepts: Set<string>;
  /** Departments of those concepts. */
  departments: Set<string>;
}

// Feature weights: a word counts fully, its concept almost as much (that is what makes a running shoe
// close to a trail sneaker), its department half, adjacent word pairs half, spelling trigrams a little
// (typos, plurals the stemmer misses, compounds such as "trailrunner").
const weights = { word: 1, concept: 0.9, department: 0.45, pair: 0.5, trigramsPerWord: 0.45 };

const stopWords = new Set(
  (
    'a an and are as at be been but by can do does for from has have he her his how i if in into is it its ' +
    'me my new no not of on or our out she so such than that the their them then there these they this those ' +
    'to too up us was we were what when where which while who why will with you your yours all any both each ' +
    'few more most other some just only own same also very via per about over under again off once here ' +
    'would could should may might must shall get got one two three four five six seven eight nine ten'
  ).split(' '),
);

/**
 * Reduces an English word to a stem shared by its inflections: plurals, -ing, -ed, -er (agent nouns), a
 * final silent e, and doubled final consonants (`running`, `runner`, `runs` → `run`; `hiking`, `hikes` →
 * `hik`). Stems are internal keys, not words.
 */
export function stem(word: string): string {
  let w = word;
  if (w.length <= 3) return w;
  if (w.endsWith('ies') && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (/(x|ch|sh|ss|z)es$/.test(w)) w = w.slice(0, -2);
  else if (w.endsWith('s') && !/(ss|us|is)$/.test(w)) w = w.slice(0, -1);
  if (w.endsWith('ing') && w.length > 5) w = w.slice(0, -3);
  else if (w.endsWith('ed') && w.length > 4) w = w.slice(0, -2);
  else if (w.endsWith('er') && w.length > 5) w = w.slice(0, -2);
  if (/([b-df-hj-np-tv-z])\1$/.test(w) && !/(ll|ss|zz)$/.test(w)) w = w.slice(0, -1);
  if (w.endsWith('e') && w.length > 3) w = w.slice(0, -1);
  return w;
}

/** Lower-cased content words of `text` (letters and digits, at least two characters, no stop words or bare numbers). */
export function contentWords(text: string): string[] {
  const words = letterDigitRuns(
    text
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/(\w)[-'’](\w)/g, '$1$2'),
  );
  return words.filter((w) => w.length >= 2 && !stopWords.has(w) && !/^\d+$/.test(w));
}

const conceptsByStem = new Map<string, string[]>();
for (const [concept, { words }] of Object.entries(productConcepts)) {
  for (const word of words) {
    const key = stem(word);
    const list = conceptsByStem.get(key) ?? [];
    if (!list.includes(concept)) list.push(concept);
    conceptsByStem.set(key, list);
  }
}

/** Reads `text`: its content words and the product concepts they evoke. */
export function readText(text: string): TextReading {
  const words = new Map<string, string>();
  const concepts = new Set<string>();
  const departments = new Set<string>();
  for (const word of contentWords(text)) {
    const key = stem(word);
    if (!words.has(key)) words.set(key, word);
    for (const concept of conceptsByStem.get(key) ?? []) {
      concepts.add(concept);
      departments.add(productConcepts[concept]!.department);
    }
  }
  return { words, concepts, departments };
}

/**
 * The local stand-in for an embeddings model: deterministic, no weights to download, and meaningful enough
 * for product recommendations.
 *
 * How it works: the text becomes weighted features (stemmed words, the product concepts and departments
 * they evoke from a built-in lexicon, adjacent word pairs, spelling trigrams). Each feature has a fixed
 * pseudo-random ±1 direction over every dimension, seeded by a hash of the feature; the embedding is the
 * weighted sum, normalised to length 1. This is a random projection of the feature vector, so cosine
 * similarity approximates the overlap of features (identical text → identical vector; shared concepts →
 * closer; nothing shared → about 0 ± 1/√dimensions).
 *
 * Rules:
 * - Same text, same dimension → the same vector, bit for bit, on every machine.
 * - Vectors have unit length, like OpenAI's.
 * - A shorter vector is the prefix of the longer one, renormalised (as `dimensions` works for
 *   text-embedding-3 models), because every feature's direction is generated dimension by dimension.
 * - A text with no content words (empty, only stop words or punctuation) embeds to a fixed direction of its own.
 */
export class LocalEmbeddingModel {
  /** Embeds `text` into `dimensions` floats (unit length). */
  embed(text: string, dimensions: number): Float32Array {
    const vector = new Float32Array(dimensions);
    const features = featuresOf(text);
    if (features.size === 0) features.set('empty', 1);
    for (const [feature, weight] of features) addDirection(vector, feature, weight);
    return normalize(vector);
  }
}

/** Cosine similarity of two vectors of equal length. */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

function featuresOf(text: string): Map<string, number> {
  const features = new Map<string, number>();
  const add = (key: string, weight: number): void => void features.set(key, (features.get(key) ?? 0) + weight);
  const stems = contentWords(text).map(stem);
  stems.forEach((key, i) => {
    add(`w:${key}`, weights.word);
    for (const concept of conceptsByStem.get(key) ?? []) {
      add(`c:${concept}`, weights.concept);
      add(`d:${productConcepts[concept]!.department}`, weights.department);
    }
    if (i > 0) add(`p:${stems[i - 1]}_${key}`, weights.pair);
    if (key.length >= 5) {
      const padded = `^${key}$`;
      const count = padded.length - 2;
      for (let j = 0; j < count; j++) add(`t:${padded.slice(j, j + 3)}`, weights.trigramsPerWord / count);
    }
  });
  // Repetition should not dominate: damp every feature's total weight.
  for (const [key, weight] of features) features.set(key, Math.sqrt(weight));
  return features;
}

/** Adds `weight` × the feature's ±1 direction: 32 signs per step of a xorshift32 generator seeded by FNV-1a. */
function addDirection(vector: Float32Array, feature: string, weight: number): void {
  let state = fnv1a(feature) || 0x9e3779b9;
  const twice = 2 * weight;
  for (let i = 0; i < vector.length; i += 32) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const bits = state >>> 0;
    const end = Math.min(32, vector.length - i);
    // Branch-free: the sign bits are random, so a conditional would be mispredicted half the time.
    for (let bit = 0; bit < end; bit++) vector[i + bit] += twice * ((bits >>> bit) & 1) - weight;
  }
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function normalize(vector: Float32Array): Float32Array {
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < vector.length; i++) vector[i] /= norm;
  return vector;
}
