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
});
