import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { rootCertificates } from 'node:tls';

/** Limits of {@link fetchImage}. */
export interface ImageFetchOptions {
  /** The whole fetch (connect, redirects, body) must finish within this. */
  timeoutInMs: number;
  /** Larger bodies are abandoned as soon as they pass this size. */
  maxBytes: number;
  /** Redirects followed before giving up. */
  maxRedirects: number;
  /** Extra CA certificate (PEM) trusted for https URLs besides the public roots (the local CA). */
  extraCaPem?: string;
}

/** Why an image URL could not be used. */
export type ImageUrlFailure = 'invalid-url' | 'unsupported-scheme' | 'blocked-address' | 'unreachable' | 'http-status' | 'timeout' | 'too-many-redirects' | 'too-large';

export class ImageUrlError extends Error {
  override readonly name = 'ImageUrlError';

  constructor(
    readonly reason: ImageUrlFailure,
    message: string,
  ) {
    super(message);
  }
}

// Link-local addresses host cloud metadata endpoints (169.254.169.254): an image URL never needs them.
const blocked = new BlockList();
blocked.addSubnet('169.254.0.0', 16, 'ipv4');
blocked.addSubnet('fe80::', 10, 'ipv6');
blocked.addAddress('0.0.0.0', 'ipv4');
blocked.addAddress('::', 'ipv6');

function isBlocked(address: string): boolean {
  const family = isIP(address);
  return family === 4 ? blocked.check(address, 'ipv4') : family === 6 ? blocked.check(address, 'ipv6') : false;
}

/**
 * Downloads an image as Azure AI Vision would fetch a `{url}` body, with bounds: http and https only,
 * every hop's address checked (link-local and unspecified addresses refused, loopback allowed so a
 * developer's own image server works), at most `maxRedirects` redirects, `maxBytes` bytes and
 * `timeoutInMs` for everything.
 *
 * @throws {ImageUrlError} naming what failed.
 */
export async function fetchImage(url: string, options: ImageFetchOptions): Promise<Buffer> {
  const signal = AbortSignal.timeout(options.timeoutInMs);
  let current = parseUrl(url);
  for (let hop = 0; ; hop++) {
    const response = await get(current, options, signal);
    const status = response.statusCode ?? 0;
    if (status >= 300 && status < 400 && response.headers.location) {
      response.resume();
      if (hop >= options.maxRedirects) throw new ImageUrlError('too-many-redirects', `more than ${options.maxRedirects} redirects`);
      current = parseUrl(new URL(response.headers.location, current).href);
      continue;
    }
    if (status < 200 || status >= 300) {
      response.resume();
      throw new ImageUrlError('http-status', `the server answered HTTP ${status}`);
    }
    return readLimited(response, options.maxBytes, signal);
  }
}

function parseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ImageUrlError('invalid-url', `"${url.slice(0, 200)}" is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ImageUrlError('unsupported-scheme', `the ${parsed.protocol} scheme is not supported; use http or https`);
  }
  return parsed;
}

function get(url: URL, options: ImageFetchOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isBlocked(host)) return Promise.reject(new ImageUrlError('blocked-address', `${host} is a link-local or unspecified address`));
  return new Promise((resolve, reject) => {
    const common = {
      signal,
      headers: { accept: 'image/*', 'user-agent': 'local-azure-vision' },
      // Checked at connect time, so a name cannot resolve to a blocked address behind our back.
      lookup: (hostname: string, lookupOptions: object, callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void) =>
        dnsLookup(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
          if (error) return callback(error, []);
          const allowed = addresses.filter((a) => !isBlocked(a.address));
          if (!allowed.length) return callback(new ImageUrlError('blocked-address', `${hostname} resolves to a link-local or unspecified address`), []);
          callback(null, allowed);
        }),
    };
    const request =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...common, ...(options.extraCaPem ? { ca: [...rootCertificates, options.extraCaPem] } : {}) })
        : httpRequest(url, common);
    request.once('response', resolve);
    request.once('error', (error) => reject(toUrlError(error, signal)));
    request.end();
  });
}

function readLimited(response: IncomingMessage, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(response.headers['content-length'] ?? 0) > maxBytes) {
      response.destroy();
      return reject(new ImageUrlError('too-large', `the image is larger than ${maxBytes} bytes`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        response.destroy();
        reject(new ImageUrlError('too-large', `the image is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    response.once('end', () => resolve(Buffer.concat(chunks)));
    response.once('error', (error) => reject(toUrlError(error, signal)));
    response.once('close', () => {
      if (!response.complete) reject(toUrlError(new Error('the connection closed before the image was complete'), signal));
    });
  });
}

function toUrlError(error: Error, signal: AbortSignal): ImageUrlError {
  if (error instanceof ImageUrlError) return error;
  if (signal.aborted) return new ImageUrlError('timeout', 'the download did not finish in time');
  return new ImageUrlError('unreachable', error.message);
}
