import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { demoCatalog, freePort, loadCatalog, repoRoot, startSystem, type RunningSystem, type StorefrontCaller } from '@keyless/launcher';
import { runToEnd } from '@keyless/local-azure/testing';
import { launchBrowser, screenshot, seriousAxeViolations, type TestBrowser } from './browser.js';

/** `npm run -s local-azure -- <args>` against the running system's home, as an operator types it. */
async function localAzure(system: RunningSystem, ...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runToEnd(process.execPath, [join(repoRoot, 'tools/local-azure/dist/main.js'), ...args], { env: { ...process.env, LOCAL_AZURE_HOME: system.home } });
  if (code !== 0) throw new Error(`local-azure ${args.join(' ')} exited ${code}: ${stderr}`);
  return stdout.trim();
}

const linkLifetimeInSeconds = 5;

describe('The local portal, in a real browser', () => {
  let system: RunningSystem;
  let storefront: StorefrontCaller;
  let browser: TestBrowser;
  let page: Page;
  let portalUrl: string;
  let similarPath: string;
  const scratch = mkdtempSync(join(tmpdir(), 'portal-e2e-'));

  beforeAll(async () => {
    const [gatewayPort, imagePort] = [await freePort(), await freePort()];
    const catalog = demoCatalog({ imageBaseUrl: `http://127.0.0.1:${imagePort}/images`, variantsPerType: 1 }).slice(0, 3);
    system = await startSystem({
      home: join(scratch, 'state'),
      gatewayPort,
      images: { products: catalog, port: imagePort },
      localAzureConfig: { alerts: { evaluationIntervalInSeconds: 1 }, portal: { linkLifetimeInSeconds } },
      serviceEnv: { gateway: { REQUEST_TIMEOUT_MS: '4000' } },
    });
    storefront = await system.storefront();
    await loadCatalog(storefront, catalog);
    similarPath = `/v1/products/${catalog[0]!.product.id}/similar?limit=2`;
    portalUrl = system.portalUrl!;
    browser = await launchBrowser(join(system.home, 'tls/server.pem'));
    page = await browser.context.newPage();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await storefront?.close();
    await system?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  const visit = async (path: string) => {
    const response = await page.goto(new URL(path, portalUrl).href);
    return response!.status();
  };
  const signIn = async () => {
    expect(await visit(await localAzure(system, 'portal'))).toBe(200);
    await page.getByText(/^Signed in as /).waitFor();
  };

  it('has no anonymous access', async () => {
    expect(await visit('/iam')).toBe(401);
    await expect(page.getByRole('alert').textContent()).resolves.toContain('npm run -s local-azure -- portal');
  });

  it('signs in with the one-time link the CLI prints', async () => {
    await signIn();
    expect(new URL(page.url()).pathname).toBe('/');
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Overview');
    await screenshot(page, '01-overview');
  });

  it('refuses a link that was used, and one that expired', async () => {
    const link = await localAzure(system, 'portal');
    const fresh = await browser.context.newPage();
    expect((await fresh.goto(link))!.status()).toBe(200);
    expect((await fresh.goto(link))!.status()).toBe(401);
    await expect(fresh.getByRole('alert').textContent()).resolves.toContain('already been used');
    const late = await localAzure(system, 'portal');
    await new Promise((resolve) => setTimeout(resolve, linkLifetimeInSeconds * 1000 + 500));
    expect((await fresh.goto(late))!.status()).toBe(401);
    await expect(fresh.getByRole('alert').textContent()).resolves.toContain('has expired');
    await screenshot(fresh, '02-expired-link');
    await fresh.close();
  }, 30_000);

  it('shows the one identity shared by the three services, and each host with its system-assigned identity', async () => {
    expect(await visit('/identities')).toBe(200);
    const shared = page.getByRole('row', { name: /^id-keyless / });
    await expect(shared.textContent()).resolves.toContain('Shared by 3 hosts: gateway, recommendation, vision');
    for (const host of ['gateway', 'recommendation', 'vision', 'storefront']) {
      await expect(page.getByRole('row', { name: new RegExp(`^${host} `) }).textContent()).resolves.toMatch(/Off/);
    }
    await screenshot(page, '03-identities');
  });

  it('breaks the gateway with a 503 when the OpenAI role is removed in IAM, and shows the alert', async () => {
    expect((await storefront.fetch(similarPath)).status).toBe(200);
    const openAi = system.hostEnv('recommendation').AZURE_OPENAI_RESOURCE_ID!;
    expect(await visit(`/iam?scope=${encodeURIComponent(openAi)}`)).toBe(200);
    await page.getByRole('button', { name: /^Remove Cognitive Services OpenAI User of id-keyless/ }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Remove role assignment');
    await expect(page.locator('main').textContent()).resolves.toContain('The hosts gateway, recommendation, vision run as this identity');
    await page.getByRole('button', { name: 'Yes, remove' }).click();
    await page.getByRole('status').filter({ hasText: 'Removed Cognitive Services OpenAI User' }).waitFor();
    await screenshot(page, '04-iam-removed');

    const refused = await storefront.fetch(similarPath);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { type: string }).type).toBe('https://keyless.dev/problems/azure-access-unavailable');

    expect(await visit('/alerts')).toBe(200);
    const firing = page.getByRole('table', { name: /alerts firing/ });
    await firing.getByRole('row', { name: /Access denied to the shared identity/ }).waitFor({ timeout: 60_000 });
    await expect(firing.textContent()).resolves.toContain('Role assignment deleted on a resource the system uses');
    await expect(firing.getByRole('row', { name: /Access denied to the shared identity/ }).textContent()).resolves.toContain('chat/completions');
    await screenshot(page, '05-alert-fired');
  }, 120_000);

  it('resolves the alert once the role is restored in IAM and the call succeeds again', async () => {
    const openAi = system.hostEnv('recommendation').AZURE_OPENAI_RESOURCE_ID!;
    expect(await visit(`/iam?scope=${encodeURIComponent(openAi)}`)).toBe(200);
    await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Cognitive Services OpenAI User' });
    await page.getByLabel('Principal', { exact: true }).selectOption({ label: 'id-keyless (user-assigned)' });
    await page.getByRole('button', { name: 'Add role assignment' }).click();
    await page.getByRole('status').filter({ hasText: 'Assigned Cognitive Services OpenAI User' }).waitFor();

    expect((await storefront.fetch(similarPath)).status).toBe(200);
    expect(await visit('/alerts')).toBe(200);
    const resolved = page.getByRole('table', { name: /resolved alert/ });
    await resolved.getByRole('row', { name: /Access denied to the shared identity/ }).waitFor({ timeout: 60_000 });
    await expect(resolved.getByRole('row', { name: /Access denied to the shared identity/ }).textContent()).resolves.toContain('was allowed again');
    await screenshot(page, '06-alert-resolved');
  }, 120_000);

  it('says an assignment exists instead of "Assigned", keeps what was chosen, asks before removing, and names whose role a removal took', async () => {
    const vision = system.hostEnv('vision').AZURE_VISION_RESOURCE_ID!;
    const add = async () => {
      expect(await visit(`/iam?scope=${encodeURIComponent(vision)}`)).toBe(200);
      await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Reader' });
      await page.getByLabel('Principal', { exact: true }).selectOption({ label: 'id-storefront (user-assigned)' });
      await page.getByRole('button', { name: 'Add role assignment' }).click();
    };
    await add();
    await page.getByRole('status').filter({ hasText: 'Assigned Reader to id-storefront (user-assigned) on vision-keyless-local' }).waitFor();
    await add();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('RoleAssignmentExists: id-storefront (user-assigned) already has Reader on vision-keyless-local (Microsoft.CognitiveServices/accounts); nothing changed.');
    await expect(page.getByLabel('Role', { exact: true }).inputValue()).resolves.toBe(await page.getByRole('option', { name: 'Reader', exact: true }).getAttribute('value'));
    await expect(page.getByLabel('Principal', { exact: true }).locator('option:checked').textContent()).resolves.toBe('id-storefront (user-assigned)');
    await expect(page.getByLabel('Scope', { exact: true }).last().inputValue()).resolves.toBe(vision);
    expect(await seriousAxeViolations(page)).toEqual([]);
    await screenshot(page, '07-iam-exists');
    // Remove asks first: "No, keep it" goes back with the assignment still there; "Yes, remove" removes it.
    await page.getByRole('button', { name: /^Remove Reader of id-storefront/ }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Remove role assignment');
    expect(await seriousAxeViolations(page)).toEqual([]);
    await screenshot(page, '07-iam-remove-confirm');
    await page.getByRole('link', { name: 'No, keep it' }).click();
    await page.getByRole('button', { name: /^Remove Reader of id-storefront/ }).waitFor();
    await page.getByRole('button', { name: /^Remove Reader of id-storefront/ }).click();
    await page.getByRole('button', { name: 'Yes, remove' }).click();
    await page.getByRole('status').filter({ hasText: 'Removed Reader of id-storefront (user-assigned) on vision-keyless-local' }).waitFor();
    await expect(page.getByRole('button', { name: /^Remove Reader of id-storefront/ }).count()).resolves.toBe(0);
  });

  it('checks access: each data action of id-keyless on Azure OpenAI and the assignment that grants it', async () => {
    const openAi = system.hostEnv('recommendation').AZURE_OPENAI_RESOURCE_ID!;
    const principalId = await localAzure(system, 'identity', 'list', '--output', 'json').then((out) => (JSON.parse(out) as { name: string; principalId: string }[]).find((i) => i.name === 'id-keyless')!.principalId);
    expect(await visit(`/iam?scope=${encodeURIComponent(openAi)}&principal=${principalId}`)).toBe(200);
    const result = page.getByRole('table', { name: /Effective data actions of id-keyless/ });
    await expect(result.getByRole('row', { name: /chat\/completions/ }).textContent()).resolves.toMatch(/Allowed\s*Cognitive Services OpenAI User at oai-keyless-local/);
    await expect(result.getByRole('row', { name: /servicebus/i }).first().textContent()).resolves.toContain('Not granted');
    await screenshot(page, '07-check-access');
  });

  it('filters the logs and shows why a decision was denied', async () => {
    expect(await visit('/logs?outcome=failure&identity=id-keyless')).toBe(200);
    const decisions = page.getByRole('table', { name: /^\d+ decisions?$/ });
    await expect(decisions.textContent()).resolves.toContain('no role assignment of id-keyless grants Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action');
    await expect(decisions.textContent()).resolves.not.toContain('allowed');
    await screenshot(page, '08-logs');
  });

  it('shows the Service Bus entities and every service instance ready', async () => {
    expect(await visit('/servicebus')).toBe(200);
    await expect(page.getByRole('row', { name: /^recommendation-requests / }).textContent()).resolves.toContain('queue');
    expect(await visit('/system')).toBe(200);
    for (const service of ['gateway', 'recommendation', 'vision']) {
      await expect(page.getByRole('row', { name: new RegExp(`^${service} `) }).textContent()).resolves.toContain('Ready');
    }
    await screenshot(page, '09-system');
  });

  it('has no serious or critical accessibility violation, and no CSP violation, on any page', async () => {
    const openAi = system.hostEnv('recommendation').AZURE_OPENAI_RESOURCE_ID!;
    for (const path of ['/', '/identities', `/iam?scope=${encodeURIComponent(openAi)}`, '/logs', '/alerts', '/servicebus', '/servicebus?filter=requests', '/servicebus/messages?entity=recommendation-requests', '/servicebus/deadletters?entity=recommendation-requests', '/system', '/nothing-here']) {
      await visit(path);
      expect({ path, violations: await seriousAxeViolations(page) }).toEqual({ path, violations: [] });
    }
    expect(browser.cspViolations).toEqual([]);
  });

  it('is usable with the keyboard: the first Tab reaches the skip link, which moves focus to the main content', async () => {
    await visit('/identities');
    await page.keyboard.press('Tab');
    await expect(page.evaluate('document.activeElement?.textContent')).resolves.toBe('Skip to main content');
    await page.keyboard.press('Enter');
    await expect(page.evaluate('document.activeElement?.id')).resolves.toBe('main');
  });
});
