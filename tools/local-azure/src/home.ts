import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from './config/local-azure-config.js';

/**
 * The local Azure's state folder (`$LOCAL_AZURE_HOME`, default `.local-azure/` at the repo root).
 * Everything the local Azure creates lives here: the CA and server certificate, the tenant and its
 * signing keys, the stores and logs, the ports of its listeners and one env file per host. A restart
 * reuses all of it.
 */
export class LocalAzureHome {
  readonly root: string;

  /**
   * @throws {ConfigError} when `root` is empty or the root of a git work tree (where `git add -A` would
   *   take the CA key, the signing keys and the stores).
   */
  constructor(root: string) {
    if (!root.trim()) throw new ConfigError('The local Azure home folder is empty: unset LOCAL_AZURE_HOME for the default (.local-azure/ in the repository), or name a folder.');
    this.root = resolve(root);
    if (existsSync(join(this.root, '.git'))) {
      throw new ConfigError(
        `${this.root} is the root of a git work tree: the local Azure will not keep its CA key, signing keys and stores there, ` +
          'where `git add -A` would take them. Set LOCAL_AZURE_HOME to a folder of its own (e.g. .local-azure/ inside the repository, which is ignored), or unset it for that default.',
      );
    }
  }

  /** Creates the home folder (and its parents) if it does not exist yet. */
  create(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
  }

  /** Folder for the CA (`ca.pem`) and the server certificate. */
  get tlsDir(): string {
    return this.dir('tls');
  }

  /** Folder for `<host>.env` files, written once every listener is ready. */
  get envDir(): string {
    return this.dir('env');
  }

  /** Folder for SQLite databases (directory state, logs, Service Bus messages). */
  get dataDir(): string {
    return this.dir('data');
  }

  /** Path of the env file for a host. */
  envFile(host: string): string {
    return join(this.envDir, `${host}.env`);
  }

  /** Folder of the CLI's sign-in state (its token cache). */
  get cliDir(): string {
    return this.dir('cli');
  }

  /**
   * The CLI's token cache (mode 0600): the signed-in user, its refresh token and its access tokens — like the MSAL
   * cache of a signed-in `az`.
   */
  get tokenCacheFile(): string {
    return join(this.cliDir, 'token-cache.json');
  }

  /** The home credential, the secret users sign in with (see entra/home-credential.ts). */
  get homeCredentialFile(): string {
    return join(this.dataDir, 'home-credential');
  }

  /**
   * Path of the running instance's record (`runtime.json`): process, instance id and, once ready, its
   * endpoints. Read through `readStatus`, which checks it against the live process and its admin API.
   */
  get runtimeFile(): string {
    return join(this.root, 'runtime.json');
  }

  /** Path of the ports every listener had at its last start (`ports.json`), reused by the next start. */
  get portsFile(): string {
    return join(this.root, 'ports.json');
  }

  private dir(name: string): string {
    const path = join(this.root, name);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    return path;
  }
}
