import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnvFile } from '@keyless/contracts';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

// What docker compose relies on: each service mounts one folder with its own env file and the CA certificate.
describe('hostEnvDirs', () => {
  let test: TestAzure;
  let root: string;
  const dir = (host: string): string => join(root, host);
  const envOf = (file: string): Record<string, string> => parseEnvFile(readFileSync(file, 'utf8'));

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'host-env-dirs-'));
    test = await startTestAzure({ home: join(root, 'home'), config: { hostEnvDirs: { gateway: dir('gateway'), vision: dir('vision') } } });
  });
  afterAll(async () => {
    await test.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("writes only the host's own env file and the CA certificate into its folder, readable by another user", () => {
    expect(readdirSync(dir('gateway')).sort()).toEqual(['ca.pem', 'gateway.env']);
    expect(readdirSync(dir('vision')).sort()).toEqual(['ca.pem', 'vision.env']);
    for (const file of [join(dir('gateway'), 'ca.pem'), join(dir('gateway'), 'gateway.env')]) expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(dir('gateway'), 'ca.pem'), 'utf8')).toBe(test.azure.tls.caCertPem);
    expect(readFileSync(join(dir('gateway'), 'ca.pem'), 'utf8')).not.toMatch(/PRIVATE KEY/);
  });

  it("points NODE_EXTRA_CA_CERTS at the folder's copy and holds nothing of other hosts", () => {
    const gateway = envOf(join(dir('gateway'), 'gateway.env'));
    expect(gateway).toEqual({ ...test.azure.hostEnv('gateway'), NODE_EXTRA_CA_CERTS: join(dir('gateway'), 'ca.pem') });
    const text = readFileSync(join(dir('gateway'), 'gateway.env'), 'utf8');
    for (const other of ['vision', 'recommendation', 'storefront']) {
      const host = test.azure.directory.host(other)!;
      expect(text).not.toContain(host.identityHeader);
      expect(text).not.toContain(host.imdsCapability);
    }
  });

  it('keeps the env files when the local Azure stops (they are configuration), and a restart writes them the same', async () => {
    const before = readFileSync(join(dir('gateway'), 'gateway.env'), 'utf8');
    await test.stop();
    expect(readFileSync(join(dir('gateway'), 'gateway.env'), 'utf8')).toBe(before);
    test = await startTestAzure({ home: join(root, 'home'), config: { hostEnvDirs: { gateway: dir('gateway') } } });
    expect(readFileSync(join(dir('gateway'), 'gateway.env'), 'utf8')).toBe(before);
  });
});
