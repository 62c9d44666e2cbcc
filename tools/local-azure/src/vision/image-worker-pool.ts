import { WorkerPool, type WorkerPoolOptions } from '../runtime/worker-pool.js';
import type { ImageReading } from './image-analyzer.js';
import { ImageDecodeError, type ImageHeader } from './image-decoder.js';
import type { ImageJob } from './image-worker.js';

/**
 * Decodes and analyses images on worker threads, off the local Azure's event loop: a 40-megapixel PNG takes tens
 * of seconds of one core, during which the event loop would answer no token request and deliver no message. The
 * pool's limits (one image a thread, a queue of 8, a time budget and a heap limit) are `WorkerPool`'s.
 */
export class ImageWorkerPool {
  private readonly pool: WorkerPool<ImageJob, ImageReading>;

  constructor(options: WorkerPoolOptions = {}) {
    this.pool = new WorkerPool(
      {
        handler: new URL('./image-worker', import.meta.url),
        work: 'decoding',
        revive: (thrown) => (thrown.name === 'ImageDecodeError' ? new ImageDecodeError(thrown.message) : undefined),
      },
      options,
    );
  }

  /** The time budget of one image, in milliseconds. */
  get timeoutInMs(): number {
    return this.pool.timeoutInMs;
  }

  /**
   * Decodes `bytes` (whose header `readHeader` read and the size limits passed) on a thread and reads its pixels.
   *
   * @throws {ImageDecodeError} as `decodeImage` does.
   * @throws {WorkerPoolError} over the time budget or heap limit, with the queue full, or once stopped.
   */
  read(bytes: Uint8Array, header: ImageHeader): Promise<ImageReading> {
    // A copy of its own to transfer: the caller's bytes may be a view into a buffer shared with others.
    const copy = new Uint8Array(bytes);
    return this.pool.run({ bytes: copy, header }, [copy.buffer]);
  }

  /** Terminates every thread; waiting and running reads fail with `stopped`. */
  stop(): Promise<void> {
    return this.pool.stop();
  }
}
