import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ImageReading } from './image-analyzer.js';
import { ImageDecodeError, type ImageHeader } from './image-decoder.js';
import type { ImageJob, ImageJobResult } from './image-worker.js';

/** Options of {@link ImageWorkerPool}. */
export interface ImageWorkerPoolOptions {
  /** Decoding threads. Default: one fewer than the cores, at least 1 and at most 2 (one core stays with the event loop). */
  threads?: number;
  /** Images waiting for a thread at most; one more is refused ({@link ImageWorkerError} `busy`). Default: 8. */
  maxQueued?: number;
  /** Time a thread may spend on one image before it is terminated and replaced. Default: 30 000 ms. */
  timeoutInMs?: number;
  /** A thread's JavaScript heap (pixel buffers are bounded by the decoding pixel limit instead). Default: 512 MB. */
  maxHeapInMb?: number;
}

/** Why the pool did not read an image: `timeout` (over the time budget), `memory` (over the heap limit), `busy` (queue full), `stopped`, `crashed`. */
export class ImageWorkerError extends Error {
  override readonly name = 'ImageWorkerError';

  constructor(
    readonly reason: 'timeout' | 'memory' | 'busy' | 'stopped' | 'crashed',
    message: string,
  ) {
    super(message);
  }
}

// Beside this file: .ts when running from src/ (tests, with Node's type stripping), .js from dist/.
const workerPath = fileURLToPath(new URL(`./image-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

interface Job {
  id: number;
  bytes: Uint8Array;
  header: ImageHeader;
  resolve: (reading: ImageReading) => void;
  reject: (error: Error) => void;
}

interface Thread {
  worker: Worker;
  job?: Job;
  timer?: NodeJS.Timeout;
  ended?: boolean;
}

/**
 * Decodes and analyses images on worker threads, off the local Azure's event loop: a 40-megapixel PNG takes tens
 * of seconds of one core, during which the event loop would answer no token request and deliver no message. Each
 * thread reads one image at a time; further images wait in a bounded queue. A thread that exceeds the time budget
 * or its heap limit is terminated (its caller gets a {@link ImageWorkerError}) and a new one serves the next image.
 */
export class ImageWorkerPool {
  private readonly threads: Thread[] = [];
  private readonly queue: Job[] = [];
  private readonly size: number;
  private readonly maxQueued: number;
  private readonly maxHeapInMb: number;
  /** The time budget of one image, in milliseconds. */
  readonly timeoutInMs: number;
  private nextId = 1;
  private stopped = false;

  constructor(options: ImageWorkerPoolOptions = {}) {
    this.size = options.threads ?? Math.max(1, Math.min(2, availableParallelism() - 1));
    this.maxQueued = options.maxQueued ?? 8;
    this.timeoutInMs = options.timeoutInMs ?? 30_000;
    this.maxHeapInMb = options.maxHeapInMb ?? 512;
  }

  /**
   * Decodes `bytes` (whose header `readHeader` read and the size limits passed) on a thread and reads its pixels.
   *
   * @throws {ImageDecodeError} as `decodeImage` does.
   * @throws {ImageWorkerError} over the time budget or heap limit, with the queue full, or once stopped.
   */
  read(bytes: Uint8Array, header: ImageHeader): Promise<ImageReading> {
    if (this.stopped) return Promise.reject(new ImageWorkerError('stopped', 'the image decoder is stopped'));
    if (this.queue.length >= this.maxQueued) return Promise.reject(new ImageWorkerError('busy', `${this.maxQueued} images are already waiting to be decoded`));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, bytes, header, resolve, reject });
      this.dispatch();
    });
  }

  /** Terminates every thread; waiting and running reads fail with `stopped`. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const job of this.queue.splice(0)) job.reject(new ImageWorkerError('stopped', 'the image decoder is stopped'));
    await Promise.all(this.threads.splice(0).map((thread) => this.end(thread, new ImageWorkerError('stopped', 'the image decoder is stopped'))));
  }

  private dispatch(): void {
    while (this.queue.length) {
      let thread = this.threads.find((t) => !t.job);
      if (!thread) {
        if (this.threads.length >= this.size) return;
        thread = this.spawn();
      }
      const job = this.queue.shift()!;
      thread.job = job;
      thread.timer = setTimeout(() => void this.end(thread, new ImageWorkerError('timeout', `decoding took longer than ${this.timeoutInMs} ms`)), this.timeoutInMs);
      // A copy of its own to transfer: the caller's bytes may be a view into a buffer shared with others.
      const bytes = new Uint8Array(job.bytes);
      const message: ImageJob = { id: job.id, bytes, header: job.header };
      thread.worker.postMessage(message, [bytes.buffer]);
    }
  }

  private spawn(): Thread {
    const worker = new Worker(workerPath, {
      resourceLimits: { maxOldGenerationSizeMb: this.maxHeapInMb },
      // The thread needs no environment of its own (and so gets none of the local Azure's).
      env: {},
    });
    const thread: Thread = { worker };
    worker.on('message', (result: ImageJobResult) => {
      const job = thread.job;
      if (!job || job.id !== result.id) return;
      clearTimeout(thread.timer);
      thread.job = undefined;
      if ('reading' in result) job.resolve(result.reading);
      else if ('decodeError' in result) job.reject(new ImageDecodeError(result.decodeError));
      else job.reject(new ImageWorkerError('crashed', result.failure));
      this.dispatch();
    });
    worker.on('error', (error: Error & { code?: string }) => {
      const failure =
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new ImageWorkerError('memory', `decoding needed more than the ${this.maxHeapInMb} MB heap`)
          : new ImageWorkerError('crashed', `the decoding thread failed: ${error.message}`);
      void this.end(thread, failure);
    });
    worker.on('exit', () => void this.end(thread, new ImageWorkerError('crashed', 'the decoding thread exited')));
    this.threads.push(thread);
    return thread;
  }

  /** Fails the thread's image with `error`, terminates the thread and lets the next image have a new one. */
  private async end(thread: Thread, error: ImageWorkerError): Promise<void> {
    if (thread.ended) return;
    thread.ended = true;
    clearTimeout(thread.timer);
    const job = thread.job;
    thread.job = undefined;
    job?.reject(error);
    const index = this.threads.indexOf(thread);
    if (index >= 0) this.threads.splice(index, 1);
    thread.worker.removeAllListeners('message');
    await thread.worker.terminate();
    if (!this.stopped) this.dispatch();
  }
}
