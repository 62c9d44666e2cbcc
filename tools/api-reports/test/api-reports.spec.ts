import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { libraryEntryPoints, repoRoot, runApiReports, updateCommand, type ApiEntryPoint } from '../src/index.js';

/** A work folder of this run inside the repository's ignored tmp/ (declarations must resolve its node_modules). */
const workFolder = (name: string): string => join(repoRoot, 'tmp', `api-reports-${name}-${process.pid}`);

describe('API reports (libs/*/review/*.api.md)', () => {
  it('names a report for every entry point of every library', () => {
    expect(libraryEntryPoints().map((entry) => `${entry.specifier} → ${entry.libraryFolder}/review/${entry.reportName}.api.md`)).toEqual([
      '@keyless/auth → libs/auth/review/auth.api.md',
      '@keyless/contracts → libs/contracts/review/contracts.api.md',
      '@keyless/database → libs/database/review/database.api.md',
      '@keyless/database/testing → libs/database/review/database-testing.api.md',
      '@keyless/messaging → libs/messaging/review/messaging.api.md',
      '@keyless/messaging/testing → libs/messaging/review/messaging-testing.api.md',
      '@keyless/observability → libs/observability/review/observability.api.md',
    ]);
  });

  describe('of the repository', () => {
    const folder = workFolder('check');
    afterAll(() => rmSync(folder, { recursive: true, force: true }));

    it('match the public API of each library as the code is now', () => {
      const results = runApiReports({ workFolder: folder });
      const problems = results.flatMap((result) => result.problems.map((problem) => `${result.entryPoint.specifier}: ${problem}`));
      expect(problems).toEqual([]);
      const changed = results.filter((result) => result.changed);
      if (changed.length) {
        const lines = changed.map((result) => `${relative(repoRoot, result.reportPath)} differs from the code's API (now: ${result.currentReportPath})`);
        throw new Error(`A public API changed:\n${lines.join('\n')}\nIf the change is intended, run \`${updateCommand}\` and commit the reports.`);
      }
      expect(results).toHaveLength(libraryEntryPoints().length);
    }, 300_000);
  });

  describe('when a library adds an export', () => {
    // A one-file library in a folder shaped like the repository, reported, then changed.
    const root = workFolder('planted');
    const entry: ApiEntryPoint = { specifier: '@keyless/sample', libraryFolder: 'libs/sample', source: 'src/index.ts', reportName: 'sample' };
    const source = join(root, 'libs/sample/src/index.ts');

    beforeAll(() => {
      mkdirSync(join(root, 'libs/sample/src'), { recursive: true });
      cpSync(join(repoRoot, 'tsconfig.base.json'), join(root, 'tsconfig.base.json'));
      writeFileSync(join(root, 'libs/sample/package.json'), JSON.stringify({ name: '@keyless/sample', type: 'module', exports: { '.': { '@keyless/source': './src/index.ts' } } }));
      writeFileSync(source, '/** Greets. */\nexport function greet(name: string): string {\n  return `hello ${name}`;\n}\n');
    });
    afterAll(() => rmSync(root, { recursive: true, force: true }));

    it('writes the report in update mode, then finds it unchanged, then shows the new export as a change', () => {
      const options = { root, entryPoints: [entry], workFolder: join(root, 'work') };
      const [created] = runApiReports({ ...options, update: true });
      expect(created!.changed).toBe(true);
      expect(readFileSync(join(root, 'libs/sample/review/sample.api.md'), 'utf8')).toContain('export function greet(name: string): string;');

      expect(runApiReports(options)[0]!.changed).toBe(false);

      writeFileSync(source, `${readFileSync(source, 'utf8')}\n/** Parts. */\nexport const parts = 3;\n`);
      const [changed] = runApiReports(options);
      expect(changed!.changed).toBe(true);
      expect(readFileSync(changed!.currentReportPath, 'utf8')).toContain('export const parts = 3;');
      expect(readFileSync(changed!.reportPath, 'utf8')).not.toContain('parts');
    }, 120_000);
  });
});
