import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from './config/local-azure-config.js';
import { homeFormat, LocalAzureHome } from './home.js';

describe(LocalAzureHome.name, () => {
  let home: LocalAzureHome;
  beforeEach(() => {
    home = new LocalAzureHome(mkdtempSync(join(tmpdir(), 'local-azure-home-')));
  });
  afterEach(() => rmSync(home.root, { recursive: true, force: true }));

  const marker = () => JSON.parse(readFileSync(home.formatFile, 'utf8')) as unknown;

  describe('claimFormat', () => {
    it('marks a home that has no marker (new, or written before the marker existed) with this version format', () => {
      home.claimFormat();
      expect(marker()).toEqual({ format: homeFormat });
    });

    it('takes a home this version marked', () => {
      home.claimFormat();
      expect(() => home.claimFormat()).not.toThrow();
      expect(marker()).toEqual({ format: homeFormat });
    });

    it('refuses a home a newer version marked, naming the home and the choices, and leaves the marker as it was', () => {
      writeFileSync(home.formatFile, JSON.stringify({ format: homeFormat + 1 }));
      expect(() => home.claimFormat()).toThrow(ConfigError);
      expect(() => home.claimFormat()).toThrow(`${home.root} was written by a newer version of the local Azure (home format ${homeFormat + 1}`);
      expect(marker()).toEqual({ format: homeFormat + 1 });
    });

    it.each(['', '{"format": "2"}', '{"format": 0}', '[1]'])('refuses a marker it cannot read (%j), naming the file', (text) => {
      writeFileSync(home.formatFile, text);
      expect(() => home.claimFormat()).toThrow(`${home.formatFile} is not a format marker this version can read`);
    });
  });
});
