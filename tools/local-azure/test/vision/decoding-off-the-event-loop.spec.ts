import { ManagedIdentityCredential } from '@azure/identity';
import vision from '@azure-rest/ai-vision-image-analysis';
import { createVisionDataPlane } from '../../src/vision/vision-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { Canvas, colours, craftedImages } from './test-images.js';

// The package is CommonJS: from ESM its default export is module.exports (createClient sits on .default).
const createClient = vision.default;

interface ErrorBody {
  error: { code: string; message: string; innererror?: { code: string; message: string } };
}

/** The decoding budget here: far below what the slow image takes, far above a token request. */
const budgetInMs = 3000;

// The local Azure serves every listener from one event loop; a 6300×6300 progressive JPEG of 100 scans (a few KB)
// takes 7 s to decode on an idle machine and tens of seconds on a busy one. Decoded on the event loop, it held every
// token request and Service Bus delivery of the whole system for that long.
describe('Local Azure AI Vision decoding a slow image', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let client: ReturnType<typeof createClient>;
  const logged: string[] = [];

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [createVisionDataPlane({ decodeTimeoutInMs: budgetInMs })], log: (line) => logged.push(line) });
    env = test.enterHost('vision');
    client = createClient(env.AZURE_VISION_ENDPOINT!, new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }), { retryOptions: { maxRetries: 0 } });
    // The client's own token, fetched before the clock of any test starts.
    await analyze(new Canvas(100, 100).png());
  });
  afterAll(async () => {
    await test?.stop();
  });

  function analyze(bytes: Uint8Array) {
    return client.path('/imageanalysis:analyze').post({ body: bytes, queryParameters: { features: ['Caption'] }, contentType: 'application/octet-stream' });
  }

  /** A managed-identity token from the identity endpoint, as the SDKs request one. */
  async function tokenRequest(): Promise<void> {
    const url = `${env.IDENTITY_ENDPOINT}?${new URLSearchParams({ 'api-version': '2019-08-01', resource: 'https://servicebus.azure.net', client_id: env.AZURE_CLIENT_ID! })}`;
    const response = await fetch(url, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { access_token?: string }).access_token).toBeTruthy();
  }

  it('answers token requests while it decodes, ends the decode at the budget with 400 Timeout, and serves the next image', async () => {
    const sent = performance.now();
    const slow = Promise.resolve(analyze(craftedImages.progressiveJpeg(6300, 100)));
    // A token request every 100 ms (the identity endpoint allows a host 20 a second) while the image decodes. The
    // test runs in the local Azure's process: a stalled event loop shows as a long gap between two answers.
    const answered: number[] = [];
    const probes: Promise<void>[] = [];
    const probing = setInterval(() => probes.push(tokenRequest().then(() => void answered.push(performance.now()))), 100);
    const response = await slow.finally(() => clearInterval(probing));
    const ended = performance.now();
    await Promise.all(probes);
    const during = answered.filter((at) => at < ended);
    const gaps = [sent, ...during, ended].slice(1).map((at, i) => at - [sent, ...during][i]!);
    // Generous bounds for a busy machine; on the event loop, the decode held every answer for tens of seconds.
    expect({ answeredDuringDecode: during.length >= 10, longestGapUnder2s: Math.max(...gaps) < 2000 }).toEqual({ answeredDuringDecode: true, longestGapUnder2s: true });

    expect(response.status).toBe('400');
    const body = response.body as ErrorBody;
    expect(body.error).toEqual({
      code: 'InvalidRequest',
      message: `The image could not be analyzed within the local Azure AI Vision's time budget of ${budgetInMs / 1000} seconds.`,
      innererror: { code: 'Timeout', message: `The image could not be analyzed within the local Azure AI Vision's time budget of ${budgetInMs / 1000} seconds.` },
    });
    expect(logged).toContainEqual(`vision: an image was not analysed (timeout): decoding took longer than ${budgetInMs} ms`);

    // A new decoding thread serves the next image.
    const next = await analyze(new Canvas(200, 150).circle(100, 75, 50, colours.red).png());
    expect(next.status).toBe('200');
    expect((next.body as { captionResult?: { text: string } }).captionResult?.text).toBe('a red circle on a white background');
  });
});
