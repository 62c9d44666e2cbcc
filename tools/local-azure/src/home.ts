import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The local Azure's state folder (`$LOCAL_AZURE_HOME`, default `.local-azure/` at the repo root).
 * Everything the local Azure creates lives here: the CA and server certificate, the tenant and its
 * signing keys, the stores and logs, and one env file per host. A restart reuses all of it.
 */
export class LocalAzureHome {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
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

  /** Path of the file that tells the CLI where the running instance's admin API listens. */
  get runtimeFile(): string {
    return join(this.root, 'runtime.json');
  }

  private dir(name: string): string {
    const path = join(this.root, name);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    return path;
  }
}
