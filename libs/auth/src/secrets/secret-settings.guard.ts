import { SecretSettingError, type SecretSetting } from '../errors.js';

/** Options of `findSecretSettings` (`@keyless/auth/diagnostics`) / {@link assertNoSecretSettings}. */
export interface SecretSettingsGuardOptions {
  /**
   * Names that match a secret pattern but hold no secret (e.g. `PARTITION_KEY`), each with a reason
   * for the reviewer. Values are still checked for secret markers. Default: none.
   */
  allow?: Readonly<Record<string, string>>;
}

interface NameRule {
  pattern: RegExp;
  reason: string;
  instead: (name: string) => string;
}

const identityInstead =
  'remove it. Keyless services authenticate with the managed identity named by AZURE_CLIENT_ID; grant that identity a role ' +
  'on the resource instead (infra/access.json)';

/** Rules on variable names, most specific first (the first match explains the variable). */
const nameRules: readonly NameRule[] = [
  {
    pattern: /OPENAI.*_(API_)?KEY$/,
    reason: 'an Azure OpenAI key',
    instead: () =>
      'remove it (the OpenAI SDK would send it instead of a token). Set AZURE_OPENAI_ENDPOINT only; the identity needs "Cognitive Services OpenAI User" on the account',
  },
  {
    pattern: /(VISION|COMPUTER_?VISION|COGNITIVE).*_(API_)?KEY$/,
    reason: 'an Azure AI services key',
    instead: () => 'remove it. Set the endpoint only; the identity needs "Cognitive Services User" on the Vision account',
  },
  {
    pattern: /(SERVICE_?BUS|SB).*(CONNECTION_?STRING|_KEY)|SHARED_?ACCESS|SAS_?(KEY|TOKEN)/,
    reason: 'a Service Bus connection string or SAS key',
    instead: () =>
      'remove it. Set SERVICEBUS_FULLY_QUALIFIED_NAMESPACE (<namespace>.servicebus.windows.net); the identity needs ' +
      '"Azure Service Bus Data Sender"/"Data Receiver" on the entities',
  },
  {
    pattern: /^AZURE_CLIENT_(SECRET|CERTIFICATE_PATH|CERTIFICATE_PASSWORD|SEND_CERTIFICATE_CHAIN)$/,
    reason: 'an app registration secret or certificate',
    instead: () =>
      'remove it. AZURE_CLIENT_ID alone names the user-assigned managed identity; there is no client secret to hold',
  },
  {
    pattern: /^PGPASS(WORD|FILE)$/,
    reason: 'a PostgreSQL password',
    instead: () =>
      "remove it. The services sign in to PostgreSQL with the managed identity's Microsoft Entra token as the password " +
      "(PGUSER = the identity's name); the server needs a database principal for that identity (infra/access.json)",
  },
  { pattern: /CONNECTION_?STRING/, reason: 'a connection string', instead: () => identityInstead },
  { pattern: /_API_KEY$|^API_KEY$/, reason: 'an API key', instead: () => identityInstead },
  { pattern: /(^|_)(ACCESS_|ACCOUNT_|PRIMARY_|SECONDARY_|SUBSCRIPTION_)?KEY$/, reason: 'a key', instead: () => identityInstead },
  // Not `PWD`: the shell's working directory.
  { pattern: /(^|_)(CLIENT_)?SECRET$|PASSWORD$/, reason: 'a secret or password', instead: () => identityInstead },
];

/**
 * Names App Service itself puts into every app's environment (Linux included): secrets of the platform, which no
 * Keyless service reads or was configured with. Refusing them would stop every service on App Service. Their values
 * are still checked for secret markers.
 */
const platformVariables: Readonly<Record<string, string>> = {
  MSI_SECRET: "App Service's identity header under its 2017-09-01 name (the same value as IDENTITY_HEADER)",
  WEBSITE_AUTH_ENCRYPTION_KEY: "App Service's own key for the tokens of its authentication module",
  WEBSITE_AUTH_SIGNING_KEY: "App Service's own key for the tokens of its authentication module",
  // The SSH console (Kudu's web SSH) runs with these beside the app settings; the doctor runs there.
  WEBSITE_SSH_PASSWORD: "the documented password of the built-in images' SSH server, reachable only through the SCM site",
  SSH_USER_PASSWORD: "App Service's password for the SSH console's user",
};

/** App Service copies every app setting `NAME` into `APPSETTING_NAME`. */
const appSettingCopyPrefix = 'APPSETTING_';

/** Markers that give a secret away inside a value, whatever the variable is called. */
const valueMarkers: readonly { pattern: RegExp; marker: string }[] = [
  { pattern: /SharedAccessKey(Name)?\s*=/i, marker: 'SharedAccessKey=' },
  { pattern: /SharedAccessSignature\s*(=|sr=)/i, marker: 'SharedAccessSignature' },
  { pattern: /AccountKey\s*=/i, marker: 'AccountKey=' },
  { pattern: /(^|;)\s*(Password|Pwd)\s*=/i, marker: 'Password=' },
  // libpq's key=value connection strings (`host=… user=… password=…`).
  { pattern: /(^|\s)password\s*=\s*\S/i, marker: 'password=' },
  // A database URL with a password: postgres://user:password@host/db.
  { pattern: /\bpostgres(ql)?:\/\/[^\s/@:]*:[^\s/@]+@/i, marker: 'a password in a postgres:// URL' },
  { pattern: /[?&]sig=[^&]+/i, marker: 'a SAS signature (sig=)' },
  { pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----/, marker: 'a private key' },
  { pattern: /client_secret=/i, marker: 'client_secret=' },
];

/** The secret marker found in `value`, if any (the value itself is never returned). */
export function findSecretInValue(value: string): string | undefined {
  return valueMarkers.find((m) => m.pattern.test(value))?.marker;
}

/**
 * Finds every setting in `settings` (usually `process.env`) that holds a key or connection string,
 * by name (`*_API_KEY`, `*_KEY`, `*CONNECTION_STRING*`, `*_SECRET`, `PGPASSWORD`, …) or by value
 * (`SharedAccessKey=`, `AccountKey=`, `sig=`, a `postgres://user:password@…` URL, private keys). Empty values are ignored.
 * Rules:
 * - A name rule matches → reported with that rule's advice, unless the name is in `allow` or is one App Service
 *   sets itself (`MSI_SECRET`, `WEBSITE_AUTH_ENCRYPTION_KEY`, `WEBSITE_AUTH_SIGNING_KEY`, and in its SSH console
 *   `WEBSITE_SSH_PASSWORD`, `SSH_USER_PASSWORD`).
 * - A value marker matches → reported, even for allowed names (an allowed name may not hold a secret).
 * - `APPSETTING_<NAME>` holding the value of `<NAME>` is App Service's copy of that setting: only `<NAME>` is judged.
 * - Each variable is reported once; the result is sorted by name. Values are never copied.
 */
export function findSecretSettings(
  settings: Readonly<Record<string, string | undefined>>,
  options: SecretSettingsGuardOptions = {},
): SecretSetting[] {
  const found: SecretSetting[] = [];
  for (const [name, value] of Object.entries(settings)) {
    if (value === undefined || value.trim() === '') continue;
    if (name.startsWith(appSettingCopyPrefix) && settings[name.slice(appSettingCopyPrefix.length)] === value) continue;
    const upper = name.toUpperCase();
    const allowed = options.allow?.[name] !== undefined || platformVariables[name] !== undefined;
    const rule = allowed ? undefined : nameRules.find((r) => r.pattern.test(upper));
    const marker = findSecretInValue(value);
    if (rule) found.push({ name, reason: marker ? `${rule.reason}; its value contains ${marker}` : `name looks like ${rule.reason}`, instead: rule.instead(name) });
    else if (marker) found.push({ name, reason: `its value contains ${marker}`, instead: identityInstead });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Refuses to start with secrets in the configuration. Apps call it at boot over their environment,
 * before anything else reads it.
 *
 * @throws {SecretSettingError} naming every offending variable and what to use instead.
 * @example
 * assertNoSecretSettings(process.env); // in main.ts, before NestFactory.create
 */
export function assertNoSecretSettings(
  settings: Readonly<Record<string, string | undefined>>,
  options: SecretSettingsGuardOptions = {},
): void {
  const found = findSecretSettings(settings, options);
  if (found.length) throw new SecretSettingError(found);
}
