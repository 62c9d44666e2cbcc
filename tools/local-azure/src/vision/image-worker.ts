// The local Azure AI Vision's decoding thread: decodes an image and reads its pixels (see `ImageWorkerPool`), so
// that a large image never holds the local Azure's event loop, where every other listener (tokens, Service Bus,
// OpenAI, PostgreSQL) is served.
//
// This file is started with `new Worker()`: it uses erasable TypeScript only and loads its siblings with its own
// extension, so Node runs it from src/ (tests, type stripping) and from dist/ alike.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parentPort } from 'node:worker_threads';
import type { ImageReading } from './image-analyzer.js';
import type { ImageHeader } from './image-decoder.js';

/** A request to the decoding thread: the image's bytes (a transferred copy) and what `readHeader` read. */
export interface ImageJob {
  id: number;
  bytes: Uint8Array;
  header: ImageHeader;
}

/** The decoding thread's answer: the reading, the decoder's refusal, or another failure. */
export type ImageJobResult =
  | { id: number; reading: ImageReading }
  | { id: number; decodeError: string }
  | { id: number; failure: string };

const extension = extname(fileURLToPath(import.meta.url));
const { analyzeImage } = (await import(`./image-analyzer${extension}`)) as typeof import('./image-analyzer.js');
const { decodeImage, ImageDecodeError } = (await import(`./image-decoder${extension}`)) as typeof import('./image-decoder.js');

parentPort!.on('message', async (job: ImageJob) => {
  let result: ImageJobResult;
  try {
    result = { id: job.id, reading: analyzeImage(await decodeImage(job.bytes, job.header)) };
  } catch (error) {
    result = error instanceof ImageDecodeError ? { id: job.id, decodeError: error.message } : { id: job.id, failure: String((error as Error)?.message ?? error) };
  }
  parentPort!.postMessage(result);
});
