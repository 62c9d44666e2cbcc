import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';

/** A response of {@link requestJson}: status, headers, the body as text and parsed (undefined when not JSON). */
export interface JsonResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

/** Options of {@link requestJson}. */
export interface JsonRequestOptions {
  method: string;
  /** The CA to trust (the local Azure's; the CLI starts without NODE_EXTRA_CA_CERTS). */
  ca: string;
  headers?: Record<string, string>;
  body?: string;
  /** **Default**: 10 000 ms. */
  timeoutInMs?: number;
}

/** One HTTPS request to the local Azure; resolves with any status, rejects only when no answer came. */
export function requestJson(url: string | URL, options: JsonRequestOptions): Promise<JsonResponse> {
  const timeoutInMs = options.timeoutInMs ?? 10_000;
  const headers = { ...options.headers, ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}) };
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method, ca: options.ca, headers, timeout: timeoutInMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? (JSON.parse(text) as unknown) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutInMs / 1000} s`)));
    req.on('error', reject);
    req.end(options.body);
  });
}
