import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { commandForCompose, gatewayAppRoles, localGatewayAudience } from '@keyless/contracts';
import { repoRoot } from '@keyless/launcher';
import { startTestAzure } from '@keyless/local-azure/testing';

interface ComposeService {
  build: { context: string; dockerfile: string };
  restart?: string;
  command?: string[];
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  deploy?: { replicas?: string | number };
}

const compose = parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const dockerfile = (service: ComposeService) => readFileSync(join(repoRoot, service.build.context, service.build.dockerfile), 'utf8');
const services = ['gateway', 'recommendation', 'vision'] as const;
const localAzureConfig = JSON.parse(readFileSync(join(repoRoot, 'tools/local-azure/compose.config.json'), 'utf8')) as {
  network: { bind: string; publicHost: string };
  hostEnvDirs: Record<string, string>;
};
/** The user a Dockerfile's final stage runs as, and the uid it creates for it (if it does). */
const runtimeUser = (text: string): { user: string; uid?: number } => {
  const user = [...text.matchAll(/^USER (\S+)$/gm)].at(-1)![1]!;
  const created = text.match(new RegExp(`useradd [^\\n]*--uid (\\d+)[^\\n]* ${user}\\b`));
  return { user, ...(created ? { uid: Number(created[1]) } : {}) };
};

const composeText = readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8');
/** The command of a `#   <prefix>…` line of docker-compose.yml's header, from the prefix on. */
const documented = (prefix: string): string => {
  const line = composeText.split('\n').find((l) => l.startsWith(`#   ${prefix}`));
  if (!line) throw new Error(`docker-compose.yml documents no command starting with ${prefix}`);
  return line.slice('#   '.length);
};
const run = promisify(execFile);

// No Docker engine runs here, so the images are not built in tests; what can be checked without one is.
describe('docker-compose.yml and the Dockerfiles', () => {
  it('runs the local Azure and the three services, each from its own Dockerfile', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['gateway', 'local-azure', 'recommendation', 'vision']);
    for (const service of Object.values(compose.services)) expect(existsSync(join(repoRoot, service.build.context, service.build.dockerfile))).toBe(true);
  });

  it('starts each service as its own host, from that host\'s env file, once the local Azure is healthy', () => {
    for (const name of services) {
      const service = compose.services[name]!;
      expect(service.command?.join(' ')).toContain(`. /hosts/${name}/${name}.env`);
      expect(service.command?.join(' ')).toContain('exec node dist/main.js');
      expect(service.depends_on?.['local-azure']).toEqual({ condition: 'service_healthy' });
    }
    expect(compose.services.gateway!.depends_on).toMatchObject({ recommendation: { condition: 'service_healthy' }, vision: { condition: 'service_healthy' } });
  });

  it("mounts into each service only its own host's env volume (read-only), never the local Azure's home or another host's volume", () => {
    for (const name of services) {
      const volumes = compose.services[name]!.volumes ?? [];
      expect(volumes.filter((v) => /-env:/.test(v))).toEqual([`${name}-env:/hosts/${name}:ro`]);
      expect(volumes.filter((v) => v.startsWith('local-azure:'))).toEqual([]);
      // Nothing else: the state every instance shares is in PostgreSQL, none in the container.
      expect(volumes.filter((v) => v !== `${name}-env:/hosts/${name}:ro`)).toEqual([]);
    }
  });

  it("gives the local Azure its home and every host's env volume, where it writes each host's file and the CA certificate", () => {
    const volumes = compose.services['local-azure']!.volumes ?? [];
    expect(volumes.sort()).toEqual(['gateway-env:/hosts/gateway', 'local-azure:/local-azure', 'recommendation-env:/hosts/recommendation', 'vision-env:/hosts/vision']);
    expect(localAzureConfig.hostEnvDirs).toEqual({ gateway: '/hosts/gateway', recommendation: '/hosts/recommendation', vision: '/hosts/vision' });
    expect(Object.keys(compose.volumes).sort()).toEqual(['gateway-env', 'local-azure', 'recommendation-env', 'vision-env']);
  });

  it('runs the local Azure as another user than the services, owning its home (0700) and the env folders', () => {
    const localAzure = dockerfile(compose.services['local-azure']!);
    const { user, uid } = runtimeUser(localAzure);
    expect(user).not.toBe('node');
    expect(uid).toBeGreaterThan(1000);
    expect(localAzure).toMatch(new RegExp(`chown ${user}:${user} /local-azure /hosts/gateway /hosts/recommendation /hosts/vision`));
    expect(localAzure).toMatch(/chmod 0700 \/local-azure/);
    // The code is not the running user's to change.
    expect(localAzure).not.toMatch(new RegExp(`COPY [^\\n]*--chown=${user}`));
    for (const name of services) expect(runtimeUser(dockerfile(compose.services[name]!)).user).toBe('node');
  });

  it("copies into the local Azure's image every workspace library it imports (node_modules holds only links to them)", () => {
    const sources = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [join(dir, e.name)] : []));
    const imported = new Set(sources(join(repoRoot, 'tools/local-azure/src')).flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/from '@keyless\/([a-z-]+)/g)].map((m) => m[1]!)));
    expect([...imported]).toEqual(['contracts']);
    for (const library of imported) expect(dockerfile(compose.services['local-azure']!)).toContain(`COPY --from=build /repo/libs/${library} ./libs/${library}`);
  });

  it('runs KEYLESS_REPLICAS replicas of each service, each gateway replica on its own published port', () => {
    for (const name of ['gateway', 'recommendation', 'vision']) expect(compose.services[name]!.deploy?.replicas).toBe('${KEYLESS_REPLICAS:-1}');
    expect(compose.services.gateway!.ports).toEqual(['127.0.0.1:${PORT:-3000}-${GATEWAY_LAST_PORT:-3000}:3000']);
    const config = JSON.parse(readFileSync(join(repoRoot, 'tools/local-azure/compose.config.json'), 'utf8')) as { network: { ports: Record<string, number> }; hostEnv: { storefront: Record<string, string> } };
    expect(config.hostEnv.storefront).toEqual({ GATEWAY_URL: 'http://gateway:3000', GATEWAY_URLS: 'http://gateway:3000' });
    expect(config.network.ports.postgres).toBe(5432);
  });

  it('builds multi-stage images that run unprivileged with a health check', () => {
    for (const service of Object.values(compose.services)) {
      const text = dockerfile(service);
      expect(text.match(/^FROM node:24/gm)).toHaveLength(2);
      expect(text).toMatch(/^USER \S+$/m);
      expect(text).not.toMatch(/^USER root$/m);
      expect(text).toMatch(/^HEALTHCHECK /m);
    }
  });

  it('runs each service from its package (tools/packager), the folder azd deploys to App Service', () => {
    for (const name of services) {
      const text = dockerfile(compose.services[name]!);
      expect(text).toContain(`npx nx run ${name}:package`);
      expect(text).toContain(`COPY --from=build --chown=node:node /repo/dist/deploy/${name} ./`);
      expect(text).toMatch(/^CMD \["node", "dist\/main\.js"\]$/m);
    }
  });

  it("documents how a caller gets a gateway token inside the local Azure's container (the storefront's env file stays there), and the command gets one", async () => {
    const command = documented('TOKEN=$(docker compose exec -T local-azure sh -c ');
    const script = /sh -c '(.*)'\)$/.exec(command)?.[1];
    expect(script).toContain('. /local-azure/env/storefront.env');
    const test = await startTestAzure();
    try {
      // The same script, run by sh as `docker compose exec` would, against this local Azure's storefront host.
      const { stdout } = await run('sh', ['-c', script!.replace('/local-azure/env/storefront.env', test.azure.home.envFile('storefront'))], { env: { PATH: process.env.PATH } });
      const claims = JSON.parse(Buffer.from(stdout.trim().split('.')[1]!, 'base64url').toString()) as { aud: string; roles: string[] };
      expect(claims.aud).toBe(localGatewayAudience);
      expect([...claims.roles].sort()).toEqual(Object.keys(gatewayAppRoles).sort());
    } finally {
      await test.stop();
    }
  });

  it("serves each service's readiness details on its container's loopback, which the documented exec command reads with the image's node", async () => {
    for (const name of services) {
      const env = dockerfile(compose.services[name]!).match(/^ENV (.*)$/m)![1]!;
      const port = /\bPORT=(\d+)/.exec(env)?.[1];
      const detailsPort = /\bHEALTH_DETAILS_PORT=(\d+)/.exec(env)?.[1];
      expect(detailsPort).toBeDefined();
      expect(detailsPort).not.toBe(port);
    }
    const command = documented('docker compose exec gateway node -e ');
    const script = /node -e "(.*)"$/.exec(command)![1]!;
    const server = createServer((request, response) => response.end(request.url === '/health/ready' ? 'the details' : 'wrong path'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { stdout } = await run(process.execPath, ['-e', script], { env: { HEALTH_DETAILS_PORT: String((server.address() as AddressInfo).port) } });
      expect(stdout.trim()).toBe('the details');
    } finally {
      server.close();
    }
  });

  it("tells each service the compose service that runs the local Azure, so that its fix hints run the CLI there as the image does", () => {
    const [localAzure] = Object.entries(compose.services).find(([, service]) => service.build.dockerfile === 'tools/local-azure/Dockerfile')!;
    for (const name of services) expect([name, compose.services[name]!.environment?.LOCAL_AZURE_COMPOSE_SERVICE]).toEqual([name, localAzure]);
    const entryPoint = (JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile(compose.services[localAzure]!))![1]!) as string[]).join(' ');
    expect(commandForCompose('npm run local-azure -- identity list', localAzure)).toBe(`docker compose exec ${localAzure} ${entryPoint} identity list`);
  });

  it('restarts every container that dies, the local Azure included (its home keeps its ports, so the services reconnect)', () => {
    for (const [name, service] of Object.entries(compose.services)) expect([name, service.restart]).toEqual([name, 'unless-stopped']);
  });

  it("reports the local Azure healthy by its status command (a live process answering), not by its env files", () => {
    const text = dockerfile(compose.services['local-azure']!);
    expect(text).toMatch(/^HEALTHCHECK .*\n\s+CMD node tools\/local-azure\/dist\/main\.js status \|\| exit 1$/m);
    expect(text).not.toMatch(/existsSync|\.env/);
  });

  it('lets the local Azure bind every interface and name itself by its compose host name', () => {
    expect(localAzureConfig.network).toMatchObject({ bind: 'all', publicHost: 'local-azure' });
    expect(dockerfile(compose.services['local-azure']!)).toContain('tools/local-azure/compose.config.json');
  });

  it('keeps out of the build context everything git ignores: local state (the local Azure\'s keys, azd\'s environments), builds, logs', () => {
    const patterns = (file: string): string[] =>
      readFileSync(join(repoRoot, file), 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line && !line.startsWith('#'))
        .map((line) => line.replace(/^\*\*\//, '').replace(/\/$/, ''));
    const ignored = patterns('.gitignore');
    expect(ignored).toEqual(expect.arrayContaining(['.local-azure', '.azure']));
    expect(ignored.filter((pattern) => !patterns('.dockerignore').includes(pattern))).toEqual([]);
  });

  it('holds no keys, connection strings or passwords', () => {
    const everything = [readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), ...Object.values(compose.services).map(dockerfile)].join('\n');
    expect(everything).not.toMatch(/SharedAccessKey|AccountKey|API_KEY|Password=|CONNECTION_STRING/i);
  });
});
