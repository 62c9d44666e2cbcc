import { z } from 'zod';
import { readSetting, settingsSchema } from './settings.js';

describe(readSetting.name, () => {
  it('reads a set value as it is', () => {
    expect(readSetting({ HOME_DIR: ' /srv/x ' }, 'HOME_DIR')).toBe(' /srv/x ');
  });

  it.each([[''], ['   '], ['\t']])('reads the blank value %j as unset', (value) => {
    expect(readSetting({ HOME_DIR: value }, 'HOME_DIR')).toBeUndefined();
  });

  it('reads a missing variable as unset', () => {
    expect(readSetting({}, 'HOME_DIR')).toBeUndefined();
  });
});

describe(settingsSchema.name, () => {
  const schema = settingsSchema({
    PORT: z.coerce.number().int().min(1).default(3000),
    DATA_DIR: z.string().min(1).default('.data'),
    ENDPOINT: z.url().optional(),
    LEVEL: z.enum(['info', 'debug']).default('info'),
  });

  it('gives blank variables their defaults, and leaves blank optional ones absent', () => {
    expect(schema.parse({ PORT: '', DATA_DIR: ' ', ENDPOINT: '', LEVEL: '' })).toEqual({ PORT: 3000, DATA_DIR: '.data', LEVEL: 'info' });
  });

  it('still validates what is set', () => {
    expect(schema.parse({ PORT: '8080', ENDPOINT: 'https://example.test' })).toEqual({ PORT: 8080, DATA_DIR: '.data', ENDPOINT: 'https://example.test', LEVEL: 'info' });
    expect(schema.safeParse({ PORT: 'eighty' }).success).toBe(false);
  });
});
