import { execFileSync } from 'node:child_process';
import { readySummary } from './summary.js';

describe('readySummary', () => {
  const base = { exampleId: 'running-shoe-aero-1', home: '/tmp/keyless-home' };

  it('lists every instance of every service, and the other gateways beside the first', () => {
    const text = readySummary({
      ...base,
      gatewayUrls: ['http://127.0.0.1:3000', 'http://127.0.0.1:3010'],
      instances: [
        { name: 'recommendation', url: 'http://127.0.0.1:41001' },
        { name: 'recommendation-2', url: 'http://127.0.0.1:41002' },
        { name: 'vision', url: 'http://127.0.0.1:41003' },
        { name: 'vision-2', url: 'http://127.0.0.1:41004' },
        { name: 'gateway', url: 'http://127.0.0.1:3000' },
        { name: 'gateway-2', url: 'http://127.0.0.1:3010' },
      ],
    });
    expect(text).toContain("  Gateway   http://127.0.0.1:3000  (also http://127.0.0.1:3010: GATEWAY_URLS in the storefront's env file)");
    expect(text).toContain('  Instances (6, each its own process)');
    expect(text).toContain('    recommendation  recommendation http://127.0.0.1:41001, recommendation-2 http://127.0.0.1:41002');
    expect(text).toContain('    vision          vision http://127.0.0.1:41003, vision-2 http://127.0.0.1:41004');
    expect(text).toContain('    gateway         gateway http://127.0.0.1:3000, gateway-2 http://127.0.0.1:3010');
    expect(text).toContain('"http://127.0.0.1:3000/v1/products/running-shoe-aero-1/similar?limit=3"');
  });

  it('shows one gateway without an "also" when there is one instance', () => {
    const text = readySummary({ ...base, gatewayUrls: ['http://127.0.0.1:3000'], instances: [{ name: 'gateway', url: 'http://127.0.0.1:3000' }] });
    expect(text).toContain('  Gateway   http://127.0.0.1:3000\n');
    expect(text).not.toContain('also');
  });

  describe('when the home is not the default one', () => {
    const home = "/tmp/keyless home/it's mine";
    const text = readySummary({ ...base, home, customHome: true, portalUrl: 'https://localhost:31788/', gatewayUrls: ['http://127.0.0.1:3000'], instances: [] });

    it('names it in the token and portal commands, quoted so that a shell passes it unchanged', () => {
      const tokenLine = text.split('\n').find((line) => line.includes('npm run -s token'))!;
      const assignment = /TOKEN=\$\((LOCAL_AZURE_HOME=.*) npm run -s token\)/.exec(tokenLine)?.[1];
      expect(execFileSync('sh', ['-c', `${assignment} sh -c 'printf %s "$LOCAL_AZURE_HOME"'`], { encoding: 'utf8' })).toBe(home);
      expect(text).toContain(`\`${assignment} npm run -s local-azure -- portal\``);
    });
  });

  it('names no home in the commands when it is the default one', () => {
    const text = readySummary({ ...base, portalUrl: 'https://localhost:31788/', gatewayUrls: ['http://127.0.0.1:3000'], instances: [] });
    expect(text).toContain('  TOKEN=$(npm run -s token)\n');
    expect(text).toContain('`npm run -s local-azure -- portal`');
  });
});
