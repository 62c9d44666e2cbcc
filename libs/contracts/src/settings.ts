import { z } from 'zod';
import { withServiceSettingRules } from './service-settings.js';

/** A process environment (`process.env`) or anything shaped like it. */
export type Settings = Readonly<Record<string, string | undefined>>;

/**
 * The value of setting `name`, or undefined when it is unset or blank: an empty `NAME=` line (in an env file,
 * a compose file, a shell) means "use the default", never "the empty string" (an empty path would be the
 * current folder, an empty port 0).
 */
export function readSetting(settings: Settings, name: string): string | undefined {
  const value = settings[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** `settings` without its blank entries, so that a schema's defaults apply to them (see {@link readSetting}). */
export function withoutBlankSettings(settings: unknown): unknown {
  if (!settings || typeof settings !== 'object') return settings;
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => typeof value !== 'string' || value.trim() !== ''));
}

/**
 * A zod schema for a process's environment in which a blank variable counts as unset: its default applies,
 * or an optional variable stays absent. A schema with the HTTP timeouts of `serviceSettings` also refuses a headers
 * timeout past the request timeout, naming both variables.
 *
 * @example
 * export const environment = settingsSchema({ PORT: z.coerce.number().int().default(3000) });
 * environment.parse({ PORT: '' }); // { PORT: 3000 }
 */
export function settingsSchema<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.preprocess(withoutBlankSettings, withServiceSettingRules(z.object(shape)));
}
