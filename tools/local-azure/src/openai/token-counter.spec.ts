import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import { seededRandom } from '@keyless/testing';
import type { TokenizerEncoding } from './model-catalog.js';
import { longestToken, TokenCounter } from './token-counter.js';

const libraries = { o200k_base: o200k, cl100k_base: cl100k } as const;
const plainText = { disallowedSpecial: new Set<string>() };

// Letters of both cases and scripts, combining marks, digits, punctuation, contractions, every kind of
// whitespace the pre-tokenizers treat apart, emoji (surrogate pairs) and a special token written as text.
const atoms = [
  'a', 'Z', 'trail', 'Shoe', 'ÉCOLE', 'naïve', 'e\u0301', '日本語', 'Ωμέγα', 'Привет', '7', '2026', '3.14', "'s", "'LL", "don't",
  ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u3000', '.', '...', '!?', '—', '/', '$', '(', ')', ',', '😀', '👍🏽', '<|endoftext|>', '<|im_start|>',
];

function generatedText(next: () => number): string {
  let text = '';
  const parts = 1 + Math.floor(next() * 40);
  for (let i = 0; i < parts; i++) {
    const atom = atoms[Math.floor(next() * atoms.length)]!;
    // A long run now and then, so pieces longer than the library's share of the work are merged too.
    text += next() < 0.15 ? atom.repeat(20 + Math.floor(next() * 150)) : atom;
  }
  return text;
}

describe(TokenCounter.name, () => {
  const counter = new TokenCounter();
  beforeAll(() => Promise.all([counter.ready('o200k_base'), counter.ready('cl100k_base')]));

  describe.each(['o200k_base', 'cl100k_base'] as const)('with %s', (encoding: TokenizerEncoding) => {
    it('encodes generated texts token for token as gpt-tokenizer does', () => {
      const next = seededRandom(encoding === 'o200k_base' ? 14 : 1400);
      for (let i = 0; i < 200; i++) {
        const text = generatedText(next);
        expect({ text, tokens: counter.encode(text, encoding) }).toEqual({ text, tokens: libraries[encoding].encode(text, plainText) });
      }
    });

    it(`has no token longer than ${longestToken} bytes, the longest pair the merge looks up`, () => {
      const utf8 = new TextEncoder();
      let longest = 0;
      for (let rank = 0; rank < libraries[encoding].vocabularySize; rank++) {
        // Special tokens and unused ranks do not decode; partial UTF-8 decodes to longer replacement characters.
        try {
          longest = Math.max(longest, utf8.encode(libraries[encoding].decode([rank])).length);
        } catch {
          continue;
        }
      }
      expect(longest).toBe(longestToken);
    });

    it.each([
      ['spaces', ' '.repeat(3_000)],
      ['a space run between letters', `a${' '.repeat(3_000)}b`],
      ['mixed whitespace', ' \t'.repeat(1_500)],
      ['one long word', 'Supercalifragilistic'.repeat(150)],
      ['capitals', 'ABC'.repeat(1_000)],
      ['punctuation', '.!?-'.repeat(750)],
      ['accented letters', 'éà'.repeat(1_000)],
      ['emoji', '😀'.repeat(1_000)],
    ])('encodes a long piece of %s as gpt-tokenizer does', (_name, text) => {
      expect(counter.encode(text, encoding)).toEqual(libraries[encoding].encode(text, plainText));
    });

    it('counts a long run of whitespace in time proportional to its length', () => {
      // gpt-tokenizer's merge rescans the piece after every merge: 200,000 spaces (1,566 tokens) took some 48 s
      // of the local Azure's one thread, so a caller with the OpenAI User role could stop every listener. Now ~0.1–0.2 s:
      // the bound leaves room for a loaded CI machine.
      const started = performance.now();
      const count = counter.count(`a${' '.repeat(200_000)}b`, encoding);
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(count).toBeGreaterThan(1_000);
      expect(count).toBeLessThan(2_000);
    });
  });
});
