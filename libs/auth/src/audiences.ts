import { AuthConfigurationError } from './errors.js';

/** Names of the Azure audiences the system uses. */
export type WellKnownAudience = 'cognitiveServices' | 'serviceBus' | 'keyVault' | 'resourceManager' | 'postgres';

/**
 * What an app may name as an audience: a well-known name, an application ID URI of an API in the
 * tenant (`api://keyless-gateway`, with or without `/.default`), or the exact scope an Azure SDK asks for.
 */
export type AudienceName = WellKnownAudience | `api://${string}` | (string & {});

/** A resolved audience: the scope requested from the credential and the resource (token `aud`) it stands for. */
export interface Audience {
  /** Stable key: the well-known name, or the application ID URI. Used in logs, metrics and health. */
  key: string;
  /** The scope passed to `getToken` (exactly what the Azure SDKs use). */
  scope: string;
  /** The scope without `/.default`: what the identity endpoint receives as `resource`. */
  resource: string;
}

/**
 * The well-known audiences, with the scopes the Azure SDKs request. Service Bus's has a double slash
 * (`@azure/core-amqp`'s `aadServiceBusScope`): the resource is `https://servicebus.azure.net/`. `resourceManager` is
 * Azure Resource Manager (the control plane: role assignments and definitions), as the ARM SDKs request it. `postgres` is
 * Azure Database for PostgreSQL's Microsoft Entra sign-in: its token is the database password.
 */
export const wellKnownAudiences: Readonly<Record<WellKnownAudience, Audience>> = {
  cognitiveServices: {
    key: 'cognitiveServices',
    scope: 'https://cognitiveservices.azure.com/.default',
    resource: 'https://cognitiveservices.azure.com',
  },
  serviceBus: { key: 'serviceBus', scope: 'https://servicebus.azure.net//.default', resource: 'https://servicebus.azure.net/' },
  keyVault: { key: 'keyVault', scope: 'https://vault.azure.net/.default', resource: 'https://vault.azure.net' },
  resourceManager: { key: 'resourceManager', scope: 'https://management.azure.com/.default', resource: 'https://management.azure.com' },
  postgres: {
    key: 'postgres',
    scope: 'https://ossrdbms-aad.database.windows.net/.default',
    resource: 'https://ossrdbms-aad.database.windows.net',
  },
};

/** Other spellings of the well-known scopes that SDKs or people use, mapped to the canonical audience. */
const scopeAliases: Record<string, WellKnownAudience> = {
  'https://cognitiveservices.azure.com/.default': 'cognitiveServices',
  'https://cognitiveservices.azure.com': 'cognitiveServices',
  'https://cognitiveservices.azure.com/': 'cognitiveServices',
  'https://servicebus.azure.net//.default': 'serviceBus',
  'https://servicebus.azure.net/.default': 'serviceBus',
  'https://servicebus.azure.net': 'serviceBus',
  'https://servicebus.azure.net/': 'serviceBus',
  'https://vault.azure.net/.default': 'keyVault',
  'https://vault.azure.net': 'keyVault',
  'https://vault.azure.net/': 'keyVault',
  'https://management.azure.com/.default': 'resourceManager',
  'https://management.azure.com': 'resourceManager',
  'https://management.azure.com/': 'resourceManager',
  'https://ossrdbms-aad.database.windows.net/.default': 'postgres',
  'https://ossrdbms-aad.database.windows.net': 'postgres',
  'https://ossrdbms-aad.database.windows.net/': 'postgres',
};

const appIdUri = /^api:\/\/[A-Za-z0-9][\w.-]*(\/[\w.-]+)*$/;
const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Resolves an audience name or scope to an {@link Audience}.
 *
 * @throws {AuthConfigurationError} `AudienceUnknown` when `name` is none of the accepted forms.
 * @example
 * resolveAudience('serviceBus').scope;              // 'https://servicebus.azure.net//.default'
 * resolveAudience('api://keyless-gateway').scope;   // 'api://keyless-gateway/.default'
 */
export function resolveAudience(name: AudienceName): Audience {
  const trimmed = name.trim();
  if (trimmed in wellKnownAudiences) return wellKnownAudiences[trimmed as WellKnownAudience];
  const alias = scopeAliases[trimmed.toLowerCase()];
  if (alias) return wellKnownAudiences[alias];
  const base = trimmed.replace(/\/\.default$/, '');
  if (appIdUri.test(base) || guid.test(base)) return { key: base, scope: `${base}/.default`, resource: base };
  throw new AuthConfigurationError(
    'AudienceUnknown',
    `Unknown audience "${name}": use one of ${Object.keys(wellKnownAudiences).join(', ')}, ` +
      'an application ID URI such as api://keyless-gateway, or the scope an Azure SDK requests (https://cognitiveservices.azure.com/.default, …).',
  );
}
