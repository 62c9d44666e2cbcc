// The CLI's options, apart from the commands: main.ts reads them before anything else loads (to know whether the
// command is `start`), cli/commands.ts to run the command. Imports only Node's own util.

import { parseArgs } from 'node:util';

/** The options of every command (`parseArgs` spec). */
export const cliOptions = {
  assignee: { type: 'string' },
  // az's spelling for service principals, so a fix command printed for Azure also works here.
  'assignee-object-id': { type: 'string' },
  'assignee-principal-type': { type: 'string' },
  // az's "every scope" for a list; a list here always spans the whole subscription, so it changes nothing.
  all: { type: 'boolean', default: false },
  role: { type: 'string' },
  scope: { type: 'string' },
  ids: { type: 'string' },
  principal: { type: 'string' },
  limit: { type: 'string' },
  output: { type: 'string', short: 'o', default: 'table' },
  config: { type: 'string' },
  verbose: { type: 'boolean', default: false },
  dlq: { type: 'boolean', default: false },
  username: { type: 'string', short: 'u' },
  state: { type: 'string' },
  rule: { type: 'string' },
  wait: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The command the arguments name (`start` when none is given); undefined when they do not parse (commands.ts says why). */
export function commandOf(args: string[]): string | undefined {
  try {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: cliOptions });
    return values.help ? 'help' : positionals.join(' ') || 'start';
  } catch {
    return undefined;
  }
}
