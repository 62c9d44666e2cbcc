import { InfraCheckError } from '../errors.js';

/**
 * A reader for the subset of Bicep this repository writes (declarations, objects, arrays, `for` and `if`
 * bodies, lambdas, operators, string interpolation). It exists because the Bicep compiler cannot be installed
 * here; it is not a validator of Bicep syntax — it is strict only about what the consistency checks rely on,
 * and it refuses (with file, line and column) anything outside the subset instead of guessing.
 */

/** Where a node starts in its file (1-based). */
export interface SourcePosition {
  line: number;
  column: number;
}

export type Expression =
  | { kind: 'string'; parts: (string | Expression)[]; at: SourcePosition }
  | { kind: 'number'; value: number; at: SourcePosition }
  | { kind: 'boolean'; value: boolean; at: SourcePosition }
  | { kind: 'null'; at: SourcePosition }
  | { kind: 'identifier'; name: string; at: SourcePosition }
  | { kind: 'object'; properties: { key: string; value: Expression }[]; at: SourcePosition }
  | { kind: 'array'; items: Expression[]; at: SourcePosition }
  | { kind: 'for'; item: string; index?: string; source: Expression; body: Expression; at: SourcePosition }
  | { kind: 'if'; condition: Expression; body: Expression; at: SourcePosition }
  | { kind: 'member'; target: Expression; name: string; safe: boolean; at: SourcePosition }
  | { kind: 'index'; target: Expression; index: Expression; at: SourcePosition }
  | { kind: 'call'; callee: string; args: Expression[]; at: SourcePosition }
  | { kind: 'lambda'; params: string[]; body: Expression; at: SourcePosition }
  | { kind: 'unary'; operator: '!'; operand: Expression; at: SourcePosition }
  | { kind: 'binary'; operator: BinaryOperator; left: Expression; right: Expression; at: SourcePosition }
  | { kind: 'ternary'; condition: Expression; whenTrue: Expression; whenFalse: Expression; at: SourcePosition };

export type BinaryOperator = '??' | '||' | '&&' | '==' | '!=' | '+';

export type Statement =
  | { kind: 'targetScope'; value: Expression; at: SourcePosition }
  | { kind: 'param'; name: string; type: string; defaultValue?: Expression; at: SourcePosition }
  | { kind: 'var'; name: string; value: Expression; at: SourcePosition }
  | {
      kind: 'resource';
      name: string;
      type: string;
      apiVersion: string;
      existing: boolean;
      value: Expression;
      at: SourcePosition;
    }
  | { kind: 'module'; name: string; path: string; value: Expression; at: SourcePosition }
  | { kind: 'output'; name: string; type: string; value: Expression; at: SourcePosition };

/** A parsed `.bicep` file. */
export interface BicepFile {
  /** Absolute path. */
  path: string;
  statements: Statement[];
  /** Every string literal of the file with its text (interpolations excluded), for textual checks. */
  literals: { text: string; at: SourcePosition }[];
}

type TokenKind = 'identifier' | 'number' | 'string' | 'punctuation' | 'newline' | 'end';

interface Token {
  kind: TokenKind;
  text: string;
  /** For strings: literal pieces and raw interpolation sources, alternating (pieces at even indexes). */
  pieces?: { text: string; at: SourcePosition }[];
  at: SourcePosition;
}

const punctuators = ['??', '.?', '=>', '==', '!=', '&&', '||', '{', '}', '[', ']', '(', ')', ',', ':', '.', '?', '=', '!', '+', '@'];

/** Parses Bicep source text; `path` is used for messages and to resolve `loadJsonContent` later. */
export function parseBicep(source: string, path: string): BicepFile {
  const tokens = tokenize(source, path);
  const literals: BicepFile['literals'] = [];
  for (const token of tokens) {
    if (token.kind !== 'string') continue;
    token.pieces!.forEach((piece, i) => {
      if (i % 2 === 0) literals.push({ text: piece.text, at: piece.at });
    });
  }
  const parser = new Parser(tokens, path);
  return { path, statements: parser.parseFile(), literals };
}

function tokenize(source: string, path: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const here = (): SourcePosition => ({ line, column: i - lineStart + 1 });
  const fail = (message: string): never => {
    throw new InfraCheckError('bicep-syntax', `${path}:${line}:${i - lineStart + 1}: ${message}`);
  };
  const advanceNewline = (): void => {
    line += 1;
    lineStart = i + 1;
  };

  while (i < source.length) {
    const char = source[i]!;
    if (char === '\n') {
      tokens.push({ kind: 'newline', text: '\n', at: here() });
      advanceNewline();
      i += 1;
    } else if (char === ' ' || char === '\t' || char === '\r') {
      i += 1;
    } else if (source.startsWith('//', i)) {
      while (i < source.length && source[i] !== '\n') i += 1;
    } else if (source.startsWith("'''", i)) {
      const at = here();
      const end = source.indexOf("'''", i + 3);
      if (end < 0) fail('unterminated multi-line string');
      const text = source.slice(i + 3, end);
      for (let j = i; j < end; j += 1) {
        if (source[j] === '\n') {
          i = j;
          advanceNewline();
        }
      }
      i = end + 3;
      tokens.push({ kind: 'string', text, pieces: [{ text, at }], at });
    } else if (char === "'") {
      const at = here();
      const pieces: { text: string; at: SourcePosition }[] = [];
      let current = '';
      let currentAt = { line, column: i - lineStart + 2 };
      i += 1;
      for (;;) {
        if (i >= source.length || source[i] === '\n') fail('unterminated string');
        const c = source[i]!;
        if (c === "'") {
          i += 1;
          break;
        }
        if (c === '\\') {
          const escaped = source[i + 1];
          const map: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", $: '$' };
          if (escaped === undefined || !(escaped in map)) fail(`unknown escape \\${escaped ?? ''}`);
          current += map[escaped!];
          i += 2;
        } else if (c === '$' && source[i + 1] === '{') {
          pieces.push({ text: current, at: currentAt });
          const exprAt = { line, column: i - lineStart + 3 };
          let depth = 1;
          let j = i + 2;
          let inString = false;
          while (j < source.length && depth > 0) {
            const d = source[j]!;
            if (d === '\n') fail('line break inside an interpolation');
            if (inString) {
              if (d === '\\') j += 1;
              else if (d === "'") inString = false;
            } else if (d === "'") inString = true;
            else if (d === '{') depth += 1;
            else if (d === '}') depth -= 1;
            j += 1;
          }
          if (depth > 0) fail('unterminated interpolation');
          pieces.push({ text: source.slice(i + 2, j - 1), at: exprAt });
          i = j;
          current = '';
          currentAt = { line, column: i - lineStart + 1 };
        } else {
          current += c;
          i += 1;
        }
      }
      pieces.push({ text: current, at: currentAt });
      tokens.push({ kind: 'string', text: pieces.filter((_, k) => k % 2 === 0).map((p) => p.text).join(''), pieces, at });
    } else if (/[A-Za-z_]/.test(char)) {
      const at = here();
      let j = i;
      while (j < source.length && /[A-Za-z0-9_]/.test(source[j]!)) j += 1;
      tokens.push({ kind: 'identifier', text: source.slice(i, j), at });
      i = j;
    } else if (/[0-9]/.test(char)) {
      const at = here();
      let j = i;
      while (j < source.length && /[0-9]/.test(source[j]!)) j += 1;
      tokens.push({ kind: 'number', text: source.slice(i, j), at });
      i = j;
    } else {
      const punctuator = punctuators.find((p) => source.startsWith(p, i));
      if (!punctuator) fail(`unexpected character ${JSON.stringify(char)}`);
      tokens.push({ kind: 'punctuation', text: punctuator!, at: here() });
      i += punctuator!.length;
    }
  }
  tokens.push({ kind: 'end', text: '', at: here() });
  return tokens;
}

const binaryLevels: BinaryOperator[][] = [['??'], ['||'], ['&&'], ['==', '!='], ['+']];

class Parser {
  private position = 0;
  /** Depth of enclosing parentheses: line breaks inside them are insignificant. */
  private parenDepth = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly path: string,
  ) {}

  parseFile(): Statement[] {
    const statements: Statement[] = [];
    for (;;) {
      this.skipNewlines();
      const token = this.peek();
      if (token.kind === 'end') break;
      if (this.isPunctuation('@')) {
        this.skipDecorator();
        continue;
      }
      statements.push(this.parseStatement());
      const next = this.peek();
      if (next.kind !== 'newline' && next.kind !== 'end') this.fail(next, `expected a line break after the declaration, found "${next.text}"`);
    }
    return statements;
  }

  /** Decorators (`@description('…')`, `@batchSize(1)`) matter to no check: they are read and dropped. */
  private skipDecorator(): void {
    this.expectPunctuation('@');
    this.expectIdentifier();
    if (this.isPunctuation('(')) this.parseArguments();
  }

  private parseStatement(): Statement {
    const keyword = this.expectIdentifier();
    const at = keyword.at;
    switch (keyword.text) {
      case 'targetScope':
        this.expectPunctuation('=');
        return { kind: 'targetScope', value: this.parseExpression(), at };
      case 'param': {
        const name = this.expectIdentifier().text;
        const type = this.parseTypeText();
        const defaultValue = this.isPunctuation('=') ? (this.next(), this.parseExpression()) : undefined;
        return { kind: 'param', name, type, ...(defaultValue ? { defaultValue } : {}), at };
      }
      case 'var': {
        const name = this.expectIdentifier().text;
        this.expectPunctuation('=');
        return { kind: 'var', name, value: this.parseExpression(), at };
      }
      case 'resource': {
        const name = this.expectIdentifier().text;
        const typeToken = this.expectString();
        const match = /^([^@]+)@(.+)$/.exec(typeToken.text);
        if (!match) this.fail(typeToken, `resource type "${typeToken.text}" needs an @api-version`);
        let existing = false;
        if (this.peek().kind === 'identifier' && this.peek().text === 'existing') {
          this.next();
          existing = true;
        }
        this.expectPunctuation('=');
        return { kind: 'resource', name, type: match![1]!, apiVersion: match![2]!, existing, value: this.parseBody(), at };
      }
      case 'module': {
        const name = this.expectIdentifier().text;
        const path = this.expectString().text;
        this.expectPunctuation('=');
        return { kind: 'module', name, path, value: this.parseBody(), at };
      }
      case 'output': {
        const name = this.expectIdentifier().text;
        const type = this.parseTypeText();
        this.expectPunctuation('=');
        return { kind: 'output', name, type, value: this.parseExpression(), at };
      }
      default:
        throw new InfraCheckError(
          'bicep-unsupported',
          `${this.path}:${at.line}:${at.column}: "${keyword.text}" declarations are outside the Bicep subset the consistency checks read; extend infra/src/bicep/bicep-syntax.ts or write it another way`,
        );
    }
  }

  /** A type is read as text up to `=` or the end of the line (`string`, `object`, `string[]`, `'a' | 'b'`). */
  private parseTypeText(): string {
    const parts: string[] = [];
    while (!this.isPunctuation('=') && this.peek().kind !== 'newline' && this.peek().kind !== 'end') parts.push(this.next().text);
    if (!parts.length) this.fail(this.peek(), 'expected a type');
    return parts.join('');
  }

  /** A resource or module body: an object, `if (…) {…}` or `[for …: …]`. */
  private parseBody(): Expression {
    const token = this.peek();
    if (token.kind === 'identifier' && token.text === 'if') return this.parseIf();
    return this.parseExpression();
  }

  private parseIf(): Expression {
    const at = this.expectIdentifier().at;
    this.expectPunctuation('(');
    this.parenDepth += 1;
    const condition = this.parseExpression();
    this.parenDepth -= 1;
    this.expectPunctuation(')');
    return { kind: 'if', condition, body: this.parseObject(), at };
  }

  parseExpression(): Expression {
    const condition = this.parseBinary(0);
    if (!this.isPunctuation('?')) return condition;
    const at = this.next().at;
    const whenTrue = this.parseExpression();
    this.expectPunctuation(':');
    const whenFalse = this.parseExpression();
    return { kind: 'ternary', condition, whenTrue, whenFalse, at };
  }

  private parseBinary(level: number): Expression {
    if (level >= binaryLevels.length) return this.parseUnary();
    let left = this.parseBinary(level + 1);
    for (;;) {
      const token = this.peek();
      const operator = binaryLevels[level]!.find((op) => token.kind === 'punctuation' && token.text === op);
      if (!operator) return left;
      this.next();
      const right = this.parseBinary(level + 1);
      left = { kind: 'binary', operator, left, right, at: token.at };
    }
  }

  private parseUnary(): Expression {
    const token = this.peek();
    if (this.isPunctuation('!')) {
      this.next();
      return { kind: 'unary', operator: '!', operand: this.parseUnary(), at: token.at };
    }
    return this.parsePostfix(this.parsePrimary());
  }

  private parsePostfix(start: Expression): Expression {
    let expression = start;
    for (;;) {
      if (this.isPunctuation('.') || this.isPunctuation('.?')) {
        const safe = this.next().text === '.?';
        const name = this.expectIdentifier();
        if (this.isPunctuation('(') && expression.kind === 'identifier') {
          // Namespaced function: `az.resourceGroup()`, `sys.concat(…)`.
          expression = { kind: 'call', callee: name.text, args: this.parseArguments(), at: expression.at };
          continue;
        }
        expression = { kind: 'member', target: expression, name: name.text, safe, at: name.at };
      } else if (this.isPunctuation('[') && !this.precededByNewline()) {
        this.next();
        const index = this.parseExpression();
        this.expectPunctuation(']');
        expression = { kind: 'index', target: expression, index, at: expression.at };
      } else {
        return expression;
      }
    }
  }

  private parsePrimary(): Expression {
    const token = this.peek();
    if (token.kind === 'string') {
      this.next();
      return this.stringExpression(token);
    }
    if (token.kind === 'number') {
      this.next();
      return { kind: 'number', value: Number(token.text), at: token.at };
    }
    if (token.kind === 'identifier') {
      if (this.peekAhead(1).text === '=>') {
        this.next();
        this.next();
        return { kind: 'lambda', params: [token.text], body: this.parseExpression(), at: token.at };
      }
      this.next();
      if (token.text === 'true' || token.text === 'false') return { kind: 'boolean', value: token.text === 'true', at: token.at };
      if (token.text === 'null') return { kind: 'null', at: token.at };
      if (this.isPunctuation('(')) return { kind: 'call', callee: token.text, args: this.parseArguments(), at: token.at };
      return { kind: 'identifier', name: token.text, at: token.at };
    }
    if (this.isPunctuation('(')) {
      this.next();
      this.parenDepth += 1;
      const inner = this.parseExpression();
      this.parenDepth -= 1;
      this.expectPunctuation(')');
      return inner;
    }
    if (this.isPunctuation('{')) return this.parseObject();
    if (this.isPunctuation('[')) return this.parseArray();
    return this.fail(token, `unexpected "${token.text || 'end of file'}"`);
  }

  private parseArguments(): Expression[] {
    this.expectPunctuation('(');
    this.parenDepth += 1;
    const args: Expression[] = [];
    this.skipNewlines();
    while (!this.isPunctuation(')')) {
      args.push(this.parseExpression());
      this.skipNewlines();
      if (this.isPunctuation(',')) {
        this.next();
        this.skipNewlines();
      } else if (!this.isPunctuation(')')) this.fail(this.peek(), `expected "," or ")" in an argument list, found "${this.peek().text}"`);
    }
    this.parenDepth -= 1;
    this.expectPunctuation(')');
    return args;
  }

  private parseObject(): Expression {
    const at = this.expectPunctuation('{').at;
    const saved = this.parenDepth;
    this.parenDepth = 0;
    const properties: { key: string; value: Expression }[] = [];
    this.skipSeparators();
    while (!this.isPunctuation('}')) {
      const keyToken = this.next();
      if (keyToken.kind !== 'identifier' && keyToken.kind !== 'string') this.fail(keyToken, `expected a property name, found "${keyToken.text}"`);
      if (keyToken.kind === 'string' && keyToken.pieces!.length > 1) {
        // `'${identityId}': {}`: a computed key, kept as an interpolated string.
        properties.push({ key: '', value: this.withComputedKey(keyToken) });
        continue;
      }
      this.expectPunctuation(':');
      properties.push({ key: keyToken.text, value: this.parseExpression() });
      this.endItem('}');
    }
    this.expectPunctuation('}');
    this.parenDepth = saved;
    return { kind: 'object', properties, at };
  }

  /** Computed keys are represented as a property with an empty key whose value is `[key, value]`. */
  private withComputedKey(keyToken: Token): Expression {
    this.expectPunctuation(':');
    const value = this.parseExpression();
    this.endItem('}');
    return { kind: 'array', items: [this.stringExpression(keyToken), value], at: keyToken.at };
  }

  private parseArray(): Expression {
    const at = this.expectPunctuation('[').at;
    const saved = this.parenDepth;
    this.parenDepth = 0;
    if (this.peek().kind === 'identifier' && this.peek().text === 'for') {
      this.next();
      let item: string;
      let index: string | undefined;
      if (this.isPunctuation('(')) {
        this.next();
        item = this.expectIdentifier().text;
        this.expectPunctuation(',');
        index = this.expectIdentifier().text;
        this.expectPunctuation(')');
      } else item = this.expectIdentifier().text;
      const keyword = this.expectIdentifier();
      if (keyword.text !== 'in') this.fail(keyword, 'expected "in"');
      const source = this.parseExpression();
      this.expectPunctuation(':');
      const body = this.peek().kind === 'identifier' && this.peek().text === 'if' ? this.parseIf() : this.parseExpression();
      this.skipNewlines();
      this.expectPunctuation(']');
      this.parenDepth = saved;
      return { kind: 'for', item, ...(index ? { index } : {}), source, body, at };
    }
    const items: Expression[] = [];
    this.skipSeparators();
    while (!this.isPunctuation(']')) {
      items.push(this.parseExpression());
      this.endItem(']');
    }
    this.expectPunctuation(']');
    this.parenDepth = saved;
    return { kind: 'array', items, at };
  }

  /** After an object property or array item: a comma or a line break, then any further line breaks. */
  private endItem(closer: string): void {
    if (this.isPunctuation(closer)) return;
    const token = this.peek();
    if (token.kind !== 'newline' && !this.isPunctuation(',')) this.fail(token, `expected a line break, "," or "${closer}", found "${token.text}"`);
    this.skipSeparators();
  }

  private skipSeparators(): void {
    while (this.peek().kind === 'newline' || this.isPunctuation(',')) this.position += 1;
  }

  private stringExpression(token: Token): Expression {
    const parts: (string | Expression)[] = token.pieces!.map((piece, i) => {
      if (i % 2 === 0) return piece.text;
      const inner = tokenize(piece.text, this.path).map((t) => ({
        ...t,
        at: t.at.line === 1 ? { line: piece.at.line, column: piece.at.column + t.at.column - 1 } : t.at,
      }));
      const parser = new Parser(inner, this.path);
      const expression = parser.parseExpression();
      if (parser.peek().kind !== 'end') parser.fail(parser.peek(), 'unexpected text in an interpolation');
      return expression;
    });
    return { kind: 'string', parts: parts.filter((part) => part !== ''), at: token.at };
  }

  private peek(): Token {
    let k = this.position;
    if (this.parenDepth > 0) while (this.tokens[k]!.kind === 'newline') k += 1;
    this.position = k;
    return this.tokens[k]!;
  }

  private peekAhead(offset: number): Token {
    this.peek();
    let k = this.position;
    let remaining = offset;
    while (remaining > 0) {
      k += 1;
      if (this.parenDepth > 0) while (this.tokens[k]?.kind === 'newline') k += 1;
      remaining -= 1;
    }
    return this.tokens[Math.min(k, this.tokens.length - 1)]!;
  }

  private precededByNewline(): boolean {
    return this.position > 0 && this.tokens[this.position - 1]!.kind === 'newline';
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.position += 1;
    return token;
  }

  private skipNewlines(): void {
    while (this.tokens[this.position]!.kind === 'newline') this.position += 1;
  }

  private isPunctuation(text: string): boolean {
    const token = this.peek();
    return token.kind === 'punctuation' && token.text === text;
  }

  private expectPunctuation(text: string): Token {
    const token = this.next();
    if (token.kind !== 'punctuation' || token.text !== text) this.fail(token, `expected "${text}", found "${token.text || 'end of file'}"`);
    return token;
  }

  private expectIdentifier(): Token {
    const token = this.next();
    if (token.kind !== 'identifier') this.fail(token, `expected a name, found "${token.text || 'end of file'}"`);
    return token;
  }

  private expectString(): Token {
    const token = this.next();
    if (token.kind !== 'string' || token.pieces!.length > 1) this.fail(token, 'expected a plain string');
    return token;
  }

  fail(token: Token, message: string): never {
    throw new InfraCheckError('bicep-syntax', `${this.path}:${token.at.line}:${token.at.column}: ${message}`);
  }
}
