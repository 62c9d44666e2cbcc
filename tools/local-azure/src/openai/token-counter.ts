import type { TokenizerEncoding } from './model-catalog.js';
import { assertMatchesExpression, pieceEnd } from './pre-tokenizer.js';

interface Encoding {
  decode(tokens: Iterable<number>): string;
}

/**
 * The parts of gpt-tokenizer's BPE core that {@link TokenCounter} merges pieces with and checks its pre-tokenizer
 * against. They are private in its typings, so {@link bpeCore} checks they are there when a vocabulary loads (a
 * gpt-tokenizer upgrade that renames them fails loudly, and token-counter.spec compares every count with the
 * library's own).
 */
interface BpeCore {
  tokenSplitRegex: RegExp;
  getBpeRankFromString(piece: string): number | undefined;
  getBpeRankFromBytes(bytes: Uint8Array): number | undefined;
  bytePairEncode(piece: string): number[];
}

/** A chat message as the token count sees it (text only; image parts count as their text placeholders). */
export interface CountedMessage {
  role: string;
  content: string;
  name?: string;
}

/**
 * Token counts with the models' real BPE vocabularies (`gpt-tokenizer`: pure JavaScript, synchronous, both
 * o200k_base and cl100k_base, no WASM or native code), so `usage` and quota accounting match Azure's to
 * within the chat-format overhead below.
 */
export class TokenCounter {
  private readonly encodings = new Map<TokenizerEncoding, Encoding>();
  private readonly cores = new Map<TokenizerEncoding, BpeCore>();
  private readonly loading = new Map<TokenizerEncoding, Promise<void>>();

  /**
   * Loads a vocabulary the first time it is asked for; concurrent callers share one load. A vocabulary
   * costs about 0.2 s and 10–70 MB (o200k_base is the large one), so a local Azure whose OpenAI
   * deployments are not called does not pay for them.
   */
  ready(encoding: TokenizerEncoding): Promise<void> {
    if (this.encodings.has(encoding)) return Promise.resolve();
    let loading = this.loading.get(encoding);
    if (!loading) {
      loading = (encoding === 'o200k_base' ? import('gpt-tokenizer/encoding/o200k_base') : import('gpt-tokenizer/encoding/cl100k_base')).then(
        (module) => {
          const core = bpeCore(module);
          assertMatchesExpression(core.tokenSplitRegex, encoding);
          this.cores.set(encoding, core);
          this.encodings.set(encoding, module);
        },
        (error: unknown) => {
          this.loading.delete(encoding);
          throw error;
        },
      );
      this.loading.set(encoding, loading);
    }
    return loading;
  }

  /**
   * The tokens of `text`, special tokens such as <|endoftext|> read as plain text. The text is split as the
   * encoding's own pre-tokenizer splits it, by {@link pieceEnd} rather than its regular expression (which overflows
   * V8's backtracking stack on one piece of some 8.4 million characters); a piece that is not one token is merged by
   * gpt-tokenizer if short and by {@link mergeLongPiece} if long: gpt-tokenizer's merge rescans the whole piece after
   * every merge, so one run of 200,000 spaces (1,566 tokens) held the local Azure's one thread for some 48 s.
   *
   * With a `limit`, encoding stops once more than `limit` tokens are known: the result is every token of the
   * text when it has at most `limit`, else its first `limit + 1` or more. The work is then bounded by the limit,
   * not by the length of the text (a 16 MiB prompt against an 8,192-token window costs what its first 8,193
   * tokens cost).
   */
  encode(text: string, encoding: TokenizerEncoding, limit = Infinity): number[] {
    this.encoding(encoding);
    const core = this.cores.get(encoding)!;
    const tokens: number[] = [];
    for (let at = 0; at < text.length && tokens.length <= limit; ) {
      const end = pieceEnd(text, at, encoding);
      const piece = text.slice(at, end);
      at = end;
      const token = core.getBpeRankFromString(piece);
      if (token !== undefined) tokens.push(token);
      else if (piece.length <= shortPiece) tokens.push(...core.bytePairEncode(piece));
      else for (const merged of mergeLongPiece(piece, core, { limit: limit - tokens.length })) tokens.push(merged);
    }
    return tokens;
  }

  decode(tokens: readonly number[], encoding: TokenizerEncoding): string {
    return this.encoding(encoding).decode(tokens);
  }

  /**
   * The number of tokens of `text`. With a `limit`, the count is exact when it is at most `limit` and otherwise
   * some number above it, found without encoding the rest (see {@link encode}); a text too long to fit in
   * `limit` tokens of the longest token's length is refused without encoding any of it.
   */
  count(text: string, encoding: TokenizerEncoding, limit = Infinity): number {
    if (!text) return 0;
    // Every token is at most longestToken UTF-8 bytes, and a string has at least as many UTF-8 bytes as UTF-16 units.
    const fewest = Math.ceil(text.length / longestToken);
    if (fewest > limit) return fewest;
    return this.encode(text, encoding, limit).length;
  }

  /**
   * Prompt tokens of a chat request: every message costs 3 tokens of framing plus its role, content and
   * name, and the reply is primed with 3 more (OpenAI's published counting rule for gpt-3.5/4/4o). With a
   * `limit`, exact when at most `limit`, otherwise some number above it (counting stops there).
   */
  countChat(messages: readonly CountedMessage[], encoding: TokenizerEncoding, limit = Infinity): number {
    let total = 3;
    for (const message of messages) {
      if (total > limit) break;
      total += 3 + this.count(message.role, encoding);
      total += this.count(message.content, encoding, limit - total);
      if (message.name) total += 1 + this.count(message.name, encoding);
    }
    return total;
  }

  private encoding(name: TokenizerEncoding): Encoding {
    const encoding = this.encodings.get(name);
    if (!encoding) throw new Error(`tokenizer ${name} is not loaded yet: await ready('${name}') first`);
    return encoding;
  }
}

/**
 * Pieces up to this many UTF-16 units go to gpt-tokenizer's merge (whose cache serves repeated words); its cost
 * grows with the square of a piece's length, so longer ones go to {@link mergeLongPiece}.
 */
const shortPiece = 64;

function bpeCore(module: unknown): BpeCore {
  const core = (module as { default?: { bytePairEncodingCoreProcessor?: Partial<BpeCore> } }).default?.bytePairEncodingCoreProcessor;
  if (
    !(core?.tokenSplitRegex instanceof RegExp) ||
    typeof core.getBpeRankFromString !== 'function' ||
    typeof core.getBpeRankFromBytes !== 'function' ||
    typeof core.bytePairEncode !== 'function'
  ) {
    throw new Error('gpt-tokenizer no longer exposes the BPE core the token counter merges long pieces with');
  }
  return core as BpeCore;
}

const utf8 = new TextEncoder();
const offsetSpan = 2 ** 25;

/**
 * The longest token of o200k_base and cl100k_base, in bytes (a run of spaces): longer pairs are not looked up,
 * which spares hashing a long slice for every merge of a long run. token-counter.spec checks it.
 */
export const longestToken = 128;

/** Options of {@link mergeLongPiece}. */
export interface MergeOptions {
  /** Stop once more than this many tokens of the piece are known. Default: Infinity (the whole piece). */
  limit?: number;
  /** Bytes merged at a time; at least 4 × {@link longestToken}. Default: 4096. */
  windowBytes?: number;
}

const mergeDefaults = { windowBytes: 4096 };
type RankOf = (start: number, end: number) => number;
interface MergedWindow {
  tokens: number[];
  /** Where each token ends, counted from the window's start. */
  ends: number[];
}

/**
 * Byte-pair encodes one pre-tokenized piece exactly as gpt-tokenizer (and tiktoken) do — repeatedly merge the
 * adjacent pair whose joined bytes have the lowest rank, the leftmost on a tie — a window of bytes at a time.
 *
 * Rules:
 * - A window is merged alone (heap, O(w log w)). The next window starts where a token of this one starts, a
 *   quarter window or more before its end, and is accepted only if its first token is that same token; the
 *   tokens before are kept. Two valid encodings that share a token join into the valid encoding of the joined
 *   text, and a text has one valid encoding (the corollaries of GitHub's `bpe` crate), so the joined result is
 *   the piece's encoding. A window that does not agree sends the whole piece to one merge.
 * - A window with the same bytes as one merged before reuses its result: a run of one character, or of a short
 *   pattern, costs a comparison per window, not a merge.
 * - With a `limit`, merging stops once more than `limit` tokens are kept (those are the piece's first tokens),
 *   so the work is bounded by the limit rather than by the piece's length.
 */
export function mergeLongPiece(piece: string, core: Pick<BpeCore, 'getBpeRankFromString' | 'getBpeRankFromBytes'>, options: MergeOptions = {}): number[] {
  const limit = options.limit ?? Infinity;
  const windowBytes = Math.max(options.windowBytes ?? mergeDefaults.windowBytes, 4 * longestToken);
  // A loop rather than a regular expression, which would run over the whole piece (see pre-tokenizer.ts).
  let ascii = true;
  for (let i = 0; i < piece.length && ascii; i++) ascii = piece.charCodeAt(i) < 0x80;
  const bytes = ascii ? undefined : utf8.encode(piece);
  const length = bytes ? bytes.length : piece.length;
  const rankOf: RankOf = (start, end) =>
    end - start > longestToken ? Infinity : (bytes ? core.getBpeRankFromBytes(bytes.subarray(start, end)) : core.getBpeRankFromString(piece.slice(start, end))) ?? Infinity;
  if (length <= windowBytes) return mergeWindow(rankOf, 0, length).tokens;

  const keyOf = (start: number, end: number): string => (bytes ? latin1.decode(bytes.subarray(start, end)) : piece.slice(start, end));
  // The last windows merged, compared by content (a Map would hash every slice, which costs more than the compare).
  const merged: { key: string; window: MergedWindow }[] = [];
  const margin = windowBytes >> 2;
  const tokens: number[] = [];
  // The window starts at the kept token that ends at anchorEnd (none before the first window).
  let from = 0;
  let anchorEnd = -1;
  for (;;) {
    const end = Math.min(length, from + windowBytes);
    const key = keyOf(from, end);
    let window = merged.find((entry) => entry.key === key)?.window;
    if (!window) {
      window = mergeWindow(rankOf, from, end);
      if (merged.length >= 8) merged.shift();
      merged.push({ key, window });
    }
    let first = 0;
    if (anchorEnd >= 0) {
      if (window.ends[0] !== anchorEnd - from) return mergeWindow(rankOf, 0, length).tokens;
      first = 1;
    }
    if (end === length) {
      for (let i = first; i < window.tokens.length; i++) tokens.push(window.tokens[i]!);
      return tokens;
    }
    let anchor = window.ends.length - 1;
    while (anchor > first && from + window.ends[anchor]! > end - margin) anchor--;
    for (let i = first; i <= anchor; i++) tokens.push(window.tokens[i]!);
    if (tokens.length > limit) return tokens;
    anchorEnd = from + window.ends[anchor]!;
    from = anchor === 0 ? from : from + window.ends[anchor - 1]!;
  }
}

const latin1 = new TextDecoder('latin1');

/** The heap merge of bytes [start, end) of a piece, in O(n log n); see {@link mergeLongPiece}. */
function mergeWindow(rankOf: RankOf, start: number, end: number): MergedWindow {
  const length = end - start;
  const rankAt = (from: number, to: number): number => rankOf(start + from, start + to);
  // Part i starts at byte i while alive; next[i] is where the following part starts (length at the end).
  const next = new Int32Array(length + 1);
  const previous = new Int32Array(length + 1);
  const alive = new Uint8Array(length + 1).fill(1);
  const rank = new Float64Array(length + 1).fill(Infinity);
  for (let i = 0; i <= length; i++) {
    next[i] = Math.min(i + 1, length);
    previous[i] = i - 1;
  }
  const heap = new MinHeap();
  const pairRank = (part: number): number => (next[part]! < length ? rankAt(part, next[next[part]!]!) : Infinity);
  for (let i = 0; i + 1 < length; i++) {
    rank[i] = rankAt(i, i + 2);
    if (rank[i] !== Infinity) heap.push(rank[i]!, i);
  }
  for (let key = heap.pop(); key >= 0; key = heap.pop()) {
    const entryRank = Math.floor(key / offsetSpan);
    const part = key - entryRank * offsetSpan;
    if (!alive[part] || rank[part] !== entryRank) continue;
    const removed = next[part]!;
    alive[removed] = 0;
    next[part] = next[removed]!;
    previous[next[removed]!] = part;
    rank[part] = pairRank(part);
    if (rank[part] !== Infinity) heap.push(rank[part]!, part);
    const before = previous[part]!;
    if (before >= 0) {
      const updated = pairRank(before);
      if (updated !== rank[before]) {
        rank[before] = updated;
        if (updated !== Infinity) heap.push(updated, before);
      }
    }
  }
  const tokens: number[] = [];
  const ends: number[] = [];
  for (let part = 0; part < length; part = next[part]!) {
    const token = rankAt(part, next[part]!);
    if (token === Infinity) throw new Error('a byte-pair merge left a part that is not in the vocabulary');
    tokens.push(token);
    ends.push(next[part]!);
  }
  return { tokens, ends };
}

/**
 * A binary min-heap of (rank, offset) pairs, ordered by rank and then offset, each kept as one number
 * `rank * 2^25 + offset` (ranks are below 2^18 and offsets below 2^25, the 16 MiB a request body may hold, so
 * the key is exact) in a typed array that grows by doubling.
 */
class MinHeap {
  private keys = new Float64Array(1024);
  private size = 0;

  push(rank: number, offset: number): void {
    if (this.size === this.keys.length) {
      const grown = new Float64Array(this.keys.length * 2);
      grown.set(this.keys);
      this.keys = grown;
    }
    const keys = this.keys;
    const key = rank * offsetSpan + offset;
    let at = this.size++;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[at] = keys[parent]!;
      at = parent;
    }
    keys[at] = key;
  }

  /** The least key, or -1 when the heap is empty. */
  pop(): number {
    if (this.size === 0) return -1;
    const keys = this.keys;
    const top = keys[0]!;
    const last = keys[--this.size]!;
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= this.size) break;
      if (child + 1 < this.size && keys[child + 1]! < keys[child]!) child++;
      if (keys[child]! >= last) break;
      keys[at] = keys[child]!;
      at = child;
    }
    keys[at] = last;
    return top;
  }
}
