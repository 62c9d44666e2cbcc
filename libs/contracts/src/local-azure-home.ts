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

/** How the local Azure's image starts its CLI (tools/local-azure/Dockerfile's ENTRYPOINT, from its WORKDIR). */
const localAzureEntryPoint = 'node tools/local-azure/dist/main.js';

/**
 * `command` (an `npm run local-azure …`, `npm run local-azure` or `npm start` a service tells its reader to run) as it
 * must be typed when the local Azure runs as the docker compose service `service` (docker-compose.yml), where the
 * repository's npm scripts are not at hand: the CLI runs inside that service's container, as its user, on its home.
 *
 * Rules:
 * - `npm run local-azure -- <args>` (`-s` too) runs the CLI in the container:
 *   `docker compose exec <service> node tools/local-azure/dist/main.js <args>` (the image's entry point).
 * - `npm run local-azure` (start the local Azure) becomes `docker compose up -d --build <service>`, and `npm start`
 *   (start the system) `docker compose up -d --build`: `--build` because the image holds `infra/access.json`, so a
 *   start after an edit of it needs a new image (compose then recreates the container; the home is a volume, kept).
 * - Any other command is returned as it is.
 *
 * @example
 * commandForCompose('npm run local-azure -- identity list', 'local-azure');
 * // docker compose exec local-azure node tools/local-azure/dist/main.js identity list
 */
export function commandForCompose(command: string, service: string): string {
  const cli = /^npm run (?:-s )?local-azure -- (.+)$/s.exec(command);
  if (cli) return `docker compose exec ${shellWord(service)} ${localAzureEntryPoint} ${cli[1]}`;
  if (/^npm run (?:-s )?local-azure$/.test(command)) return `docker compose up -d --build ${shellWord(service)}`;
  if (command === 'npm start') return 'docker compose up -d --build';
  return command;
}
