import { contentWords, cosineSimilarity, LocalEmbeddingModel, readText, stem, type TextReading } from './embedding-model.js';
import { productConcepts } from './product-lexicon.js';
import { readPrompt, type ListedProduct, type PromptReading } from './prompt-reader.js';

/** One message of a conversation, flattened to text. */
export interface ChatTurn {
  role: string;
  content: string;
}

/** How the reply should be shaped. */
export interface ChatReplyOptions {
  /** Reply with a JSON object (`response_format` json_object / json_schema); a schema's top-level properties are filled. */
  json?: { schema?: JsonSchema | undefined } | undefined;
}

/** The part of a JSON schema the local model fills: top-level properties and array items. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
}

/** A picked item with the reason the model gives for it. */
export interface Pick {
  item: ListedProduct;
  reason: string;
  score: number;
}

// Similarity (in a 256-dimension embedding) above which the query is taken to say something about an item.
const relevanceFloor = 0.08;
// Full length: at 256 dimensions the projection noise (±0.06) can reorder close candidates.
const rankingDimensions = 1536;
// Words of instructions that say nothing about products.
const promptWords = new Set(
  'recommend recommendation recommendations recommended product products item items shopper customer user explain explanation why reason reasons short brief briefly sentence sentences answer reply respond list pick choose select top best candidate candidates following based given help assistant shopping store catalog please write json format return give tell describe recently viewed searched search query looked purchased bought liked history options option interest interested similar'
    .split(' ')
    .map(stem),
);

/**
 * The local stand-in for a chat model: deterministic and grounded in the prompt. It does not know
 * anything the messages do not say; it reads them, picks what is relevant and quotes it.
 *
 * Rules:
 * - When the system/user messages list products (see {@link readPrompt} for the formats), it picks the
 *   items most related to the rest of the prompt (the shopper's query, the viewed items) by embedding
 *   similarity — or keeps the given order when the prompt says nothing that relates — and explains each by
 *   quoting its name, category, price and the words or tags it shares with the query.
 * - `top N` / `pick N` pick N items; otherwise all listed items up to five (three when more are listed).
 * - `in N sentences` / `briefly` limit the explanation.
 * - `Reply with X` / `Say X` replies X; a greeting gets a greeting; `summarize` gives the first sentences of
 *   the longest text; a question gets the sentences of the conversation most related to it, or an honest
 *   "the conversation says nothing about …".
 * - JSON mode replies a JSON object: `{recommendations:[{id,name,category,price,reason}], explanation}` for
 *   products, `{answer}` otherwise, or the given schema's top-level properties filled from those values.
 * - The same messages always give the same reply.
 */
export class LocalChatModel {
  constructor(private readonly embeddings: LocalEmbeddingModel = new LocalEmbeddingModel()) {}

  reply(messages: readonly ChatTurn[], options: ChatReplyOptions = {}): string {
    const instructions = messages.filter((m) => m.role !== 'assistant').map((m) => m.content);
    const reading = readPrompt(instructions);
    // The shopper's interest is in the user turns; system and developer messages are instructions, and
    // their words ("you are a shopping assistant for an online shop") must not read as what was asked for.
    const userTurns = messages.filter((m) => m.role === 'user').map((m) => m.content);
    if (userTurns.length) reading.prose = readPrompt(userTurns).prose;
    const lastUser = [...messages].reverse().find((m) => m.role === 'user')?.content ?? messages.at(-1)?.content ?? '';
    if (reading.candidates.length) {
      const picks = this.pick(reading);
      const explanation = explain(picks, reading, this.basis(reading));
      return options.json ? JSON.stringify(fill(options.json.schema, recommendationJson(picks, explanation))) : explanation;
    }
    const answer = this.answer(lastUser, messages, reading);
    return options.json ? JSON.stringify(fill(options.json.schema, { answer })) : answer;
  }

  /** Ranks the candidates against the prompt's query and seeds and keeps the requested number. */
  pick(reading: PromptReading): Pick[] {
    const query = queryText(reading);
    const queryVector = this.embeddings.embed(query, rankingDimensions);
    const proseReading = readText(reading.prose);
    const seedReading = readText(reading.seeds.map(itemText).join('\n'));
    const scored = reading.candidates.map((item, index) => ({
      item,
      index,
      score: cosineSimilarity(queryVector, this.embeddings.embed(itemText(item), rankingDimensions)),
    }));
    const related = scored.some((s) => s.score > relevanceFloor);
    const ordered = related ? [...scored].sort((a, b) => b.score - a.score || a.index - b.index) : scored;
    const count = Math.min(ordered.length, reading.pickCount ?? (ordered.length <= 5 ? ordered.length : 3));
    return ordered.slice(0, count).map(({ item, score }) => ({ item, score, reason: reasonFor(item, proseReading, seedReading, reading.seeds) }));
  }

  private basis(reading: PromptReading): string {
    const search = /["“]([^"”\n]{2,80})["”]/.exec(reading.prose)?.[1];
    const terms = queryTerms(reading.prose);
    const interest = search ? `your search for "${search}"` : terms.length ? `your interest in ${joinWords(terms.slice(0, 3).map(quote))}` : '';
    const seen = reading.seeds.length ? `the items you looked at (${joinWords(reading.seeds.slice(0, 2).map((s) => s.name))})` : '';
    return [interest, seen].filter(Boolean).join(' and ') || 'what you asked for';
  }

  private answer(question: string, messages: readonly ChatTurn[], reading: PromptReading): string {
    const text = question.trim();
    // One short line only: the pattern is cheap there, and an echo request is never long.
    const echo = text.length <= 500 && !text.includes('\n') ? /^(?:please\s+)?(?:reply|respond|answer|say|return|output)(?:\s+only)?(?:\s+with)?(?:\s+exactly)?(?:\s+the\s+word)?\s*[:-]?\s*(.+?)\s*$/is.exec(text) : null;
    if (echo) return echo[1]!.replace(/^["'“‘`](.*)["'”’`]\.?$/s, '$1').replace(/\.$/, '');
    if (/^(hi|hello|hey|good (morning|afternoon|evening))\b[\s!.,]*\w{0,12}[\s!.]*$/i.test(text)) {
      return 'Hello! I am the local stand-in for an Azure OpenAI chat model. Give me product lists or facts in your messages and I will answer from them.';
    }
    const context = messages.filter((m) => m.content !== question).map((m) => m.content);
    if (/\b(summari[sz]e|summary|tl;?dr)\b/i.test(text)) {
      const source = [...context, stripInstruction(text)].sort((a, b) => b.length - a.length)[0] ?? '';
      const sentences = splitSentences(source).slice(0, reading.sentenceLimit ?? 2);
      return sentences.length ? `Summary: ${sentences.join(' ')}` : 'There is no text to summarize in the conversation.';
    }
    const facts = context.flatMap(splitSentences);
    if (facts.length) {
      const questionVector = this.embeddings.embed(text, rankingDimensions);
      const ranked = facts
        .map((sentence, index) => ({ sentence, index, score: cosineSimilarity(questionVector, this.embeddings.embed(sentence, rankingDimensions)) }))
        .filter((f) => f.score > relevanceFloor)
        .sort((a, b) => b.score - a.score || a.index - b.index)
        .slice(0, Math.min(reading.sentenceLimit ?? 2, 3));
      if (ranked.length) return `From what you provided: ${ranked.map((f) => f.sentence).join(' ')}`;
    }
    const terms = queryTerms(text);
    return terms.length
      ? `I am a local stand-in model without general knowledge: I can only answer from the conversation, and it says nothing about ${joinWords(terms.slice(0, 3).map(quote))}.`
      : 'I am a local stand-in model without general knowledge: include the facts or items you want me to work with in your message.';
  }
}

function queryText(reading: PromptReading): string {
  return [reading.prose, ...reading.seeds.map(itemText)].join('\n');
}

/** The text an item is compared by: name, category, tags, description. */
export function itemText(item: ListedProduct): string {
  return [item.name, item.category, item.tags.join(', '), item.description].filter(Boolean).join('. ');
}

function queryTerms(text: string): string[] {
  const seen = new Set<string>();
  return contentWords(text).filter((word) => {
    const key = stem(word);
    if (promptWords.has(key) || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Why `item` fits: the words it shares with the prompt's prose (the shopper's query) first, then with the
 * seed items; else a product concept it shares with them; else its tags.
 */
function reasonFor(item: ListedProduct, prose: TextReading, seedReading: TextReading, seeds: readonly ListedProduct[]): string {
  const itemReading = readText(itemText(item));
  const words = [...itemReading.words.entries()].filter(([key]) => !promptWords.has(key));
  const shared = [
    ...words.filter(([key]) => prose.words.has(key)),
    ...words.filter(([key]) => !prose.words.has(key) && seedReading.words.has(key)),
  ].map(([, word]) => word);
  if (shared.length) return `matches ${joinWords(shared.slice(0, 3).map(quote))}`;
  const concept = [...itemReading.concepts].find((c) => (prose.concepts.has(c) || seedReading.concepts.has(c)) && productConcepts[c]!.department !== 'color');
  if (concept) {
    const seed = seeds.find((s) => readText(itemText(s)).concepts.has(concept));
    return seed ? `is ${conceptLabel(concept)} like ${seed.name}` : `fits the ${conceptLabel(concept)} you asked about`;
  }
  if (item.tags.length) return `is tagged ${joinWords(item.tags.slice(0, 3))}`;
  return 'is one of the listed options';
}

function conceptLabel(concept: string): string {
  const labels: Record<string, string> = { ballSports: 'ball-sports gear', running: 'running gear', hiking: 'hiking gear', camping: 'camping gear', fitness: 'fitness gear', cycling: 'cycling gear', swimming: 'swimwear' };
  return labels[concept] ?? concept.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

function describeItem(item: ListedProduct): string {
  const details = [item.category, item.price].filter(Boolean);
  return details.length ? `${item.name} (${details.join(', ')})` : item.name;
}

function explain(picks: readonly Pick[], reading: PromptReading, basis: string): string {
  const names = picks.map((p) => p.item.name);
  const lead = `Based on ${basis}, I recommend ${joinWords(names)}.`;
  const details = picks.map((p) => `${describeItem(p.item)} ${p.reason}.`);
  const limit = reading.sentenceLimit;
  if (limit === undefined || limit >= details.length + 1) return [lead, ...details].join(' ');
  // Too few sentences for one per item: one sentence that carries every item's details.
  return `Based on ${basis}, I recommend ${joinWords(picks.map((p) => `${describeItem(p.item)}, which ${p.reason}`))}.`;
}

function recommendationJson(picks: readonly Pick[], explanation: string): Record<string, unknown> {
  return {
    recommendations: picks.map(({ item, reason }) => ({
      ...(item.id ? { id: item.id } : {}),
      name: item.name,
      ...(item.category ? { category: item.category } : {}),
      ...(item.price ? { price: item.price } : {}),
      reason,
    })),
    explanation,
  };
}

/**
 * Shapes `values` to `schema`: an array property takes the first array value; a string property the value
 * of the same name, else the reason, explanation or answer, else the first string; numbers and booleans
 * likewise; without a schema, `values` as is.
 */
function fill(schema: JsonSchema | undefined, values: Record<string, unknown>): Record<string, unknown> {
  if (!schema?.properties) return values;
  const result: Record<string, unknown> = {};
  const of = (type: string): unknown => Object.values(values).find((v) => (type === 'array' ? Array.isArray(v) : typeof v === type));
  for (const [name, property] of Object.entries(schema.properties)) {
    const type = Array.isArray(property.type) ? property.type.find((t) => t !== 'null') : property.type;
    const own = values[name];
    if (type === 'array') {
      const list = (Array.isArray(own) ? own : of('array')) as unknown[] | undefined;
      result[name] = (list ?? []).map((entry) => (entry && typeof entry === 'object' && property.items ? fill(property.items, entry as Record<string, unknown>) : entry));
    } else if (type === 'number' || type === 'integer') {
      result[name] = typeof own === 'number' ? own : (Object.values(values).find(Array.isArray) as unknown[] | undefined)?.length ?? 0;
    } else if (type === 'boolean') {
      result[name] = typeof own === 'boolean' ? own : true;
    } else if (type === 'object' && property.properties) {
      result[name] = fill(property, own && typeof own === 'object' ? (own as Record<string, unknown>) : values);
    } else {
      // A string property of another name most likely wants the prose: the reason, explanation or answer.
      const prose = [values.reason, values.explanation, values.answer].find((v) => typeof v === 'string');
      result[name] = typeof own === 'string' ? own : (prose ?? of('string') ?? '');
    }
  }
  return result;
}

function splitSentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 2 && /\p{L}/u.test(s));
}

function stripInstruction(text: string): string {
  return text.replace(/^.*\b(summari[sz]e|summary|tl;?dr)\b[^:\n]*:?/i, '').trim();
}

function quote(word: string): string {
  return `"${word}"`;
}

function joinWords(words: readonly string[]): string {
  if (words.length <= 1) return words[0] ?? '';
  return `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}
