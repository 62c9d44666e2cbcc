import { existsSync, readFileSync } from 'node:fs';
import type { SystemInstancesFile } from '@keyless/contracts';

/** A service instance and what its `/health/ready` answered. */
export interface InstanceHealth {
  name: string;
  service: string;
  url: string;
  ready: boolean;
  /** The HTTP status, or why there is none. */
  detail: string;
  /** Status per check (`up` / `down`), as far as the public answer shows them. */
  checks: Record<string, string>;
}

const defaults = { healthTimeoutInMs: 2_000 };

/**
 * Asks every instance the launcher recorded in `file` for its readiness, all at once, each within two seconds.
 * `undefined` when no instance is recorded (the system is not running through the launcher).
 */
export async function instanceHealth(file: string): Promise<InstanceHealth[] | undefined> {
  if (!existsSync(file)) return undefined;
  let instances: SystemInstancesFile['instances'];
  try {
    const listed = (JSON.parse(readFileSync(file, 'utf8')) as Partial<SystemInstancesFile> | null)?.instances;
    // A hand-edited or half-written file: the entries that name an instance are shown, the rest left out (not a 500).
    instances = (Array.isArray(listed) ? listed : []).filter(
      (i): i is SystemInstancesFile['instances'][number] => !!i && typeof i === 'object' && typeof i.name === 'string' && typeof i.service === 'string' && typeof i.url === 'string',
    );
  } catch {
    return undefined;
  }
  return Promise.all(
    instances.map(async (instance): Promise<InstanceHealth> => {
      const base = { name: instance.name, service: instance.service, url: instance.url };
      if (!/^https?:\/\//.test(instance.url)) return { ...base, ready: false, detail: 'no usable address', checks: {} };
      try {
        const response = await fetch(`${instance.url.replace(/\/+$/, '')}/health/ready`, { signal: AbortSignal.timeout(defaults.healthTimeoutInMs) });
        const body = (await response.json().catch(() => undefined)) as { info?: Record<string, { status?: string }>; error?: Record<string, { status?: string }> } | undefined;
        const checks = Object.fromEntries(Object.entries({ ...body?.info, ...body?.error }).map(([name, check]) => [name, String(check?.status ?? 'unknown')]));
        return { ...base, ready: response.status === 200, detail: `HTTP ${response.status}`, checks };
      } catch (error) {
        return { ...base, ready: false, detail: (error as Error).name === 'TimeoutError' ? 'no answer within 2 s' : 'not reachable', checks: {} };
      }
    }),
  );
}
