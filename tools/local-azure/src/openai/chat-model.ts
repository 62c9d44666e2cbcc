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
  'recommend recommendation recommendations recommended product products item items shopper customer user explain explanation why reason reasons short brief briefly sentence sentences answer reply respond list pick choose select top best candidate candidates following based given help assistant shopping store catalog please write json format return give tell describe recently viewed searched search query looked purchased bought liked history options option interest interested similar something anything thing things stuff'
    .split(' ')
    .map(stem),
);
// Words of a question about listed items that say nothing about what is asked for ("which one is good for running").
const questionWords = new Set(
  'which what who whom whose where when why how good better great suit suits suitable fit fits fitting need needs want wants like use used using buy get take bring wear ones thing things something anything listed these those keep keeps make makes work works go goes ideal right perfect best prefer kind sort type there here have has got sell carry offer stock available'
    .split(' ')
    .map(stem),
);
/** Sentences that instruct the model (system prompts, rules) rather than state facts: never quoted back. */
const instructionSentence =
  /^(?:you\b|your\b|you're|please\b|only\b|do not\b|don't\b|never\b|always\b|be\b|keep\b|use\b|answer\b|reply\b|respond\b|mention\b|explain\b|recommend\b|act\b|avoid\b|make sure\b|ensure\b|write\b|return\b|give\b|list\b|provide\b|include\b|limit\b|pick\b|choose\b|select\b|as an?\b|the assistant\b|assistant\b|stay\b|refuse\b|ignore\b|follow\b|format\b|output\b|speak\b|talk\b|focus\b|prefer\b|rules?\b|instructions?\b|system\b)|\byou (?:are|will|must|should|may|can|work|help)\b/i;
/** A question that expects a yes or no (`Is there …?`, `Do you have …?`). */
const yesNoQuestion = /^(?:is|are|do|does|did|have|has|can|could|would|will)\b/i;
/** A request to pick, rank or explain given items (as the recommendation service sends): they are explained whatever the query. */
const explicitPick = /\b(?:top|pick|choose|select|rank|ranked|explain|explanation)\b/i;
/** A question about several items (`Which ones …`, `Which of these are …`, `What … are`). */
const pluralQuestion = /\b(?:which|what)\s+(?:ones|items|products|of (?:these|them|the \w+) (?:are|would|could|should|can|will|do))\b|\ball\b|\bany of\b/i;

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
 * - A question or request about the listed items that asks for something specific ("Which one is for
 *   running?") names the items that match it, or says plainly that none does (see `aboutItems`).
 * - `in N sentences` / `briefly` limit the explanation.
 * - `Reply with X` / `Say X` replies X; a greeting gets a greeting; `summarize` gives the first sentences of
 *   the text the user gave; a question gets the related sentences of the conversation, or an honest
 *   "the conversation says nothing about …". Instructions (system prompts, rules) are never quoted back.
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
    const json = (values: Record<string, unknown>): string => JSON.stringify(fill(options.json?.schema, values));
    if (reading.candidates.length) {
      const answer = this.aboutItems(lastUser, reading, messages);
      if (answer) return options.json ? json({ ...recommendationJson(answer.picks, answer.text), answer: answer.text }) : answer.text;
      const picks = this.pick(reading);
      const explanation = explain(picks, reading, this.basis(reading));
      return options.json ? json(recommendationJson(picks, explanation)) : explanation;
    }
    const answer = this.answer(lastUser, messages, reading);
    return options.json ? json({ answer }) : answer;
  }

  /**
   * Answers a request about the listed items that asks for something specific — "Which one is for running?",
   * "Is there anything for swimming?", "Recommend something for a hike" — by naming the items that match it:
   * the words they share with the request, else a product concept they share ("warm" and a parka).
   *
   * Rules:
   * - "Which one" names the best match; "which ones" / "which of these are" / a count names every match
   *   (up to the count, else five); a yes/no question answers yes or no; a request to recommend names the
   *   matches and explains them as any recommendation.
   * - When no listed item matches, it says so plainly — unless a stated fact of the conversation answers.
   * - Undefined — the items are then recommended as for any product prompt — when the request names
   *   nothing to match ("Which one would you recommend?", then one item is picked), or when it asks to pick,
   *   rank or explain (the recommendation service's prompts: the given items are explained whatever the query).
   */
  private aboutItems(request: string, reading: PromptReading, messages: readonly ChatTurn[]): { text: string; picks: Pick[] } | undefined {
    // The request without its lists: `Products: A, B. Which one is for running?` asks "Which one is for running?".
    const asked = readPrompt([request]).prose.split('\n').filter(Boolean).at(-1)?.trim() ?? '';
    const question = isQuestion(asked);
    if (!question && explicitPick.test(reading.prose)) return undefined;
    const terms = askedTerms(asked);
    if (!terms.length) {
      if (question && !pluralQuestion.test(asked)) reading.pickCount ??= 1;
      return undefined;
    }
    const matches = this.matchItems(terms, reading.candidates);
    const quoted = joinWords(terms.slice(0, 3).map(quote));
    if (!matches.length) {
      const fact = question ? this.factAnswer(asked, messages) : undefined;
      if (fact) return { text: fact, picks: [] };
      const names = joinWords(reading.candidates.slice(0, 5).map((item) => item.name));
      return { text: `${question && yesNoQuestion.test(asked) ? 'No: none' : 'None'} of the listed items (${names}) matches ${quoted}.`, picks: [] };
    }
    const several = pluralQuestion.test(asked) || reading.pickCount !== undefined || !question;
    const chosen = several ? matches.slice(0, reading.pickCount ?? 5) : matches.filter((m) => m.score === matches[0]!.score).slice(0, 1);
    const picks = chosen.map((m) => ({ item: m.item, score: m.score, reason: m.words.length ? `matches ${joinWords(m.words.map(quote))}` : `fits ${quoted}${conceptNote(m.concepts, terms)}` }));
    if (!question) return { text: explain(picks, reading, this.basis(reading)), picks };
    const [first, ...others] = picks;
    if (yesNoQuestion.test(asked)) return { text: `Yes: ${joinWords(picks.map((p) => `${describeItem(p.item)}, which ${p.reason}`))}.`, picks };
    if (!others.length) return { text: `${describeItem(first!.item)}: of the listed items, it is the one that ${first!.reason}.`, picks };
    return { text: `Of the listed items, these match: ${picks.map((p) => `${describeItem(p.item)}, which ${p.reason}`).join('; ')}.`, picks };
  }

  /** The items that share a word or a product concept with `terms`, best first (shared words, concepts, similarity, listed order). */
  private matchItems(terms: readonly string[], items: readonly ListedProduct[]): { item: ListedProduct; words: string[]; concepts: string[]; score: number }[] {
    const asked = readText(terms.join(' '));
    const askedVector = this.embeddings.embed(terms.join(' '), rankingDimensions);
    return items
      .map((item, index) => {
        const own = readText(itemText(item));
        const words = [...asked.words].filter(([key]) => own.words.has(key)).map(([, word]) => word);
        const concepts = [...asked.concepts].filter((concept) => own.concepts.has(concept));
        const similarity = cosineSimilarity(askedVector, this.embeddings.embed(itemText(item), rankingDimensions));
        return { item, index, words, concepts, score: words.length + 0.5 * concepts.length, similarity };
      })
      .filter((m) => m.score > 0)
      .sort((a, b) => b.score - a.score || b.similarity - a.similarity || a.index - b.index);
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
    // A greeting and at most one short word: `\w{0,12}` between `[\s!.,]*` and `[\s!.]*` tried every split of a run
    // of spaces (100,000 after "hi" took some 8 s); the optional word matches the same texts in one pass.
    if (/^(?:hi|hello|hey|good (?:morning|afternoon|evening))\b[\s!.,]*(?:\w{1,12}[\s!.]*)?$/i.test(text)) {
      return 'Hello! I am the local stand-in for an Azure OpenAI chat model. Give me product lists or facts in your messages and I will answer from them.';
    }
    if (/\b(summari[sz]e|summary|tl;?dr)\b/i.test(text)) {
      // What the user gave to summarize: the request's own text, else the longest other message that is not
      // the system prompt; instructions are left out either way.
      const given = messages.filter((m) => m.content !== question && m.role !== 'system' && m.role !== 'developer').map((m) => m.content);
      const source = [stripInstruction(text), ...given].sort((a, b) => b.length - a.length)[0] ?? '';
      const sentences = factSentences(source).slice(0, reading.sentenceLimit ?? 2);
      return sentences.length ? `Summary: ${sentences.join(' ')}` : 'There is no text to summarize in the conversation.';
    }
    const fact = this.factAnswer(text, messages, reading.sentenceLimit);
    if (fact) return fact;
    const terms = queryTerms(text);
    return terms.length
      ? `I am a local stand-in model without general knowledge: I can only answer from the conversation, and it says nothing about ${joinWords(terms.slice(0, 3).map(quote))}.`
      : 'I am a local stand-in model without general knowledge: include the facts or items you want me to work with in your message.';
  }

  /**
   * The sentences of the conversation (other than the question) that state facts related to the question —
   * sharing a word or a product concept with it — quoted as "From what you provided: …"; instructions
   * ("You recommend products. Only mention …") are never quoted. Undefined when none relates.
   */
  private factAnswer(question: string, messages: readonly ChatTurn[], sentenceLimit?: number): string | undefined {
    const asked = readText(question);
    if (!asked.words.size) return undefined;
    const facts = messages.filter((m) => m.content !== question && !m.content.includes(question)).flatMap((m) => factSentences(m.content));
    const questionVector = this.embeddings.embed(question, rankingDimensions);
    const ranked = facts
      .map((sentence, index) => {
        const own = readText(sentence);
        const shared = [...asked.words.keys()].filter((key) => own.words.has(key)).length + [...asked.concepts].filter((c) => own.concepts.has(c)).length;
        return { sentence, index, shared, score: cosineSimilarity(questionVector, this.embeddings.embed(sentence, rankingDimensions)) };
      })
      .filter((f) => f.shared > 0 && f.score > relevanceFloor)
      .sort((a, b) => b.score - a.score || a.index - b.index)
      .slice(0, Math.min(sentenceLimit ?? 2, 3));
    return ranked.length ? `From what you provided: ${ranked.map((f) => f.sentence).join(' ')}` : undefined;
  }
}

/** ` (winter)` when the concepts that matched are not already what the request's words say. */
function conceptNote(concepts: readonly string[], terms: readonly string[]): string {
  const said = new Set(terms.map(stem));
  const labels = concepts.map(conceptLabel).filter((label) => !said.has(stem(label)));
  return labels.length ? ` (${joinWords(labels)})` : '';
}

/** Whether `text` asks something (ends with a question mark, or opens like a question). */
function isQuestion(text: string): boolean {
  return /\?\s*$/.test(text) || /^(?:which|what|who|is|are|do|does|can|could|should|would|will|have|has)\b/i.test(text.trim());
}

/** The content words of a question about items, without the words every such question has. */
function askedTerms(question: string): string[] {
  return queryTerms(question).filter((word) => !questionWords.has(stem(word)));
}

/** The sentences of `text` that state something: not list lines, not instructions to the model. */
function factSentences(text: string): string[] {
  return splitSentences(text).filter((sentence) => !instructionSentence.test(sentence) && !/^\s*(?:[-*•|]|\d{1,3}[.)])/.test(sentence));
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
