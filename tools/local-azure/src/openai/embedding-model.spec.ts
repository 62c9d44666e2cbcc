import { contentWords, cosineSimilarity, LocalEmbeddingModel, readText, stem } from './embedding-model.js';

describe(LocalEmbeddingModel.name, () => {
  const model = new LocalEmbeddingModel();
  const similarity = (a: string, b: string): number => cosineSimilarity(model.embed(a, 1536), model.embed(b, 1536));

  it('gives identical text an identical vector, bit for bit', () => {
    expect(Buffer.from(model.embed('Storm Trail Runner, waterproof', 1536).buffer)).toEqual(Buffer.from(model.embed('Storm Trail Runner, waterproof', 1536).buffer));
  });

  it('returns unit vectors of the requested length', () => {
    for (const dimensions of [1, 64, 1536, 3072]) {
      const vector = model.embed('Burr coffee grinder', dimensions);
      expect(vector).toHaveLength(dimensions);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
    }
  });

  it('makes a shorter vector the renormalised prefix of the longer one', () => {
    const long = model.embed('Merino wool hiking socks', 1536);
    const short = model.embed('Merino wool hiking socks', 256);
    expect(cosineSimilarity(long.subarray(0, 256), short)).toBeCloseTo(1, 6);
  });

  it.each([
    ['Running shoe', 'Trail sneaker', 'Coffee grinder'],
    ['Lightweight running shoe with breathable mesh', 'Waterproof trail runner for muddy hikes', 'Burr coffee grinder, stainless steel'],
    ['Espresso machine', 'Coffee grinder', 'Yoga mat'],
    ['Wireless noise cancelling headphones', 'Bluetooth speaker', 'Garden hose'],
    ['Red summer dress', 'Crimson evening gown', 'Cordless drill'],
    ['Insulated winter parka', 'Warm fleece jacket', 'Ceramic teapot'],
  ])('places "%s" closer to "%s" than to "%s"', (anchor, related, unrelated) => {
    expect(similarity(anchor, related)).toBeGreaterThan(similarity(anchor, unrelated) + 0.15);
  });

  it('scores unrelated texts near zero', () => {
    expect(Math.abs(similarity('Running shoe', 'Coffee grinder'))).toBeLessThan(0.1);
  });

  it('embeds text without content words to a fixed direction', () => {
    expect(cosineSimilarity(model.embed('', 64), model.embed('the and of', 64))).toBeCloseTo(1, 6);
  });
});

describe('stem', () => {
  it.each([
    ['running', 'run'],
    ['runner', 'run'],
    ['runs', 'run'],
    ['shoes', 'sho'],
    ['shoe', 'sho'],
    ['hiking', 'hik'],
    ['hikes', 'hik'],
    ['batteries', 'battery'],
    ['boxes', 'box'],
  ])('reduces %s to %s', (word, expected) => {
    expect(stem(word)).toBe(expected);
  });
});

describe('readText', () => {
  it('finds the product concepts a text evokes', () => {
    const reading = readText('Trail runners for hiking in the rain');
    expect([...reading.concepts]).toEqual(expect.arrayContaining(['running', 'hiking', 'weatherproof']));
    expect(reading.words.get('run')).toBe('runners');
  });
});

describe(contentWords.name, () => {
  it('reads a word of 8.4 million letters in a string beyond Latin-1', () => {
    // The longest word a chat prompt in gpt-4.1's window holds, with a character that makes V8 store the string two
    // bytes a character: /[\p{L}\p{N}]+/gu over it threw "Maximum call stack size exceeded" and the request got a 500.
    const words = contentWords(`${'a'.repeat(8_400_000)}ж`);
    expect(words.map((word) => word.length)).toEqual([8_400_001]);
  });
});
