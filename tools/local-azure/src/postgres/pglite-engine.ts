import { fork, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineReply, EngineRequest, EngineSettings } from './pglite-engine.child.js';

/** Options of {@link PgliteEngine.start}. */
export interface PgliteEngineOptions {
  /** Data folder (created on first use). */
  dataDir: string;
  /** The database the engine serves (created on first use). */
  database: string;
  /** Extensions a non-superuser may create. */
  extensions: readonly string[];
  /** Called once if the engine stops by itself (a fatal PGlite or V8 error); the engine is unusable after. */
  onCrash: (message: string) => void;
  /** Lines the engine process writes to stderr. Default: dropped. */
  onOutput?: (line: string) => void;
  /**
   * How long one request may run before the engine is considered stuck and ended (PGlite cannot interrupt a
   * statement); 0 never. Default: 0.
   */
  maxRequestDurationInMs?: number;
  /** Aborts a start in progress (the process is ended; a first start leaves no data folder behind). */
  signal?: AbortSignal;
}

/** The engine failed to answer, or is not running. */
export class EngineUnavailableError extends Error {
  override readonly name = 'EngineUnavailableError';
}

// Beside this file: .ts when running from src/ (tests, with Node's type stripping), .js from dist/.
const childPath = fileURLToPath(new URL(`./pglite-engine.child${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/**
 * Node flags of the engine process. V8's write protection of JIT code with memory protection keys (PKU, on Xeon and
 * EPYC) aborts processes that churn WebAssembly code ("Check failed: jit_page.has_value()", chromium issue
 * 360909072); the engine process is the only one here that does, so it runs without it.
 */
const engineExecArgv = ['--no-memory-protection-keys'];

/**
 * PGlite in a child process, seen from the local Azure: `exec` sends frontend protocol messages and resolves with
 * the backend's bytes. A child process rather than a worker thread: a long query never stalls the local Azure's
 * event loop, and a fatal error of the WebAssembly engine (a V8 abort included) ends the engine, not the local Azure.
 * Requests run one after another in the order sent; the single session they share is the caller's to manage (see
 * `SharedSession`).
 */
export class PgliteEngine {
  /** ParameterStatus values the engine reports at start-up. */
  readonly parameters: ReadonlyMap<string, string>;
  /** Every run-time setting (`pg_settings`), lower-case name → context (`user`, `superuser`, `postmaster`, …). */
  readonly settings: ReadonlyMap<string, string>;
  /** Requests sent and not yet answered: a statement's bytes, or the heap's size for `heapUsedInBytes`. */
  private readonly pending = new Map<number, { resolve: (answer: Buffer | number) => void; reject: (error: Error) => void; timer?: NodeJS.Timeout }>();
  private nextId = 1;
  private stopped = false;
  /** Set by stop(): the process's exit is then expected, not a crash. */
  private stopping = false;

  private constructor(
    private readonly child: ChildProcess,
    ready: Extract<EngineReply, { op: 'ready' }>,
    private readonly onCrash: (message: string) => void,
    private readonly maxRequestDurationInMs: number,
  ) {
    this.parameters = new Map(ready.parameters);
    this.settings = new Map(ready.settings.map(([name, context]) => [name.toLowerCase(), context]));
    child.on('message', (reply: EngineReply) => this.receive(reply));
    child.on('error', (error) => this.crash(`the engine process failed: ${error.message}`));
    child.on('exit', (code, signal) => this.crash(`the engine process exited (${signal ?? `code ${code}`})`));
  }

  /** Starts the engine process and opens the database; resolves once it accepts requests. */
  static async start(options: PgliteEngineOptions): Promise<PgliteEngine> {
    const settings: EngineSettings = { dataDir: options.dataDir, database: options.database, extensions: [...options.extensions] };
    const child = fork(childPath, [], {
      execArgv: engineExecArgv,
      serialization: 'advanced',
      // Only what it needs: PATH, where the data-folder template is kept, and its settings.
      env: { PATH: process.env.PATH ?? '', TMPDIR: tmpdir(), KEYLESS_PGLITE_SETTINGS: JSON.stringify(settings) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) options.onOutput?.(line);
    });
    const abort = (): void => void child.kill('SIGKILL');
    options.signal?.addEventListener('abort', abort);
    const listeners: { message?: (reply: EngineReply) => void; error?: (error: Error) => void; exit?: (code: number | null) => void } = {};
    try {
      const ready = await new Promise<Extract<EngineReply, { op: 'ready' }>>((resolve, reject) => {
        listeners.message = (reply) => (reply.op === 'ready' ? resolve(reply) : reject(new EngineUnavailableError(reply.op === 'crashed' ? reply.message : `unexpected ${reply.op}`)));
        listeners.error = reject;
        listeners.exit = (code) => reject(new EngineUnavailableError(`the engine process exited with code ${code} while starting`));
        child.on('message', listeners.message).on('error', listeners.error).on('exit', listeners.exit);
      });
      return new PgliteEngine(child, ready, options.onCrash, options.maxRequestDurationInMs ?? 0);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', abort);
      child.off('message', listeners.message!).off('error', listeners.error!).off('exit', listeners.exit!);
    }
  }

  /** The engine process's id. */
  get processId(): number | undefined {
    return this.child.pid;
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
      const limit = this.maxRequestDurationInMs;
      const timer = limit ? setTimeout(() => this.crash(`a statement ran longer than ${limit} ms (maxStatementDurationInMs); PGlite cannot interrupt it`), limit) : undefined;
      this.pending.set(id, { resolve: (answer) => resolve(answer as Buffer), reject, ...(timer ? { timer } : {}) });
      this.child.send({ op: 'exec', id, bytes } satisfies EngineRequest);
    });
  }

  /**
   * Bytes in use on the engine process's JavaScript heap (rows PGlite keeps would be there; its WebAssembly memory
   * and V8's compiler are not): a diagnostic, asked between statements.
   */
  heapUsedInBytes(): Promise<number> {
    if (this.stopped) return Promise.reject(new EngineUnavailableError('the PostgreSQL engine is not running'));
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      this.pending.set(id, { resolve: (value) => resolve(value as number), reject });
      this.child.send({ op: 'heap', id } satisfies EngineRequest);
    });
  }

  /** Closes the database (a checkpoint) and ends the process. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopping = true;
    const gone = this.child.exitCode !== null || this.child.signalCode !== null;
    const exited = gone ? Promise.resolve() : new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const id = this.nextId++;
    const closed = new Promise<void>((resolve) => this.pending.set(id, { resolve: () => resolve(), reject: () => resolve() }));
    if (this.child.connected) this.child.send({ op: 'close', id } satisfies EngineRequest);
    // A process that is dying never answers: Ctrl-C in a terminal sends SIGINT to the whole foreground process
    // group, so the engine gets it too, as the local Azure begins to stop. Its exit ends the wait.
    await Promise.race([closed, exited]);
    this.pending.delete(id);
    this.stopped = true;
    // Statements still waiting (an engine that died mid-stop answers none of them) end now, not never.
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new EngineUnavailableError('the PostgreSQL engine stopped'));
    }
    this.pending.clear();
    // The process leaves once it has said so; a process that does not is ended.
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  private receive(reply: EngineReply): void {
    if (reply.op === 'crashed') return this.crash(reply.message);
    if (reply.op === 'ready') return;
    const waiter = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (!waiter) return;
    clearTimeout(waiter.timer);
    if (reply.op === 'result') waiter.resolve(Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength));
    else if (reply.op === 'heap') waiter.resolve(reply.usedBytes);
    else if (reply.op === 'failed') waiter.reject(new EngineUnavailableError(reply.message));
    else waiter.resolve(Buffer.alloc(0));
  }

  private crash(message: string): void {
    if (this.stopped || this.stopping) return;
    this.stopped = true;
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new EngineUnavailableError(message));
    }
    this.pending.clear();
    this.child.kill('SIGKILL');
    this.onCrash(message);
  }
}
