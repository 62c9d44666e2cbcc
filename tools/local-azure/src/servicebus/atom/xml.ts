/**
 * The small XML subset the Service Bus management API exchanges: elements, attributes, namespaces,
 * character data (with the predefined and numeric entities, CDATA), comments and processing
 * instructions. Document type declarations are refused (no entity expansion from a request).
 */

/** An element with its namespace resolved. */
export interface XmlElement {
  /** The name as written (`p4:type`-style prefixes kept). */
  readonly name: string;
  readonly localName: string;
  /** The namespace URI the element's prefix (or the default namespace) resolves to; `''` for none. */
  readonly namespace: string;
  readonly attributes: readonly XmlAttribute[];
  readonly children: readonly XmlElement[];
  /** The character data directly inside the element. */
  readonly text: string;
  /** The namespace URI a prefix resolves to in this element's scope (for QName values such as `l28:string`). */
  resolvePrefix(prefix: string): string | undefined;
}

export interface XmlAttribute {
  readonly name: string;
  readonly localName: string;
  /** `''` for unprefixed attributes (they are in no namespace). */
  readonly namespace: string;
  readonly value: string;
}

/** Malformed XML, with the character position where it was noticed. */
export class XmlSyntaxError extends Error {
  override readonly name = 'XmlSyntaxError';

  constructor(
    readonly position: number,
    message: string,
  ) {
    super(`XML at character ${position + 1}: ${message}`);
  }
}

/** Namespace URIs the management API uses. */
export const xmlNamespaces = {
  atom: 'http://www.w3.org/2005/Atom',
  serviceBus: 'http://schemas.microsoft.com/netservices/2010/10/servicebus/connect',
  serviceBusCounts: 'http://schemas.microsoft.com/netservices/2011/06/servicebus',
  instance: 'http://www.w3.org/2001/XMLSchema-instance',
  schema: 'http://www.w3.org/2001/XMLSchema',
  xmlns: 'http://www.w3.org/2000/xmlns/',
  xml: 'http://www.w3.org/XML/1998/namespace',
} as const;

const limits = { depth: 64 };

/** A name where the parser stands (sticky: matched in place, without copying the rest of the document). */
const namePattern = /[A-Za-z_][\w.\-:]*/y;

const predefinedEntities: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * Parses a document and returns its root element.
 *
 * @throws {XmlSyntaxError} naming the position and what is wrong.
 */
export function parseXml(source: string): XmlElement {
  return new XmlParser(source).document();
}

/** Escapes text for element content or a double-quoted attribute value. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** The first child element with this local name (in any namespace), if any. */
export function childElement(element: XmlElement, localName: string): XmlElement | undefined {
  return element.children.find((child) => child.localName === localName);
}

/** The text of the first child element with this local name, if present. */
export function childText(element: XmlElement, localName: string): string | undefined {
  return childElement(element, localName)?.text;
}

/** An attribute by namespace URI and local name. */
export function attributeValue(element: XmlElement, namespace: string, localName: string): string | undefined {
  return element.attributes.find((attribute) => attribute.namespace === namespace && attribute.localName === localName)?.value;
}

/**
 * The `xsi:type` of an element as `{ namespace, localName }`, the prefix resolved in the element's scope
 * (clients use any prefix: the SDK writes `p4:type`).
 */
export function instanceType(element: XmlElement): { namespace: string; localName: string } | undefined {
  const value = attributeValue(element, xmlNamespaces.instance, 'type');
  if (value === undefined) return undefined;
  const colon = value.indexOf(':');
  if (colon < 0) return { namespace: element.resolvePrefix('') ?? '', localName: value };
  return { namespace: element.resolvePrefix(value.slice(0, colon)) ?? '', localName: value.slice(colon + 1) };
}

/**
 * The prefixes in scope at an element: its own declarations, then its ancestors'. Each element keeps the chain, not
 * a copy of it — a copy per element made a document of n declarations and n elements cost n² entries (a 200 KB
 * request body held gigabytes). A lookup walks at most `limits.depth` levels.
 */
class NamespaceScope {
  constructor(
    private readonly declared: ReadonlyMap<string, string>,
    private readonly parent?: NamespaceScope,
  ) {}

  get(prefix: string): string | undefined {
    return this.declared.get(prefix) ?? this.parent?.get(prefix);
  }
}

class XmlParser {
  private position = 0;

  constructor(private readonly source: string) {}

  document(): XmlElement {
    this.misc();
    if (this.source.startsWith('<!DOCTYPE', this.position)) throw this.error('document type declarations are not accepted');
    if (this.source[this.position] !== '<') throw this.error('expected the root element');
    const root = this.element(new NamespaceScope(new Map([['xml', xmlNamespaces.xml]])), 0);
    this.misc();
    if (this.position < this.source.length) throw this.error('unexpected content after the root element');
    return root;
  }

  /** Skips whitespace, comments and processing instructions (the XML declaration among them). */
  private misc(): void {
    for (;;) {
      while (this.position < this.source.length && /\s/.test(this.source[this.position]!)) this.position++;
      if (this.source.startsWith('<?', this.position)) this.skipPast('?>', 'processing instruction');
      else if (this.source.startsWith('<!--', this.position)) this.skipPast('-->', 'comment');
      else return;
    }
  }

  private element(parentScope: NamespaceScope, depth: number): XmlElement {
    if (depth > limits.depth) throw this.error(`elements nest deeper than ${limits.depth} levels`);
    const start = this.position;
    this.position++; // <
    const name = this.name();
    const rawAttributes: { name: string; value: string }[] = [];
    const attributeNames = new Set<string>();
    for (;;) {
      const hadSpace = this.whitespace();
      const c = this.source[this.position];
      if (c === '>' || c === '/') break;
      if (c === undefined) throw this.error(`element <${name}> is not closed`);
      if (!hadSpace) throw this.error(`expected whitespace before an attribute of <${name}>`);
      const attributeName = this.name();
      this.whitespace();
      this.expect('=');
      this.whitespace();
      const quote = this.source[this.position];
      if (quote !== '"' && quote !== "'") throw this.error(`the value of ${attributeName} must be quoted`);
      const end = this.source.indexOf(quote, this.position + 1);
      if (end < 0) throw this.error(`the value of ${attributeName} is not closed`);
      const raw = this.source.slice(this.position + 1, end);
      if (raw.includes('<')) throw this.error(`"<" in the value of ${attributeName}`);
      if (attributeNames.has(attributeName)) throw this.error(`attribute ${attributeName} appears twice on <${name}>`);
      attributeNames.add(attributeName);
      rawAttributes.push({ name: attributeName, value: this.decode(raw, this.position + 1) });
      this.position = end + 1;
    }
    const declared = new Map<string, string>();
    for (const { name: attributeName, value } of rawAttributes) {
      if (attributeName === 'xmlns') declared.set('', value);
      else if (attributeName.startsWith('xmlns:')) declared.set(attributeName.slice(6), value);
    }
    const scope = declared.size ? new NamespaceScope(declared, parentScope) : parentScope;
    const resolve = (qualified: string, isAttribute: boolean): { localName: string; namespace: string } => {
      const colon = qualified.indexOf(':');
      if (colon < 0) return { localName: qualified, namespace: isAttribute ? '' : (scope.get('') ?? '') };
      const prefix = qualified.slice(0, colon);
      if (prefix === 'xmlns') return { localName: qualified.slice(colon + 1), namespace: xmlNamespaces.xmlns };
      const namespace = scope.get(prefix);
      if (namespace === undefined) throw new XmlSyntaxError(start, `the prefix "${prefix}" of ${qualified} is not declared`);
      return { localName: qualified.slice(colon + 1), namespace };
    };
    const attributes: XmlAttribute[] = rawAttributes
      .filter((attribute) => attribute.name !== 'xmlns')
      .map(({ name: attributeName, value }) => ({ name: attributeName, value, ...resolve(attributeName, true) }));
    const children: XmlElement[] = [];
    let text = '';
    if (this.source[this.position] === '/') {
      this.position++;
      this.expect('>');
    } else {
      this.position++; // >
      for (;;) {
        const next = this.source.indexOf('<', this.position);
        if (next < 0) throw this.error(`element <${name}> is not closed`);
        text += this.decode(this.source.slice(this.position, next), this.position);
        this.position = next;
        if (this.source.startsWith('</', this.position)) {
          this.position += 2;
          const closing = this.name();
          if (closing !== name) throw this.error(`</${closing}> closes <${name}>`);
          this.whitespace();
          this.expect('>');
          break;
        }
        if (this.source.startsWith('<!--', this.position)) this.skipPast('-->', 'comment');
        else if (this.source.startsWith('<?', this.position)) this.skipPast('?>', 'processing instruction');
        else if (this.source.startsWith('<![CDATA[', this.position)) {
          const end = this.source.indexOf(']]>', this.position);
          if (end < 0) throw this.error('CDATA section is not closed');
          text += this.source.slice(this.position + 9, end);
          this.position = end + 3;
        } else if (this.source.startsWith('<!', this.position)) throw this.error('markup declarations are not accepted');
        else children.push(this.element(scope, depth + 1));
      }
    }
    return {
      name,
      ...resolve(name, false),
      attributes,
      children,
      text,
      resolvePrefix: (prefix) => scope.get(prefix),
    };
  }

  private name(): string {
    namePattern.lastIndex = this.position;
    const match = namePattern.exec(this.source);
    if (!match) throw this.error('expected a name');
    this.position += match[0].length;
    return match[0];
  }

  private whitespace(): boolean {
    const start = this.position;
    while (this.position < this.source.length && /\s/.test(this.source[this.position]!)) this.position++;
    return this.position > start;
  }

  private expect(text: string): void {
    if (!this.source.startsWith(text, this.position)) throw this.error(`expected "${text}"`);
    this.position += text.length;
  }

  private skipPast(end: string, what: string): void {
    const index = this.source.indexOf(end, this.position);
    if (index < 0) throw this.error(`${what} is not closed`);
    this.position = index + end.length;
  }

  private decode(raw: string, at: number): string {
    if (!raw.includes('&')) return raw;
    return raw.replace(/&([^;]{0,10});?/g, (match, entity: string, offset: number) => {
      if (!match.endsWith(';')) throw new XmlSyntaxError(at + offset, '"&" must start an entity reference such as &amp;');
      if (entity.startsWith('#')) {
        const code = entity[1] === 'x' || entity[1] === 'X' ? Number.parseInt(entity.slice(2), 16) : Number.parseInt(entity.slice(1), 10);
        if (!Number.isInteger(code) || code < 1 || code > 0x10ffff) throw new XmlSyntaxError(at + offset, `invalid character reference ${match}`);
        return String.fromCodePoint(code);
      }
      const value = predefinedEntities[entity];
      if (value === undefined) throw new XmlSyntaxError(at + offset, `unknown entity ${match}`);
      return value;
    });
  }

  private error(message: string): XmlSyntaxError {
    return new XmlSyntaxError(this.position, message);
  }
}
