import { readPrompt } from './prompt-reader.js';

describe(readPrompt.name, () => {
  describe('when a listed product ends in a long run of dots', () => {
    it('reads the list in time proportional to the prompt', () => {
      // Trimmed with /[.!?]+$/, 20,000 dots took some 3 s (and 80,000 some 30 s) of the local Azure's one thread:
      // any caller with the OpenAI User role could hold every listener.
      const prompt = `Products: trail shoe${'.'.repeat(20_000)}x, rain jacket`;
      const started = performance.now();
      const reading = readPrompt([prompt]);
      expect(performance.now() - started).toBeLessThan(250);
      expect(reading.candidates.map((item) => item.name)).toEqual([`trail shoe${'.'.repeat(20_000)}x`, 'rain jacket']);
    });
  });
});
