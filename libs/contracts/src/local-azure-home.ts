/** A local Azure home as the commands printed for it need to know it. */
export interface LocalAzureHomeRef {
  /** The home's absolute path (`$LOCAL_AZURE_HOME`). */
  root: string;
  /** Whether it is the default home (`.local-azure/` at the repository root), which a command finds without being told. */
  isDefault: boolean;
}

/**
 * `command` (an `npm run …` or `npm start` the launcher or the local Azure tells its user to run next) as it must be
 * typed for `home`: prefixed with `LOCAL_AZURE_HOME=<root>` unless `home` is the default one. Without the prefix a
 * command printed for a second copy (`LOCAL_AZURE_HOME=/tmp/copy npm start`) would act on the default home instead.
 *
 * Rules:
 * - The default home gets `command` as it is.
 * - Any other home is one word of a POSIX shell: as it is when it holds only characters no shell treats specially,
 *   else in single quotes (a single quote in it written `'\''`).
 *
 * @example
 * commandForHome('npm run -s token', { root: '/tmp/my copy', isDefault: false });
 * // LOCAL_AZURE_HOME='/tmp/my copy' npm run -s token
 */
export function commandForHome(command: string, home: LocalAzureHomeRef): string {
  return home.isDefault ? command : `LOCAL_AZURE_HOME=${shellWord(home.root)} ${command}`;
}

/**
 * `value` as one word of a POSIX shell command: as it is when it holds only characters no shell treats specially, else
 * in single quotes (a single quote in it written `'\\''`). For a path printed inside a command the user copies.
 *
 * @example
 * `set -a; . ${shellWord('/tmp/my copy/env/gateway.env')}; set +a` // set -a; . '/tmp/my copy/env/gateway.env'; set +a
 */
export function shellWord(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}
