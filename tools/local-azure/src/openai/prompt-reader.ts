import { trimChars } from '../util/trim-chars.js';

/** A product the prompt lists, with whatever facts it gives. */
export interface ListedProduct {
  id?: string;
  name: string;
  category?: string;
  /** The price as written (`$89.90`, `89.9 EUR`), or a number formatted with two decimals. */
  price?: string;
  tags: string[];
  description?: string;
  /** Other `key: value` facts of the item, keys lower-cased. */
  facts: Record<string, string>;
}

/** What a prompt contains, as the local chat model reads it. */
export interface PromptReading {
  /** Items offered to choose from (candidates). */
  candidates: ListedProduct[];
  /** Items listed as context: viewed, purchased, liked, in the cart. */
  seeds: ListedProduct[];
  /** The prompt's text without the item lists (instructions, the shopper's query). */
  prose: string;
  /** How many items to pick, when the prompt says (`top 3`, `pick two`, `up to 5`). */
  pickCount?: number;
  /** Sentence budget, when the prompt says (`in 2 sentences`, `one sentence`, `briefly` → 2). */
  sentenceLimit?: number;
}

const numberWords: Record<string, number> = { one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, a: 1, single: 1 };

const fieldAliases: Record<string, keyof Omit<ListedProduct, 'facts'>> = {
  id: 'id', sku: 'id', productid: 'id', product_id: 'id', ref: 'id',
  name: 'name', title: 'name', product: 'name', productname: 'name',
  category: 'category', type: 'category', department: 'category', categories: 'category',
  price: 'price', cost: 'price', amount: 'price', unitprice: 'price',
  tags: 'tags', tag: 'tags', keywords: 'tags', labels: 'tags', attributes: 'tags',
  description: 'description', desc: 'description', summary: 'description', details: 'description',
};

const seedHeading = /\b(viewed|view history|history|purchased|bought|liked|favou?rites?|in (the|their|my) cart|owned|already (has|have|own)|based on|similar to|seed)\b/i;
/** Labels of an inline list (`Products: A, B and C`, `Options are A or B`, `We sell A, B`). */
const listLabel =
  /^\s*(?:(?:(?:the|our|your|my|available|listed|candidate|recommended|recently)\s+)*(?:products?|items?|options?|candidates?|choices?|catalog(?:ue)?|list|inventory|selection|models?|offers?|picks?|recommendations?|stock|range|viewed|purchased|bought|liked|favou?rites?|cart|history|in stock|available)(?:\s+\w+){0,3}?(?:\s+(?:are|is|include|includes)\s*:?|\s*[:—-])|(?:we|you|i)\s+(?:have|sell|carry|stock|offer|own|bought|viewed|liked)\s*:?)\s*(.+)$/i;
/** A price as written: `$129.90`, `129.90 EUR`, `€ 80`, `80 USD`. */
const priceText = /^(?:[$€£¥]\s?\d[\d,.]*|\d[\d,.]*\s?(?:[$€£¥]|usd|eur|gbp|chf|dollars?|euros?))$/i;

/**
 * Reads the product lists and instructions out of a prompt.
 *
 * Rules:
 * - JSON anywhere in the text (a fenced ```json block, a message that is JSON, or a `[`/`{` block on its
 *   own lines) that holds objects with a `name`/`title` becomes items; arrays under keys such as
 *   `viewed`, `history`, `purchased` are seeds, all others candidates.
 * - A bullet or numbered line is an item. Its fields are separated by `|` or `;` and written
 *   `key: value` or `key=value` (`- id: p-1 | name: Trail Runner | category: footwear | price: $89 | tags: running, trail`);
 *   a segment without a key is the name. Tags split on commas or slashes.
 * - A list whose heading line (the last non-item line above it) speaks of viewed, purchased, liked,
 *   cart or history items is a seed list; any other list holds candidates.
 * - `top N`, `pick N`, `choose N`, `recommend N`, `up to N`, `at most N` (digits or one…ten) set the pick count.
 * - `in N sentences`, `one sentence` set the sentence budget; `brief`, `short`, `concise` mean 2.
 */
export function readPrompt(texts: readonly string[]): PromptReading {
  const candidates: ListedProduct[] = [];
  const seeds: ListedProduct[] = [];
  const proseLines: string[] = [];
  for (const text of texts) {
    const { rest, items } = extractJson(text);
    candidates.push(...items.candidates);
    seeds.push(...items.seeds);
    let heading = '';
    const lines = rest.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const table = readTable(lines, i);
      if (table) {
        (seedHeading.test(heading) ? seeds : candidates).push(...table.items);
        i = table.end;
        continue;
      }
      const listed = listItemText(line);
      const item = listed === undefined ? undefined : parseItemLine(listed);
      if (item) {
        (seedHeading.test(heading) ? seeds : candidates).push(item);
        continue;
      }
      if (!line.trim()) continue;
      // An inline list (`Products: A (shoe), B (jacket). Which one …?`): its items, and the rest of the line as prose.
      const inline = readInlineLists(line);
      for (const list of inline.lists) (seedHeading.test(list.label) ? seeds : candidates).push(...list.items);
      if (inline.rest) {
        heading = inline.rest;
        proseLines.push(inline.rest);
      } else if (inline.lists.length) {
        heading = inline.lists.at(-1)!.label;
      }
    }
  }
  const prose = proseLines.join('\n');
  return {
    candidates: dedupe(candidates),
    seeds: dedupe(seeds),
    prose,
    ...optional('pickCount', pickCount(prose)),
    ...optional('sentenceLimit', sentenceLimit(prose)),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

function pickCount(prose: string): number | undefined {
  const match = /\b(?:top|pick|choose|select|recommend|suggest|up to|at most|best|list|which)\s+(?:the\s+)?(\d{1,2}|two|three|four|five|six|seven|eight|nine|ten)\b/i.exec(prose) ??
    /\b(?:top|pick|choose|select|recommend|suggest|up to|at most|best|list)\s+(?:the\s+)?(one)\b/i.exec(prose);
  return match ? toNumber(match[1]!) : undefined;
}

function sentenceLimit(prose: string): number | undefined {
  const match = /\b(?:in|with|using|max(?:imum)?|at most|no more than)?\s*(\d{1,2}|one|two|three|four|five|a single|single)\s+(?:short\s+)?sentences?\b/i.exec(prose);
  if (match) return toNumber(match[1]!.replace(/^a\s+/, ''));
  return /\b(brief|briefly|short|concise|one-liner)\b/i.test(prose) ? 2 : undefined;
}

function toNumber(word: string): number | undefined {
  const value = /^\d+$/.test(word) ? Number(word) : numberWords[word.toLowerCase()];
  return value && value > 0 ? value : undefined;
}

function parseItemLine(text: string): ListedProduct | undefined {
  const segments = text.includes('|') ? text.split('|') : text.includes(';') ? text.split(';') : [text];
  const item: ListedProduct = { name: '', tags: [], facts: {} };
  let keyed = 0;
  for (const raw of segments) {
    const segment = raw.trim();
    if (!segment) continue;
    const pair = /^([A-Za-z][\w ]{0,30}?)\s*[:=]\s*(.+)$/.exec(segment);
    const field = pair ? fieldAliases[pair[1]!.trim().toLowerCase().replace(/\s+/g, '')] : undefined;
    if (pair && (field || segments.length > 1)) {
      keyed++;
      assignField(item, pair[1]!, pair[2]!.trim());
    } else if (pair && !item.name) {
      // `- Trail Runner 3: a light running shoe` — a name and what it is.
      Object.assign(item, { ...namedEntry(pair[1]!), description: pair[2]!.trim() });
    } else if (!item.name) {
      Object.assign(item, namedEntry(segment));
    } else {
      item.facts[`note${Object.keys(item.facts).length + 1}`] = segment;
    }
  }
  // A plain sentence in a bullet list ("- Keep it short") is not an item: items have a name and, unless
  // the line is only a name, some keyed field.
  const line = text.trim();
  if (!item.name || (keyed === 0 && segments.length === 1 && /[.!?]$/.test(line) && line.split(/\s+/).length > 6)) return undefined;
  return item;
}

/**
 * An entry written as a name with its details: `Trail Runner 3 (running shoe, $99)`, `Alpine Parka — a warm
 * jacket`, or just a name. In parentheses, a price is the price, a short phrase the category, anything
 * longer the description.
 */
function namedEntry(text: string): Pick<ListedProduct, 'name' | 'category' | 'price' | 'description'> {
  const entry: Pick<ListedProduct, 'name' | 'category' | 'price' | 'description'> = { name: text.trim() };
  const dash = splitAtDash(entry.name);
  if (dash && splitsIntoAtMost(dash[0], 8)) {
    entry.name = dash[0].trim();
    entry.description = dash[1].trim();
  }
  const details = splitAtParentheses(entry.name);
  if (details) {
    entry.name = details[0].trim();
    for (const part of details[1].split(/\s*,\s*/)) {
      if (priceText.test(part)) entry.price = part;
      else if (!entry.category && part.split(/\s+/).length <= 4) entry.category = part;
      else entry.description = entry.description ? `${entry.description}; ${part}` : part;
    }
  }
  entry.name = trimChars(entry.name.replace(/^(?:an?|the)\s+/i, ''), '.!?', 'end');
  return entry;
}

/**
 * Whether `text.split(/\s+/)` has at most `limit` pieces (one more than its runs of spaces), without splitting
 * a listed name of hundreds of thousands of spaces into as many strings.
 */
function splitsIntoAtMost(text: string, limit: number): boolean {
  let pieces = 1;
  for (let i = 0; i < text.length && pieces <= limit; i++) if (isSpace(text[i]) && !isSpace(text[i - 1])) pieces++;
  return pieces <= limit;
}

/** Whether `char` is what `\s` matches; ASCII is decided without a regular expression, as scans call this per character. */
function isSpace(char: string | undefined): boolean {
  if (char === undefined) return false;
  const code = char.charCodeAt(0);
  return code < 128 ? code === 32 || (code >= 9 && code <= 13) : /\s/.test(char);
}

const isLineBreak = (char: string): boolean => char === '\n' || char === '\r' || char === '\u2028' || char === '\u2029';

/**
 * What `/^\s*(?:[-*•]|\d{1,3}[.)])\s+(.+?)\s*$/` captures (a bullet or number, spaces, then the item's text
 * without its trailing spaces), found without that expression: its lazy `(.+?)` retried the trailing `\s*$` from
 * every position of a run of spaces inside the text, so a listed line with 100,000 spaces took some 30 s of the
 * local Azure's one thread, four times as long at twice as many. `trim` removes exactly what `\s` matches.
 */
export function listItemText(line: string): string | undefined {
  const bullet = /^\s*(?:[-*•]|\d{1,3}[.)])/.exec(line);
  if (!bullet) return undefined;
  const rest = line.slice(bullet[0].length);
  if (!isSpace(rest[0])) return undefined;
  const text = rest.trim();
  // `.` matches no line break: one inside the text fails the expression, whatever its two runs of spaces take.
  if (text) return [...'\n\r\u2028\u2029'].some((lineBreak) => text.includes(lineBreak)) ? undefined : text;
  // Nothing but spaces after the bullet: `.+?` takes the last one that is not a line break, leaving `\s+` one at least.
  for (let i = rest.length - 1; i >= 1; i--) if (!isLineBreak(rest[i]!)) return rest[i];
  return undefined;
}

/**
 * What `/^(.+?)\s+[—–-]\s+(.+)$/` captures (a name, then a dash between spaces, then a description), found in
 * one pass: that expression retried every run of spaces from each of its positions, so 80,000 spaces in a listed
 * name took some 0.4 s of the local Azure's one thread, four times as long at twice as many.
 */
export function splitAtDash(text: string): [name: string, description: string] | undefined {
  const length = text.length;
  let firstBreak = length;
  let afterLastBreak = 0;
  for (let i = 0; i < length; i++) {
    if (!isLineBreak(text[i]!)) continue;
    firstBreak = Math.min(firstBreak, i);
    afterLastBreak = i + 1;
  }
  // The name is text[0, start): the shortest one (no line break, at least a character) followed by
  // spaces, a dash, spaces and a description of at least one character on the last line.
  for (let start = 1; start <= Math.min(firstBreak, length - 1); ) {
    if (!isSpace(text[start])) {
      start++;
      continue;
    }
    let dash = start;
    while (isSpace(text[dash])) dash++;
    if (dash < length && '—–-'.includes(text[dash]!)) {
      let description = dash + 1;
      while (isSpace(text[description])) description++;
      // The spaces after the dash give back their last one when nothing else is left for the description.
      description = Math.min(description, length - 1);
      if (description >= dash + 2 && description >= afterLastBreak) return [text.slice(0, start), text.slice(description)];
    }
    // A later start in the same run of spaces meets the same dash.
    start = dash;
  }
  return undefined;
}

/**
 * What `/^(.+?)\s*\(([^()]+)\)\s*$/` captures (a name, then details in closing parentheses), found in one pass:
 * that expression tried each start of the name against the rest, so 80,000 ` ,` after an opening parenthesis
 * took some 0.8 s of the local Azure's one thread.
 */
export function splitAtParentheses(text: string): [name: string, details: string] | undefined {
  let close = text.length - 1;
  while (close >= 0 && isSpace(text[close])) close--;
  if (text[close] !== ')') return undefined;
  let open = close - 1;
  while (open >= 0 && text[open] !== '(' && text[open] !== ')') open--;
  if (open < 1 || text[open] !== '(' || open === close - 1) return undefined;
  let name = open;
  while (name > 1 && isSpace(text[name - 1])) name--;
  for (let i = 0; i < name; i++) if (isLineBreak(text[i]!)) return undefined;
  return [text.slice(0, name), text.slice(open + 1, close)];
}

/** Splits `text` at `separator` outside parentheses (slicing, not joining characters one by one). */
function splitOutsideParentheses(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '(') depth++;
    else if (char === ')') depth = Math.max(0, depth - 1);
    else if (char === separator && depth === 0) {
      parts.push(text.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(text.slice(from));
  return parts.map((part) => part.trim()).filter(Boolean);
}

/**
 * Inline lists in a line of prose: a sentence `<label>: A, B and C` (or `… are A or B`) whose label speaks
 * of products, items, options, candidates, what is viewed or sold. Returns the lists and the line's other
 * sentences (the prose). Entries are split at commas or semicolons outside parentheses, the last one at
 * "and"/"or"; each is read with {@link namedEntry}. A "list" of one long entry is prose, not a list.
 */
function readInlineLists(line: string): { lists: { label: string; items: ListedProduct[] }[]; rest: string } {
  const lists: { label: string; items: ListedProduct[] }[] = [];
  const prose: string[] = [];
  // Sentences end at . ! ? followed by a space and a capital letter (not inside a price such as $129.90).
  for (const sentence of line.trim().split(/(?<=[.!?])\s+(?=[A-Z"“(])/)) {
    const match = listLabel.exec(sentence);
    const body = match?.[1] === undefined ? undefined : trimChars(match[1], '.!', 'end').trim();
    const entries = body ? listEntries(body) : [];
    const items = entries.map(namedEntry).filter((item) => item.name && splitsIntoAtMost(item.name, 8));
    if (match && items.length >= 2 && items.length === entries.length) {
      lists.push({ label: sentence.slice(0, sentence.length - match[1]!.length), items: items.map((item) => ({ ...item, tags: [], facts: {} })) });
    } else {
      prose.push(sentence);
    }
  }
  return { lists, rest: prose.join(' ').trim() };
}

function listEntries(body: string): string[] {
  const separator = splitOutsideParentheses(body, ';').length > 1 ? ';' : ',';
  const entries = splitOutsideParentheses(body, separator);
  const last = entries.pop() ?? '';
  // `A, B and C`, `A or B`: the last entry may hold two (a conjunction outside parentheses).
  const masked = last.replace(/\([^()]*\)/g, (inner) => '_'.repeat(inner.length));
  const conjunction = findConjunction(masked);
  const split = conjunction ? [last.slice(0, conjunction[0]), last.slice(conjunction[1])] : [last];
  return [...entries, ...split.map((entry) => entry.trim())];
}

/**
 * Where `/\s+(?:and|or|&)\s+/i` first matches in `text` (start and end), found in one pass: that expression
 * tried each position of a run of spaces against the whole run, so 40,000 spaces in a list's last entry took
 * some 1 s of the local Azure's one thread, four times as long at twice as many.
 */
export function findConjunction(text: string): [start: number, end: number] | undefined {
  for (let start = 0; start < text.length; ) {
    if (!isSpace(text[start])) {
      start++;
      continue;
    }
    let word = start;
    while (isSpace(text[word])) word++;
    const conjunction = ['and', 'or', '&'].find((candidate) => text.slice(word, word + candidate.length).toLowerCase() === candidate);
    if (conjunction && isSpace(text[word + conjunction.length])) {
      let end = word + conjunction.length;
      while (isSpace(text[end])) end++;
      return [start, end];
    }
    // A later start in the same run of spaces meets the same word.
    start = word;
  }
  return undefined;
}

/**
 * A markdown table starting at `lines[start]` (`| Name | Category | Price |`, then `|---|---|---|`, then rows):
 * one item per row, columns named as in item lines (`name`/`product`/`title`, `category`, `price`, `tags`, …;
 * others are facts). Without a name column, the first column is the name.
 */
function readTable(lines: readonly string[], start: number): { items: ListedProduct[]; end: number } | undefined {
  const row = (line: string | undefined): string[] | undefined =>
    line && /^\s*\|.*\|\s*$/.test(line) ? line.trim().slice(1, -1).split('|').map((cell) => cell.trim()) : undefined;
  const header = row(lines[start]);
  const separator = row(lines[start + 1]);
  if (!header || !separator || !separator.every((cell) => /^:?-{2,}:?$/.test(cell))) return undefined;
  const keys = header.map((cell) => cell.toLowerCase().replace(/\s+/g, ''));
  const nameColumn = Math.max(0, keys.findIndex((key) => fieldAliases[key] === 'name'));
  const items: ListedProduct[] = [];
  let end = start + 1;
  for (let i = start + 2; row(lines[i]); i++) {
    end = i;
    const cells = row(lines[i])!;
    const item: ListedProduct = { ...namedEntry(cells[nameColumn] ?? ''), tags: [], facts: {} };
    cells.forEach((cell, column) => {
      if (column !== nameColumn && cell) assignField(item, header[column] ?? `column${column + 1}`, cell);
    });
    if (item.name) items.push(item);
  }
  return { items, end };
}

function assignField(item: ListedProduct, rawKey: string, value: string): void {
  const key = rawKey.trim().toLowerCase().replace(/\s+/g, '');
  const field = fieldAliases[key];
  if (field === 'tags') item.tags = value.split(/[,/]/).map((t) => t.trim().replace(/^#/, '')).filter(Boolean);
  else if (field === 'price') item.price = value;
  else if (field) item[field] = value;
  else item.facts[rawKey.trim().toLowerCase()] = value;
}

function fromJsonObject(value: Record<string, unknown>): ListedProduct | undefined {
  const item: ListedProduct = { name: '', tags: [], facts: {} };
  for (const [key, raw] of Object.entries(value)) {
    const field = fieldAliases[key.toLowerCase().replace(/\s+/g, '')];
    if (field === 'tags') {
      item.tags = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(/[,/]/).map((t) => t.trim()).filter(Boolean) : [];
    } else if (field === 'price') {
      item.price = typeof raw === 'number' ? raw.toFixed(2) : typeof raw === 'object' && raw ? formatMoney(raw as Record<string, unknown>) : String(raw);
    } else if (field && (typeof raw === 'string' || typeof raw === 'number')) {
      item[field] = String(raw);
    } else if (raw !== null && typeof raw !== 'object') {
      item.facts[key.toLowerCase()] = String(raw);
    }
  }
  return item.name ? item : undefined;
}

function formatMoney(value: Record<string, unknown>): string {
  const amount = value.amount ?? value.value;
  const currency = value.currency ?? value.currencyCode;
  const number = typeof amount === 'number' ? amount.toFixed(2) : String(amount ?? '');
  return currency ? `${number} ${String(currency)}` : number;
}

/** Finds JSON in `text`, returns the items it holds and the text without it. */
function extractJson(text: string): { rest: string; items: { candidates: ListedProduct[]; seeds: ListedProduct[] } } {
  const items = { candidates: [] as ListedProduct[], seeds: [] as ListedProduct[] };
  // What /```(?:json)?\s*\n([\s\S]*?)```/gi replaces, without that expression's `\s*\n`, which retried the body
  // from every line break of a run after the fence (100,000 empty lines after an unclosed fence took some 4 s).
  // The body then starts after the run's first line break; the rest of the run is cut as `\s*\n` would have.
  const rest = text.replace(/```(?:json)?[^\S\n]*\n([\s\S]*?)```/gi, (whole, body: string) => (tryJson(body.replace(/^\s*\n/, ''), items) ? '' : whole));
  const trimmed = rest.trim();
  if ((trimmed.startsWith('{') || trimmed.startsWith('[')) && tryJson(trimmed, items)) return { rest: '', items };
  return { rest: removeInlineJson(rest, items), items };
}

// Bounds the search for JSON blocks inside prose, so a prompt full of brackets stays linear.
const inlineJsonLimits = { attempts: 20, linesPerBlock: 5000 };

/** Finds JSON blocks on their own lines (a line starting with `[`/`{` to the next line starting with `]`/`}`) and removes those holding items. */
function removeInlineJson(text: string, items: { candidates: ListedProduct[]; seeds: ListedProduct[] }): string {
  const lines = text.split('\n');
  let attempts = 0;
  for (let start = 0; start < lines.length && attempts < inlineJsonLimits.attempts; start++) {
    if (!/^[ \t]*[[{]/.test(lines[start]!)) continue;
    attempts++;
    const last = Math.min(lines.length, start + inlineJsonLimits.linesPerBlock);
    for (let end = start; end < last; end++) {
      if (!/^[ \t]*[\]}][ \t,]*$/.test(lines[end]!) && !(end === start && /[\]}][ \t]*$/.test(lines[end]!))) continue;
      if (tryJson(lines.slice(start, end + 1).join('\n'), items)) {
        lines.splice(start, end - start + 1);
        start--;
      }
      break;
    }
  }
  return lines.join('\n');
}

function tryJson(body: string, into: { candidates: ListedProduct[]; seeds: ListedProduct[] }): boolean {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return false;
  }
  const before = into.candidates.length + into.seeds.length;
  collect(value, false, into, 0);
  return into.candidates.length + into.seeds.length > before;
}

function collect(value: unknown, seed: boolean, into: { candidates: ListedProduct[]; seeds: ListedProduct[] }, depth: number): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const entry of value) {
      const item = entry && typeof entry === 'object' && !Array.isArray(entry) ? fromJsonObject(entry as Record<string, unknown>) : undefined;
      if (item) (seed ? into.seeds : into.candidates).push(item);
      else collect(entry, seed, into, depth + 1);
    }
    return;
  }
  const object = value as Record<string, unknown>;
  const holdsList = Object.values(object).some((child) => Array.isArray(child) && child.some((entry) => entry && typeof entry === 'object'));
  const self = holdsList ? undefined : fromJsonObject(object);
  if (self) {
    (seed ? into.seeds : into.candidates).push(self);
    return;
  }
  for (const [key, child] of Object.entries(object)) collect(child, seed || seedHeading.test(key.replace(/([a-z])([A-Z])/g, '$1 $2')), into, depth + 1);
}

function dedupe(items: ListedProduct[]): ListedProduct[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const key = `${item.id ?? ''}|${item.name.toLowerCase()}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
