import { join } from 'node:path';
import { commandForHome } from '@keyless/contracts';
import { serviceNames } from './replicas.js';

/** What the summary shows: where the gateways, the portal and the logs are, and every running instance. */
export interface ReadySummary {
  /** Every gateway instance, the first first. */
  gatewayUrls: readonly string[];
  portalUrl?: string;
  /** A product of the demo catalog, for the example requests. */
  exampleId: string;
  home: string;
  /**
   * Whether `home` is not the default one (`LOCAL_AZURE_HOME` was set): the commands printed then name it, so that they
   * work when pasted into another shell. Default: false.
   */
  customHome?: boolean;
  /** Every service instance: its process name and address. */
  instances: readonly { name: string; url: string }[];
}

/** The text `npm start` prints once the system is ready. */
export function readySummary(summary: ReadySummary): string {
  const [gatewayUrl, ...otherGateways] = summary.gatewayUrls;
  // `npm run -s token` and the portal link read the home from LOCAL_AZURE_HOME: without it they look for the default one.
  const withHome = (command: string): string => commandForHome(command, { root: summary.home, isDefault: !summary.customHome });
  const instanceLines = serviceNames.map((service) => {
    const own = summary.instances.filter((instance) => instance.name === service || instance.name.startsWith(`${service}-`));
    return `    ${service.padEnd(15)} ${own.map((instance) => `${instance.name} ${instance.url}`).join(', ')}`;
  });
  return [
    '',
    'Keyless is running.',
    `  Gateway   ${gatewayUrl}${otherGateways.length ? `  (also ${otherGateways.join(', ')}: GATEWAY_URLS in the storefront's env file)` : ''}`,
    `  OpenAPI   ${gatewayUrl}/docs`,
    ...(summary.portalUrl ? [`  Portal    ${summary.portalUrl}  (sign in: open the link \`${withHome('npm run -s local-azure -- portal')}\` prints)`] : []),
    `  Logs      ${join(summary.home, 'logs')}/<instance>.log`,
    `  Instances (${summary.instances.length}, each its own process)`,
    ...instanceLines,
    '',
    "Try it — callers need an Entra token for the gateway; the storefront's managed identity gets one:",
    `  TOKEN=$(${withHome('npm run -s token')})`,
    `  curl -s -H "Authorization: Bearer $TOKEN" "${gatewayUrl}/v1/products/${summary.exampleId}/similar?limit=3"`,
    `  curl -s -H "Authorization: Bearer $TOKEN" -H "content-type: application/json" \\`,
    `       -d '{"query":"waterproof hiking boots","limit":3}' ${gatewayUrl}/v1/recommendations`,
    '',
    'Ctrl-C stops everything.',
  ].join('\n');
}
