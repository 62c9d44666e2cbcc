import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

type Input = string | Record<string, unknown>;
interface Targets {
  targets?: Record<string, { inputs?: Input[] }>;
}
interface NxJson {
  namedInputs: Record<string, Input[]>;
  targetDefaults: Record<string, { inputs?: Input[] }>;
}

const nx = JSON.parse(readFileSync(join(repoRoot, 'nx.json'), 'utf8')) as NxJson;
const projectFiles = execFileSync('git', ['ls-files', '*project.json'], { cwd: repoRoot, encoding: 'utf8' }).trim().split('\n');
const projectRoots = projectFiles.map((file) => dirname(file));

/** Every `inputs` list: nx.json's named inputs and target defaults, and each project's own targets. */
const inputLists: { where: string; inputs: Input[] }[] = [
  ...Object.entries(nx.namedInputs).map(([name, inputs]) => ({ where: `nx.json namedInputs.${name}`, inputs })),
  ...Object.entries(nx.targetDefaults).map(([target, { inputs = [] }]) => ({ where: `nx.json targetDefaults.${target}`, inputs })),
  ...projectFiles.flatMap((file) =>
    Object.entries((JSON.parse(readFileSync(join(repoRoot, file), 'utf8')) as Targets).targets ?? {}).map(([target, { inputs = [] }]) => ({ where: `${file} ${target}`, inputs })),
  ),
];
const fileInputs = inputLists.flatMap(({ where, inputs }) =>
  inputs.filter((input): input is string => typeof input === 'string' && input.includes('{')).map((input) => ({ where, input, path: input.replace(/^!/, '') })),
);
const isGlob = (path: string): boolean => /[*?[\]]/.test(path);

// An input naming a file that does not exist matches nothing: a change to the real file then invalidates no
// cache and marks no project affected (nx.json once named eslint.config.mjs for eslint.config.js).
describe('nx.json inputs', () => {
  it.each(fileInputs.filter(({ path }) => path.startsWith('{workspaceRoot}/') && !isGlob(path)).map(({ where, input, path }) => [input, where, path]))(
    '%s (%s) names a file of the repository',
    (_input, _where, path) => {
      expect(existsSync(join(repoRoot, path.slice('{workspaceRoot}/'.length)))).toBe(true);
    },
  );

  it.each(fileInputs.filter(({ path }) => path.startsWith('{projectRoot}/') && !isGlob(path)).map(({ where, input, path }) => [input, where, path]))(
    '%s (%s) names a file at least one project has',
    (_input, _where, path) => {
      const name = path.slice('{projectRoot}/'.length);
      expect(projectRoots.filter((root) => existsSync(join(repoRoot, root, name)))).not.toEqual([]);
    },
  );

  it('refers only to named inputs that nx.json declares', () => {
    const references = inputLists.flatMap(({ where, inputs }) =>
      inputs.filter((input): input is string => typeof input === 'string' && !input.includes('{')).map((input) => ({ where, name: input.replace(/^\^/, '') })),
    );
    expect(references.filter(({ name }) => !(name in nx.namedInputs))).toEqual([]);
    expect(references.length).toBeGreaterThan(0);
  });

  it('covers the files every lint, test and build reads from the workspace root', () => {
    const named = new Set(fileInputs.map(({ path }) => path));
    for (const file of ['eslint.config.js', 'jest.preset.js', '.swcrc', 'tsconfig.base.json', 'package-lock.json']) expect(named).toContain(`{workspaceRoot}/${file}`);
  });
});
