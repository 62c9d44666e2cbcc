import { portIsFree } from './processes.js';

/** The services of the system, in start order (the gateway last: it is the front door). */
export const serviceNames = ['recommendation', 'vision', 'gateway'] as const;
export type ServiceName = (typeof serviceNames)[number];

/** A mistake of the user's (a bad setting, a port in use), printed without a stack trace. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const defaults = {
  /** Instances of each service `npm start` runs at most: each is a Node process, and the machine is shared. */
  maxReplicas: 8,
  /** Gateway instance i (from 0) listens on PORT + i × 10; PORT+1 stays the demo images' port. */
  gatewayPortStep: 10,
};

export const replicaLimits = { maxReplicas: defaults.maxReplicas, gatewayPortStep: defaults.gatewayPortStep } as const;

/**
 * `KEYLESS_REPLICAS`: how many instances of each of gateway, recommendation and vision to run. Unset or empty
 * means 1.
 *
 * @throws {UsageError} for anything but a whole number from 1 to 8.
 */
export function parseReplicas(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return 1;
  const replicas = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > defaults.maxReplicas) {
    throw new UsageError(
      `KEYLESS_REPLICAS must be a whole number from 1 to ${defaults.maxReplicas} (instances of each of gateway, recommendation and vision), not "${value}".`,
    );
  }
  return replicas;
}

/** One process of the system: which service it runs, which instance it is, and its port if fixed in advance. */
export interface ServiceInstance {
  /** Process and log name: the service's name for the first instance, `<service>-<n>` for the others. */
  name: string;
  service: ServiceName;
  /** 1-based. */
  index: number;
  /** Gateways' ports are fixed (PORT, PORT+10, …); the others get a free port at start. */
  port?: number;
}

/** The gateway instances' ports: PORT, PORT+10, PORT+20, … */
export function gatewayPorts(gatewayPort: number, replicas: number): number[] {
  return Array.from({ length: replicas }, (_, i) => gatewayPort + i * defaults.gatewayPortStep);
}

/** The name of instance `index` (1-based) of `service`: `gateway`, `gateway-2`, … */
export function instanceName(service: ServiceName, index: number): string {
  return index === 1 ? service : `${service}-${index}`;
}

/** The service an instance name belongs to (`recommendation-2` → `recommendation`, `gateway-limited` → `gateway`). */
export function serviceOf(instance: string): ServiceName | undefined {
  return serviceNames.find((service) => instance === service || instance.startsWith(`${service}-`));
}

/** Every instance `npm start` runs, in start order: recommendation and vision instances, then the gateways. */
export function planInstances(replicas: number, gatewayPort: number): ServiceInstance[] {
  const ports = gatewayPorts(gatewayPort, replicas);
  return serviceNames.flatMap((service) =>
    Array.from({ length: replicas }, (_, i) => ({
      name: instanceName(service, i + 1),
      service,
      index: i + 1,
      ...(service === 'gateway' ? { port: ports[i]! } : {}),
    })),
  );
}

/** What the storefront (a caller) is told: every gateway instance, and the first as the one to use by default. */
export function storefrontGatewayEnv(gatewayUrls: readonly string[]): { GATEWAY_URL: string; GATEWAY_URLS: string } {
  return { GATEWAY_URL: gatewayUrls[0]!, GATEWAY_URLS: gatewayUrls.join(',') };
}

/**
 * The ports `npm start` needs before it starts anything: every gateway instance's and the demo images' (PORT+1).
 *
 * @throws {UsageError} naming the first port that is out of range or in use, and what it was for.
 */
export async function checkLauncherPorts(gatewayPort: number, replicas: number): Promise<void> {
  const wanted = [
    ...gatewayPorts(gatewayPort, replicas).map((port, i) => ({ port, what: `gateway instance ${i + 1}` })),
    { port: gatewayPort + 1, what: 'demo image server' },
  ];
  for (const { port, what } of wanted) {
    if (port > 65535) {
      throw new UsageError(`Port ${port} (${what}) is beyond 65535: with KEYLESS_REPLICAS=${replicas} the gateways use PORT, PORT+10, …; choose a lower PORT.`);
    }
  }
  for (const { port, what } of wanted) {
    if (!(await portIsFree(port))) {
      throw new UsageError(`Port ${port} (${what}) is in use. Stop what uses it, or run another copy with PORT=<free port> and its own LOCAL_AZURE_HOME.`);
    }
  }
}
