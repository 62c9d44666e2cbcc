import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import { seededRandom } from '@keyless/testing';
import type { TokenizerEncoding } from './model-catalog.js';
import { assertMatchesExpression, letterDigitRuns, pieceEnd, pieces } from './pre-tokenizer.js';
import { TokenCounter } from './token-counter.js';

const libraries = { o200k_base: o200k, cl100k_base: cl100k } as const;
const plainText = { disallowedSpecial: new Set<string>() };
const expressionOf = (encoding: TokenizerEncoding): RegExp =>
  (
    libraries[encoding] as unknown as {
      default: { bytePairEncodingCoreProcessor: { tokenSplitRegex: RegExp } };
    }
  ).default.bytePairEncodingCoreProcessor.tokenSplitRegex;
/** The pieces as the token counter found them before: the expression over the whole text. */
const expressionPieces = (text: string, encoding: TokenizerEncoding): string[] =>
  Array.from(text.matchAll(expressionOf(encoding)), ([piece]) => piece);

// Every class the expressions tell apart: letters of each case category (Lu, Ll, Lt, Lm, Lo) and script, combining
// marks alone and after letters, digits of several scripts, contractions whole and broken, apostrophes, slashes,
// punctuation, every kind of whitespace (line breaks, tab, vertical tab, form feed, no-break and ideographic
// spaces, line separator, BOM), astral letters and emoji, lone surrogates and a special token written as text.
const atoms = [
  'a',
  'Z',
  'trail',
  'Shoe',
  'HTTPServer',
  'camelCase',
  'ÉCOLE',
  'naïve',
  'e\u0301',
  '\u0301',
  'ǅ',
  'ʰ',
  '日本語',
  'Ωμέγα',
  'Привет',
  '𝐀',
  '𝐚',
  '7',
  '2026',
  '٣',
  'Ⅻ',
  '3.14',
  "'s",
  "'LL",
  "'l",
  "'ve",
  "'Re",
  "'x",
  "'",
  "don't",
  "I'M",
  ' ',
  '  ',
  '\t',
  '\n',
  '\r',
  '\r\n',
  '\v',
  '\f',
  '\u00a0',
  '\u3000',
  '\u2028',
  '\ufeff',
  '.',
  '...',
  '!?',
  '—',
  '/',
  '//',
  '$',
  '(',
  ',',
  '😀',
  '👍🏽',
  '\ud800',
  '\udc00',
  '<|endoftext|>',
];

/** Mixed text with runs: each atom now and then repeated, as runs of whitespace, letters, digits and punctuation. */
function generatedText(next: () => number): string {
  let text = '';
  const parts = 1 + Math.floor(next() * 16);
  for (let i = 0; i < parts; i++) {
    const atom = atoms[Math.floor(next() * atoms.length)]!;
    text += next() < 0.2 ? atom.repeat(2 + Math.floor(next() * 40)) : atom;
  }
  return text;
}

/** A few code points from anywhere in Unicode, half of them from the characters the expressions name. */
function randomCodePoints(next: () => number): string {
  const named = " \t\n\r'sSlLvVeErRdDmMtT/.aA1";
  let text = '';
  const length = 1 + Math.floor(next() * 10);
  for (let i = 0; i < length; i++) {
    const roll = next();
    if (roll < 0.5) text += named[Math.floor(next() * named.length)];
    else if (roll < 0.9) text += String.fromCharCode(Math.floor(next() * 0x10000));
    else text += String.fromCodePoint(0x10000 + Math.floor(next() * 0x20000));
  }
  return text;
}

/** The texts whose pieces differ from the whole-text expression's, with both (a matcher per text is slower than the split). */
function differences(
  texts: readonly string[],
  encoding: TokenizerEncoding,
): { text: string; pieces: string[]; expected: string[] }[] {
  const found = [];
  for (const text of texts) {
    const split = [...pieces(text, encoding)];
    const expected = expressionPieces(text, encoding);
    if (split.length !== expected.length || split.some((piece, i) => piece !== expected[i]))
      found.push({ text, pieces: split, expected });
  }
  return found;
}

describe(pieceEnd.name, () => {
  const counter = new TokenCounter();
  beforeAll(() => Promise.all([counter.ready('o200k_base'), counter.ready('cl100k_base')]));

  describe.each(['o200k_base', 'cl100k_base'] as const)('with %s', (encoding: TokenizerEncoding) => {
    it('splits generated mixed texts into the pieces the whole-text expression finds', () => {
      const next = seededRandom(encoding === 'o200k_base' ? 24 : 2400);
      expect(
        differences(
          Array.from({ length: 4_000 }, () => generatedText(next)),
          encoding,
        ),
      ).toEqual([]);
    });

    it('splits random code points from all of Unicode into the pieces the whole-text expression finds', () => {
      const next = seededRandom(encoding === 'o200k_base' ? 25 : 2500);
      expect(
        differences(
          Array.from({ length: 20_000 }, () => randomCodePoints(next)),
          encoding,
        ),
      ).toEqual([]);
    });

    it('counts generated texts to the token as the whole-text expression and gpt-tokenizer do', () => {
      const next = seededRandom(encoding === 'o200k_base' ? 26 : 2600);
      const texts = Array.from({ length: 300 }, () => generatedText(next));
      const counts = texts.map((text) => ({ text, count: counter.count(text, encoding) }));
      expect(counts).toEqual(
        texts.map((text) => ({ text, count: libraries[encoding].encode(text, plainText).length })),
      );
    });

    it('accepts the vocabulary’s own expression and refuses one that splits differently', () => {
      expect(() => assertMatchesExpression(expressionOf(encoding), encoding)).not.toThrow();
      // Words and the whitespace between them, as a simpler tokenizer would split.
      const other = /\S+|\s+/gu;
      expect(() => assertMatchesExpression(other, encoding)).toThrow(
        `gpt-tokenizer's ${encoding} pre-tokenizer no longer splits text as`,
      );
    });
  });
});

describe(letterDigitRuns.name, () => {
  it('finds the runs of letters and digits the expression finds, in generated texts and random code points', () => {
    const next = seededRandom(26);
    const texts = [...Array.from({ length: 2_000 }, () => generatedText(next)), ...Array.from({ length: 10_000 }, () => randomCodePoints(next))];
    const differing = texts.filter((text) => JSON.stringify(letterDigitRuns(text)) !== JSON.stringify(text.match(/[\p{L}\p{N}]+/gu) ?? []));
    expect(differing).toEqual([]);
  });
});
