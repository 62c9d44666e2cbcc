import { request } from 'node:https';
import type { TestAzure } from '../../src/testing/index.js';

/** A portal answer, as the probes read it. */
export interface PortalAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A browser's requests to a test Azure's portal over real HTTPS (trusting its CA), and sign-in through the admin API. */
export type PortalCaller = ReturnType<typeof portalCaller>;

/** See {@link PortalCaller}. */
export function portalCaller(test: TestAzure) {
  const call = (path: string, options: { method?: string; cookie?: string; body?: string; headers?: Record<string, string> } = {}): Promise<PortalAnswer> =>
    new Promise((resolve, reject) => {
      const req = request(new URL(path, test.azure.endpoints.portal), {
        method: options.method ?? 'GET',
        ca: test.azure.tls.caCertPem,
        headers: {
          ...(options.cookie ? { cookie: options.cookie } : {}),
          ...(options.body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(options.body)) } : {}),
          ...options.headers,
        },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end(options.body);
    });
  const mint = (user?: string) => test.admin(user).call<{ url: string; expiresOn: string; operator: string }>('POST', '/portal/signInLinks');
  /** A signed-in session: its cookie and its anti-forgery token. */
  const signIn = async (user?: string): Promise<{ cookie: string; csrf: string }> => {
    const answer = await call((await mint(user)).url);
    const cookie = String(answer.headers['set-cookie']).split(';')[0]!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec((await call('/iam', { cookie })).body)![1]!;
    return { cookie, csrf };
  };
  /** A form post from the portal's own origin. */
  const post = (path: string, cookie: string, fields: Record<string, string>): Promise<PortalAnswer> =>
    call(path, { method: 'POST', cookie, body: new URLSearchParams(fields).toString(), headers: { origin: new URL(test.azure.endpoints.portal).origin } });
  /** The newest authorization decision logged for the portal's `operation` (`portal GET /servicebus/resubmit`). */
  const decision = (operation: string) => test.azure.auditLog.authorizations({ limit: 1000, where: { resource: 'management' } }).find((r) => r.operation === operation);
  return { call, mint, signIn, post, decision };
}

/**
 * Expects the portal's refusal of a user without the right: 403 with ARM's `AuthorizationFailed` naming the user
 * (`upn`) and the `action` they lack, and no `confirm` button (the question is not asked).
 */
export function expectAuthorizationFailed(answer: PortalAnswer, upn: string, action: string, confirm: string): void {
  expect(answer.status).toBe(403);
  expect(answer.body).toContain(`<strong>AuthorizationFailed</strong>: The client &#39;${upn}&#39; with object id`);
  expect(answer.body).toContain(action);
  expect(answer.body).not.toContain(confirm);
}
