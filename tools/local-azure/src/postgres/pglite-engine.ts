import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EngineReply, EngineRequest, EngineWorkerData } from './pglite-engine.worker.js';

/** Options of {@link PgliteEngine.start}. */
export interface PgliteEngineOptions {
  /** Data folder (created with initdb on first use). */
  dataDir: string;
  /** The database the engine serves (created on first use). */
  database: string;
  /** Extensions a non-superuser may create. */
  extensions: readonly string[];
  /** Called once if the engine stops by itself (a fatal PGlite error); the engine is unusable after. */
  onCrash: (message: string) => void;
  /** Aborts a start in progress (the thread is ended; a first start leaves no data folder behind). */
  signal?: AbortSignal;
}

/** The engine failed to answer, or is not running. */
export class EngineUnavailableError extends Error {
  override readonly name = 'EngineUnavailableError';
}

// Beside this file: .ts when running from src/ (tests, with Node's type stripping), .js from dist/.
const workerUrl = new URL(`./pglite-engine.worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/**
 * PGlite in a worker thread, seen from the main thread: `exec` sends frontend protocol messages and resolves
 * with the backend's bytes. Requests run one after another in the order sent; the single session they share is
 * the caller's to manage (see `SharedSession`).
 */
export class PgliteEngine {
  /** ParameterStatus values the engine reports at start-up. */
  readonly parameters: ReadonlyMap<string, string>;
  /** Every run-time setting (`pg_settings`), lower-case name → context (`user`, `superuser`, `postmaster`, …). */
  readonly settings: ReadonlyMap<string, string>;
  private readonly pending = new Map<number, { resolve: (bytes: Buffer) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private stopped = false;

  private constructor(
    private readonly worker: Worker,
    ready: Extract<EngineReply, { op: 'ready' }>,
    private readonly onCrash: (message: string) => void,
  ) {
    this.parameters = new Map(ready.parameters);
    this.settings = new Map(ready.settings.map(([name, context]) => [name.toLowerCase(), context]));
    worker.on('message', (reply: EngineReply) => this.receive(reply));
    worker.on('error', (error) => this.crash(`the engine thread failed: ${error.message}`));
    worker.on('exit', (code) => this.crash(`the engine thread exited with code ${code}`));
  }

  /** Starts the worker and opens the database; resolves once it accepts requests. */
  static async start(options: PgliteEngineOptions): Promise<PgliteEngine> {
    const data: EngineWorkerData = { dataDir: options.dataDir, database: options.database, extensions: [...options.extensions] };
    const worker = new Worker(workerUrl, { workerData: data });
    const abort = (): void => void worker.terminate();
    options.signal?.addEventListener('abort', abort);
    const listeners: { message?: (reply: EngineReply) => void; error?: (error: Error) => void; exit?: (code: number) => void } = {};
    try {
      const ready = await new Promise<Extract<EngineReply, { op: 'ready' }>>((resolve, reject) => {
        listeners.message = (reply) => (reply.op === 'ready' ? resolve(reply) : reject(new EngineUnavailableError(reply.op === 'crashed' ? reply.message : `unexpected ${reply.op}`)));
        listeners.error = reject;
        listeners.exit = (code) => reject(new EngineUnavailableError(`the engine thread exited with code ${code} while starting`));
        worker.on('message', listeners.message).on('error', listeners.error).on('exit', listeners.exit);
      });
      return new PgliteEngine(worker, ready, options.onCrash);
    } catch (error) {
      await worker.terminate();
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', abort);
      worker.off('message', listeners.message!).off('error', listeners.error!).off('exit', listeners.exit!);
    }
  }

  /** Whether the engine still accepts requests. */
  get running(): boolean {
    return !this.stopped;
  }

  /** Runs frontend messages; resolves with every backend message they produced. */
  exec(bytes: Buffer): Promise<Buffer> {
    if (this.stopped) return Promise.reject(new EngineUnavailableError('the PostgreSQL engine is not running'));
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: EngineRequest = { op: 'exec', id, bytes: new Uint8Array(bytes) };
      this.worker.postMessage(request, [request.bytes.buffer as ArrayBuffer]);
    });
  }

  /** Closes the database (checkpoint) and ends the thread. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const id = this.nextId++;
    const closed = new Promise<void>((resolve) => this.pending.set(id, { resolve: () => resolve(), reject: () => resolve() }));
    this.worker.postMessage({ op: 'close', id } satisfies EngineRequest);
    await closed;
    this.stopped = true;
    await this.worker.terminate();
  }

  private receive(reply: EngineReply): void {
    if (reply.op === 'crashed') return this.crash(reply.message);
    if (reply.op === 'ready') return;
    const waiter = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (!waiter) return;
    if (reply.op === 'result') waiter.resolve(Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength));
    else if (reply.op === 'failed') waiter.reject(new EngineUnavailableError(reply.message));
    else waiter.resolve(Buffer.alloc(0));
  }

  private crash(message: string): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const waiter of this.pending.values()) waiter.reject(new EngineUnavailableError(message));
    this.pending.clear();
    void this.worker.terminate();
    this.onCrash(message);
  }
}
