/**
 * Every fault the local Azure can inject, by target (the names the CLI takes:
 * `npm run local-azure -- fault <target> <mode> [ms]`), with what each mode does. `none` heals a target.
 * One table for the CLI's help, the admin API's validation, the configuration file and the docs.
 */
export const faultCatalog = {
  'identity-endpoint': {
    description: 'the managed-identity endpoint of every host',
    modes: {
      error: 'answers 500 with App Service\'s error body',
      garbage: 'answers 200 with an HTML page instead of a token',
      hang: 'accepts requests and never answers (the client\'s own timeout must fire)',
      stopped: 'stops listening (connections are refused), like a container whose endpoint is not up yet',
      delay: 'answers correctly, after <ms> milliseconds (default 2000)',
    },
  },
  openai: {
    description: 'every Azure OpenAI deployment (chat and embeddings)',
    modes: {
      '429': "answers 429 with Azure OpenAI's rate-limit body and retry-after (1 s)",
      '500': "answers 500 with Azure OpenAI's server_error body",
    },
  },
  vision: {
    description: 'Azure AI Vision image analysis',
    modes: {
      '429': "answers 429 with Azure AI Vision's rate-limit body and Retry-After (1 s)",
      '500': "answers 500 with Azure AI Vision's InternalServerError body",
    },
  },
  'servicebus-cbs': {
    description: 'put-token on $cbs (every link attach and every token renewal)',
    modes: {
      refuse: 'answers every put-token with 401, so new links fail and renewals lapse',
      delay: 'answers every put-token after <ms> milliseconds (default 2000)',
    },
  },
  'servicebus-connections': {
    description: 'the AMQP connections of the Service Bus namespace',
    modes: {
      drop: 'resets every open connection at once (no AMQP close) and every new one as it arrives',
      'half-open': 'freezes every connection, open or new: not read, not written, not closed (no FIN); healing resets them',
    },
  },
  'servicebus-credit': {
    description: 'link credit the broker grants and honours',
    modes: {
      stall: 'delivers nothing to receivers whatever their credit, and grants senders no new credit; links stay attached',
    },
  },
  'servicebus-session-lock': {
    description: 'session locks of session receivers (the reply sessions)',
    modes: {
      expire: 'expires every held session lock at once (the receiver is detached with session-lock-lost) and refuses renewals',
    },
  },
  'servicebus-store': {
    description: "the Service Bus message store's disk writes",
    modes: {
      stall: 'holds every commit: sends and scheduling are not acknowledged until healed, then everything held commits',
    },
  },
} as const satisfies Record<string, { description: string; modes: Record<string, string> }>;

/** A fault target (`identity-endpoint`, `openai`, `servicebus-cbs`, …). */
export type FaultTarget = keyof typeof faultCatalog;
/** The modes of one target, plus `none` (healthy). */
export type FaultMode<T extends FaultTarget = FaultTarget> = T extends FaultTarget ? keyof (typeof faultCatalog)[T]['modes'] | 'none' : never;

/** The fault of one target: its mode and, for `delay`, the delay. */
export interface FaultSetting<T extends FaultTarget = FaultTarget> {
  mode: FaultMode<T>;
  /** For `delay` modes: how long each answer waits. **Default**: 2000 ms. */
  delayInMs?: number;
}

export const faultDefaults = {
  delayInMs: 2_000,
  /** Longest delay a `delay` mode takes (the SDKs' own operation timeouts are 60 s). */
  maxDelayInMs: 300_000,
  /** The retry-after of injected 429s, in seconds: short, so clients come back while the fault is being held. */
  retryAfterInSeconds: 1,
};

export const faultTargets = Object.keys(faultCatalog) as FaultTarget[];

export function isFaultTarget(value: string): value is FaultTarget {
  return Object.prototype.hasOwnProperty.call(faultCatalog, value);
}

/** The modes `target` accepts, `none` first. */
export function faultModesOf(target: FaultTarget): string[] {
  return ['none', ...Object.keys(faultCatalog[target].modes)];
}
