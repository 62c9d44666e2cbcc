import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import { seededRandom } from '@keyless/testing';
import type { TokenizerEncoding } from './model-catalog.js';
import { longestToken, mergeLongPiece, TokenCounter } from './token-counter.js';

const libraries = { o200k_base: o200k, cl100k_base: cl100k } as const;
const plainText = { disallowedSpecial: new Set<string>() };

// Letters of both cases and scripts, combining marks, digits, punctuation, contractions, every kind of
// whitespace the pre-tokenizers treat apart, emoji (surrogate pairs) and a special token written as text.
const atoms = [
  'a', 'Z', 'trail', 'Shoe', 'ÉCOLE', 'naïve', 'e\u0301', '日本語', 'Ωμέγα', 'Привет', '7', '2026', '3.14', "'s", "'LL", "don't",
  ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u3000', '.', '...', '!?', '—', '/', '$', '(', ')', ',', '😀', '👍🏽', '<|endoftext|>', '<|im_start|>',
];

// Long pieces of one pre-tokenizer class each (letters, whitespace, punctuation), random or nearly periodic, for the
// windowed merge: 2,500 characters are several windows of 512 or 777 bytes.
function longPiece(next: () => number): string {
  const pick = <T>(choices: readonly T[]): T => choices[Math.floor(next() * choices.length)]!;
  const alphabets = [[...'abcdefghijklmnopqrstuvwxyz'], [...'ab'], [' ', ' ', ' ', '\t', '\n', '\u00a0', '\u3000'], [...'.-=*!?#/—😀()'], ['trail', 'Shoe', 'running', 'ing', 'Ωμέγα', 'naïve', '日本語', 'zz']];
  const alphabet = pick(alphabets);
  if (next() < 0.3) {
    const unit = Array.from({ length: 1 + Math.floor(next() * 7) }, () => pick(alphabet)).join('');
    const text = unit.repeat(Math.ceil(2_500 / unit.length));
    const at = Math.floor(next() * text.length);
    return `${text.slice(0, at)}${pick(alphabet)}${text.slice(at)}`;
  }
  let text = '';
  while (text.length < 2_500) text += pick(alphabet);
  return text;
}

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

    it('joins a long piece merged a window at a time into the encoding gpt-tokenizer gives the whole piece', () => {
      const core = (libraries[encoding] as unknown as { default: { bytePairEncodingCoreProcessor: Parameters<typeof mergeLongPiece>[1] & { bytePairEncode(piece: string): number[] } } }).default
        .bytePairEncodingCoreProcessor;
      const next = seededRandom(encoding === 'o200k_base' ? 15 : 1500);
      for (let i = 0; i < 40; i++) {
        const piece = longPiece(next);
        const whole = core.bytePairEncode(piece);
        for (const windowBytes of [512, 777]) expect({ piece, windowBytes, tokens: mergeLongPiece(piece, core, { windowBytes }) }).toEqual({ piece, windowBytes, tokens: whole });
      }
    });

    it('counts exactly up to a limit and gives a number above it beyond', () => {
      const next = seededRandom(encoding === 'o200k_base' ? 16 : 1600);
      for (let i = 0; i < 25; i++) {
        const text = generatedText(next) + longPiece(next);
        const tokens = libraries[encoding].encode(text, plainText);
        for (const limit of [0, 1, tokens.length - 1, tokens.length, tokens.length + 1, Math.floor(next() * tokens.length)]) {
          if (limit < 0) continue;
          const count = counter.count(text, encoding, limit);
          if (tokens.length <= limit) expect({ text, limit, count }).toEqual({ text, limit, count: tokens.length });
          else expect({ text, limit, over: count > limit }).toEqual({ text, limit, over: true });
          // The tokens known when encoding stops are the text's first tokens.
          const known = counter.encode(text, encoding, limit);
          expect({ text, limit, known }).toEqual({ text, limit, known: tokens.slice(0, known.length) });
          expect(known.length).toBeGreaterThanOrEqual(Math.min(limit + 1, tokens.length));
        }
      }
    });

    it('counts 15 MiB of spaces exactly in time bounded by the window, not by the length', () => {
      // Before windows of one run reused their merge, 15 MiB of spaces took some 18 s of the local Azure's one thread
      // on a loaded 2-core machine. The bound leaves the fixed merge room and stays far under the old.
      const size = 15 * 1024 * 1024;
      const started = performance.now();
      const count = counter.count(' '.repeat(size), encoding, 128_000);
      expect(performance.now() - started).toBeLessThan(6_000);
      expect(count).toBe(size / longestToken);
    });

    it('counts 9 MiB of spaces stored two bytes a character, where the whole-text expression overflows V8’s stack', () => {
      // V8 keeps a backtracking entry per character a regular expression's greedy loop consumes in a string stored two
      // bytes a character (as a string parsed from a request body is when it holds a character beyond Latin-1), on a
      // stack it caps at 64 MiB whatever Node's --stack-size: the pre-tokenizer's expression over one match of
      // 9,437,184 spaces throws (the cap is near 8.4 million). A slice of a string holding such a character is stored so.
      const size = 9 * 1024 * 1024;
      const text = `${' '.repeat(size)}—`.slice(0, size);
      const expression = (libraries[encoding] as unknown as { default: { bytePairEncodingCoreProcessor: { tokenSplitRegex: RegExp } } }).default
        .bytePairEncodingCoreProcessor.tokenSplitRegex;
      expect(() => Array.from(text.matchAll(expression))).toThrow(new RangeError('Maximum call stack size exceeded'));
      expect(counter.count(text, encoding, 128_000)).toBe(size / longestToken);
    });

    it('refuses 16 MiB of one letter against a 128,000-token limit without merging it', () => {
      // 16 MiB of 'a' is 2,097,152 tokens; merged whole it took some 22 s on a loaded 2-core machine.
      const started = performance.now();
      const count = counter.count('a'.repeat(16 * 1024 * 1024 - 4096), encoding, 128_000);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(count).toBeGreaterThan(128_000);
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
