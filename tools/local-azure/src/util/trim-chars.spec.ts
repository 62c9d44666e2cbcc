import { trimChars } from './trim-chars.js';

describe(trimChars.name, () => {
  it('takes the characters off both ends, or off the end only', () => {
    expect(trimChars('//orders/$management/', '/')).toBe('orders/$management');
    expect(trimChars('/orders/', '/', 'end')).toBe('/orders');
    expect(trimChars('///', '/')).toBe('');
    expect(trimChars('a//b', '/')).toBe('a//b');
    expect(trimChars('Trail shoes.!?', '.!?', 'end')).toBe('Trail shoes');
  });

  it('takes time proportional to the text however many of the characters are inside it', () => {
    // /^\/+|\/+$/g took some 0.7–2 s on 40,000 slashes (growing with the square); one pass takes well under 1 ms.
    const text = `a${'/'.repeat(80_000)}b`;
    const started = performance.now();
    expect(trimChars(text, '/')).toBe(text);
    expect(performance.now() - started).toBeLessThan(500);
  });
});
