import type { TokenizerEncoding } from './model-catalog.js';

interface Encoding {
  encode(text: string, options: { disallowedSpecial: Set<string> }): number[];
  decode(tokens: Iterable<number>): string;
}

/** A chat message as the token count sees it (text only; image parts count as their text placeholders). */
export interface CountedMessage {
  role: string;
  content: string;
  name?: string;
}

// Special tokens such as <|endoftext|> in user text are ordinary text to the service.
const asPlainText = { disallowedSpecial: new Set<string>() };

/**
 * Token counts with the models' real BPE vocabularies (`gpt-tokenizer`: pure JavaScript, synchronous, both
 * o200k_base and cl100k_base, no WASM or native code), so `usage` and quota accounting match Azure's to
 * within the chat-format overhead below.
 */
export class TokenCounter {
  private readonly encodings = new Map<TokenizerEncoding, Encoding>();
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
        (module) => void this.encodings.set(encoding, module),
        (error: unknown) => {
          this.loading.delete(encoding);
          throw error;
        },
      );
      this.loading.set(encoding, loading);
    }
    return loading;
  }

  encode(text: string, encoding: TokenizerEncoding): number[] {
    return this.encoding(encoding).encode(text, asPlainText);
  }

  decode(tokens: readonly number[], encoding: TokenizerEncoding): string {
    return this.encoding(encoding).decode(tokens);
  }

  count(text: string, encoding: TokenizerEncoding): number {
    return text ? this.encode(text, encoding).length : 0;
  }

  /**
   * Prompt tokens of a chat request: every message costs 3 tokens of framing plus its role, content and
   * name, and the reply is primed with 3 more (OpenAI's published counting rule for gpt-3.5/4/4o).
   */
  countChat(messages: readonly CountedMessage[], encoding: TokenizerEncoding): number {
    let total = 3;
    for (const message of messages) {
      total += 3 + this.count(message.role, encoding) + this.count(message.content, encoding);
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
