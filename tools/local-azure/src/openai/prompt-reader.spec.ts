import { findConjunction, listItemText, readPrompt, splitAtDash, splitAtParentheses } from './prompt-reader.js';
import { seededRandom } from '@keyless/testing';

describe(readPrompt.name, () => {
  describe('when a listed product ends in a long run of dots', () => {
    it('reads the list in time proportional to the prompt', () => {
      // Trimmed with /[.!?]+$/, 20,000 dots took some 1–3 s (and 80,000 some 30 s) of the local Azure's one thread:
      // any caller with the OpenAI User role could hold every listener. The bound leaves the linear trim (~40 ms here
      // for 60,000) room for a loaded 2-core CI machine and still fails the quadratic one several times over.
      const prompt = `Products: trail shoe${'.'.repeat(60_000)}x, rain jacket`;
      const started = performance.now();
      const reading = readPrompt([prompt]);
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(reading.candidates.map((item) => item.name)).toEqual([`trail shoe${'.'.repeat(60_000)}x`, 'rain jacket']);
    });
  });

  // Read with /^(.+?)\s+[—–-]\s+(.+)$/ and /^(.+?)\s*\(([^()]+)\)\s*$/, these took some 15 s and 12 s of the local
  // Azure's one thread (the time growing with the square of the run), within the context any caller with the
  // OpenAI User role may send. The linear reading takes ~0.1 s of them here: the bound leaves room for a loaded CI machine.
  it.each([
    ['a long run of spaces', `Products: trail shoe${' '.repeat(640_000)}x, rain jacket`, [`trail shoe${' '.repeat(640_000)}x`, 'rain jacket']],
    ['a long run of spaces in the last entry', `Products: trail shoe, rain${' '.repeat(160_000)}jacket`, ['trail shoe', `rain${' '.repeat(160_000)}jacket`]],
    ['a long run of " ," after an opening parenthesis', `Products: trail shoe (${' ,'.repeat(400_000)}x, rain jacket`, undefined],
  ])('reads a listed product with %s in time proportional to the prompt', (_name, prompt, names) => {
    const started = performance.now();
    const reading = readPrompt([prompt]);
    expect(performance.now() - started).toBeLessThan(5_000);
    if (names) expect(reading.candidates.map((item) => item.name)).toEqual(names);
  });

  describe('when a fenced JSON block opens with blank lines', () => {
    it('reads its items, whatever spaces the blank lines hold', () => {
      const reading = readPrompt(['Pick one.\n```json \n\u3000\t\n\n[{"name": "Trail Shoe"}]\n```\nThanks']);
      expect(reading.candidates.map((item) => item.name)).toEqual(['Trail Shoe']);
      expect(reading.prose).toBe('Pick one.\nThanks');
    });
  });
});

describe(listItemText.name, () => {
  it('captures what /^\\s*(?:[-*•]|\\d{1,3}[.)])\\s+(.+?)\\s*$/ captures, on many generated texts', () => {
    const next = seededRandom(11);
    const alphabet = ['a', ' ', ' ', '\t', '\u3000', '\n', '\r', '\u2028', '\u2029', '-', '*', '•', '1', '2', '.', ')', 'é'];
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      for (let length = Math.floor(next() * 12); length > 0; length--) text += alphabet[Math.floor(next() * alphabet.length)];
      const match = /^\s*(?:[-*•]|\d{1,3}[.)])\s+(.+?)\s*$/.exec(text);
      expect({ text, listed: listItemText(text) }).toEqual({ text, listed: match?.[1] });
    }
  });
});

describe.each([
  [splitAtDash.name, splitAtDash, /^(.+?)\s+[—–-]\s+(.+)$/],
  [splitAtParentheses.name, splitAtParentheses, /^(.+?)\s*\(([^()]+)\)\s*$/],
] as const)('%s', (_name, split, expression) => {
  it('captures what its regular expression captures, on many generated texts', () => {
    const next = seededRandom(_name.length);
    const alphabet = ['a', 'B', ' ', ' ', '\t', '\u00a0', '\n', '\r', '\u2028', '-', '—', '–', '(', ')', ',', '$9', 'é', '😀'];
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      for (let length = Math.floor(next() * 16); length > 0; length--) text += alphabet[Math.floor(next() * alphabet.length)];
      const match = expression.exec(text);
      expect({ text, split: split(text) }).toEqual({ text, split: match ? [match[1], match[2]] : undefined });
    }
  });
});

describe(findConjunction.name, () => {
  it('finds what /\\s+(?:and|or|&)\\s+/i finds, on many generated texts', () => {
    const next = seededRandom(7);
    const alphabet = ['a', 'A', 'n', 'N', 'd', 'o', 'R', 'r', '&', ' ', ' ', '\t', '\n', '\u00a0', 'x', 'é'];
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      for (let length = Math.floor(next() * 16); length > 0; length--) text += alphabet[Math.floor(next() * alphabet.length)];
      const match = /\s+(?:and|or|&)\s+/i.exec(text);
      expect({ text, found: findConjunction(text) }).toEqual({ text, found: match ? [match.index, match.index + match[0].length] : undefined });
    }
  });
});
