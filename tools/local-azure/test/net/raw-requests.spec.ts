import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { slowClient, type SlowClientOutcome } from '@keyless/testing';
import { openAiDataPlane } from '../../src/openai/openai-data-plane.js';
import { serviceBusDataPlane } from '../../src/servicebus/service-bus-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { visionDataPlane } from '../../src/vision/vision-data-plane.js';
import { portalCaller } from '../portal/support.js';
import { testTopologyFile } from '../servicebus/support.js';

/** Writes `text` to `origin` (http: or https:, trusting the test CA) and returns everything the server sent until it closed. */
function rawRequest(origin: string, text: string): Promise<string> {
  const { protocol, hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket: Socket =
      protocol === 'https:' ? connectTls({ host: hostname, port: Number(port), servername: hostname }, () => socket.write(text)) : connectTcp(Number(port), hostname, () => socket.write(text));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
}

/** The origin of every HTTP listener of a local Azure with every data plane that has one. */
function listenersOf(test: TestAzure): Record<string, string> {
  const env = test.azure.hostEnv('gateway');
  return {
    identity: test.azure.endpoints.identity,
    login: test.azure.endpoints.login,
    management: test.azure.endpoints.management,
    portal: test.azure.endpoints.portal,
    serviceBus: `https://${env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE}`,
    openAi: env.AZURE_OPENAI_ENDPOINT!,
    vision: env.AZURE_VISION_ENDPOINT!,
  };
}

/** What a listener answered a request Node's HTTP parser refused, read in that listener's own error shape. */
interface Refusal {
  statusLine: string;
  headers: Record<string, string>;
  /** The error's code, where the shape has one. */
  code?: string;
  /** The text a client is shown. */
  message: string;
}

const azureShape = { contentType: 'application/json; charset=utf-8', read: (body: string) => (JSON.parse(body) as { error: { code: string; message: string } }).error };

/** Each listener's error shape: its media type, and how the code and the message are read out of a body. */
const errorShapes: Record<string, { contentType: string; read: (body: string) => { code?: string; message: string } }> = {
  identity: azureShape,
  management: azureShape,
  openAi: azureShape,
  vision: azureShape,
  login: {
    contentType: 'application/json; charset=utf-8',
    read: (body) => {
      const { error, error_description } = JSON.parse(body) as { error: string; error_description: string };
      return { code: error, message: error_description };
    },
  },
  serviceBus: {
    contentType: 'application/xml; charset=utf-8',
    read: (body) => {
      const [, code, message] = /^<Error><Code>(\d+)<\/Code><Detail>([^<]*)<\/Detail><\/Error>$/.exec(body)!;
      return { code: code!, message: message!.replace(/&apos;/g, "'") };
    },
  },
  portal: { contentType: 'text/html; charset=utf-8', read: (body) => ({ message: /role="alert"><p>([^<]*)<\/p>/.exec(body)![1]!.replace(/&#39;/g, "'") }) },
};

/**
 * The one response a connection got before the server closed it, read as `listener`'s error: a whole response (its
 * Content-Length that of the body) that closes the connection, in the listener's error shape.
 */
function refusalOf(listener: string, outcome: SlowClientOutcome): Refusal {
  const [head, body] = outcome.received.split('\r\n\r\n') as [string, string];
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  const shape = errorShapes[listener]!;
  expect(headers).toMatchObject({ 'content-type': shape.contentType, 'content-length': String(Buffer.byteLength(body)), connection: 'close' });
  // Never the parser's own words (its error code, "Parse Error: …") or the bytes it was given.
  expect(body).not.toMatch(/HPE_|Parse Error|Expected|xxxx|bbbb/);
  return { statusLine: statusLine!, headers, ...shape.read(body) };
}

// Probes with request targets that no client sends but anyone can: Node's HTTP parser passes them through, so each
// listener must turn them away itself — one such request used to end the whole local Azure.
describe('Every HTTP listener of the local Azure, given a request target no URL parser takes', () => {
  let test: TestAzure;
  const listeners = (): Record<string, string> => listenersOf(test);

  beforeAll(async () => {
    test = await startTestAzure({
      dataPlanes: [serviceBusDataPlane, openAiDataPlane, visionDataPlane],
      config: { resources: { serviceBus: { topologyFile: testTopologyFile } } },
    });
  });
  afterAll(() => test.stop());

  // `//[` parses once ARM's repeated slashes are collapsed, so the management API takes it for the path `/[`.
  const targets = (listener: string): string[] => [...(listener === 'management' ? [] : ['//[']), 'http://%zz/', 'http://[::1/hosts'];

  it.each(['identity', 'login', 'management', 'portal', 'serviceBus', 'openAi', 'vision'])('answers 400 Invalid URL on the %s listener and keeps serving', async (name) => {
    const origin = listeners()[name]!;
    for (const target of targets(name)) {
      for (const method of ['GET', 'POST']) {
        const answer = await rawRequest(origin, `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        expect([target, answer.split('\r\n')[0]]).toEqual([target, 'HTTP/1.1 400 Bad Request']);
        expect(answer).toContain('HTTP Error 400. The request URL is invalid.');
      }
    }
    // Still there: an ordinary request gets its ordinary answer.
    const after = await fetch(new URL('/no-such-route', origin));
    expect([400, 401, 404]).toContain(after.status);
  });

  it('refuses a WebSocket upgrade with such a target on the Service Bus namespace, and keeps serving', async () => {
    const origin = listeners().serviceBus!;
    const answer = await rawRequest(
      origin,
      'GET //[ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: AMQPWSB10\r\n\r\n',
    );
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect((await fetch(new URL('/$namespaceinfo', origin))).status).toBe(401);
  });
});

// A client that trickles its request, or connects and never finishes TLS, holds a connection and its memory: Node's own
// limits let it do so for 60 s (headers), 300 s (a request) or 120 s (a TLS handshake), checked every 30 s, so a few
// thousand such clients exhausted the local Azure. The deadline is far below Node's limits and far above these.
describe('Every listener of the local Azure, given clients that never finish their request', () => {
  let test: TestAzure;
  const deadlineInMs = 15_000;
  const listeners = (): Record<string, string> => listenersOf(test);

  beforeAll(async () => {
    test = await startTestAzure({
      dataPlanes: [serviceBusDataPlane, openAiDataPlane, visionDataPlane],
      config: {
        resources: { serviceBus: { topologyFile: testTopologyFile } },
        network: { limits: { httpHeadersTimeoutInMs: 1000, httpRequestTimeoutInMs: 2000, tlsHandshakeTimeoutInMs: 1000 } },
      },
    });
  });
  afterAll(() => test.stop());

  const names = ['identity', 'login', 'management', 'portal', 'serviceBus', 'openAi', 'vision'];

  it.each(names)('answers 408 in its error shape and closes the connection of a client that trickles its headers, on the %s listener', async (name) => {
    const outcome = await slowClient({ origin: listeners()[name]!, head: 'GET /health HTTP/1.1\r\nHost: localhost\r\n', trickle: 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', deadlineInMs });
    const refusal = refusalOf(name, outcome);
    expect(refusal.statusLine).toBe('HTTP/1.1 408 Request Timeout');
    // OpenAI and Vision keep their own, longer request timeouts.
    expect(refusal.message).toMatch(/^The request did not arrive in time: send its headers within 1 s and the whole request within (2|60|120) s\.$/);
    if (errorShapes[name] === azureShape) expect(refusal.code).toBe('RequestTimeout');
  });

  it('answers 408 and closes the connection of a client that trickles its body, on the token endpoint (which reads it before any check)', async () => {
    const head = 'POST /organizations/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\ngrant_type=';
    const outcome = await slowClient({ origin: listeners().login!, head, trickle: 'a'.repeat(4000), deadlineInMs });
    expect(refusalOf('login', outcome)).toMatchObject({ statusLine: 'HTTP/1.1 408 Request Timeout', code: 'invalid_request' });
    expect(outcome.openForInMs).toBeGreaterThanOrEqual(2000);
  });

  it.each(names.filter((name) => name !== 'identity'))('drops a client that never finishes its TLS handshake, on the %s listener', async (name) => {
    // Plain TCP to a TLS listener: the handshake never starts, as with a client that stalls in it.
    const { hostname, port } = new URL(listeners()[name]!);
    const outcome = await slowClient({ origin: `http://${hostname}:${port}`, deadlineInMs });
    expect(outcome.received).toBe('');
  });
});

// Requests larger than a listener takes are refused before they are read whole, in each endpoint's own shape.
describe('Every listener of the local Azure, given requests larger than it takes', () => {
  let test: TestAzure;
  const deadlineInMs = 15_000;

  beforeAll(async () => {
    test = await startTestAzure({
      dataPlanes: [serviceBusDataPlane, openAiDataPlane, visionDataPlane],
      config: { resources: { serviceBus: { topologyFile: testTopologyFile } } },
    });
  });
  afterAll(() => test.stop());

  it.each(['identity', 'login', 'management', 'portal', 'serviceBus', 'openAi', 'vision'])('answers 431 in its error shape to headers over 16 KiB on the %s listener, and keeps serving', async (name) => {
    const origin = listenersOf(test)[name]!;
    const outcome = await slowClient({ origin, head: `GET /${'a'.repeat(8000)} HTTP/1.1\r\nHost: localhost\r\nX-Large: ${'b'.repeat(16 * 1024)}\r\n\r\n`, deadlineInMs });
    const refusal = refusalOf(name, outcome);
    expect([refusal.statusLine, refusal.message]).toEqual(['HTTP/1.1 431 Request Header Fields Too Large', "The request's headers exceed 16 KiB: send fewer or shorter headers."]);
    const azureCode = 'RequestHeaderFieldsTooLarge';
    const codes: Record<string, string | undefined> = { identity: azureCode, management: azureCode, openAi: azureCode, vision: azureCode, login: 'invalid_request', serviceBus: '431', portal: undefined };
    expect(refusal.code).toBe(codes[name]);
    const after = await fetch(new URL('/no-such-route', origin));
    expect([400, 401, 404]).toContain(after.status);
  });

  it.each(['identity', 'login', 'management', 'portal', 'serviceBus', 'openAi', 'vision'])('answers 400 in its error shape to a malformed request line on the %s listener, and keeps serving', async (name) => {
    const origin = listenersOf(test)[name]!;
    const outcome = await slowClient({ origin, head: 'GET /a xxxx HTTP/1.1\r\nHost: localhost\r\n\r\n', deadlineInMs });
    const refusal = refusalOf(name, outcome);
    expect([refusal.statusLine, refusal.message]).toEqual(['HTTP/1.1 400 Bad Request', 'The request line or a header is not valid HTTP/1.1: send a well-formed request.']);
    const after = await fetch(new URL('/no-such-route', origin));
    expect([400, 401, 404]).toContain(after.status);
  });

  it('refuses a token request body over 16 KiB with Entra’s invalid_request, before any check', async () => {
    const response = await fetch(`${test.azure.endpoints.login}/organizations/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&junk=${'x'.repeat(64 * 1024)}`,
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_request', error_codes: [90014], error_description: expect.stringContaining('larger than 16384 bytes') });
  });

  it('refuses an ARM request body over 64 KiB with 413 RequestEntityTooLarge in ARM’s error shape', async () => {
    const token = await test.operatorToken();
    const scope = test.azure.directory.resourceGroupId;
    const response = await fetch(`${test.azure.endpoints.management}${scope}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}?api-version=2022-04-01`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ properties: { description: 'x'.repeat(128 * 1024) } }),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: { code: 'RequestEntityTooLarge', message: 'The request body is larger than 65536 bytes.' } });
  });
});

// Nothing but the parser sees such a request — no route, no authorization, no sign-in — so each listener logs it, as
// the services log theirs: a record of the refusal log (the portal's logs page) and a line on the console.
describe('Every listener of the local Azure, logging the requests its parser refuses', () => {
  let test: TestAzure;
  const consoleLines: string[] = [];
  const deadlineInMs = 15_000;
  const names = ['identity', 'login', 'management', 'portal', 'serviceBus', 'openAi', 'vision'];
  // A caller's token where the parser stops: neither may appear in any log.
  const oversized = `GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.${'s'.repeat(17 * 1024)}\r\n\r\n`;
  const malformed = 'GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.signature\x01\r\n\r\n';

  beforeAll(async () => {
    test = await startTestAzure({
      dataPlanes: [serviceBusDataPlane, openAiDataPlane, visionDataPlane],
      config: { resources: { serviceBus: { topologyFile: testTopologyFile } } },
      log: (line) => consoleLines.push(line),
    });
  });
  afterAll(() => test.stop());

  const recordsOf = (outcome: SlowClientOutcome) => test.azure.auditLog.refusals({ limit: 1000 }).filter((record) => record.client.port === outcome.localPort);

  it.each(names)('logs a malformed request and headers over 16 KiB on the %s listener: status, kind, Node’s code, client and listener', async (name) => {
    const origin = listenersOf(test)[name]!;
    const port = Number(new URL(origin).port);
    for (const [head, fields] of [
      [malformed, { status: 400, kind: 'malformed-request', code: 'HPE_INVALID_HEADER_TOKEN' }],
      [oversized, { status: 431, kind: 'headers-too-large', code: 'HPE_HEADER_OVERFLOW' }],
    ] as const) {
      const outcome = await slowClient({ origin, head, deadlineInMs });
      expect(outcome.received).toMatch(new RegExp(`^HTTP/1\\.1 ${fields.status} `));
      const [record, ...more] = recordsOf(outcome);
      expect(more).toEqual([]);
      expect(record).toEqual({
        time: expect.any(String),
        ...fields,
        client: { address: expect.any(String), port: outcome.localPort },
        listener: { name, address: record!.client.address, port },
        message: expect.stringMatching(new RegExp(`^${fields.status} ${fields.kind} \\(${fields.code}\\) for .+:${outcome.localPort} on the ${name} listener .+:${port}: refused by Node's HTTP parser before any route$`)),
      });
      expect(consoleLines.filter((line) => line.includes(`:${outcome.localPort} on the ${name} listener`))).toEqual([`[http] ${record!.message}`]);
    }
    expect(consoleLines.join('\n')).not.toMatch(/Bearer|payload|ssss/);
    expect(JSON.stringify(test.azure.auditLog.refusals({ limit: 1000 }))).not.toMatch(/Bearer|payload|ssss/);
  });

  it('shows them on the portal’s logs page, by listener, and no token', async () => {
    const { call, signIn } = portalCaller(test);
    const { cookie } = await signIn();
    const page = (await call('/logs', { cookie })).body;
    for (const name of names) expect(page).toMatch(new RegExp(`<td>${name} <span class="mono">[^<]+</span></td><td class="mono">[^<]+</td><td><span class="tag bad">431</span></td><td>headers-too-large</td><td class="mono">HPE_HEADER_OVERFLOW</td>`));
    expect(page).not.toMatch(/Bearer|payload|ssss/);
    const openAi = (await call('/logs?resource=openAi', { cookie })).body;
    expect(openAi).toContain('<td>openAi <span class="mono">');
    expect(openAi).not.toContain('<td>vision <span class="mono">');
    expect((await call('/logs?outcome=success', { cookie })).body).toContain('No refused request matches these filters.');
  });
});

describe('A listener of the local Azure, given more refused requests than it logs in a minute', () => {
  let test: TestAzure;
  const consoleLines: string[] = [];

  beforeAll(async () => {
    test = await startTestAzure({ log: (line) => consoleLines.push(line) });
  });
  afterAll(() => test.stop());

  it('logs 60 of them in the minute, says so on the 60th, and counts the rest', async () => {
    // Each refusal costs its client only a new connection: a flood must not write the log as fast as it is sent.
    for (let i = 0; i < 65; i++) await slowClient({ origin: test.azure.endpoints.identity, head: 'GET /a xxxx HTTP/1.1\r\nHost: localhost\r\n\r\n', deadlineInMs: 15_000 });
    const records = test.azure.auditLog.refusals({ limit: 1000, where: { 'listener.name': 'identity' } });
    expect(records).toHaveLength(60);
    expect(records[0]!.message).toMatch(/; further refusals on this listener are not logged for the rest of the minute \(at most 60 lines a minute\)$/);
    expect(consoleLines.filter((line) => line.startsWith('[http] '))).toHaveLength(60);
  });
});
