import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The local Azure's CLI (built; from src/ or dist/ of the launcher alike): the launcher talks to it the way a user does. */
export const localAzureCli = fileURLToPath(new URL('../../local-azure/dist/main.js', import.meta.url));

/** What `local-azure status --output json` says: the local Azure's one ready signal. */
export interface LocalAzureStatus {
  /** `running` only while its process lives and its admin API answers as that instance. */
  state: 'running' | 'starting' | 'not-responding' | 'stopped';
  home: string;
  /** One sentence on why, and what to do. */
  detail: string;
  pid?: number;
  management?: string;
  /** Set when a local Azure of an earlier version runs for the home; `detail` says how to stop it and carry the home forward. */
  earlierVersion?: true;
}

/** The local Azure refused the request (its message says what to fix, e.g. a home it will not use). */
export class LocalAzureCliError extends Error {
  override readonly name = 'LocalAzureCliError';
}

/** Options of {@link localAzureStatus}. */
export interface LocalAzureStatusOptions {
  /** Wait up to this long for `running` (`status --wait`). **Default**: no wait. */
  waitInMs?: number;
  /** Stops the wait (the status process is killed and the promise rejects). */
  signal?: AbortSignal;
}

/**
 * Asks the local Azure's CLI whether a local Azure runs for `home` (`status --output json`, exit code 0, 3
 * or 4 with the status on stdout).
 *
 * @throws {LocalAzureCliError} when the CLI refuses (exit 2: e.g. the home is the root of a git work tree).
 */
export function localAzureStatus(home: string, options: LocalAzureStatusOptions = {}): Promise<LocalAzureStatus> {
  const wait = options.waitInMs === undefined ? [] : ['--wait', String(options.waitInMs / 1000)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [localAzureCli, 'status', '--output', 'json', ...wait], {
      env: { PATH: process.env.PATH ?? '', LOCAL_AZURE_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0 || code === 3 || code === 4) {
        try {
          resolve(JSON.parse(stdout) as LocalAzureStatus);
        } catch {
          reject(new LocalAzureCliError(`local-azure status printed no status (exit ${code}): ${stdout.slice(0, 200)}${stderr.slice(0, 200)}`));
        }
      } else {
        reject(new LocalAzureCliError(stderr.trim().replace(/^local-azure: /, '') || `local-azure status failed (exit ${code})`));
      }
    });
  });
}
