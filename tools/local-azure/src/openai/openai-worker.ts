// The local Azure OpenAI's thread's handler (see `OpenAiService` in openai-data-plane.ts): the CPU work of large
// requests — token counts, the local chat and embedding models — so that it never holds the local Azure's event loop,
// where every other listener (tokens, Service Bus, Vision, PostgreSQL) is served. The thread loads the vocabularies
// it is asked for, as the event loop does.
//
// Loaded by `runtime/worker-thread.ts` in a thread, which resolves its `./x.js` imports to x.ts when it runs from src/.
import { OpenAiWork, type OpenAiJob, type OpenAiJobResults } from './openai-work.js';

const work = new OpenAiWork();

/** Runs the job; throws an `OpenAiRequestError` when the job's request is refused. */
export function handle(job: OpenAiJob): Promise<OpenAiJobResults[OpenAiJob['kind']]> {
  return work.run(job);
}
