// A thread of a `WorkerPool`: loads the pool's handler module (`workerData.handler`, a file path) and answers each
// job with what its `handle(job)` returns, or with the error it threw.
//
// This file is started with `new Worker()`: it uses erasable TypeScript only, so Node runs it from src/ (tests, type
// stripping) and from dist/ alike.
import { readFileSync } from 'node:fs';
import { registerHooks, stripTypeScriptTypes } from 'node:module';
import { extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

/** An error a handler threw, as it crosses to the pool: its name, message and own fields (`code`, `status`, …). */
export interface ThrownError {
  name: string;
  message: string;
  fields: Record<string, unknown>;
}

/** A thread's answer to job `id`. */
export type ThreadAnswer = { id: number; result: unknown } | { id: number; error: ThrownError };

/** What a handler module exports. */
export interface WorkerHandler {
  handle(job: unknown): unknown;
}

function thrown(error: unknown): ThrownError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  // Own enumerable fields only, and only if they can be copied to the other thread.
  let fields: Record<string, unknown> = { ...error };
  try {
    structuredClone(fields);
  } catch {
    fields = {};
  }
  return { name: error.name, message: error.message, fields };
}

if (extname(fileURLToPath(import.meta.url)) === '.ts') {
  // From src/ (tests): the modules import their siblings as `./x.js`, the name they have in dist/, and some use
  // TypeScript that type stripping alone does not run (parameter properties), so they are transformed here.
  registerHooks({
    resolve(specifier, context, nextResolve) {
      try {
        return nextResolve(specifier, context);
      } catch (error) {
        const relative = specifier.startsWith('./') || specifier.startsWith('../');
        if (!relative || !specifier.endsWith('.js') || (error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
        return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
      }
    },
    load(url, context, nextLoad) {
      if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
      const source = readFileSync(fileURLToPath(url), 'utf8');
      return { format: 'module', source: stripTypeScriptTypes(source, { mode: 'transform' }), shortCircuit: true };
    },
  });
}

const { handler } = workerData as { handler: string };
const { handle } = (await import(pathToFileURL(handler).href)) as WorkerHandler;

parentPort!.on('message', async ({ id, job }: { id: number; job: unknown }) => {
  let answer: ThreadAnswer;
  try {
    answer = { id, result: await handle(job) };
  } catch (error) {
    answer = { id, error: thrown(error) };
  }
  parentPort!.postMessage(answer);
});
