import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AdminClient } from '../cli/admin-client.js';
import type { LocalAzureConfigInput } from '../config/local-azure-config.js';
import type { ConsoleLog, DataPlane } from '../data-plane.js';
import { LocalAzure } from '../local-azure.js';
import type { NewPortChoice } from '../net/port-book.js';
import { UserTokens } from './user-token.js';

/** Options of {@link startTestAzure}. */
export interface TestAzureOptions {
  /** Data planes to run (Service Bus, OpenAI, Vision). Default: none (identity and RBAC only). */
  dataPlanes?: readonly DataPlane[];
  /** Configuration overrides. Default: the built-in defaults. */
  config?: LocalAzureConfigInput;
  /** Existing home folder to reuse (restart tests). Default: a new temporary folder. */
  home?: string;
  /**
   * How listeners without a configured or kept port get one (see `LocalAzureOptions.newPorts`). Default: `system`
   * in a new temporary home (never restarted: the OS's pick leaves the stable range to the local Azures that
   * restart and keep their ports), `stable` in a given `home`.
   */
  newPorts?: NewPortChoice;
  /** The local Azure's console lines (alerts, failures, refusals the data planes print). Default: dropped. */
  log?: ConsoleLog;
}

/** A local Azure started for one test file. */
export interface TestAzure {
  azure: LocalAzure;
  home: string;
  /**
   * Makes this process a process on `host`: exports the host's env file into `process.env`, exactly as
   * a launcher would before starting a service. Call it before the first token request of the file —
   * `@azure/identity` picks its managed-identity source once per process (per Jest test file).
   */
  enterHost(host: string): Record<string, string>;
  /**
   * An Entra access token for ARM (`https://management.core.windows.net/`) of a user of the local tenant — the
   * operator (Owner of the subscription) unless `username` names another configured user — from the real token
   * endpoint, as the CLI signs in. Send it as `Authorization: Bearer …` to `azure.endpoints.management`.
   */
  operatorToken(username?: string): Promise<string>;
  /** A management API client (the CLI's admin routes and the ARM-shaped API) acting as that user. */
  admin(username?: string): AdminClient;
  /** Stops the local Azure and deletes its temporary home. */
  stop(): Promise<void>;
}

let caTrusted = new Set<string>();

/**
 * Starts a local Azure on free ports in a temporary home, for integration tests with the real SDKs.
 * The test process trusts its CA through `tls.setDefaultCACertificates` (a test process cannot set
 * NODE_EXTRA_CA_CERTS for itself after start; child processes get it from the env file instead).
 */
export async function startTestAzure(options: TestAzureOptions = {}): Promise<TestAzure> {
  const home = options.home ?? mkdtempSync(join(tmpdir(), 'local-azure-test-'));
  const azure = await LocalAzure.start({
    home,
    ...(options.config ? { config: options.config } : {}),
    ...(options.dataPlanes ? { dataPlanes: options.dataPlanes } : {}),
    ...(options.log ? { log: options.log } : {}),
    newPorts: options.newPorts ?? (options.home ? 'stable' : 'system'),
  });
  trustCa(azure.tls.caCertPem);
  const exported = new Set<string>();
  const users = new UserTokens(() => ({
    login: azure.endpoints.login,
    management: azure.endpoints.management,
    tenantId: azure.directory.tenantId,
    tenantDomain: azure.directory.domain,
    operator: azure.directory.operator.userPrincipalName,
    ca: azure.tls.caCertPem,
    homeCredentialFile: azure.home.homeCredentialFile,
  }));
  return {
    azure,
    home,
    operatorToken: (username) => users.token(username),
    admin: (username) => users.client(username),
    enterHost(host) {
      const env = azure.hostEnv(host);
      for (const [key, value] of Object.entries(env)) {
        process.env[key] = value;
        exported.add(key);
      }
      return env;
    },
    async stop() {
      await azure.stop();
      for (const key of exported) delete process.env[key];
      if (!options.home) rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Adds `caPem` to this process's default trusted CAs (Node ≥ 22.15 / 23.8). */
export function trustCa(caPem: string): void {
  if (caTrusted.has(caPem)) return;
  caTrusted = new Set([...caTrusted, caPem]);
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), ...caTrusted]);
}
