import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '@keyless/launcher';

/** Debian's Chromium: `.ci/run` installs it; the tests never download a browser. */
export const chromiumPath = '/usr/bin/chromium';

/** Where screenshots go (gitignored; CI keeps them as artifacts). */
export const artifactsDir = join(repoRoot, 'apps/portal-e2e/artifacts');

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** A headless Chromium with a fresh profile that trusts exactly the local Azure's server certificate. */
export interface TestBrowser {
  context: BrowserContext;
  /** Messages the browser logged about Content-Security-Policy violations (must stay empty). */
  cspViolations: string[];
  close(): Promise<void>;
}

/**
 * Launches `/usr/bin/chromium` headless through playwright-core with a fresh `--user-data-dir`. The portal's
 * certificate is trusted by its public key (`--ignore-certificate-errors-spki-list`), so no other certificate error
 * is ignored. Fails with the install command when Chromium is missing: the browser tests never skip.
 */
export async function launchBrowser(serverCertPath: string): Promise<TestBrowser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `Chromium is not installed at ${chromiumPath}; the portal's browser tests need it. Install it with ` +
        '`sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium` (Debian/Ubuntu; see DEVELOPERS.md).',
    );
  }
  const spki = createHash('sha256').update(new X509Certificate(readFileSync(serverCertPath)).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  const profile = mkdtempSync(join(tmpdir(), 'portal-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spki}`,
    ],
    viewport: { width: 1280, height: 900 },
  });
  const cspViolations: string[] = [];
  const watch = (page: Page): void => {
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    cspViolations,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as a test artifact. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(artifactsDir, { recursive: true });
  await page.screenshot({ path: join(artifactsDir, `${name}.png`), fullPage: true });
}

/** An axe-core violation, as much of it as a failure message needs. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * Runs axe-core (WCAG 2.x A and AA rules) in the page and returns the serious and critical violations. The script is
 * evaluated through the DevTools protocol, which the page's Content-Security-Policy does not govern, so the CSP stays on.
 */
export async function seriousAxeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    // The test project has no DOM types: the page's document, as axe takes it.
    const result = await axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
