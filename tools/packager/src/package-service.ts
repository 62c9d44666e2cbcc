import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** Why a service cannot be packed; the message says what to fix. */
export class PackageError extends Error {
  override readonly name = 'PackageError';
}

export interface PackageServiceOptions {
  /** Repository root (holds package.json, package-lock.json, node_modules, apps/, libs/). */
  root: string;
  /** The service: `apps/<service>` with its build in `dist/`. */
  service: string;
  /** Where the package goes; replaced if it exists. Default: `dist/deploy/<service>` (git-ignored, outside every project). */
  outDir?: string;
}

/** What went into a package. */
export interface ServicePackage {
  outDir: string;
  /** npm packages the service imports at run time, with their installed versions. */
  dependencies: Record<string, string>;
  /** Workspace libraries it reaches (copied as packages under node_modules/@keyless). */
  workspaceLibraries: string[];
  /** Every npm package copied (the dependencies and everything they need). */
  packageCount: number;
  bytes: number;
}

interface WorkspacePackage {
  name: string;
  dir: string;
  manifest: { name: string; exports?: Record<string, unknown> };
}

interface LockEntry {
  version?: string;
  dev?: boolean;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  optional?: boolean;
}

/**
 * Packs a built service into a folder that runs on its own with `node dist/main.js`: the service's build, the
 * workspace libraries it reaches (their builds, as packages in node_modules/@keyless) and the npm packages
 * they import at run time with everything those need, copied from the workspace's installed node_modules
 * at the versions package-lock.json pins — the bits the tests ran, no second install. The access doctor
 * comes along (`npm run doctor` in the folder, with the service's settings as its environment).
 *
 * What is reached is found by following the imports of the built JavaScript from `dist/main.js`, so test
 * code and development tools stay out. A run-time import of a package that package.json does not list under
 * `dependencies` is refused: it works in the workspace only by accident of hoisting.
 */
export function packageService(options: PackageServiceOptions): ServicePackage {
  const root = resolve(options.root);
  const serviceDir = join(root, 'apps', options.service);
  const entry = join(serviceDir, 'dist', 'main.js');
  if (!existsSync(join(serviceDir, 'package.json'))) throw new PackageError(`there is no service "${options.service}" (no apps/${options.service}/package.json)`);
  if (!existsSync(entry)) throw new PackageError(`apps/${options.service} is not built (no dist/main.js); run: npx nx run ${options.service}:build`);
  const outDir = resolve(options.outDir ?? join(root, 'dist', 'deploy', options.service));
  const workspace = workspacePackages(root);
  // The folder is deleted first: never one that holds the repository or a project.
  for (const kept of [root, ...[...workspace.values()].map((p) => p.dir)]) {
    if (outDir === kept || !relative(outDir, kept).startsWith('..')) {
      throw new PackageError(`${outDir} holds ${relative(root, kept) || 'the repository'}, and the package folder is emptied first: choose another --out`);
    }
  }
  const rootManifest = readJson<{ dependencies?: Record<string, string>; devDependencies?: Record<string, string> }>(join(root, 'package.json'));
  const lock = readJson<{ packages: Record<string, LockEntry> }>(join(root, 'package-lock.json')).packages;

  // The access doctor goes along (npm run doctor in the deployed folder), with the two files it checks against.
  const doctor = workspace.get(doctorPackage);
  const doctorEntry = doctor && join(doctor.dir, 'dist', 'main.js');
  if (!doctorEntry || !existsSync(doctorEntry)) throw new PackageError('tools/doctor is not built (no dist/main.js); run: npx nx run doctor:build');
  const reached = reachableImports([entry, doctorEntry], workspace);
  reached.libraries.add(doctorPackage);
  const dependencies: Record<string, string> = {};
  for (const [name, importer] of [...reached.externals].sort(([a], [b]) => a.localeCompare(b))) {
    if (!rootManifest.dependencies?.[name]) {
      const where = rootManifest.devDependencies?.[name] ? 'lists it under devDependencies' : 'does not list it';
      throw new PackageError(`${relative(root, importer)} imports ${name} at run time, but package.json ${where}: add it to dependencies (npm install --save-exact ${name})`);
    }
    const installed = lock[`node_modules/${name}`];
    if (!installed?.version) throw new PackageError(`${name} is not installed; run npm ci`);
    dependencies[name] = installed.version;
  }

  const packages = lockClosure(root, lock, Object.keys(dependencies));
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  cpSync(join(serviceDir, 'dist'), join(outDir, 'dist'), { recursive: true });
  for (const key of packages) {
    const from = join(root, key);
    const nested = join(from, 'node_modules');
    // Nested node_modules hold packages of their own lock entries: copied only when reached.
    cpSync(from, join(outDir, key), { recursive: true, filter: (source) => source !== nested && !source.startsWith(nested + sep) });
  }
  // Workspace libraries go where Node resolves them (node_modules/@keyless/…) and, for npm, to
  // workspace_modules/ as the file: dependencies package.json names: an `npm install` in the package
  // (App Service's build, if someone turns it on) then links them instead of deleting them as extraneous.
  const workspaceLibraries = [...reached.libraries].sort();
  for (const name of workspaceLibraries) {
    const library = workspace.get(name)!;
    for (const folder of ['node_modules', 'workspace_modules']) {
      const target = join(outDir, folder, ...name.split('/'));
      cpSync(join(library.dir, 'dist'), join(target, 'dist'), { recursive: true });
      writeJson(join(target, 'package.json'), { ...library.manifest, exports: builtExports(library.manifest.exports) });
      if (name === doctorPackage) for (const file of doctorFiles) cpSync(join(root, file), join(target, file));
    }
  }
  writeJson(join(outDir, 'package.json'), {
    name: `keyless-${options.service}`,
    private: true,
    type: 'module',
    description: `Keyless ${options.service}, packed by tools/packager: node_modules is complete, nothing to install.`,
    engines: { node: '>=24' },
    scripts: { start: 'node dist/main.js', doctor: `node node_modules/${doctorPackage}/dist/main.js` },
    dependencies: { ...dependencies, ...Object.fromEntries(workspaceLibraries.map((name) => [name, `file:./workspace_modules/${name}`])) },
  });
  return { outDir, dependencies, workspaceLibraries, packageCount: packages.size, bytes: folderBytes(outDir) };
}

const doctorPackage = '@keyless/doctor';
/** What the doctor reads besides its code: it finds them in the nearest infra/ above it. */
const doctorFiles = ['infra/access.json', 'infra/servicebus-topology.json'];

/** Packages of the workspace (apps, libs, tools) by name. */
function workspacePackages(root: string): Map<string, WorkspacePackage> {
  const found = new Map<string, WorkspacePackage>();
  for (const group of ['apps', 'libs', 'tools']) {
    if (!existsSync(join(root, group))) continue;
    for (const name of readdirSync(join(root, group))) {
      const manifestPath = join(root, group, name, 'package.json');
      if (!existsSync(manifestPath)) continue;
      const manifest = readJson<WorkspacePackage['manifest']>(manifestPath);
      found.set(manifest.name, { name: manifest.name, dir: dirname(manifestPath), manifest });
    }
  }
  return found;
}

/** Follows static and literal dynamic imports from `entries` through relative files and workspace libraries. */
function reachableImports(entries: string[], workspace: Map<string, WorkspacePackage>): { externals: Map<string, string>; libraries: Set<string> } {
  const externals = new Map<string, string>();
  const libraries = new Set<string>();
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { fileName: specifier } of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
      if (specifier.startsWith('.')) {
        queue.push(resolve(dirname(file), specifier));
        continue;
      }
      if (specifier.startsWith('node:') || isBuiltin(specifier)) continue;
      const name = packageName(specifier);
      const library = workspace.get(name);
      if (!library) {
        if (!externals.has(name)) externals.set(name, file);
        continue;
      }
      libraries.add(name);
      const target = exportTarget(library, `.${specifier.slice(name.length)}`);
      if (!target) throw new PackageError(`${file} imports ${specifier}, which ${name}'s package.json does not export`);
      queue.push(join(library.dir, target));
    }
  }
  return { externals, libraries };
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The built file a workspace package exports at `subpath` (`.` or `./testing`). */
function exportTarget(library: WorkspacePackage, subpath: string): string | undefined {
  const value = library.manifest.exports?.[subpath];
  if (typeof value === 'string') return value;
  const conditions = value as Record<string, unknown> | undefined;
  return typeof conditions?.['default'] === 'string' ? conditions['default'] : undefined;
}

/** The exports map with only the built files (the `@keyless/source` condition points at sources, not shipped). */
function builtExports(exports: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!exports) return undefined;
  return Object.fromEntries(Object.entries(exports).map(([subpath, value]) => [subpath, typeof value === 'string' ? value : (value as Record<string, unknown>)['default']]));
}

/**
 * The lock entries (`node_modules/...` paths) of `names` and everything they need, resolved as Node does:
 * from the dependent's own nested node_modules up to the top.
 */
function lockClosure(root: string, lock: Record<string, LockEntry>, names: string[]): Set<string> {
  const closure = new Set<string>();
  const visit = (key: string): void => {
    if (closure.has(key)) return;
    closure.add(key);
    const entry = lock[key]!;
    // Optional peers (swagger's typescript, say) are left out even where the workspace installed them for its tools.
    const requiredPeers = Object.keys(entry.peerDependencies ?? {}).filter((name) => !entry.peerDependenciesMeta?.[name]?.optional);
    const needed = new Set([...requiredPeers, ...Object.keys(entry.optionalDependencies ?? {}), ...Object.keys(entry.dependencies ?? {})]);
    for (const name of needed) {
      const found = resolveFrom(lock, key, name);
      if (found && lock[found]!.link) continue;
      // Optional dependencies are not needed where they are not installed (another platform's binaries).
      const optional = Boolean(entry.optionalDependencies?.[name]) || lock[found ?? '']?.optional === true;
      if (found && existsSync(join(root, found))) visit(found);
      else if (!optional) throw new PackageError(`${key} needs ${name}, which is not installed; run npm ci`);
    }
  };
  for (const name of names) visit(`node_modules/${name}`);
  return closure;
}

function resolveFrom(lock: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const key = `${base}/node_modules/${name}`;
    if (lock[key]) return key;
    const parent = base.lastIndexOf('/node_modules/');
    if (parent < 0) return lock[`node_modules/${name}`] ? `node_modules/${name}` : undefined;
    base = base.slice(0, parent);
  }
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const stats = statSync(join(dir, name), { throwIfNoEntry: false });
    if (stats?.isFile()) total += stats.size;
  }
  return total;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
