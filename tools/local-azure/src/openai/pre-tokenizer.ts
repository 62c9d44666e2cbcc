import type { TokenizerEncoding } from './model-catalog.js';

/**
 * The pre-tokenizers of o200k_base and cl100k_base — the split of a text into the pieces that byte-pair merging
 * works on — written out as the alternatives of their regular expressions, so that no piece is found by running a
 * regular expression over it.
 *
 * Why not the expressions themselves: V8 keeps a backtracking entry per character a greedy loop consumes when the
 * subject string is stored two bytes a character (a string parsed from a request body is stored so when it holds a
 * character beyond Latin-1), on a stack it caps at 64 MiB. One piece of some 8.4 million characters — 9 MiB of
 * spaces in a chat message, inside gpt-4o's window — then throws "RangeError: Maximum call stack size exceeded"
 * whatever Node's own stack size, and the request failed with a 500. Here a piece costs a loop over its characters,
 * whatever its length.
 *
 * Each alternative below is tried in the expression's order, with the backtracking its greedy quantifiers would do
 * spelled out. `assertMatchesExpression` checks the result against the vocabulary's own expression when a
 * vocabulary loads, and pre-tokenizer.spec against it on generated texts.
 */

/** Character classes the two expressions test, as bits of {@link classesOf}. */
const space = 1; // \s
const newline = 2; // [\r\n]
const letter = 4; // \p{L}
const digit = 8; // \p{N}
const upperish = 16; // o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
const lowerish = 32; // o200k's [\p{Ll}\p{Lm}\p{Lo}\p{M}]
const other = 64; // [^\s\p{L}\p{N}]
const known = 128;

const blank = 0x20;
const slash = 0x2f;

const tests: readonly (readonly [number, RegExp])[] = [
  [space, /^\s$/u],
  [letter, /^\p{L}$/u],
  [digit, /^\p{N}$/u],
  [upperish, /^[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]$/u],
  [lowerish, /^[\p{Ll}\p{Lm}\p{Lo}\p{M}]$/u],
];

// Classes of every code point, filled in as characters are first seen (0: not yet). A fixed 1.1 MB table rather than
// a map for the planes beyond the first: a caller sending every astral character cannot make it grow.
const classTable = new Uint8Array(0x110000);

function classify(codePoint: number): number {
  let classes = known;
  const character = String.fromCodePoint(codePoint);
  for (const [bit, test] of tests) if (test.test(character)) classes |= bit;
  if (codePoint === 0x0a || codePoint === 0x0d) classes |= newline;
  if (!(classes & (space | letter | digit))) classes |= other;
  return classes;
}

/** The class bits of the code point at `at` (which must be inside `text`). */
function classesOf(text: string, at: number): number {
  const unit = text.charCodeAt(at);
  if (unit < 0xd800 || unit > 0xdbff) {
    let classes = classTable[unit]!;
    if (!classes) classes = classTable[unit] = classify(unit);
    return classes;
  }
  // A lone high surrogate is a code point of its own (category Cs), as the expressions' `u` flag reads it.
  const codePoint = text.codePointAt(at)!;
  let classes = classTable[codePoint]!;
  if (!classes) classes = classTable[codePoint] = classify(codePoint);
  return classes;
}

/** UTF-16 units of the code point at `at`. */
function widthAt(text: string, at: number): number {
  const unit = text.charCodeAt(at);
  if (unit < 0xd800 || unit > 0xdbff || at + 1 >= text.length) return 1;
  const next = text.charCodeAt(at + 1);
  return next >= 0xdc00 && next <= 0xdfff ? 2 : 1;
}

/** Where the run of code points that have any of `classes`, starting at `at`, ends. */
function runEnd(text: string, at: number, classes: number): number {
  while (at < text.length) {
    const unit = text.charCodeAt(at);
    if (unit < 0xd800 || unit > 0xdbff) {
      // The common case inline: a run of millions of characters is scanned here.
      let found = classTable[unit]!;
      if (!found) found = classTable[unit] = classify(unit);
      if (!(found & classes)) break;
      at++;
    } else {
      if (!(classesOf(text, at) & classes)) break;
      at += widthAt(text, at);
    }
  }
  return at;
}

/**
 * The runs of letters and digits of `text` in order — what `text.match(/[\p{L}\p{N}]+/gu)` finds — in one loop over
 * its characters: the expression overflows V8's backtracking stack on a run of some 8.4 million characters of a
 * two-byte string (see above), which a chat prompt in gpt-4.1's window can hold.
 */
export function letterDigitRuns(text: string): string[] {
  const runs: string[] = [];
  for (let at = 0; at < text.length; ) {
    if (classesOf(text, at) & (letter | digit)) {
      const end = runEnd(text, at, letter | digit);
      runs.push(text.slice(at, end));
      at = end;
    } else {
      at += widthAt(text, at);
    }
  }
  return runs;
}

/** Units of the contraction (`'s`, `'d`, `'m`, `'t`, `'ll`, `'ve`, `'re`, either case after the apostrophe) at `at`, or 0. */
function contractionAt(text: string, at: number): number {
  if (text.charCodeAt(at) !== 0x27) return 0;
  const first = text.charCodeAt(at + 1) | 0x20;
  if (first === 0x73 || first === 0x64 || first === 0x6d || first === 0x74) return 2; // s d m t
  const second = text.charCodeAt(at + 2) | 0x20;
  if (first === 0x6c && second === 0x6c) return 3; // ll
  if ((first === 0x76 || first === 0x72) && second === 0x65) return 3; // ve re
  return 0;
}

/** Where a run of [\r\n] (and `/` when `slashes`) starting at `at` ends. */
function lineBreaksEnd(text: string, at: number, slashes: boolean): number {
  for (;;) {
    const unit = text.charCodeAt(at);
    if (unit === 0x0a || unit === 0x0d || (slashes && unit === slash)) at++;
    else return at;
  }
}

/**
 * ` ?[^\s\p{L}\p{N}]+` followed by line breaks (o200k: `[\r\n/]*`, cl100k: `[\r\n]*`): the end, or -1. The optional
 * space is taken only when a character of the class follows it (without it the class cannot start on a space).
 */
function punctuationEnd(text: string, at: number, slashes: boolean): number {
  let from = at;
  if (text.charCodeAt(at) === blank && at + 1 < text.length && classesOf(text, at + 1) & other) from = at + 1;
  if (!(classesOf(text, from) & other)) return -1;
  return lineBreaksEnd(text, runEnd(text, from, other), slashes);
}

/**
 * A run of whitespace at `at` (a space character is there): the end of the piece it starts.
 *
 * Rules (the expressions' whitespace alternatives, in order):
 * - cl100k `\s+$`: a run that reaches the end of the text is one piece.
 * - `\s*[\r\n]+` (o200k) / `\s*[\r\n]` (cl100k): a run holding a line break is a piece up to its last line break
 *   (the greedy `\s*` gives characters back until one is a line break).
 * - `\s+(?!\S)`: otherwise all of the run but its last character, which then starts the next piece (`' a'`), unless
 *   the run ends the text (o200k; cl100k took it above) or is one character long.
 * - `\s+` (o200k) / `\s` (cl100k): a single character, which is the whole run there.
 */
function whitespaceEnd(text: string, at: number, encoding: TokenizerEncoding): number {
  let end = at;
  let lastBreak = -1;
  for (; end < text.length; end++) {
    const unit = text.charCodeAt(end);
    // Every \s character is in the Basic Multilingual Plane.
    if (unit === blank) continue;
    if (unit === 0x0a || unit === 0x0d) lastBreak = end;
    else if (!(classesOf(text, end) & space)) break;
  }
  if (encoding === 'cl100k_base' && end === text.length) return end;
  if (lastBreak >= 0) return lastBreak + 1;
  if (end === text.length) return end;
  return end - at >= 2 ? end - 1 : at + 1;
}

/**
 * o200k's letter alternatives at `at`, in order: `P?[upper]*[lower]+C?`, then `P?[upper]+[lower]*C?`, where P is
 * `[^\r\n\p{L}\p{N}]` and C a contraction; the end or -1. A first character that can be P is tried as P first,
 * then as part of the letters (a combining mark is both).
 */
function o200kLettersEnd(text: string, at: number, first: number): number {
  const starts = first & (newline | letter | digit) ? [at] : [at + widthAt(text, at), at];
  for (const start of starts) {
    // [upper]* takes its longest run and gives characters back until [lower]+ can start: at the run's end if a
    // lower-only letter follows, else at the run's last character that is lower too.
    let end = start;
    let lastLower = -1;
    while (end < text.length) {
      const classes = classesOf(text, end);
      if (!(classes & upperish)) break;
      if (classes & lowerish) lastLower = end;
      end += widthAt(text, end);
    }
    let lowerEnd = -1;
    if (end < text.length && classesOf(text, end) & lowerish) lowerEnd = runEnd(text, end, lowerish);
    else if (lastLower >= 0) lowerEnd = lastLower + widthAt(text, lastLower);
    if (lowerEnd >= 0) return lowerEnd + contractionAt(text, lowerEnd);
  }
  for (const start of starts) {
    if (start >= text.length || !(classesOf(text, start) & upperish)) continue;
    const lowerEnd = runEnd(text, runEnd(text, start, upperish), lowerish);
    return lowerEnd + contractionAt(text, lowerEnd);
  }
  return -1;
}

function o200kPieceEnd(text: string, at: number): number {
  const first = classesOf(text, at);
  // Letters, or any character but a line break or digit as the P before them.
  if (!(first & (newline | digit))) {
    const end = o200kLettersEnd(text, at, first);
    if (end >= 0) return end;
  }
  return nonLetterEnd(text, at, first, 'o200k_base');
}

function cl100kPieceEnd(text: string, at: number): number {
  const contraction = contractionAt(text, at);
  if (contraction) return at + contraction;
  const first = classesOf(text, at);
  // `[^\r\n\p{L}\p{N}]?\p{L}+`
  if (first & letter) return runEnd(text, at, letter);
  if (!(first & (newline | digit))) {
    const next = at + widthAt(text, at);
    if (next < text.length && classesOf(text, next) & letter) return runEnd(text, next, letter);
  }
  return nonLetterEnd(text, at, first, 'cl100k_base');
}

/**
 * The alternatives both expressions end with, in order: `\p{N}{1,3}`, ` ?[^\s\p{L}\p{N}]+` with line breaks after
 * it (o200k `[\r\n/]*`, cl100k `[\r\n]*`), then the whitespace ones.
 */
function nonLetterEnd(text: string, at: number, first: number, encoding: TokenizerEncoding): number {
  if (first & digit) return digitsEnd(text, at);
  const end = punctuationEnd(text, at, encoding === 'o200k_base');
  return end < 0 && first & space ? whitespaceEnd(text, at, encoding) : end;
}

/** `\p{N}{1,3}`. */
function digitsEnd(text: string, at: number): number {
  let end = at;
  for (let count = 0; count < 3 && end < text.length && classesOf(text, end) & digit; count++) {
    end += widthAt(text, end);
  }
  return end;
}

/**
 * The end of the piece the encoding's pre-tokenizer starts at `at` (inside `text`), as its regular expression
 * would match there. Every character starts a match of both expressions, so the result is always past `at`.
 *
 * @example
 * for (let at = 0; at < text.length; ) {
 *   const end = pieceEnd(text, at, 'o200k_base');
 *   merge(text.slice(at, end));
 *   at = end;
 * }
 */
export function pieceEnd(text: string, at: number, encoding: TokenizerEncoding): number {
  const end = encoding === 'o200k_base' ? o200kPieceEnd(text, at) : cl100kPieceEnd(text, at);
  // A character no alternative matches would be skipped; none exists (every class has one), but a skipped one must
  // not stall the caller.
  return end > at ? end : at + widthAt(text, at);
}

/** The pieces of `text`, in order (see {@link pieceEnd}). */
export function* pieces(text: string, encoding: TokenizerEncoding): Generator<string> {
  for (let at = 0; at < text.length;) {
    const end = pieceEnd(text, at, encoding);
    yield text.slice(at, end);
    at = end;
  }
}

// Every rule of both expressions at least once: cases, scripts, combining marks, contractions, digit runs, slashes
// after punctuation, every kind of whitespace before and after line breaks and at the end, astral characters.
const probe = [
  "Hello world's  WORLD'LL don't they'Re I'm o'clock 'x ÉCOLEé e\u0301 \u0301a 日本語 Ωμέγα camelCaseHTTPServer ǅemal",
  ' 12345 3.14 a1 1a !? ... ,\n .\n\n/ a/b // \t!x  \u00a0y \u3000z\n \n  \r\n\tq 😀 👍🏽x x😀 <|endoftext|>',
  ' \n  x\n\n  ',
].join('');

/**
 * Throws unless `expression` (the vocabulary's own pre-tokenizer, from gpt-tokenizer) splits a text covering every
 * rule as {@link pieceEnd} does: a gpt-tokenizer upgrade that changes an expression fails loudly at load.
 */
export function assertMatchesExpression(expression: RegExp, encoding: TokenizerEncoding): void {
  const expected = Array.from(probe.matchAll(expression), ([piece]) => piece);
  const actual = [...pieces(probe, encoding)];
  if (expected.join('\u0000') !== actual.join('\u0000')) {
    throw new Error(
      `gpt-tokenizer's ${encoding} pre-tokenizer no longer splits text as the local Azure's (pre-tokenizer.ts) does`,
    );
  }
}
