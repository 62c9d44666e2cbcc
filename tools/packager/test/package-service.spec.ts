import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataPlanes } from '@keyless/local-azure';
import { runToEnd, startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { PackageError, packageService, type ServicePackage } from '../src/index.js';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

// The package is written outside the repository, so nothing in it can resolve through the workspace's
// node_modules: if it runs there, it runs on App Service.
describe('packageService (the built gateway, packed outside the repository)', () => {
  const outside = mkdtempSync(join(tmpdir(), 'packed-gateway-'));
  let packed: ServicePackage;

  beforeAll(() => {
    packed = packageService({ root: repoRoot, service: 'gateway', outDir: join(outside, 'gateway') });
  });
  afterAll(() => rmSync(outside, { recursive: true, force: true }));

  it('lists the npm packages the gateway imports at the versions the workspace pins, and its workspace libraries', () => {
    const rootManifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const manifest = JSON.parse(readFileSync(join(packed.outDir, 'package.json'), 'utf8')) as { scripts: Record<string, string>; dependencies: Record<string, string> };
    expect(packed.dependencies).toMatchObject({ '@nestjs/core': rootManifest.dependencies['@nestjs/core'], '@azure/identity': rootManifest.dependencies['@azure/identity'], jose: rootManifest.dependencies['jose'] });
    for (const [name, version] of Object.entries(packed.dependencies)) expect([name, version]).toEqual([name, rootManifest.dependencies[name]]);
    // @keyless/database: the readiness checks know a service's database, and the doctor probes it.
    expect(packed.workspaceLibraries).toEqual(['@keyless/auth', '@keyless/contracts', '@keyless/database', '@keyless/doctor', '@keyless/messaging', '@keyless/observability']);
    expect(manifest.dependencies['@keyless/auth']).toBe('file:./workspace_modules/@keyless/auth');
    expect(manifest.scripts.start).toBe('node dist/main.js');
    expect(manifest.scripts['doctor']).toBe('node node_modules/@keyless/doctor/dist/main.js');
  });

  it('leaves out what only tests and tools use', () => {
    for (const devOnly of ['typescript', 'jest', 'nx', '@swc/core', '@keyless/local-azure', 'gpt-tokenizer']) {
      expect([devOnly, existsSync(join(packed.outDir, 'node_modules', devOnly))]).toEqual([devOnly, false]);
    }
    expect(existsSync(join(packed.outDir, 'node_modules/@keyless/auth/src'))).toBe(false);
    expect(existsSync(join(packed.outDir, 'node_modules/@keyless/doctor/infra/access.json'))).toBe(true);
  });

  describe('run from there against the local Azure', () => {
    let azure: TestAzure;
    let gateway: ChildProcess;
    let output = '';
    let hostEnv: Record<string, string>;

    beforeAll(async () => {
      azure = await startTestAzure({ dataPlanes });
      hostEnv = azure.azure.hostEnv('gateway');
      gateway = spawn(process.execPath, ['dist/main.js'], { cwd: packed.outDir, env: { PATH: process.env.PATH!, ...hostEnv, PORT: '0', LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
      gateway.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      gateway.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    }, 30_000);
    afterAll(async () => {
      if (gateway?.exitCode === null) {
        const exited = new Promise((resolve) => gateway.once('exit', resolve));
        gateway.kill('SIGTERM');
        await exited;
      }
      await azure?.stop();
    }, 30_000);

    it('starts and becomes ready with nothing but its package and the host environment', async () => {
      const deadline = Date.now() + 20_000;
      let url: string | undefined;
      while (!url && Date.now() < deadline && gateway.exitCode === null) {
        url = /gateway listening on (http:\/\/[\d.]+:\d+)/.exec(output)?.[1];
        if (!url) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect({ url, exitCode: gateway.exitCode, output: url ? '' : output }).toEqual({ url: expect.any(String), exitCode: null, output: '' });
      let ready: Response | undefined;
      while (Date.now() < deadline && ready?.status !== 200) {
        ready = await fetch(`${url}/health/ready`);
        if (ready.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(ready?.status).toBe(200);
      expect((await fetch(`${url}/docs`)).status).toBe(200);
    }, 30_000);

    it('carries the access doctor, which checks the identity from there with the same environment', async () => {
      // Asynchronously: the local Azure answering the doctor runs in this process.
      const doctor = await runToEnd(process.execPath, ['node_modules/@keyless/doctor/dist/main.js', '--json'], { cwd: packed.outDir, env: { PATH: process.env.PATH!, ...hostEnv } });
      const report = JSON.parse(doctor.stdout) as { ok: boolean; identity: { clientId: string }; results: { resource: string; check: string; status: string; detail?: string }[] };
      const failing = report.results.filter((r) => r.status !== 'ok');
      expect({ status: doctor.code, stderr: doctor.stderr, failing }).toEqual({ status: 0, stderr: '', failing: [] });
      expect(report).toMatchObject({ ok: true, identity: { clientId: hostEnv['AZURE_CLIENT_ID'] } });
      expect(new Set(report.results.map((r) => r.resource))).toEqual(new Set(['identity', 'serviceBus', 'openAi', 'vision', 'postgres']));
    }, 30_000);

    it("carries the doctor's check-access view too, reading the identity's role assignments through ARM from there", async () => {
      const doctor = await runToEnd(process.execPath, ['node_modules/@keyless/doctor/dist/main.js', '--check-access', '--output', 'json'], { cwd: packed.outDir, env: { PATH: process.env.PATH!, ...hostEnv } });
      const report = JSON.parse(doctor.stdout) as { ok: boolean; checkAccess: { read: string; scopes: { resource: string; read: boolean }[] } };
      expect({ status: doctor.code, stderr: doctor.stderr, ok: report.ok, read: report.checkAccess.read }).toEqual({ status: 0, stderr: '', ok: true, read: 'partial' });
      // The identity may read assignments only where Cognitive Services OpenAI User lets it: the OpenAI account.
      expect(report.checkAccess.scopes.filter((scope) => scope.read).map((scope) => scope.resource)).toEqual(['openAi']);
    }, 30_000);
  });
});

describe('packageService refuses', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'packager-workspace-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** A minimal workspace: one service whose built main.js has `source`, and `manifest`/`lock` at the root. */
  const workspace = (source: string, manifest: object, lock: object): void => {
    const write = (path: string, text: string): void => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    write('package.json', JSON.stringify(manifest));
    write('package-lock.json', JSON.stringify({ packages: lock }));
    write('apps/shop/package.json', JSON.stringify({ name: '@keyless/shop', type: 'module' }));
    write('apps/shop/dist/main.js', source);
    write('tools/doctor/package.json', JSON.stringify({ name: '@keyless/doctor', type: 'module' }));
    write('tools/doctor/dist/main.js', '');
    write('infra/access.json', '{}');
    write('infra/servicebus-topology.json', '{}');
  };

  it('a run-time import of a package listed only under devDependencies, naming the file and the fix', () => {
    workspace("import pad from 'left-pad';\nexport default pad;\n", { devDependencies: { 'left-pad': '1.3.0' } }, { 'node_modules/left-pad': { version: '1.3.0', dev: true } });
    expect(() => packageService({ root, service: 'shop' })).toThrow(
      new PackageError('apps/shop/dist/main.js imports left-pad at run time, but package.json lists it under devDependencies: add it to dependencies (npm install --save-exact left-pad)'),
    );
  });

  it('a run-time import of a package that is only there by hoisting', () => {
    workspace("await import('ms');\n", { dependencies: {} }, { 'node_modules/ms': { version: '2.1.3' } });
    expect(() => packageService({ root, service: 'shop' })).toThrow(/imports ms at run time, but package\.json does not list it/);
  });

  it('an output folder that holds the repository or a project (it is emptied first)', () => {
    workspace('', { dependencies: {} }, {});
    expect(() => packageService({ root, service: 'shop', outDir: root })).toThrow(new PackageError(`${root} holds the repository, and the package folder is emptied first: choose another --out`));
    expect(() => packageService({ root, service: 'shop', outDir: join(root, 'apps') })).toThrow(/holds apps\/shop, and the package folder is emptied first/);
    expect(existsSync(join(root, 'apps/shop/dist/main.js'))).toBe(true);
  });

  it('a service that is not built, and one that does not exist', () => {
    workspace('', { dependencies: {} }, {});
    rmSync(join(root, 'apps/shop/dist'), { recursive: true });
    expect(() => packageService({ root, service: 'shop' })).toThrow(new PackageError('apps/shop is not built (no dist/main.js); run: npx nx run shop:build'));
    expect(() => packageService({ root, service: 'basket' })).toThrow(new PackageError('there is no service "basket" (no apps/basket/package.json)'));
  });
});
