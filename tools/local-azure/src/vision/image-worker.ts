// The local Azure AI Vision's decoding thread's handler (see `ImageWorkerPool`): decodes an image and reads its
// pixels, so that a large image never holds the local Azure's event loop, where every other listener (tokens,
// Service Bus, OpenAI, PostgreSQL) is served.
//
// Loaded by `runtime/worker-thread.ts` in a thread: it uses erasable TypeScript only and loads its siblings with its
// own extension, so Node runs it from src/ (tests, type stripping) and from dist/ alike.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageReading } from './image-analyzer.js';
import type { ImageHeader } from './image-decoder.js';

/** A job of the decoding thread: the image's bytes (a transferred copy) and what `readHeader` read. */
export interface ImageJob {
  bytes: Uint8Array;
  header: ImageHeader;
}

const extension = extname(fileURLToPath(import.meta.url));
const { analyzeImage } = (await import(`./image-analyzer${extension}`)) as typeof import('./image-analyzer.js');
const { decodeImage } = (await import(`./image-decoder${extension}`)) as typeof import('./image-decoder.js');

/** Decodes the image and reads its pixels; throws `ImageDecodeError` as `decodeImage` does. */
export async function handle(job: ImageJob): Promise<ImageReading> {
  return analyzeImage(await decodeImage(job.bytes, job.header));
}
