import { Inject, Injectable } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import type { AzureOpenAI } from '@keyless/auth';
import type { Product } from '@keyless/contracts';
import { recommendationConfig, type RecommendationConfig } from '../config/recommendation.config.js';
import { OPENAI_CLIENT } from './embeddings.service.js';

/** What the shopper did, to ground the explanation. */
export interface ExplanationContext {
  query?: string;
  viewed?: readonly Product[];
  /** For similar products: the product they are similar to. */
  similarTo?: Product;
}

const tracer = trace.getTracer('@keyless/recommendation');

/** Most items the explanation talks about (the reply lists them all; the prose stays short). */
const explainedItems = 3;

/**
 * Asks Azure OpenAI chat for a short explanation of recommendations, grounded in the chosen products: the
 * prompt lists them (id, name, category, price, description) and asks for nothing but an explanation of
 * those. The line format is the one the local chat model documents and any chat model reads.
 */
@Injectable()
export class ExplanationsService {
  constructor(
    @Inject(OPENAI_CLIENT) private readonly openai: AzureOpenAI,
    @Inject(recommendationConfig.KEY) private readonly config: RecommendationConfig,
  ) {}

  async explain(items: readonly Product[], context: ExplanationContext): Promise<string> {
    if (items.length === 0) return 'No product matches these filters yet.';
    return tracer.startActiveSpan('openai.chat.completions', { attributes: { 'gen_ai.request.model': this.config.deployments.chat } }, async (span) => {
      try {
        const completion = await this.openai.chat.completions.create({
          model: this.config.deployments.chat,
          max_tokens: 200,
          temperature: 0.2,
          messages: [
            {
              role: 'system',
              content:
                'You are the shopping assistant of an online shop. Explain briefly, in at most two sentences, why the candidate products fit the shopper. ' +
                'Mention only products from the list, by name. Do not invent facts.',
            },
            { role: 'user', content: prompt(items.slice(0, explainedItems), context) },
          ],
        });
        return completion.choices[0]?.message.content?.trim() || 'Ranked by similarity to what you looked at.';
      } finally {
        span.end();
      }
    });
  }
}

function prompt(items: readonly Product[], context: ExplanationContext): string {
  const lines: string[] = [];
  if (context.query) lines.push(`The shopper searched for "${context.query.replace(/"/g, "'")}".`);
  if (context.similarTo) lines.push('Similar to:', line(context.similarTo));
  if (context.viewed?.length) lines.push('Recently viewed:', ...context.viewed.map(line));
  lines.push('Candidate products:', ...items.map(line), `Pick the top ${items.length} and explain briefly.`);
  return lines.join('\n');
}

function line(product: Product): string {
  const description = product.description ? ` | description: ${product.description.replace(/\s+/g, ' ').slice(0, 200)}` : '';
  return `- id: ${product.id} | name: ${product.name} | category: ${product.category} | price: ${product.price.toFixed(2)}${description}`;
}
