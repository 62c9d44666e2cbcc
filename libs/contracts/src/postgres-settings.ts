import { z } from 'zod';

/**
 * libpq's standard variables of a service that keeps its state in the shared PostgreSQL, to spread into its
 * environment schema (`settingsSchema({ ...postgresSettings, … })`). There is no `PGPASSWORD`: the password is the
 * identity's Microsoft Entra token.
 */
export const postgresSettings = {
  /** The server (`<server>.postgres.database.azure.com`; locally the local Azure's). */
  PGHOST: z.string().min(1),
  PGPORT: z.coerce.number().int().min(1).max(65535).default(5432),
  PGDATABASE: z.string().min(1),
  /** The database principal: the managed identity's name. The password is its Entra token; there is no PGPASSWORD. */
  PGUSER: z.string().min(1),
  PGSSLMODE: z.literal('verify-full', 'must be verify-full: the password is an access token').default('verify-full'),
  /** ARM id of the flexible server, so a refused sign-in prints an exact fix command. Optional. */
  POSTGRES_SERVER_RESOURCE_ID: z.string().optional(),
};

/** The parsed {@link postgresSettings}. */
export type PostgresSettings = z.output<z.ZodObject<typeof postgresSettings>>;

/** The server a service signs in to (the `resources.postgres` of `@keyless/auth`), from its parsed settings. */
export function postgresServer(env: PostgresSettings): { host: string; port: number; database: string; user: string; sslMode: 'verify-full'; resourceId?: string } {
  return {
    host: env.PGHOST,
    port: env.PGPORT,
    database: env.PGDATABASE,
    user: env.PGUSER,
    sslMode: env.PGSSLMODE,
    ...(env.POSTGRES_SERVER_RESOURCE_ID ? { resourceId: env.POSTGRES_SERVER_RESOURCE_ID } : {}),
  };
}
