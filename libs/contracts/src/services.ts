import { queues, subscriptions, topics } from './entities.js';

/** A Service Bus entity a service uses: a queue, the events topic, or a subscription of it. */
export type EntityRef = { queue: string } | { topic: string } | { topic: string; subscription: string };

/** The Azure OpenAI data-plane `api-version` the services call (GA): the one place it is declared. */
export const openAiApiVersion = '2024-10-21';

/** An Azure AI operation a service performs (each is one data action on one resource). */
export type AiOperation = 'openAi.embeddings' | 'openAi.chatCompletions' | 'vision.analyze';

/** What one service does with Azure: the entities it sends to and receives from, the AI calls it makes. */
export interface ServiceAccess {
  sends: readonly EntityRef[];
  receives: readonly EntityRef[];
  ai: readonly AiOperation[];
}

/**
 * The access each part of the system needs, derived from how it talks (see `requestContracts` and
 * `eventContracts`). The services wire their senders and receivers from this, and the infrastructure
 * consistency test checks that `infra/access.json` grants exactly this — no less, no more.
 */
export const serviceAccess = {
  gateway: {
    sends: [{ queue: queues.recommendationRequests }, { queue: queues.visionRequests }, { topic: topics.events }],
    receives: [{ queue: queues.replies }],
    ai: [],
  },
  recommendation: {
    sends: [{ queue: queues.replies }],
    receives: [{ queue: queues.recommendationRequests }, { topic: topics.events, subscription: subscriptions.recommendation }],
    ai: ['openAi.embeddings', 'openAi.chatCompletions'],
  },
  vision: {
    sends: [{ queue: queues.replies }, { topic: topics.events }],
    receives: [{ queue: queues.visionRequests }, { topic: topics.events, subscription: subscriptions.vision }],
    ai: ['vision.analyze'],
  },
  /** The access doctor's harmless probes (a send that expires, peeks, tiny AI calls). */
  doctor: {
    sends: [{ queue: queues.diagnostics }],
    receives: [],
    ai: [],
  },
} as const satisfies Record<string, ServiceAccess>;

export type ServiceName = keyof typeof serviceAccess;
