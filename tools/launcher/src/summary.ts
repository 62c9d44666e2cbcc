import { join } from 'node:path';
import { serviceNames } from './replicas.js';

/** What the summary shows: where the gateways, the portal and the logs are, and every running instance. */
export interface ReadySummary {
  /** Every gateway instance, the first first. */
  gatewayUrls: readonly string[];
  portalUrl?: string;
  /** A product of the demo catalog, for the example requests. */
  exampleId: string;
  home: string;
  /** Every service instance: its process name and address. */
  instances: readonly { name: string; url: string }[];
}

/** The text `npm start` prints once the system is ready. */
export function readySummary(summary: ReadySummary): string {
  const [gatewayUrl, ...otherGateways] = summary.gatewayUrls;
  const instanceLines = serviceNames.map((service) => {
    const own = summary.instances.filter((instance) => instance.name === service || instance.name.startsWith(`${service}-`));
    return `    ${service.padEnd(15)} ${own.map((instance) => `${instance.name} ${instance.url}`).join(', ')}`;
  });
  return [
    '',
    'Keyless is running.',
    `  Gateway   ${gatewayUrl}${otherGateways.length ? `  (also ${otherGateways.join(', ')}: GATEWAY_URLS in the storefront's env file)` : ''}`,
    `  OpenAPI   ${gatewayUrl}/docs`,
    ...(summary.portalUrl ? [`  Portal    ${summary.portalUrl}  (sign in: open the link \`npm run -s local-azure -- portal\` prints)`] : []),
    `  Logs      ${join(summary.home, 'logs')}/<instance>.log`,
    `  Instances (${summary.instances.length}, each its own process)`,
    ...instanceLines,
    '',
    "Try it — callers need an Entra token for the gateway; the storefront's managed identity gets one:",
    '  TOKEN=$(npm run -s token)',
    `  curl -s -H "Authorization: Bearer $TOKEN" "${gatewayUrl}/v1/products/${summary.exampleId}/similar?limit=3"`,
    `  curl -s -H "Authorization: Bearer $TOKEN" -H "content-type: application/json" \\`,
    `       -d '{"query":"waterproof hiking boots","limit":3}' ${gatewayUrl}/v1/recommendations`,
    '',
    'Ctrl-C stops everything.',
  ].join('\n');
}
