import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManagedIdentityCredential } from '@azure/identity';
import vision from '@azure-rest/ai-vision-image-analysis';
import { createVisionDataPlane } from '../../src/vision/vision-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { Canvas, colours } from './test-images.js';

// The package is CommonJS: from ESM its default export is module.exports (createClient sits on .default).
const createClient = vision.default;
const { isUnexpected } = vision;
type VisionClient = ReturnType<typeof createClient>;

interface ErrorBody {
  error: { code: string; message: string; innererror?: { code: string; message: string } };
}

describe('Local Azure AI Vision with the unmodified @azure-rest/ai-vision-image-analysis client', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let client: VisionClient;
  let images: Server;
  let imagesUrl: string;
  const redCircle = new Canvas(200, 150).circle(100, 75, 50, colours.red);

  beforeAll(async () => {
    // Long enough to stream 20 MB on a busy CI machine, short enough for the stalled-download case.
    test = await startTestAzure({ dataPlanes: [createVisionDataPlane({ urlTimeoutInMs: 4000, maxUrlRedirects: 2 })] });
    env = test.enterHost('vision');
    client = createClient(env.AZURE_VISION_ENDPOINT!, new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }), { retryOptions: { maxRetries: 0 } });
    images = await serveImages();
    imagesUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    images.closeAllConnections();
    await new Promise((resolve) => images.close(resolve));
    await test.stop();
  });

  /** A developer's own image server: product pictures and every way a download can go wrong. */
  function serveImages(): Promise<Server> {
    const jpeg = new Canvas(240, 160, colours.black).rect(60, 50, 120, 60, colours.yellow).jpeg();
    const server = createServer((req, res) => {
      switch (req.url) {
        case '/product.jpg':
          return res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
        case '/moved':
          return res.writeHead(302, { location: '/product.jpg' }).end();
        case '/loop':
          return res.writeHead(302, { location: '/loop' }).end();
        case '/to-file':
          return res.writeHead(302, { location: 'file:///etc/passwd' }).end();
        case '/not-an-image':
          return res.writeHead(200, { 'content-type': 'image/png' }).end('<html>surprise</html>');
        case '/huge':
          return res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(64 * 1024 * 1024) }).end();
        case '/endless':
          res.writeHead(200, { 'content-type': 'image/png' });
          // Streams until the client gives up: 1 MB per tick, far past the 20 MB limit.
          return void (function pump(): void {
            if (res.destroyed) return;
            res.write(Buffer.alloc(1024 * 1024), () => setImmediate(pump));
          })();
        case '/stall':
          return res.writeHead(200, { 'content-type': 'image/png' }).write(Buffer.alloc(10));
        default:
          return res.writeHead(404).end();
      }
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
  }

  async function analyzeUrl(url: string, features = ['Caption', 'Tags']) {
    return client.path('/imageanalysis:analyze').post({ body: { url }, queryParameters: { features }, contentType: 'application/json' });
  }

  async function analyzeBytes(bytes: Uint8Array, features = ['Caption', 'Tags'], extra: Record<string, string> = {}) {
    return client.path('/imageanalysis:analyze').post({ body: bytes, queryParameters: { features, ...extra }, contentType: 'application/octet-stream' });
  }

  function expectError(response: { status: string; body: unknown }, status: string, code: string, inner?: string): ErrorBody {
    expect(response.status).toBe(status);
    const body = response.body as ErrorBody;
    expect(body.error.code).toBe(code);
    if (inner) expect(body.error.innererror?.code).toBe(inner);
    return body;
  }

  it('writes the endpoint and resource id into the host env file', () => {
    expect(env.AZURE_VISION_ENDPOINT).toMatch(/^https:\/\/localhost:\d+$/);
    expect(env.AZURE_VISION_RESOURCE_ID).toBe(test.azure.directory.resourceId('vision'));
  });

  describe('when an image is uploaded', () => {
    it('analyses a PNG: metadata, caption, tags and objects in the 4.0 shape', async () => {
      const response = await analyzeBytes(redCircle.png(), ['Caption', 'Tags', 'Objects']);
      if (isUnexpected(response)) throw new Error(JSON.stringify(response.body));
      expect(response.body).toMatchObject({
        modelVersion: '2023-10-01',
        metadata: { width: 200, height: 150 },
        captionResult: { text: 'a red circle on a white background', confidence: expect.any(Number) },
        objectsResult: { values: [{ boundingBox: { x: 50, y: 25, w: 101, h: 101 }, tags: [{ name: 'circle', confidence: expect.any(Number) }] }] },
      });
      expect(response.body.tagsResult!.values.map((t) => t.name)).toEqual(expect.arrayContaining(['red', 'circle', 'white', 'graphics']));
      expect(response.body.denseCaptionsResult).toBeUndefined();
    });

    it('serves api-version 2024-02-01 and smart crops around the object', async () => {
      const response = await client
        .path('/imageanalysis:analyze')
        .post({ body: redCircle.png(), queryParameters: { features: ['SmartCrops'], 'smartcrops-aspect-ratios': [1] }, contentType: 'application/octet-stream' })
        .then((r) => r);
      if (isUnexpected(response)) throw new Error(JSON.stringify(response.body));
      expect(response.body.smartCropsResult!.values).toEqual([{ aspectRatio: 1, boundingBox: { x: 26, y: 0, w: 150, h: 150 } }]);
      const v2024 = createClient(env.AZURE_VISION_ENDPOINT!, new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }), { apiVersion: '2024-02-01', retryOptions: { maxRetries: 0 } });
      const other = await v2024.path('/imageanalysis:analyze').post({ body: redCircle.png(), queryParameters: { features: ['caption'] }, contentType: 'application/octet-stream' });
      expect(other.status).toBe('200');
    });

    it('refuses corrupt images and bytes that are no image with InvalidImageFormat', async () => {
      expectError(await analyzeBytes(redCircle.gif().slice(0, 40)), '400', 'InvalidRequest', 'InvalidImageFormat');
      expectError(await analyzeBytes(redCircle.jpeg().slice(0, 400)), '400', 'InvalidRequest', 'InvalidImageFormat');
      expectError(await analyzeBytes(new TextEncoder().encode('plain text')), '400', 'InvalidRequest', 'InvalidImageFormat');
    });

    it('refuses images under 50 pixels with InvalidImageSize', async () => {
      const body = expectError(await analyzeBytes(new Canvas(40, 300).png()), '400', 'InvalidRequest', 'InvalidImageSize');
      expect(body.error.message).toBe('The image dimension is not allowed to be smaller than 50 and larger than 16000.');
    });

    it('refuses an empty body and one over 20 MB with Azure size message', async () => {
      const empty = expectError(await analyzeBytes(new Uint8Array(0)), '400', 'InvalidRequest');
      expect(empty.error.message).toBe('The image size is not allowed to be zero or larger than 20971520 bytes.');
      expectError(await analyzeBytes(new Uint8Array(20_971_521)), '400', 'InvalidRequest');
    });

    it('refuses an unknown feature and one the local model cannot produce with NotSupportedFeature', async () => {
      expectError(await analyzeBytes(redCircle.png(), ['Caption', 'Sparkles']), '400', 'InvalidRequest', 'NotSupportedFeature');
      const read = expectError(await analyzeBytes(redCircle.png(), ['Read']), '400', 'InvalidRequest', 'NotSupportedFeature');
      expect(read.error.message).toContain("'read' is not supported by the local Azure AI Vision");
      expectError(await analyzeBytes(redCircle.png(), ['People']), '400', 'InvalidRequest', 'NotSupportedFeature');
      expectError(await analyzeBytes(redCircle.png(), ['Caption'], { language: 'fr' }), '400', 'InvalidRequest', 'NotSupportedLanguage');
    });
  });

  describe('when an image URL is given', () => {
    it('downloads and analyses a JPEG from a local image server, following a redirect', async () => {
      const response = await analyzeUrl(`${imagesUrl}/moved`, ['Caption', 'Tags', 'Objects']);
      if (isUnexpected(response)) throw new Error(JSON.stringify(response.body));
      expect(response.body.metadata).toEqual({ width: 240, height: 160 });
      expect(response.body.captionResult!.text).toBe('a wide yellow rectangle on a black background');
      expect(response.body.tagsResult!.values.map((t) => t.name)).toEqual(expect.arrayContaining(['yellow', 'rectangle', 'black']));
    });

    it.each([
      ['a missing image (404)', '/missing'],
      ['a redirect loop', '/loop'],
      ['a redirect to a file URL', '/to-file'],
      ['a server that stalls mid-body', '/stall'],
    ])('answers InvalidImageUrl for %s', async (_case, path) => {
      const body = expectError(await analyzeUrl(`${imagesUrl}${path}`), '400', 'InvalidRequest', 'InvalidImageUrl');
      expect(body.error.message).toBe('The provided image url is not accessible.');
    });

    it.each([
      ['a non-http scheme', 'ftp://127.0.0.1/image.png'],
      ['a cloud metadata address', 'http://169.254.169.254/metadata/identity/oauth2/token'],
      ['a closed port', 'http://127.0.0.1:1/image.png'],
      ['something that is no URL', 'not a url'],
    ])('answers InvalidImageUrl for %s', async (_case, url) => {
      expectError(await analyzeUrl(url), '400', 'InvalidRequest', 'InvalidImageUrl');
    });

    it('answers a downloaded non-image with InvalidImageFormat', async () => {
      expectError(await analyzeUrl(`${imagesUrl}/not-an-image`), '400', 'InvalidRequest', 'InvalidImageFormat');
    });

    it('stops downloading at 20 MB, declared or not', async () => {
      expectError(await analyzeUrl(`${imagesUrl}/huge`), '400', 'InvalidRequest');
      const endless = expectError(await analyzeUrl(`${imagesUrl}/endless`), '400', 'InvalidRequest');
      expect(endless.error.message).toContain('20971520 bytes');
    });
  });

  describe('when the request itself is wrong', () => {
    const post = async (init: { headers?: Record<string, string>; body?: string | Uint8Array; query?: string; token?: boolean }) => {
      const token = init.token === false ? undefined : (await new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }).getToken('https://cognitiveservices.azure.com/.default')).token;
      return fetch(`${env.AZURE_VISION_ENDPOINT}/computervision/imageanalysis:analyze?${init.query ?? 'api-version=2023-10-01&features=caption'}`, {
        method: 'POST',
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...init.headers },
        ...(init.body !== undefined ? { body: init.body } : {}),
      });
    };

    it('answers a missing token with 401', async () => {
      const response = await post({ token: false, headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(response.status).toBe(401);
      expect(response.headers.get('x-ms-error-code')).toBe('401');
    });

    it('answers malformed JSON, a wrong content type and a missing features list', async () => {
      const malformed = await post({ headers: { 'content-type': 'application/json' }, body: '{"url": ' });
      expect(malformed.status).toBe(400);
      expect(((await malformed.json()) as ErrorBody).error.innererror?.code).toBe('BadArgument');
      const text = await post({ headers: { 'content-type': 'text/plain' }, body: 'hello' });
      expect(text.status).toBe(415);
      const noFeatures = await post({ query: 'api-version=2023-10-01', headers: { 'content-type': 'application/octet-stream' }, body: redCircle.png() });
      expect(((await noFeatures.json()) as ErrorBody).error.innererror?.code).toBe('BadArgument');
      const noVersion = await post({ query: 'features=caption', headers: { 'content-type': 'application/octet-stream' }, body: redCircle.png() });
      expect(noVersion.status).toBe(404);
    });
  });
});
