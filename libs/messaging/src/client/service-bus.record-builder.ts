/** Per-message options a sender can set on a request or event. */
export interface ServiceBusRecordOptions {
  /** Message id; events with the same id within the topic's duplicate-detection window are dropped. */
  messageId?: string;
  sessionId?: string;
  /** Time to live of the message in ms. Requests default to their timeout. */
  timeToLiveInMs?: number;
  /** Deliver no earlier than this time (scheduled message). */
  scheduledEnqueueTimeUtc?: Date;
  applicationProperties?: Record<string, string | number | boolean>;
}

/** A payload with per-message options, built by {@link ServiceBusRecordBuilder}. */
export class ServiceBusRecord<TData = unknown> {
  constructor(
    readonly data: TData,
    readonly options: ServiceBusRecordOptions = {},
  ) {}
}

/**
 * Builds a {@link ServiceBusRecord}.
 *
 * @example
 * const record = new ServiceBusRecordBuilder(event).setMessageId(`product-${id}-v${version}`).build();
 * await client.publish('catalog.product.upserted', record);
 */
export class ServiceBusRecordBuilder<TData> {
  private options: ServiceBusRecordOptions = {};

  constructor(private data?: TData) {}

  setData(data: TData): this {
    this.data = data;
    return this;
  }

  setMessageId(messageId: string): this {
    return this.set({ messageId });
  }

  setSessionId(sessionId: string): this {
    return this.set({ sessionId });
  }

  setTimeToLive(timeToLiveInMs: number): this {
    return this.set({ timeToLiveInMs });
  }

  setScheduledEnqueueTime(scheduledEnqueueTimeUtc: Date): this {
    return this.set({ scheduledEnqueueTimeUtc });
  }

  setApplicationProperties(applicationProperties: Record<string, string | number | boolean>): this {
    return this.set({ applicationProperties: { ...this.options.applicationProperties, ...applicationProperties } });
  }

  build(): ServiceBusRecord<TData> {
    return new ServiceBusRecord(this.data as TData, { ...this.options });
  }

  private set(options: ServiceBusRecordOptions): this {
    this.options = { ...this.options, ...options };
    return this;
  }
}
