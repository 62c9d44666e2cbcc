import { readFileSync } from 'node:fs';
import type { LocalAzureHome } from '../home.js';
import { isSameProcess } from '../runtime/process-identity.js';
import { readRuntimeRecord, runtimeInfo, type RuntimeInfo } from '../runtime/runtime-record.js';
import { AdminClientError } from './admin-client-error.js';
import { requestJson } from './https-json.js';
import { OperatorSession } from './operator-session.js';

export { AdminClientError } from './admin-client-error.js';

/** Options of {@link AdminClient}. */
export interface AdminClientOptions {
  /** The management API (`AZURE_RESOURCE_MANAGER_ENDPOINT`). */
  baseUrl: string;
  /** The local CA, PEM. */
  ca: string;
  /** An ARM access token; `forceRefresh` after the API refused one as expired or invalid. */
  accessToken(options?: { forceRefresh?: boolean }): Promise<string>;
  /** A sentence added to a refusal's message (after ARM's), for a refusal with this ARM code; none when it returns undefined. */
  refusalHint?(code: string | undefined): string | undefined;
}

/**
 * Talks to the running local Azure's management API as a signed-in user: every call carries an ARM bearer
 * token; a 401 for an expired or invalid token is retried once with a fresh one. Refusals become
 * {@link AdminClientError}s with ARM's code and message.
 */
export class AdminClient {
  constructor(private readonly options: AdminClientOptions) {}

  /**
   * The CLI's client for the local Azure running with `home`: found through `runtime.json`, trusted through the
   * local CA file, acting as the CLI's signed-in user ({@link OperatorSession}).
   */
  static forHome(home: LocalAzureHome): { client: AdminClient; session: OperatorSession; runtime: RuntimeInfo } {
    const runtime = readRuntime(home);
    const ca = readFileSync(runtime.caCertPath, 'utf8');
    const session = new OperatorSession(home, runtime, ca);
    // ARM's refusal names the user, not how to get back: a user who tried `login --username reader` is told.
    const refusalHint = (code: string | undefined): string | undefined => {
      const user = session.account()?.username;
      return code === 'AuthorizationFailed' && user && user !== runtime.operator
        ? `The CLI is signed in as ${user}: \`${home.command('npm run local-azure -- login')}\` signs the operator (Owner of the subscription) in again.`
        : undefined;
    };
    return { client: new AdminClient({ baseUrl: runtime.management, ca, accessToken: (o) => session.accessToken(o), refusalHint }), session, runtime };
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const send = async (forceRefresh: boolean) => {
      const token = await this.options.accessToken({ forceRefresh });
      const payload = body === undefined ? undefined : JSON.stringify(body);
      try {
        return await requestJson(new URL(path, this.options.baseUrl), {
          method,
          ca: this.options.ca,
          headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
          ...(payload !== undefined ? { body: payload } : {}),
        });
      } catch (error) {
        throw new AdminClientError(`Cannot reach the local Azure at ${this.options.baseUrl} (${(error as Error).message}). Is it still running?`);
      }
    };
    let response = await send(false);
    const retriable = ['ExpiredAuthenticationToken', 'InvalidAuthenticationToken'];
    if (response.status === 401 && retriable.includes(errorOf(response.json)?.code ?? '')) response = await send(true);
    if (response.status >= 400) {
      const error = errorOf(response.json);
      const hint = this.options.refusalHint?.(error?.code);
      throw new AdminClientError(`(${error?.code ?? response.status}) ${error?.message ?? response.text}${hint ? `\n${hint}` : ''}`, error?.code, response.status);
    }
    return response.json as T;
  }
}

/**
 * What the running local Azure wrote into its home — believed only while the process that wrote it runs (a
 * record left by a killed process is not a running local Azure).
 *
 * @throws {AdminClientError} when it does not run, or is still starting.
 */
export function readRuntime(home: LocalAzureHome): RuntimeInfo {
  const record = readRuntimeRecord(home.runtimeFile);
  if (!record || !isSameProcess(record.pid, record.processStart)) {
    throw new AdminClientError(
      `The local Azure is not running for ${home.root}. Start it with \`${home.command('npm run local-azure')}\` (or set LOCAL_AZURE_HOME to the home of the one that runs).`,
    );
  }
  const info = runtimeInfo(record);
  if (!info) {
    throw new AdminClientError(`The local Azure for ${home.root} is still starting (pid ${record.pid}); try again in a moment (\`${home.command('npm run local-azure -- status --wait 30')}\` waits for it).`);
  }
  return info;
}

function errorOf(json: unknown): { code?: string; message?: string } | undefined {
  return (json as { error?: { code?: string; message?: string } } | undefined)?.error;
}
