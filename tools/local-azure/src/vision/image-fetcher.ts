import { promises as dns, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { normalizeHostPort } from '../util/host-port.js';
import { classifyAddress, type AddressClass } from './address-class.js';

/** Resolves a host name to every address it has (what `dns.lookup(name, { all: true })` returns). */
export type HostResolver = (hostname: string) => Promise<readonly LookupAddress[]>;

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
  /**
   * `host:port` pairs fetched even though they are not globally routable (`127.0.0.1:3001`,
   * `localhost:8080`, `[::1]:3001`): exactly that host name and port, no other. Default: none.
   */
  allowedHosts?: readonly string[];
  /** How host names are resolved. Default: the system resolver (`dns.lookup`, every address). */
  resolve?: HostResolver;
}

/** Why an image URL could not be used. */
export type ImageUrlFailure = 'invalid-url' | 'unsupported-scheme' | 'blocked-address' | 'unreachable' | 'http-status' | 'timeout' | 'too-many-redirects' | 'too-large';

/**
 * An image URL that could not be used. `message` is for the local Azure's log only (it may name
 * addresses and connection errors); callers get Azure's generic answer.
 */
export class ImageUrlError extends Error {
  override readonly name = 'ImageUrlError';

  constructor(
    readonly reason: ImageUrlFailure,
    message: string,
    /** For `blocked-address`: the class of address that was refused. */
    readonly addressClass?: AddressClass,
  ) {
    super(message);
  }
}

const systemResolver: HostResolver = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

/**
 * Downloads an image as Azure AI Vision fetches a `{url}` body: from the internet only. Rules:
 * 1. http and https only.
 * 2. Every hop (the URL and each redirect) is checked before connecting: an IP literal by its class, a
 *    host name by every address it resolves to; one address that is not globally routable (loopback,
 *    private, link-local, CGNAT, unique-local, multicast, … see {@link classifyAddress}, IPv4-mapped forms
 *    included) refuses the hop.
 * 3. The connection goes to the address that was checked: the name is resolved once, so it cannot
 *    resolve elsewhere in between (DNS rebinding).
 * 4. `allowedHosts` names the exceptions (`host:port`), e.g. a developer's image server on loopback.
 * 5. At most `maxRedirects` redirects, `maxBytes` bytes and `timeoutInMs` for everything.
 *
 * @throws {ImageUrlError} naming what failed (for logs, not for callers).
 */
export async function fetchImage(url: string, options: ImageFetchOptions): Promise<Buffer> {
  const signal = AbortSignal.timeout(options.timeoutInMs);
  const allowed = new Set((options.allowedHosts ?? []).map((entry) => normalizeHostPort(entry) ?? entry));
  let current = parseUrl(url);
  for (let hop = 0; ; hop++) {
    const address = await checkedAddress(current, allowed, options.resolve ?? systemResolver, signal);
    const response = await get(current, address, options, signal);
    const status = response.statusCode ?? 0;
    if (status >= 300 && status < 400 && response.headers.location) {
      response.resume();
      if (hop >= options.maxRedirects) throw new ImageUrlError('too-many-redirects', `more than ${options.maxRedirects} redirects`);
      current = parseUrl(new URL(response.headers.location, current).href);
      continue;
    }
    if (status < 200 || status >= 300) {
      response.resume();
      throw new ImageUrlError('http-status', `${current.origin} answered HTTP ${status}`);
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

/** The address to connect to for `url`, checked (rule 2) unless allow-listed (rule 4). */
async function checkedAddress(url: URL, allowed: ReadonlySet<string>, resolve: HostResolver, signal: AbortSignal): Promise<LookupAddress> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const exempt = allowed.has(`${url.hostname}:${port}`);
  const family = isIP(host);
  let addresses: readonly LookupAddress[];
  if (family) {
    addresses = [{ address: host, family }];
  } else {
    try {
      addresses = await resolve(host);
    } catch (error) {
      throw new ImageUrlError('unreachable', `${host} does not resolve (${(error as Error).message})`);
    }
    if (signal.aborted) throw new ImageUrlError('timeout', 'the download did not finish in time');
    if (!addresses.length) throw new ImageUrlError('unreachable', `${host} does not resolve`);
  }
  if (!exempt) {
    for (const { address } of addresses) {
      const kind = classifyAddress(address);
      if (kind) {
        const via = family ? '' : ` (${host} resolves to it)`;
        throw new ImageUrlError('blocked-address', `${address}${via} is a ${kind} address, not one on the internet; allow ${url.hostname}:${port} in resources.vision.allowedImageHosts to fetch from it`, kind);
      }
    }
  }
  return addresses[0]!;
}

function get(url: URL, address: LookupAddress, options: ImageFetchOptions, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const common = {
      signal,
      headers: { accept: 'image/*', 'user-agent': 'local-azure-vision' },
      // Rule 3: connect to the address that was checked, never to a second answer for the same name.
      lookup: (_hostname: string, lookupOptions: { all?: boolean }, callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void) => {
        if (lookupOptions.all) callback(null, [address]);
        else callback(null, address.address, address.family);
      },
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
