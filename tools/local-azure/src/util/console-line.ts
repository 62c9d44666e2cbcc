/**
 * Characters a terminal or a log viewer acts on rather than shows: C0 controls but tab and line feed (ESC, which starts
 * ANSI sequences that move the cursor, clear the screen or set the window title; a lone carriage return, which writes
 * over the line's start), DEL, C1 controls, Unicode's line and paragraph separators and its bidirectional controls
 * (which reorder what follows them on screen).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const unsafe = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `line` as the local Azure's console writes it, whatever a caller put into it (a token request's resource, an
 * image URL, an identity endpoint's path): the console is where the operator reads sign-in failures and RBAC
 * denials, and its output is the local Azure's log file under `npm start`. Rules:
 * 1. A line break (`\n`, `\r\n`) continues the line on an indented line: text after it never starts a line of its
 *    own, so no caller can write a line that reads as the local Azure's (`[portal] … signed in`); a stack trace stays
 *    readable.
 * 2. Every other character a terminal acts on (see `unsafe`) is written as its `\u` escape.
 * 3. Everything else is kept as it is.
 *
 * @example
 * consoleLine('resource=x\n[portal] operator signed in'); // 'resource=x\n    [portal] operator signed in'
 * consoleLine('\u001b[2J');                                 // '\\u001b[2J'
 */
export function consoleLine(line: string): string {
  return line.replace(/\r?\n/g, '\n    ').replace(unsafe, escaped);
}

/**
 * `text` as a cell of a table the CLI prints (`log sign-ins`, `role assignment list`): as {@link consoleLine}, but a
 * cell is one line of the table, so a line break or a tab in it is written as its escape too.
 *
 * @example
 * consoleCell('probe\n[portal] forged'); // 'probe\\u000a[portal] forged'
 */
export function consoleCell(text: string): string {
  return text.replace(/[\t\n]/g, escaped).replace(unsafe, escaped);
}

function escaped(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
}
