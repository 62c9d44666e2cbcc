/** The BPE vocabularies OpenAI models use (tiktoken names). */
export type TokenizerEncoding = 'o200k_base' | 'cl100k_base';

/** What the local Azure OpenAI knows about a model: tokenizer, limits and (for embeddings) dimension. */
export interface ModelProfile {
  capability: 'chat' | 'embeddings';
  encoding: TokenizerEncoding;
  /** Context window in tokens (prompt + completion for chat; per input for embeddings). */
  contextTokens: number;
  /** Largest completion a chat model produces. */
  maxCompletionTokens: number;
  /** Native vector length of an embeddings model. */
  dimensions?: number;
  /** Whether an embeddings model accepts the `dimensions` parameter (text-embedding-3 models do). */
  acceptsDimensions?: boolean;
}

// Published figures of the Azure OpenAI models (learn.microsoft.com, "Azure OpenAI models").
const embeddingModels: Record<string, ModelProfile> = {
  'text-embedding-3-small': { capability: 'embeddings', encoding: 'cl100k_base', contextTokens: 8192, maxCompletionTokens: 0, dimensions: 1536, acceptsDimensions: true },
  'text-embedding-3-large': { capability: 'embeddings', encoding: 'cl100k_base', contextTokens: 8192, maxCompletionTokens: 0, dimensions: 3072, acceptsDimensions: true },
  'text-embedding-ada-002': { capability: 'embeddings', encoding: 'cl100k_base', contextTokens: 8192, maxCompletionTokens: 0, dimensions: 1536, acceptsDimensions: false },
};

/**
 * The profile of `model` (a deployment's model name). Unknown embedding models get text-embedding-3-small's
 * figures; unknown chat models get gpt-4o's (o200k_base, 128k context). `capability` overrides the guess
 * made from the name.
 */
export function modelProfile(model: string, capability?: 'chat' | 'embeddings'): ModelProfile {
  const name = model.toLowerCase();
  const kind = capability ?? (name.includes('embedding') ? 'embeddings' : 'chat');
  if (kind === 'embeddings') return embeddingModels[name] ?? embeddingModels['text-embedding-3-small']!;
  if (/^gpt-(35|3\.5)-turbo/.test(name)) return { capability: 'chat', encoding: 'cl100k_base', contextTokens: 16_385, maxCompletionTokens: 4_096 };
  if (/^gpt-4(-\d{4}|-32k|-turbo)?$/.test(name) || name.startsWith('gpt-4-')) {
    return { capability: 'chat', encoding: 'cl100k_base', contextTokens: 128_000, maxCompletionTokens: 4_096 };
  }
  if (name.startsWith('gpt-4.1')) return { capability: 'chat', encoding: 'o200k_base', contextTokens: 1_047_576, maxCompletionTokens: 32_768 };
  return { capability: 'chat', encoding: 'o200k_base', contextTokens: 128_000, maxCompletionTokens: 16_384 };
}
