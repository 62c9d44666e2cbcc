import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig, ExtractorLogLevel, type ExtractorMessage } from '@microsoft/api-extractor';
import ts from 'typescript';

/** The repository's root folder. */
export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** The command that rewrites the reports after an intended change of a public API. */
export const updateCommand = 'npm run api-report';

/** One public entry point of a library, and the report that records its API. */
export interface ApiEntryPoint {
  /** The import specifier: `@keyless/messaging/testing`. */
  specifier: string;
  /** The library's folder, relative to the repository root: `libs/messaging`. */
  libraryFolder: string;
  /** The entry point's source, relative to the library folder: `src/testing/index.ts`. */
  source: string;
  /** The report's file name without `.api.md`, in `<libraryFolder>/review/`. */
  reportName: string;
}

/** Every public entry point of the libraries under libs/ (their package.json `exports`). */
export function libraryEntryPoints(root = repoRoot): ApiEntryPoint[] {
  const libraries = readdirSync(join(root, 'libs'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(root, 'libs', entry.name, 'package.json')))
    .map((entry) => entry.name)
    .sort();
  return libraries.flatMap((library) => {
    const libraryFolder = `libs/${library}`;
    const manifest = JSON.parse(readFileSync(join(root, libraryFolder, 'package.json'), 'utf8')) as { name: string; exports: Record<string, { '@keyless/source': string }> };
    return Object.entries(manifest.exports).map(([subpath, conditions]) => {
      const tail = subpath.replace(/^\.\/?/, '');
      return {
        specifier: tail ? `${manifest.name}/${tail}` : manifest.name,
        libraryFolder,
        source: conditions['@keyless/source'].replace(/^\.\//, ''),
        reportName: tail ? `${library}-${tail.replaceAll('/', '-')}` : library,
      };
    });
  });
}

/** What one entry point's report run found. */
export interface ApiReportResult {
  entryPoint: ApiEntryPoint;
  /** The report in the repository (`libs/x/review/x.api.md`). */
  reportPath: string;
  /** The report as the code is now: differs from `reportPath` when `changed` (check mode). */
  currentReportPath: string;
  /** The code's API differs from the checked-in report (in update mode: the report was rewritten). */
  changed: boolean;
  /** Compiler and extractor errors and warnings, as `file:line message`. */
  problems: string[];
}

/** Options of {@link runApiReports}. */
export interface ApiReportOptions {
  /** Rewrite the reports instead of comparing with them. **Default**: false (check). */
  update?: boolean;
  /** The entry points. **Default**: {@link libraryEntryPoints}. */
  entryPoints?: ApiEntryPoint[];
  /**
   * Folder for declarations and the reports as the code is now; inside the repository, so that the
   * declarations resolve the repository's node_modules (and outside any node_modules folder). **Default**: `tmp/api-reports`.
   */
  workFolder?: string;
  /** Repository root. **Default**: {@link repoRoot}. */
  root?: string;
}

/**
 * Emits declarations of the entry points (with the repository's TypeScript and tsconfig.base.json), then runs
 * api-extractor on each: check mode reports `changed` where the API differs from `review/<name>.api.md`;
 * update mode rewrites the report.
 */
export function runApiReports(options: ApiReportOptions = {}): ApiReportResult[] {
  const root = options.root ?? repoRoot;
  const entryPoints = options.entryPoints ?? libraryEntryPoints(root);
  const workFolder = options.workFolder ?? join(root, 'tmp/api-reports');
  rmSync(workFolder, { recursive: true, force: true });
  // The libraries' declarations twice: as the entry points (api-extractor takes a file under node_modules for
  // an external package's), and as installed packages (node_modules/@keyless/<library>), so that one library's
  // import of another is an external package's, as a consumer of the libraries sees it.
  const declarations = join(workFolder, 'declarations');
  const packages = join(workFolder, 'node_modules/@keyless');
  emitDeclarations(root, entryPoints, declarations);
  cpSync(declarations, packages, { recursive: true });
  mkdirSync(join(workFolder, 'reports'));
  const declarationOf = (entry: ApiEntryPoint): string => join(declarations, basename(entry.libraryFolder), entry.source.replace(/\.ts$/, '.d.ts'));
  for (const library of new Set(entryPoints.map((entry) => entry.libraryFolder))) {
    const manifest = JSON.parse(readFileSync(join(root, library, 'package.json'), 'utf8')) as { name: string; exports: Record<string, { '@keyless/source': string }> };
    const exports = Object.fromEntries(Object.entries(manifest.exports).map(([subpath, conditions]) => [subpath, { types: conditions['@keyless/source'].replace(/\.ts$/, '.d.ts') }]));
    writeFileSync(join(packages, basename(library), 'package.json'), JSON.stringify({ name: manifest.name, type: 'module', exports }));
  }
  return entryPoints.map((entryPoint) => {
    const reportPath = join(root, entryPoint.libraryFolder, 'review', `${entryPoint.reportName}.api.md`);
    const currentReportPath = join(workFolder, 'reports', `${entryPoint.reportName}.api.md`);
    const config = ExtractorConfig.prepare({
      configObjectFullPath: undefined,
      packageJsonFullPath: join(root, entryPoint.libraryFolder, 'package.json'),
      configObject: {
        projectFolder: root,
        mainEntryPointFilePath: declarationOf(entryPoint),
        compiler: {
          overrideTsconfig: {
            compilerOptions: { target: 'es2024', lib: ['es2024'], module: 'nodenext', moduleResolution: 'nodenext', types: ['node'], strict: true, skipLibCheck: true },
          },
        },
        apiReport: { enabled: true, reportFileName: entryPoint.reportName, reportFolder: join(workFolder, 'reports'), reportTempFolder: join(workFolder, 'reports-temp') },
        docModel: { enabled: false },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        messages: {
          compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
          extractorMessageReporting: {
            default: { logLevel: ExtractorLogLevel.Warning },
            // The libraries are internal to the repository: no @public/@beta release tags.
            'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None },
            // The report marks undocumented members itself; the lint of comments is not this check's job.
            'ae-undocumented': { logLevel: ExtractorLogLevel.None },
            // A type the API uses but the entry point does not export is noted in the report itself.
            'ae-forgotten-export': { logLevel: ExtractorLogLevel.None, addToApiReportFile: true },
            // A {@link} to a name the entry point does not export: noted in the report for its reviewer.
            'ae-unresolved-link': { logLevel: ExtractorLogLevel.None, addToApiReportFile: true },
          },
          tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
        },
      },
    });
    const problems: string[] = [];
    // api-extractor writes the report as the code is now into the work folder; the comparison with the
    // checked-in report is made here, after its paths are made independent of where the repository is.
    Extractor.invoke(config, {
      localBuild: true,
      messageCallback: (message: ExtractorMessage) => {
        // api-extractor's own console output is replaced by the caller's report of `problems`.
        message.handled = true;
        // Its notes about writing the report (created, copied) are not problems: the comparison is made below.
        if (message.messageId.startsWith('console-api-report-')) return;
        if (message.logLevel === ExtractorLogLevel.Error || message.logLevel === ExtractorLogLevel.Warning) {
          const where = message.sourceFilePath ? `${relative(root, message.sourceFilePath)}:${message.sourceFileLine ?? 0} ` : '';
          problems.push(`${where}${message.messageId}: ${message.text}`);
        }
      },
    });
    const current = readFileSync(currentReportPath, 'utf8').replaceAll(`${declarations}/`, '');
    writeFileSync(currentReportPath, current);
    const changed = !existsSync(reportPath) || readFileSync(reportPath, 'utf8') !== current;
    if (changed && options.update) {
      mkdirSync(dirname(reportPath), { recursive: true });
      writeFileSync(reportPath, current);
    }
    return { entryPoint, reportPath, currentReportPath, changed, problems };
  });
}

/** Declarations of the entry points and everything they import from libs/, under `outDir` (`<library>/src/…`). */
function emitDeclarations(root: string, entryPoints: ApiEntryPoint[], outDir: string): void {
  const base = ts.getParsedCommandLineOfConfigFile(
    join(root, 'tsconfig.base.json'),
    { declaration: true, emitDeclarationOnly: true, declarationMap: false, sourceMap: false, noEmit: false, outDir, rootDir: join(root, 'libs') },
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (diagnostic) => { throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')); } },
  );
  if (!base) throw new Error('tsconfig.base.json cannot be read');
  const program = ts.createProgram({ rootNames: entryPoints.map((entry) => join(root, entry.libraryFolder, entry.source)), options: base.options });
  const emitted = program.emit(undefined, undefined, undefined, true);
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics].filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (diagnostics.length) {
    const host = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' };
    throw new Error(`the libraries' declarations cannot be emitted:\n${ts.formatDiagnostics(diagnostics, host)}`);
  }
}
