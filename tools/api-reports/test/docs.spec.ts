import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { libraryEntryPoints, repoRoot } from '../src/index.js';

const read = (path: string): string => readFileSync(join(repoRoot, path), 'utf8');

/** Markdown without its fenced code blocks (a link or heading inside one is an example, not part of the page). */
const prose = (markdown: string): string => markdown.replace(/^```[\s\S]*?^```/gm, '');

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const text = heading!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count ? `${slug}-${count}` : slug);
  }
  return anchors;
}

/** Whether git ignores `path`: a folder the tests or tools make at run time (screenshots, builds), named all the same. */
function ignoredByGit(path: string): boolean {
  try {
    execFileSync('git', ['check-ignore', '-q', '--no-index', path], { cwd: repoRoot, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// The libraries' READMEs and the repository's docs are what a newcomer trusts literally; these keep them from drifting.
describe('the documentation', () => {
  const markdownFiles = execFileSync('git', ['ls-files', '*.md'], { cwd: repoRoot, encoding: 'utf8' })
    .split('\n')
    .filter((file) => file && !/(^|\/)review\//.test(file));

  it('links only to files and headings that exist (relative links, anchors included)', () => {
    const broken: string[] = [];
    for (const file of markdownFiles) {
      for (const [, target] of prose(read(file)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z][a-z+.-]*:/i.test(target!)) continue;
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const absolute = path ? resolve(repoRoot, dirname(file), path) : join(repoRoot, file);
        if (!existsSync(absolute)) broken.push(`${file}: ${target} (no ${relative(repoRoot, absolute)})`);
        else if (anchor !== undefined && statSync(absolute).isFile() && absolute.endsWith('.md') && !anchorsOf(readFileSync(absolute, 'utf8')).has(anchor)) {
          broken.push(`${file}: ${target} (no heading #${anchor})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('names only repository paths that exist (`apps/…`, `libs/…`, `tools/…`, `infra/…`, `bench/…`, `docs/…` in code spans)', () => {
    const missing: string[] = [];
    for (const file of markdownFiles) {
      for (const [, path] of read(file).matchAll(/`((?:apps|libs|tools|infra|bench|docs)\/[\w./-]+)`/g)) {
        if (existsSync(join(repoRoot, path!))) continue;
        if (!ignoredByGit(path!)) missing.push(`${file}: ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("names every Nx project in README.md's folder tree and in docs/architecture.md's table of projects", () => {
    const projects = execFileSync('git', ['ls-files', '*project.json'], { cwd: repoRoot, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((file) => dirname(file));
    const tree = /^```\n(apps\/[\s\S]*?)^```/m.exec(read('README.md'))?.[1] ?? '';
    const architecture = read('docs/architecture.md');
    const unnamed = projects.flatMap((project) => [
      ...(new RegExp(`(^|[\\s,])${project}/?(\\s|:|,|$)`, 'm').test(tree) ? [] : [`README.md: ${project}`]),
      ...(architecture.includes(`\`${project}\``) ? [] : [`docs/architecture.md: ${project}`]),
    ]);
    expect(unnamed).toEqual([]);
  });

  it("lists every library entry point and its report in tools/api-reports/README.md's table", () => {
    const rows = [...read('tools/api-reports/README.md').matchAll(/^\| `(@keyless\/[^`]+)` \| `([^`]+)` \|$/gm)].map(([, specifier, report]) => `${specifier} → ${report}`);
    const expected = libraryEntryPoints().map((entry) => `${entry.specifier} → ${entry.libraryFolder}/review/${entry.reportName}.api.md`);
    expect(rows.sort()).toEqual(expected.sort());
  });

  // Names, patterns and schemas, documented where they are used (README, docs/architecture.md, DEVELOPERS.md "Adding a request").
  const withoutReadme = ['libs/contracts'];

  it('names, in each library README, every function, class and constant its entry points export', () => {
    const unnamed: string[] = [];
    for (const entry of libraryEntryPoints()) {
      if (withoutReadme.includes(entry.libraryFolder)) continue;
      const readme = read(join(entry.libraryFolder, 'README.md'));
      const report = read(join(entry.libraryFolder, 'review', `${entry.reportName}.api.md`));
      for (const [, name] of report.matchAll(/^export (?:declare )?(?:abstract )?(?:class|function|const|enum) (\w+)/gm)) {
        if (!new RegExp(`\\b${name}\\b`).test(readme)) unnamed.push(`${entry.specifier}: ${name} (not in ${entry.libraryFolder}/README.md)`);
      }
    }
    expect(unnamed).toEqual([]);
  });
});
