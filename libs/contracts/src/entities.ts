/**
 * Service Bus entity names, named once. `infra/servicebus-topology.json` must declare exactly these
 * (a consistency test checks it), and `infra/access.json` grants the shared identity access to them.
 */
export const queues = {
  /** Requests to the recommendation service (subject = request pattern). */
  recommendationRequests: 'recommendation-requests',
  /** Requests to the vision service. */
  visionRequests: 'vision-requests',
  /** Replies to every requester, session-enabled: each client instance reads its own session. */
  replies: 'replies',
  /** Where the access doctor sends its harmless probe (messages expire after a minute). */
  diagnostics: 'diagnostics',
} as const;

/** Topics: one for all events, with one subscription per consuming service. */
export const topics = {
  events: 'events',
} as const;

/** Subscriptions of the events topic, by consuming service. */
export const subscriptions = {
  vision: 'vision',
  recommendation: 'recommendation',
} as const;

/**
 * Deliveries of an event before a handler that keeps failing has it dead-lettered, in every consuming service.
 * With the settlement policy's backoff (0.5 s, doubling, capped at 30 s) the retries span about two minutes, so an
 * outage shorter than that — Azure OpenAI or Vision throttling or failing, a role removed and restored, a service
 * restarting — ends with every event applied, not parked in a dead-letter queue. Each subscription's
 * MaxDeliveryCount in `infra/servicebus-topology.json` must be at least this (a consistency test checks it).
 */
export const eventDeliveryAttempts = 10;

export type QueueName = (typeof queues)[keyof typeof queues];
export type TopicName = (typeof topics)[keyof typeof topics];
export type SubscriptionName = (typeof subscriptions)[keyof typeof subscriptions];
