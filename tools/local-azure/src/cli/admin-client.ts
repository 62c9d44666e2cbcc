import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { LocalAzureHome } from '../home.js';
import { isSameProcess } from '../runtime/process-identity.js';
import { readRuntimeRecord } from '../runtime/runtime-record.js';

/** A failed admin call, with the message the CLI prints. */
export class AdminClientError extends Error {
  override readonly name = 'AdminClientError';
}

/**
 * Talks to the running local Azure's admin API. The CLI finds it through `runtime.json` in the home
 * folder (only while the process that wrote it runs) and trusts it through the local CA file (the CLI
 * itself starts without NODE_EXTRA_CA_CERTS).
 */
export class AdminClient {
  private readonly base: string;
  private readonly ca: string;

  constructor(home: LocalAzureHome) {
    const runtime = readRuntimeRecord(home.runtimeFile);
    if (!runtime || !isSameProcess(runtime.pid, runtime.processStart)) {
      throw new AdminClientError(
        `The local Azure is not running for ${home.root}. Start it with \`npm run local-azure\` (or set LOCAL_AZURE_HOME to the home of the one that runs).`,
      );
    }
    if (!runtime.management || !runtime.caCertPath) {
      throw new AdminClientError(`The local Azure for ${home.root} is still starting (pid ${runtime.pid}); try again in a moment (\`npm run local-azure -- status --wait 30\` waits for it).`);
    }
    this.base = runtime.management;
    this.ca = readFileSync(runtime.caCertPath, 'utf8');
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        url,
        { method, ca: this.ca, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}, timeout: 10_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const json = text ? (JSON.parse(text) as unknown) : undefined;
            if ((res.statusCode ?? 500) >= 400) {
              const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
              reject(new AdminClientError(`(${error?.code ?? res.statusCode}) ${error?.message ?? text}`));
            } else resolve(json as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new AdminClientError(`The local Azure at ${this.base} did not answer within 10 s.`)));
      req.on('error', (error) =>
        reject(
          error instanceof AdminClientError
            ? error
            : new AdminClientError(`Cannot reach the local Azure at ${this.base} (${error.message}). Is it still running?`),
        ),
      );
      req.end(payload);
    });
  }
}
