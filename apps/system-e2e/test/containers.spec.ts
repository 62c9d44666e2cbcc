import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '@keyless/launcher';

interface ComposeService {
  build: { context: string; dockerfile: string };
  command?: string[];
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  deploy?: { replicas?: string | number };
}

const compose = parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const dockerfile = (service: ComposeService) => readFileSync(join(repoRoot, service.build.context, service.build.dockerfile), 'utf8');

// No Docker engine runs here, so the images are not built in tests; what can be checked without one is.
describe('docker-compose.yml and the Dockerfiles', () => {
  it('runs the local Azure and the three services, each from its own Dockerfile', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['gateway', 'local-azure', 'recommendation', 'vision']);
    for (const service of Object.values(compose.services)) expect(existsSync(join(repoRoot, service.build.context, service.build.dockerfile))).toBe(true);
  });

  it('starts each service as its own host, from that host\'s env file, once the local Azure is healthy', () => {
    for (const name of ['gateway', 'recommendation', 'vision']) {
      const service = compose.services[name]!;
      expect(service.command?.join(' ')).toContain(`. /local-azure/env/${name}.env`);
      expect(service.command?.join(' ')).toContain('exec node dist/main.js');
      expect(service.depends_on?.['local-azure']).toEqual({ condition: 'service_healthy' });
      expect(service.volumes).toContain('local-azure:/local-azure:ro');
    }
    expect(compose.services.gateway!.depends_on).toMatchObject({ recommendation: { condition: 'service_healthy' }, vision: { condition: 'service_healthy' } });
  });

  it('runs KEYLESS_REPLICAS replicas of each service, each gateway replica on its own published port', () => {
    for (const name of ['gateway', 'recommendation', 'vision']) expect(compose.services[name]!.deploy?.replicas).toBe('${KEYLESS_REPLICAS:-1}');
    expect(compose.services.gateway!.ports).toEqual(['127.0.0.1:${PORT:-3000}-${GATEWAY_LAST_PORT:-3000}:3000']);
    const config = JSON.parse(readFileSync(join(repoRoot, 'tools/local-azure/compose.config.json'), 'utf8')) as { network: { ports: Record<string, number> }; hostEnv: { storefront: Record<string, string> } };
    expect(config.hostEnv.storefront).toEqual({ GATEWAY_URL: 'http://gateway:3000', GATEWAY_URLS: 'http://gateway:3000' });
    expect(config.network.ports.postgres).toBe(5432);
  });

  it('builds multi-stage images that run as the unprivileged node user with a health check', () => {
    for (const service of Object.values(compose.services)) {
      const text = dockerfile(service);
      expect(text.match(/^FROM node:24/gm)).toHaveLength(2);
      expect(text).toMatch(/^USER node$/m);
      expect(text).toMatch(/^HEALTHCHECK /m);
    }
  });

  it('runs each service from its package (tools/packager), the folder azd deploys to App Service', () => {
    for (const name of ['gateway', 'recommendation', 'vision']) {
      const text = dockerfile(compose.services[name]!);
      expect(text).toContain(`npx nx run ${name}:package`);
      expect(text).toContain(`COPY --from=build --chown=node:node /repo/dist/deploy/${name} ./`);
      expect(text).toMatch(/^CMD \["node", "dist\/main\.js"\]$/m);
    }
  });

  it('lets the local Azure bind every interface and name itself by its compose host name', () => {
    const config = JSON.parse(readFileSync(join(repoRoot, 'tools/local-azure/compose.config.json'), 'utf8')) as { network: { bind: string; publicHost: string } };
    expect(config.network).toMatchObject({ bind: 'all', publicHost: 'local-azure' });
    expect(dockerfile(compose.services['local-azure']!)).toContain('tools/local-azure/compose.config.json');
  });

  it('holds no keys, connection strings or passwords', () => {
    const everything = [readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), ...Object.values(compose.services).map(dockerfile)].join('\n');
    expect(everything).not.toMatch(/SharedAccessKey|AccountKey|API_KEY|Password=|CONNECTION_STRING/i);
  });
});
