/**
 * Env files (`NAME=value` lines, `#` comments), as the local Azure writes them for each host and the launcher reads
 * them. Their reader is a POSIX shell: `set -a; . <file>; set +a` (how docker-compose.yml's services load theirs, and
 * what the files' own comments tell a user), so every value is one word of that shell, read back literally. Where
 * one quoting serves both, a value also reads the same through docker compose's `env_file` (compose-go's dotenv
 * parser: single quotes literal but for `\'`; double quotes with `\\`, `\"`, `\$` and `\n`-style escapes, `$`
 * interpolated).
 */

/** Characters that neither a shell nor compose's parser treats specially in an unquoted value. */
const plainValue = /^[\w@%+=:,./-]*$/;

/**
 * The line `name=value` of an env file, the value quoted so that a POSIX shell reads it back as it is.
 *
 * Rules:
 * - Only characters no shell treats specially (letters, digits, `_@%+=:,./-`): as it is.
 * - Else, without `'` and not ending in `\`: in single quotes — literal for the shell and for compose alike.
 * - Else, without a backquote: in double quotes with `\`, `"` and `$` escaped — read alike by both.
 * - Else (a `'` or a final `\` together with a backquote, which no one quoting gives both readers): for the shell,
 *   in single quotes with each `'` written `'\''`.
 *
 * @example
 * envFileLine('NODE_EXTRA_CA_CERTS', "/tmp/it's mine/tls/ca.pem") // NODE_EXTRA_CA_CERTS="/tmp/it's mine/tls/ca.pem"
 */
export function envFileLine(name: string, value: string): string {
  return `${name}=${envFileValue(value)}`;
}

function envFileValue(value: string): string {
  if (plainValue.test(value)) return value;
  if (!value.includes("'") && !value.endsWith('\\')) return `'${value}'`;
  if (!value.includes('`')) return `"${value.replace(/[\\"$]/g, (char) => `\\${char}`)}"`;
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * The variables of an env file's text, read as a POSIX shell reads the assignments {@link envFileLine} writes: each
 * value's unquoted characters, `'…'` segments (literal) and `"…"` segments (`\` escaping `\`, `"`, `$` and a backquote)
 * joined; a value may span lines inside quotes. Comment and blank lines are skipped. Nothing is expanded: the files
 * hold no `$` references.
 *
 * @throws {Error} naming the line and what to fix, when a quote is not closed, a line is not an assignment, a value has
 *   unquoted whitespace (which a shell would not read as part of it) or a line ends in a carriage return.
 */
export function parseEnvFile(text: string): Record<string, string> {
  const variables: Record<string, string> = {};
  let at = 0;
  let line = 1;
  while (at < text.length) {
    const newline = text.indexOf('\n', at);
    const end = newline === -1 ? text.length : newline;
    const start = text.slice(at, end);
    if (!start.trim() || start.trimStart().startsWith('#')) {
      at = end + 1;
      line++;
      continue;
    }
    const name = /^([A-Za-z_]\w*)=/.exec(start)?.[1];
    if (!name) throw new Error(`env file line ${line}: not a NAME=value assignment`);
    let value = '';
    let i = at + name.length + 1;
    const firstLine = line;
    while (i < text.length && text[i] !== '\n') {
      const char = text[i]!;
      if (char === "'") {
        const close = text.indexOf("'", i + 1);
        if (close === -1) throw new Error(`env file line ${firstLine}: the value of ${name} opens a ' that is not closed`);
        value += text.slice(i + 1, close);
        i = close + 1;
      } else if (char === '"') {
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && text[i + 1] === '\n') i += 2; // a line continuation: both go
          else {
            if (text[i] === '\\' && '\\"$`'.includes(text[i + 1] ?? '')) i++;
            value += text[i];
            i++;
          }
        }
        if (i >= text.length) throw new Error(`env file line ${firstLine}: the value of ${name} opens a " that is not closed`);
        i++;
      } else if (char === '\\' && i + 1 < text.length) {
        if (text[i + 1] !== '\n') value += text[i + 1];
        i += 2;
      } else if (char === ' ' || char === '\t') {
        // A shell would end the assignment here and run the rest as a command (or drop it as a ` #` comment).
        throw new Error(`env file line ${firstLine}: the value of ${name} has unquoted whitespace — put the value in single quotes`);
      } else if (char === '\r') {
        throw new Error(`env file line ${firstLine}: ends in a carriage return — save the file with LF (Unix) line endings`);
      } else {
        value += char;
        i++;
      }
    }
    line += text.slice(at, i).split('\n').length;
    variables[name] = value;
    at = i + 1;
  }
  return variables;
}
