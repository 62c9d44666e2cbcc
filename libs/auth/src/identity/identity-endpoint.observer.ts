import { createDefaultHttpClient, type HttpClient, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';

/** What happened on the wire for the last token request of one resource (no tokens, no headers kept). */
export interface IdentityExchange {
  /** The identity endpoint URL without its query (the query only carries resource and client id). */
  endpoint: string;
  /** HTTP status, when an answer came. */
  status?: number;
  contentType?: string;
  /** The start of an error or non-JSON body (never a successful token body). */
  bodyStart?: string;
  /** Transport failure: the system error code (`ECONNREFUSED`, …) or the error name. */
  transportError?: string;
  /** The attempt was cut by the per-attempt timeout. */
  timedOut?: boolean;
  /** Requests sent for this resource since the process started (retries included). */
  attempts: number;
}

const bodyStartLength = 300;

/**
 * The HTTP client given to `ManagedIdentityCredential`: it puts a timeout on every attempt (the SDK
 * sets none, so an endpoint that accepts the connection and never answers would hang the caller
 * forever), and remembers the last exchange per resource so that failures can name the endpoint and
 * say what it answered. It never keeps token bodies or the identity header.
 */
export class IdentityEndpointObserver {
  private readonly inner: HttpClient = createDefaultHttpClient();
  private readonly exchanges = new Map<string, IdentityExchange>();
  private lastEndpoint: string | undefined;

  constructor(private readonly attemptTimeoutInMs: number) {}

  /** The identity endpoint the SDK last called (undefined before the first request). */
  get endpoint(): string | undefined {
    return this.lastEndpoint;
  }

  /** The last exchange for `resource` (the scope without `/.default`). */
  lastExchange(resource: string): IdentityExchange | undefined {
    return this.exchanges.get(resource);
  }

  /** The `HttpClient` to pass as the credential's `httpClient` option. */
  httpClient(): HttpClient {
    return { sendRequest: (request) => this.send(request) };
  }

  private async send(request: PipelineRequest): Promise<PipelineResponse> {
    const url = new URL(request.url);
    const endpoint = `${url.origin}${url.pathname}`;
    const resource = url.searchParams.get('resource') ?? '';
    this.lastEndpoint = endpoint;
    const attempts = (this.exchanges.get(resource)?.attempts ?? 0) + 1;
    // Our own abort rather than `request.timeout`: the transport leaves that timer running when the
    // request fails, which keeps a process alive after a refused connection.
    const controller = new AbortController();
    const outer = request.abortSignal;
    const onOuterAbort = (): void => controller.abort();
    outer?.addEventListener('abort', onOuterAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.attemptTimeoutInMs);
    timer.unref();
    request.abortSignal = controller.signal;
    try {
      const response = await this.inner.sendRequest(request);
      const contentType = response.headers.get('content-type') ?? undefined;
      const isJson = /json/i.test(contentType ?? '');
      const keepBody = response.status >= 300 || !isJson;
      this.exchanges.set(resource, {
        endpoint,
        status: response.status,
        ...(contentType ? { contentType } : {}),
        ...(keepBody && response.bodyAsText ? { bodyStart: response.bodyAsText.slice(0, bodyStartLength) } : {}),
        attempts,
      });
      return response;
    } catch (error) {
      const err = error as { code?: unknown; name?: string };
      this.exchanges.set(resource, {
        endpoint,
        transportError: timedOut ? 'timeout' : typeof err.code === 'string' ? err.code : (err.name ?? 'Error'),
        ...(timedOut ? { timedOut } : {}),
        attempts,
      });
      throw error;
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    }
  }
}
