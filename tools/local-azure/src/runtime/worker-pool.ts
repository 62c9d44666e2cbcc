import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type Transferable } from 'node:worker_threads';
import type { ThreadAnswer, ThrownError } from './worker-thread.js';

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Threads. Default: one fewer than the cores, at least 1 and at most 2 (one core stays with the event loop). */
  threads?: number;
  /** Jobs waiting for a thread at most; one more is refused ({@link WorkerPoolError} `busy`). Default: 8. */
  maxQueued?: number;
  /** Time a thread may spend on one job before it is terminated and replaced. Default: 30 000 ms. */
  timeoutInMs?: number;
  /** A thread's JavaScript heap. Default: 512 MB. */
  maxHeapInMb?: number;
}

/** Why a pool did not run a job: `timeout` (over the time budget), `memory` (over the heap limit), `busy` (queue full), `stopped`, `crashed`. */
export type WorkerFailureReason = 'timeout' | 'memory' | 'busy' | 'stopped' | 'crashed';

/** A job a {@link WorkerPool} did not run; `message` is for the local Azure's log, not for callers. */
export class WorkerPoolError extends Error {
  override readonly name = 'WorkerPoolError';

  constructor(
    readonly reason: WorkerFailureReason,
    message: string,
  ) {
    super(message);
  }
}

/** What a pool runs: a handler module (see `worker-thread.ts`) and what its work is called in log lines. */
export interface WorkerTask {
  /** The handler module's URL, without extension: `new URL('./image-worker', import.meta.url)`. */
  handler: URL;
  /** The work, for log lines: `decoding`. */
  work: string;
  /**
   * Turns an error the handler threw into the error the job fails with (a module's own error class, say);
   * undefined for errors that are failures of the thread (they become {@link WorkerPoolError} `crashed`).
   */
  revive?: (thrown: ThrownError) => Error | undefined;
}

const extension = extname(fileURLToPath(import.meta.url));
// Beside this file: .ts when running from src/ (tests, with Node's type stripping), .js from dist/.
const threadPath = fileURLToPath(new URL(`./worker-thread${extension}`, import.meta.url));

interface Job {
  id: number;
  job: unknown;
  transfer: readonly Transferable[];
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

interface Thread {
  worker: Worker;
  job?: Job;
  timer?: NodeJS.Timeout;
  ended?: boolean;
}

/**
 * Runs CPU-bound jobs on worker threads, off the local Azure's event loop, where every listener (tokens, Service
 * Bus, OpenAI, Vision, PostgreSQL) is served: a job that takes a core for seconds would otherwise answer no token
 * request and deliver no message meanwhile. Threads start with the first job; each runs one job at a time, further
 * jobs wait in a bounded queue. A thread over the time budget or its heap limit, or one that fails, is terminated
 * (its job fails with a {@link WorkerPoolError}) and a new one serves the next job. {@link stop} fails every job.
 */
export class WorkerPool<TJob, TResult> {
  private readonly threads: Thread[] = [];
  private readonly queue: Job[] = [];
  private readonly size: number;
  private readonly maxQueued: number;
  private readonly maxHeapInMb: number;
  private readonly handlerPath: string;
  /** The time budget of one job, in milliseconds. */
  readonly timeoutInMs: number;
  private nextId = 1;
  private stopped = false;

  constructor(
    private readonly task: WorkerTask,
    options: WorkerPoolOptions = {},
  ) {
    this.size = options.threads ?? Math.max(1, Math.min(2, availableParallelism() - 1));
    this.maxQueued = options.maxQueued ?? 8;
    this.timeoutInMs = options.timeoutInMs ?? 30_000;
    this.maxHeapInMb = options.maxHeapInMb ?? 512;
    this.handlerPath = fileURLToPath(`${task.handler.href}${extension}`);
  }

  /**
   * Runs `job` on a thread (`transfer`: buffers of the job to move rather than copy).
   *
   * @throws what the task's `revive` makes of an error the handler threw.
   * @throws {WorkerPoolError} over the time budget or heap limit, with the queue full, when the thread failed, or once stopped.
   */
  run(job: TJob, transfer: readonly Transferable[] = []): Promise<TResult> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    if (this.queue.length >= this.maxQueued) return Promise.reject(new WorkerPoolError('busy', `${this.maxQueued} jobs are already waiting for ${this.task.work}`));
    return new Promise<unknown>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, transfer, resolve, reject });
      this.dispatch();
    }) as Promise<TResult>;
  }

  /** Terminates every thread; waiting and running jobs fail with `stopped`. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const job of this.queue.splice(0)) job.reject(this.stoppedError());
    await Promise.all(this.threads.splice(0).map((thread) => this.end(thread, this.stoppedError())));
  }

  private stoppedError(): WorkerPoolError {
    return new WorkerPoolError('stopped', `${this.task.work} is stopped`);
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
      thread.timer = setTimeout(() => void this.end(thread, new WorkerPoolError('timeout', `${this.task.work} took longer than ${this.timeoutInMs} ms`)), this.timeoutInMs);
      thread.worker.postMessage({ id: job.id, job: job.job }, job.transfer);
    }
  }

  private spawn(): Thread {
    const worker = new Worker(threadPath, {
      workerData: { handler: this.handlerPath },
      resourceLimits: { maxOldGenerationSizeMb: this.maxHeapInMb },
      // The thread needs no environment of its own (and so gets none of the local Azure's).
      env: {},
    });
    const thread: Thread = { worker };
    worker.on('message', (answer: ThreadAnswer) => {
      const job = thread.job;
      if (!job || job.id !== answer.id) return;
      clearTimeout(thread.timer);
      thread.job = undefined;
      if ('result' in answer) job.resolve(answer.result);
      else job.reject(this.task.revive?.(answer.error) ?? new WorkerPoolError('crashed', `${this.task.work} failed: ${answer.error.message}`));
      this.dispatch();
    });
    worker.on('error', (error: Error & { code?: string }) => {
      const failure =
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new WorkerPoolError('memory', `${this.task.work} needed more than the ${this.maxHeapInMb} MB heap`)
          : new WorkerPoolError('crashed', `the thread of ${this.task.work} failed: ${error.message}`);
      void this.end(thread, failure);
    });
    worker.on('exit', () => void this.end(thread, new WorkerPoolError('crashed', `the thread of ${this.task.work} exited`)));
    this.threads.push(thread);
    return thread;
  }

  /** Fails the thread's job with `error`, terminates the thread and lets the next job have a new one. */
  private async end(thread: Thread, error: WorkerPoolError): Promise<void> {
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
