import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { commandForHome } from '@keyless/contracts';
import { ConfigError, repoRoot } from './config/local-azure-config.js';

/**
 * Format of the home this version writes, recorded in its `home-format.json`. Raise it with any change that leaves a
 * home the versions before it cannot read (they then refuse it up front, naming the home and the choices, instead of
 * crashing on it halfway or misreading it), and have the new version carry older homes forward at the start that
 * finds them. A home without the file was written before the file existed, by this version's format or an older one.
 */
export const homeFormat = 1;

/**
 * The local Azure's state folder (`$LOCAL_AZURE_HOME`, default `.local-azure/` at the repo root).
 * Everything the local Azure creates lives here: the CA and server certificate, the tenant and its
 * signing keys, the stores and logs, the ports of its listeners and one env file per host. A restart
 * reuses all of it.
 */
export class LocalAzureHome {
  /** The home a command finds without being told (`LOCAL_AZURE_HOME` unset): `.local-azure/` at the repository root. */
  static readonly defaultRoot = resolve(repoRoot, '.local-azure');

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

  /** Whether this is the default home ({@link LocalAzureHome.defaultRoot}). */
  get isDefault(): boolean {
    return this.root === LocalAzureHome.defaultRoot;
  }

  /**
   * `command` (`npm run local-azure -- status`, `npm start`) as the user must type it for this home: with
   * `LOCAL_AZURE_HOME=<root>` in front unless this is the default home. Every command the local Azure tells its user
   * to run next is printed this way, so that it works as printed for a second copy too.
   */
  command(command: string): string {
    return commandForHome(command, this);
  }

  /** Creates the home folder (and its parents) if it does not exist yet. */
  create(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
  }

  /** Path of the home's format marker (`home-format.json`): `{"format": <n>}`, see {@link homeFormat}. */
  get formatFile(): string {
    return join(this.root, 'home-format.json');
  }

  /**
   * Checks that this version can read the home before anything in it is read or written, then records this
   * version's format in it (a home that has none, written before the marker existed, gets it).
   *
   * @throws {ConfigError} when a newer version wrote the home (this one would misread it), or its marker is unreadable.
   */
  claimFormat(): void {
    const file = this.formatFile;
    let found: number | undefined;
    if (existsSync(file)) {
      const marker = readMarker(file);
      if (marker === undefined) {
        throw new ConfigError(
          `${file} is not a format marker this version can read (it holds {"format": <number>}). Restore the file, or, if the home was only ever used by this version, delete it: the next start writes it again.`,
        );
      }
      found = marker;
    }
    if (found !== undefined && found > homeFormat) {
      throw new ConfigError(
        `${this.root} was written by a newer version of the local Azure (home format ${found}; this version reads formats up to ${homeFormat}), and is left as it was. ` +
          `Start the newer version on it (git pull, then npm ci and ${this.command('npm start')}), or start this version on a home of its own: set LOCAL_AZURE_HOME to another folder, or move this one aside (mv ${this.root} ${this.root}.newer) to start over with a new tenant.`,
      );
    }
    if (found === homeFormat) return;
    writeFileSync(`${file}.tmp`, `${JSON.stringify({ format: homeFormat })}\n`);
    renameSync(`${file}.tmp`, file);
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

/** The `format` of a home's marker file, or `undefined` when the file is not one. */
function readMarker(file: string): number | undefined {
  try {
    const { format } = JSON.parse(readFileSync(file, 'utf8')) as { format?: unknown };
    return Number.isInteger(format) && (format as number) > 0 ? (format as number) : undefined;
  } catch {
    return undefined;
  }
}
