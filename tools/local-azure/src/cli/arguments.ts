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

type CliValues = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof cliOptions }>>;

/** A refusal of the CLI's arguments; `code` is parseArgs' (`ERR_PARSE_ARGS_*`), the message says what to fix. */
export class CliArgumentsError extends Error {
  override readonly name = 'CliArgumentsError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Text parseArgs would read as an option but that is a (negative) number: `-5`, `-1.5`. */
const negativeNumber = /^-(\d|\.\d)/;

/** The spec of the option a token names (`--wait`, `-o`), if it is one of {@link cliOptions}. */
function optionNamed(token: string): [string, { type: string }] | undefined {
  const entries = Object.entries(cliOptions) as [string, { type: string; short?: string }][];
  return token.startsWith('--') ? entries.find(([name]) => `--${name}` === token) : entries.find(([, option]) => option.short && `-${option.short}` === token);
}

/**
 * Parses the CLI's arguments (`parseArgs` over {@link cliOptions}), with refusals that say what to fix.
 *
 * Rules:
 * - A negative number after an option that takes a value is that value (`--wait -1` reads as `--wait=-1`), so the
 *   option's own check refuses it by its meaning; parseArgs would call it "ambiguous".
 * - A negative number elsewhere is a positional (`fault identity-endpoint delay -5`), so the command's own check
 *   refuses it; parseArgs would call it an unknown option and suggest `-- "-5"` (with an unbalanced quote).
 * - Any other refusal is a {@link CliArgumentsError} naming the option and what it needs.
 */
export function parseCliArguments(args: readonly string[]): CliValues {
  const prepared: string[] = [];
  const numbers = new Map<string, string>();
  for (const [i, arg] of args.entries()) {
    // After `--` every argument is a positional already.
    if (arg === '--') {
      prepared.push(...args.slice(i));
      break;
    }
    if (!negativeNumber.test(arg)) {
      prepared.push(arg);
      continue;
    }
    const previous = optionNamed(prepared.at(-1) ?? '');
    if (previous?.[1].type === 'string') prepared.splice(-1, 1, `--${previous[0]}=${arg}`);
    else {
      // A stand-in that parseArgs takes for a positional (no leading dash), put back after the parse.
      const standIn = `\u0000${numbers.size}`;
      numbers.set(standIn, arg);
      prepared.push(standIn);
    }
  }
  checkOptions(prepared);
  const parsed = parseArgs({ args: prepared, allowPositionals: true, options: cliOptions });
  return { ...parsed, positionals: parsed.positionals.map((positional) => numbers.get(positional) ?? positional) };
}

/** Refuses what parseArgs would, in the CLI's words: an unknown option, a value missing, a value to a switch. */
function checkOptions(args: readonly string[]): void {
  const { tokens } = parseArgs({ args: [...args], allowPositionals: true, strict: false, tokens: true, options: cliOptions });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = (cliOptions as Record<string, { type: string } | undefined>)[token.name];
    if (!option) throw new CliArgumentsError(`${token.rawName} is not an option`, 'ERR_PARSE_ARGS_UNKNOWN_OPTION');
    if (option.type === 'boolean' && token.inlineValue) throw new CliArgumentsError(`${token.rawName} takes no value: give ${token.rawName} alone`, 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE');
    if (option.type !== 'string' || token.inlineValue) continue;
    // Without strict, parseArgs takes the next argument as the value even when it is an option (`--limit --output`).
    if (token.value === undefined || token.value.startsWith('-')) {
      const after = token.value === undefined ? 'nothing follows it' : `${token.value} follows it`;
      throw new CliArgumentsError(`${token.rawName} needs a value, but ${after}: give ${token.rawName} <value>`, 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE');
    }
  }
}

/** The command the arguments name (`start` when none is given); undefined when they do not parse (commands.ts says why). */
export function commandOf(args: string[]): string | undefined {
  try {
    const { values, positionals } = parseCliArguments(args);
    return values.help ? 'help' : positionals.join(' ') || 'start';
  } catch {
    return undefined;
  }
}
