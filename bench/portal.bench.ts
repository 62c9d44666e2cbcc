// The local portal and its alerts: page load time (server time, over loopback HTTPS with keep-alive) with a filled
// sign-in and authorization log, and alert latency from the condition (a role assignment deleted, an access denied)
// to the alert firing.
// Run: npx nx run local-azure:build && npx node bench/portal.bench.ts
//      (BENCH_LOG_ENTRIES=10000 BENCH_PAGE_LOADS=50 BENCH_ALERTS=20 are the defaults; smaller for a smoke run)
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { LocalAzure, findRole } = (await import(new URL('../tools/local-azure/dist/index.js', import.meta.url).href)) as typeof import('../tools/local-azure/src/index.ts');

const logEntries = Number(process.env.BENCH_LOG_ENTRIES ?? 10_000);
const pageLoads = Number(process.env.BENCH_PAGE_LOADS ?? 50);
const alertRounds = Number(process.env.BENCH_ALERTS ?? 20);

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 100) / 100;
};

const home = mkdtempSync(join(tmpdir(), 'bench-portal-'));
const azure = await LocalAzure.start({ home });
try {
  // A filled log: half sign-ins, half authorization decisions, one in ten a failure.
  const shared = azure.directory.userAssignedIdentity('id-keyless')!;
  const openAi = azure.directory.resourceId('openAi');
  for (let i = 0; i < logEntries / 2; i++) {
    const failed = i % 10 === 0;
    azure.auditLog.recordSignIn({ host: 'recommendation', endpoint: 'appservice', identity: shared.name, clientId: shared.clientId, principalId: shared.principalId, resource: 'https://cognitiveservices.azure.com', outcome: failed ? 'failure' : 'success', ...(failed ? { reason: 'bench' } : {}) });
    azure.auditLog.recordAuthorization({ resource: 'vision', principalId: shared.principalId, identity: shared.name, dataAction: 'Microsoft.CognitiveServices/accounts/ComputerVision/imageanalysis:analyze/action', scope: azure.directory.resourceId('vision'), decision: failed ? 'denied' : 'allowed', operation: 'bench' });
  }
  const session = azure.portal!.sessions.redeem(azure.portal!.sessions.mintLink({ principalId: 'bench', name: 'bench', clientId: 'bench', principalType: 'User' }).code);
  if (typeof session === 'string') throw new Error(`sign-in refused: ${session}`);
  const agent = new Agent({ keepAlive: true, ca: azure.tls.caCertPem });
  const load = (path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const req = request(new URL(path, azure.endpoints.portal), { agent, headers: { cookie: `__Host-keyless-portal=${session.id}` } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`${path}: HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end();
    });
  const pages: Record<string, { p50Ms: number; p95Ms: number }> = {};
  for (const path of ['/', '/logs', '/logs?outcome=failure&identity=id-keyless&since=24h', '/iam', '/alerts', '/identities']) {
    await load(path);
    const times: number[] = [];
    for (let i = 0; i < pageLoads; i++) times.push(await load(path));
    pages[path] = { p50Ms: percentile(times, 50), p95Ms: percentile(times, 95) };
  }
  agent.destroy();

  // Alert latency: from the condition to the alert firing (event-driven rules fire in the same turn as the event).
  const fired = (rule: string): Promise<number> =>
    new Promise((resolve) => {
      const off = azure.alerts!.engine.onAlert((alert, transition) => {
        if (alert.rule === rule && transition === 'Fired') {
          off();
          resolve(performance.now());
        }
      });
    });
  const role = findRole('Cognitive Services OpenAI User')!;
  const deleted: number[] = [];
  const denied: number[] = [];
  for (let i = 0; i < alertRounds; i++) {
    let firing = fired('role-assignment-deleted');
    let t0 = performance.now();
    azure.roleAssignments.delete({ principalId: shared.principalId, role, scope: openAi });
    deleted.push((await firing) - t0);
    firing = fired('access-denied');
    t0 = performance.now();
    azure.guard.authorize({ principalId: shared.principalId, clientId: shared.clientId } as never, 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action', openAi, { resource: 'openAi', operation: 'bench' });
    denied.push((await firing) - t0);
    azure.roleAssignments.create({ principalId: shared.principalId, role, scope: openAi, source: 'cli' });
    azure.guard.authorize({ principalId: shared.principalId, clientId: shared.clientId } as never, 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action', openAi, { resource: 'openAi', operation: 'bench' });
    await new Promise((resolve) => setImmediate(resolve));
  }
  const summary = (values: number[]) => ({ p50Ms: percentile(values, 50), maxMs: Math.round(Math.max(...values) * 100) / 100 });
  process.stdout.write(
    `${JSON.stringify(
      {
        logEntries,
        pageLoadsPerPage: pageLoads,
        pageLoadServerTime: pages,
        alertLatency: { roleAssignmentDeleted: summary(deleted), accessDenied: summary(denied), rounds: alertRounds, periodicEvaluationBoundMs: azure.config.alerts.evaluationIntervalInSeconds * 1000 },
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await azure.stop();
  rmSync(home, { recursive: true, force: true });
}
