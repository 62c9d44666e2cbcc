/**
 * The subset of Service Bus SQL filter and action syntax the local broker evaluates (the documented
 * common subset; `docs/servicebus.md` lists it):
 *
 * - Filters: `AND`, `OR`, `NOT`, parentheses; `=`, `<>`/`!=`, `<`, `<=`, `>`, `>=`; `IS [NOT] NULL`;
 *   `[NOT] LIKE 'pattern' [ESCAPE 'c']` with `%` and `_`; `[NOT] IN (literal, …)`; `EXISTS(property)`;
 *   arithmetic `+ - * / %` on numbers; literals: strings in single quotes (`''` escapes a quote),
 *   integers, decimals, `TRUE`, `FALSE`, `NULL`.
 * - Properties: `sys.<Name>` for MessageId, CorrelationId, To, ReplyTo, Label (alias Subject), ContentType,
 *   SessionId, ReplyToSessionId; `user.<name>`, a bare `<name>`, or `[name with spaces]` for application
 *   properties (exact name first, then case-insensitively).
 * - Parameters: `@name` stands for the value the rule gives for it (SQL filters and actions created through
 *   the management API can carry parameters).
 * - Actions: `SET <property> = <expression>` and `REMOVE <user property>`, separated by `;`. `SET` takes an
 *   application property or one of the system properties above (`SET sys.To = 'Entity'`, as the official
 *   emulator's sample configuration does).
 *
 * Comparisons follow SQL's three-valued logic: a missing property or mismatched types make the result
 * unknown, and a filter matches only when it evaluates to true.
 */

/** A syntax error in a filter or action, with the character position it was found at. */
export class SqlSyntaxError extends Error {
  override readonly name = 'SqlSyntaxError';

  constructor(
    readonly position: number,
    message: string,
  ) {
    super(`at character ${position + 1}: ${message}`);
  }
}

/** System properties filters can read (`sys.<Name>`). */
export const systemPropertyNames = ['MessageId', 'CorrelationId', 'To', 'ReplyTo', 'Label', 'ContentType', 'SessionId', 'ReplyToSessionId'] as const;
export type SystemPropertyName = (typeof systemPropertyNames)[number];

/** What filters and actions see of a message. */
export interface FilterInput {
  system: Partial<Record<SystemPropertyName, string>>;
  /** Application properties (AMQP values as decoded: strings, numbers, booleans, dates, …). */
  user: Readonly<Record<string, unknown>>;
}

type SqlValue = string | number | boolean | null;

type Node =
  | { kind: 'literal'; value: SqlValue }
  | { kind: 'property'; scope: 'sys' | 'user'; name: string }
  | { kind: 'negate'; operand: Node }
  | { kind: 'not'; operand: Node }
  | { kind: 'arithmetic'; op: '+' | '-' | '*' | '/' | '%'; left: Node; right: Node }
  | { kind: 'compare'; op: '=' | '<>' | '<' | '<=' | '>' | '>='; left: Node; right: Node }
  | { kind: 'logical'; op: 'and' | 'or'; left: Node; right: Node }
  | { kind: 'isNull'; operand: Node; negated: boolean }
  | { kind: 'like'; operand: Node; pattern: LikePattern; negated: boolean }
  | { kind: 'in'; operand: Node; values: SqlValue[]; negated: boolean }
  | { kind: 'exists'; property: Node & { kind: 'property' } };

/** A compiled SQL filter. */
export interface SqlFilter {
  readonly expression: string;
  matches(input: FilterInput): boolean;
}

/**
 * A compiled SQL rule action: returns what the message becomes after its `SET`/`REMOVE` statements
 * (system properties set to `undefined` are to be cleared).
 */
export interface SqlAction {
  readonly expression: string;
  apply(input: FilterInput): FilterInput;
}

/** Values a rule's `@parameters` can take. */
export type SqlParameterValue = string | number | boolean | Date;

/** Compiles a filter expression. @throws {SqlSyntaxError} */
export function compileSqlFilter(expression: string, parameters: Readonly<Record<string, SqlParameterValue>> = {}): SqlFilter {
  const parser = new Parser(tokenize(expression), parameters);
  const tree = parser.expression();
  parser.expectEnd();
  return { expression, matches: (input) => evaluate(tree, input) === true };
}

/** Compiles a rule action (`SET x = expr; SET sys.To = 'q'; REMOVE y`). @throws {SqlSyntaxError} */
export function compileSqlAction(expression: string, parameters: Readonly<Record<string, SqlParameterValue>> = {}): SqlAction {
  const parser = new Parser(tokenize(expression), parameters);
  const statements = parser.actionStatements();
  return {
    expression,
    apply(input) {
      const system: Partial<Record<SystemPropertyName, string>> = { ...input.system };
      const user: Record<string, unknown> = { ...input.user };
      for (const statement of statements) {
        if (statement.kind === 'remove') {
          delete user[statement.name];
          continue;
        }
        const value = evaluate(statement.value, { system, user });
        if (statement.scope === 'user') user[statement.name] = value;
        // System properties are strings; setting one to NULL (or an unknown value) clears it.
        else if (value === null || value === undefined) delete system[statement.name as SystemPropertyName];
        else system[statement.name as SystemPropertyName] = String(value);
      }
      return { system, user };
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Tokens

type Token =
  | { type: 'identifier'; text: string; position: number; bracketed: boolean }
  | { type: 'string'; text: string; position: number }
  | { type: 'number'; value: number; position: number }
  | { type: 'symbol'; text: string; position: number }
  | { type: 'end'; position: number };

const symbols = ['<>', '!=', '<=', '>=', '=', '<', '>', '+', '-', '*', '/', '%', '(', ')', ',', '.', ';'];

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      const start = i++;
      let text = '';
      for (;;) {
        if (i >= source.length) throw new SqlSyntaxError(start, 'string literal is not closed with a quote');
        if (source[i] === "'") {
          if (source[i + 1] === "'") {
            text += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += source[i++];
      }
      tokens.push({ type: 'string', text, position: start });
    } else if (c === '[') {
      const end = source.indexOf(']', i);
      if (end < 0) throw new SqlSyntaxError(i, 'bracketed name is not closed with ]');
      tokens.push({ type: 'identifier', text: source.slice(i + 1, end), position: i, bracketed: true });
      i = end + 1;
    } else if (/\d/.test(c) || (c === '.' && /\d/.test(source[i + 1] ?? ''))) {
      const match = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/.exec(source.slice(i))!;
      tokens.push({ type: 'number', value: Number(match[0]), position: i });
      i += match[0].length;
    } else if (/[A-Za-z_@$]/.test(c)) {
      const match = /^[A-Za-z_@$][\w$]*/.exec(source.slice(i))!;
      tokens.push({ type: 'identifier', text: match[0], position: i, bracketed: false });
      i += match[0].length;
    } else {
      const symbol = symbols.find((s) => source.startsWith(s, i));
      if (!symbol) throw new SqlSyntaxError(i, `unexpected character "${c}"`);
      tokens.push({ type: 'symbol', text: symbol, position: i });
      i += symbol.length;
    }
  }
  tokens.push({ type: 'end', position: source.length });
  return tokens;
}

// ---------------------------------------------------------------------------------------------------
// Parser (precedence, low to high: OR, AND, NOT, predicates, + -, * / %, unary -)

type ActionStatement = { kind: 'set'; scope: 'sys' | 'user'; name: string; value: Node } | { kind: 'remove'; name: string };

const reserved = new Set(['and', 'or', 'not', 'is', 'null', 'like', 'escape', 'in', 'exists', 'true', 'false', 'set', 'remove']);

class Parser {
  private index = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly parameters: Readonly<Record<string, SqlParameterValue>>,
  ) {}

  expectEnd(): void {
    const token = this.peek();
    if (token.type !== 'end') throw new SqlSyntaxError(token.position, `unexpected ${describe(token)} after the end of the expression`);
  }

  actionStatements(): ActionStatement[] {
    const statements: ActionStatement[] = [];
    for (;;) {
      while (this.acceptSymbol(';'));
      if (this.peek().type === 'end') break;
      if (this.acceptKeyword('set')) {
        const property = this.property(true);
        this.expectSymbol('=');
        statements.push({ kind: 'set', scope: property.scope, name: property.name, value: this.additive() });
      } else if (this.acceptKeyword('remove')) {
        statements.push({ kind: 'remove', name: this.userTarget(this.property(true)) });
      } else {
        throw new SqlSyntaxError(this.peek().position, `expected SET or REMOVE but found ${describe(this.peek())}`);
      }
      const next = this.peek();
      if (next.type !== 'end' && !(next.type === 'symbol' && next.text === ';')) {
        throw new SqlSyntaxError(next.position, `expected ; between statements but found ${describe(next)}`);
      }
    }
    if (!statements.length) throw new SqlSyntaxError(0, 'the action has no SET or REMOVE statement');
    return statements;
  }

  expression(): Node {
    let left = this.and();
    while (this.acceptKeyword('or')) left = { kind: 'logical', op: 'or', left, right: this.and() };
    return left;
  }

  private userTarget(property: Node & { kind: 'property' }): string {
    if (property.scope === 'sys') {
      throw new SqlSyntaxError(this.tokens[this.index - 1]!.position, `REMOVE takes an application property; system properties can only be SET (sys.${property.name})`);
    }
    return property.name;
  }

  private and(): Node {
    let left = this.not();
    while (this.acceptKeyword('and')) left = { kind: 'logical', op: 'and', left, right: this.not() };
    return left;
  }

  private not(): Node {
    if (this.acceptKeyword('not')) return { kind: 'not', operand: this.not() };
    return this.predicate();
  }

  private predicate(): Node {
    if (this.acceptKeyword('exists')) {
      this.expectSymbol('(');
      const property = this.property(false);
      this.expectSymbol(')');
      return { kind: 'exists', property };
    }
    const left = this.additive();
    const token = this.peek();
    if (token.type === 'symbol' && ['=', '<>', '!=', '<', '<=', '>', '>='].includes(token.text)) {
      this.index++;
      const op = (token.text === '!=' ? '<>' : token.text) as '=' | '<>' | '<' | '<=' | '>' | '>=';
      return { kind: 'compare', op, left, right: this.additive() };
    }
    if (this.acceptKeyword('is')) {
      const negated = this.acceptKeyword('not');
      this.expectKeyword('null');
      return { kind: 'isNull', operand: left, negated };
    }
    const negated = this.acceptKeyword('not');
    if (this.acceptKeyword('like')) {
      const pattern = this.expectString();
      let escape: string | undefined;
      if (this.acceptKeyword('escape')) {
        const escapeToken = this.peek();
        escape = this.expectString();
        if (escape.length !== 1) throw new SqlSyntaxError(escapeToken.position, 'ESCAPE takes exactly one character');
      }
      return { kind: 'like', operand: left, pattern: likePattern(pattern, escape), negated };
    }
    if (this.acceptKeyword('in')) {
      this.expectSymbol('(');
      const values: SqlValue[] = [];
      do {
        const literal = this.primary();
        if (literal.kind !== 'literal') throw new SqlSyntaxError(this.tokens[this.index - 1]!.position, 'IN takes a list of literals');
        values.push(literal.value);
      } while (this.acceptSymbol(','));
      this.expectSymbol(')');
      return { kind: 'in', operand: left, values, negated };
    }
    if (negated) throw new SqlSyntaxError(this.peek().position, `expected LIKE or IN after NOT but found ${describe(this.peek())}`);
    return left;
  }

  private additive(): Node {
    let left = this.multiplicative();
    for (;;) {
      const token = this.peek();
      if (token.type !== 'symbol' || (token.text !== '+' && token.text !== '-')) return left;
      this.index++;
      left = { kind: 'arithmetic', op: token.text as '+' | '-', left, right: this.multiplicative() };
    }
  }

  private multiplicative(): Node {
    let left = this.unary();
    for (;;) {
      const token = this.peek();
      if (token.type !== 'symbol' || !['*', '/', '%'].includes(token.text)) return left;
      this.index++;
      left = { kind: 'arithmetic', op: token.text as '*' | '/' | '%', left, right: this.unary() };
    }
  }

  private unary(): Node {
    if (this.acceptSymbol('-')) return { kind: 'negate', operand: this.unary() };
    if (this.acceptSymbol('+')) return this.unary();
    return this.primary();
  }

  private primary(): Node {
    const token = this.peek();
    if (token.type === 'number') {
      this.index++;
      return { kind: 'literal', value: token.value };
    }
    if (token.type === 'string') {
      this.index++;
      return { kind: 'literal', value: token.text };
    }
    if (token.type === 'symbol' && token.text === '(') {
      this.index++;
      const inner = this.expression();
      this.expectSymbol(')');
      return inner;
    }
    const next = this.tokens[this.index + 1];
    if (token.type === 'symbol' && token.text === '-' && next?.type === 'number') {
      this.index += 2;
      return { kind: 'literal', value: -next.value };
    }
    if (token.type === 'identifier' && !token.bracketed) {
      const word = token.text.toLowerCase();
      if (word === 'true' || word === 'false') {
        this.index++;
        return { kind: 'literal', value: word === 'true' };
      }
      if (word === 'null') {
        this.index++;
        return { kind: 'literal', value: null };
      }
    }
    if (token.type === 'identifier' && !token.bracketed && token.text.startsWith('@')) {
      this.index++;
      return { kind: 'literal', value: this.parameter(token) };
    }
    if (token.type === 'identifier') return this.property(false);
    throw new SqlSyntaxError(token.position, `expected a value but found ${describe(token)}`);
  }

  private parameter(token: Token & { type: 'identifier' }): SqlValue {
    const name = Object.keys(this.parameters).find((key) => key.toLowerCase() === token.text.toLowerCase() || `@${key.toLowerCase()}` === token.text.toLowerCase());
    if (name === undefined) throw new SqlSyntaxError(token.position, `the parameter ${token.text} is not defined (give it in the rule's parameters)`);
    const value = this.parameters[name]!;
    return value instanceof Date ? value.getTime() : value;
  }

  private property(allowReservedName: boolean): Node & { kind: 'property' } {
    const token = this.peek();
    if (token.type !== 'identifier') throw new SqlSyntaxError(token.position, `expected a property name but found ${describe(token)}`);
    if (!token.bracketed && !allowReservedName && reserved.has(token.text.toLowerCase())) {
      throw new SqlSyntaxError(token.position, `expected a property name but found the keyword ${token.text.toUpperCase()}`);
    }
    this.index++;
    const qualifier = token.bracketed ? undefined : token.text.toLowerCase();
    if ((qualifier === 'sys' || qualifier === 'user') && this.acceptSymbol('.')) {
      const nameToken = this.peek();
      if (nameToken.type !== 'identifier') throw new SqlSyntaxError(nameToken.position, `expected a property name after ${qualifier}.`);
      this.index++;
      if (qualifier === 'user') return { kind: 'property', scope: 'user', name: nameToken.text };
      const lower = nameToken.text.toLowerCase() === 'subject' ? 'label' : nameToken.text.toLowerCase();
      const name = systemPropertyNames.find((n) => n.toLowerCase() === lower);
      if (!name) {
        throw new SqlSyntaxError(nameToken.position, `sys.${nameToken.text} is not a supported system property (supported: ${systemPropertyNames.join(', ')})`);
      }
      return { kind: 'property', scope: 'sys', name };
    }
    return { kind: 'property', scope: 'user', name: token.text };
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private acceptKeyword(word: string): boolean {
    const token = this.peek();
    if (token.type === 'identifier' && !token.bracketed && token.text.toLowerCase() === word) {
      this.index++;
      return true;
    }
    return false;
  }

  private expectKeyword(word: string): void {
    if (!this.acceptKeyword(word)) throw new SqlSyntaxError(this.peek().position, `expected ${word.toUpperCase()} but found ${describe(this.peek())}`);
  }

  private acceptSymbol(symbol: string): boolean {
    const token = this.peek();
    if (token.type === 'symbol' && token.text === symbol) {
      this.index++;
      return true;
    }
    return false;
  }

  private expectSymbol(symbol: string): void {
    if (!this.acceptSymbol(symbol)) throw new SqlSyntaxError(this.peek().position, `expected "${symbol}" but found ${describe(this.peek())}`);
  }

  private expectString(): string {
    const token = this.peek();
    if (token.type !== 'string') throw new SqlSyntaxError(token.position, `expected a string literal but found ${describe(token)}`);
    this.index++;
    return token.text;
  }
}

function describe(token: Token): string {
  switch (token.type) {
    case 'end':
      return 'the end of the expression';
    case 'string':
      return `'${token.text}'`;
    case 'number':
      return String(token.value);
    default:
      return `"${token.text}"`;
  }
}

/** `%` (any run of characters), `_` (any one character), or a character matched as itself. */
type LikePart = 'any-run' | 'any-one' | { char: string };
type LikePattern = readonly LikePart[];

function likePattern(pattern: string, escape: string | undefined): LikePattern {
  const parts: LikePart[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (escape !== undefined && c === escape && i + 1 < pattern.length) parts.push({ char: pattern[++i]! });
    else if (c === '%') parts.push('any-run');
    else if (c === '_') parts.push('any-one');
    else parts.push({ char: c });
  }
  return parts;
}

/**
 * Whether `text` matches `pattern` whole, in at most (pattern length × text length) steps: on a mismatch only the
 * latest `%` takes one character more. A regular expression of `.*` runs backtracks through every way of splitting
 * the text among them — `'%a%a%a%a%b'` against 200 a's took 33 s, and the broker evaluates filters on its one thread.
 */
function likeMatches(pattern: LikePattern, text: string): boolean {
  let p = 0;
  let t = 0;
  let lastRun = -1;
  let runEnd = 0;
  while (t < text.length) {
    const part = pattern[p];
    if (part === 'any-run') {
      lastRun = p++;
      runEnd = t;
    } else if (part !== undefined && (part === 'any-one' || part.char === text[t])) {
      p++;
      t++;
    } else if (lastRun >= 0) {
      p = lastRun + 1;
      t = ++runEnd;
    } else return false;
  }
  while (pattern[p] === 'any-run') p++;
  return p === pattern.length;
}

// ---------------------------------------------------------------------------------------------------
// Evaluation (undefined = SQL's unknown)

type Result = SqlValue | undefined;

function evaluate(node: Node, input: FilterInput): Result {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'property':
      return lookup(node, input);
    case 'negate': {
      const value = evaluate(node.operand, input);
      return typeof value === 'number' ? -value : undefined;
    }
    case 'not': {
      const value = evaluate(node.operand, input);
      return typeof value === 'boolean' ? !value : undefined;
    }
    case 'arithmetic':
      return arithmetic(node.op, evaluate(node.left, input), evaluate(node.right, input));
    case 'compare':
      return compare(node.op, evaluate(node.left, input), evaluate(node.right, input));
    case 'logical': {
      const left = evaluate(node.left, input);
      const right = evaluate(node.right, input);
      if (node.op === 'and') {
        if (left === false || right === false) return false;
        return left === true && right === true ? true : undefined;
      }
      if (left === true || right === true) return true;
      return left === false && right === false ? false : undefined;
    }
    case 'isNull': {
      const value = evaluate(node.operand, input);
      const isNull = value === null || value === undefined;
      return node.negated ? !isNull : isNull;
    }
    case 'like': {
      const value = evaluate(node.operand, input);
      if (typeof value !== 'string') return undefined;
      return likeMatches(node.pattern, value) !== node.negated;
    }
    case 'in': {
      const value = evaluate(node.operand, input);
      if (value === null || value === undefined) return undefined;
      return node.values.some((candidate) => compare('=', value, candidate) === true) !== node.negated;
    }
    case 'exists':
      return lookup(node.property, input) !== undefined;
  }
}

function lookup(node: Node & { kind: 'property' }, input: FilterInput): Result {
  if (node.scope === 'sys') return input.system[node.name as SystemPropertyName];
  let value: unknown = input.user[node.name];
  if (value === undefined) {
    const lower = node.name.toLowerCase();
    const key = Object.keys(input.user).find((k) => k.toLowerCase() === lower);
    value = key === undefined ? undefined : input.user[key];
  }
  return toSqlValue(value);
}

function toSqlValue(value: unknown): Result {
  if (value === undefined) return undefined;
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'bigint') return Number(value);
  // Other AMQP values (binary, uuid, lists, maps) have no SQL comparison: unknown.
  return undefined;
}

function arithmetic(op: '+' | '-' | '*' | '/' | '%', left: Result, right: Result): Result {
  if (op === '+' && typeof left === 'string' && typeof right === 'string') return left + right;
  if (typeof left !== 'number' || typeof right !== 'number') return undefined;
  switch (op) {
    case '+':
      return left + right;
    case '-':
      return left - right;
    case '*':
      return left * right;
    case '/':
      return right === 0 ? undefined : left / right;
    case '%':
      return right === 0 ? undefined : left % right;
  }
}

function compare(op: '=' | '<>' | '<' | '<=' | '>' | '>=', left: Result, right: Result): Result {
  if (left === null || left === undefined || right === null || right === undefined) return undefined;
  if (typeof left !== typeof right) return undefined;
  if (typeof left === 'boolean' && op !== '=' && op !== '<>') return undefined;
  const order = left < right ? -1 : left > right ? 1 : 0;
  switch (op) {
    case '=':
      return order === 0;
    case '<>':
      return order !== 0;
    case '<':
      return order < 0;
    case '<=':
      return order <= 0;
    case '>':
      return order > 0;
    case '>=':
      return order >= 0;
  }
}
