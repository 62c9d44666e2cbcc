import type { StorefrontCaller } from '@keyless/launcher';

/** What one call through the gateway gave: its status (or why there was none) and how long it took. */
export interface CallResult {
  status: number | 'network-error' | 'timeout';
  ms: number;
  body?: unknown;
}

const defaults = {
  /** A call that takes longer is counted as `timeout` (the gateway's own downstream timeout is shorter). */
  timeoutInMs: 30_000,
  /** A cached token is renewed this long before it expires. */
  tokenRenewalMarginInMs: 60_000,
};

/**
 * Calls the gateway as the storefront, for load and probes; with several gateway instances, the calls go round
 * robin over them, as a load balancer without health probes would (a stopped instance shows as `network-error`).
 * The storefront's token is cached and reused until shortly before it expires, and kept when a renewal fails: the
 * suite measures the system under a fault, not its own sign-in (which goes through the same identity endpoint the
 * faults break). 429s are answered, not waited out.
 */
export class GatewayClient {
  private token: { value: string; expiresAt: number } | undefined;
  private next = 0;

  constructor(
    private readonly storefront: StorefrontCaller,
    readonly baseUrls: readonly string[],
    private readonly timeoutInMs = defaults.timeoutInMs,
  ) {
    if (baseUrls.length === 0) throw new Error('GatewayClient needs at least one gateway URL');
  }

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<CallResult> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    const baseUrl = this.baseUrls[this.next++ % this.baseUrls.length]!;
    try {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${await this.bearer()}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutInMs),
      });
      const text = await response.text();
      return { status: response.status, ms: elapsed(), body: parse(text) };
    } catch (error) {
      return { status: (error as Error).name === 'TimeoutError' ? 'timeout' : 'network-error', ms: elapsed() };
    }
  }

  /** The storefront's token: cached, renewed before expiry, the old one kept while a renewal fails. */
  async bearer(): Promise<string> {
    if (this.token && this.token.expiresAt - defaults.tokenRenewalMarginInMs > Date.now()) return this.token.value;
    try {
      const value = await this.storefront.token();
      this.token = { value, expiresAt: expiryOf(value) };
    } catch (error) {
      if (!this.token || this.token.expiresAt <= Date.now()) throw error;
    }
    return this.token.value;
  }
}

function expiryOf(jwt: string): number {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: number };
    return (payload.exp ?? 0) * 1000;
  } catch {
    return 0;
  }
}

function parse(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return text;
  }
}

/** Whether a status counts as a success (2xx). */
export function isSuccess(status: CallResult['status']): boolean {
  return typeof status === 'number' && status >= 200 && status < 300;
}
