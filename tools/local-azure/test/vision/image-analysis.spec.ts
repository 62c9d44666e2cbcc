import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManagedIdentityCredential } from '@azure/identity';
import vision from '@azure-rest/ai-vision-image-analysis';
import { createVisionDataPlane } from '../../src/vision/vision-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { Canvas, colours, craftedImages } from './test-images.js';

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
  /** A loopback service that is not allow-listed: probes must never reach it. */
  let hidden: Server;
  let hiddenPort: number;
  const hiddenRequests: string[] = [];
  const redCircle = new Canvas(200, 150).circle(100, 75, 50, colours.red);

  beforeAll(async () => {
    images = await serveImages();
    imagesUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
    hidden = createServer((req, res) => {
      hiddenRequests.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(new Canvas(240, 160).jpeg());
    });
    await new Promise<void>((resolve) => hidden.listen(0, '127.0.0.1', resolve));
    hiddenPort = (hidden.address() as AddressInfo).port;
    // Long enough to stream 20 MB on a busy CI machine, short enough for the stalled-download case.
    test = await startTestAzure({
      dataPlanes: [createVisionDataPlane({ urlTimeoutInMs: 4000, maxUrlRedirects: 2 })],
      config: { resources: { vision: { allowedImageHosts: [new URL(imagesUrl).host] } } },
    });
    env = test.enterHost('vision');
    client = createClient(env.AZURE_VISION_ENDPOINT!, new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }), { retryOptions: { maxRetries: 0 } });
  });
  afterAll(async () => {
    for (const server of [images, hidden]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
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
        case '/to-hidden':
          return res.writeHead(302, { location: `http://127.0.0.1:${hiddenPort}/product.jpg` }).end();
        case '/to-localhost':
          // The same server under another name: the allow-list names host and port exactly.
          return res.writeHead(302, { location: `http://localhost:${(images.address() as AddressInfo).port}/product.jpg` }).end();
        case '/to-metadata':
          return res.writeHead(307, { location: 'http://169.254.169.254/metadata/identity/oauth2/token' }).end();
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

    it('refuses data that makes the decoder work on more than the header declares, with what it found', async () => {
      // Each is 100×100 to the header reader; before the checks the local Azure decoded a 64 MB PNG, walked a
      // 64-megapixel GIF frame and allocated for a 16-megapixel JPEG frame (the larger the crafted size, the
      // longer the local Azure's event loop was held: a 99-byte JPEG, 61 s and 2.7 GB).
      const cases: [Uint8Array, string][] = [
        [craftedImages.pngBomb(64 * 1024 * 1024), 'Input data is not a valid image: the PNG image data inflates to more than the 40100 bytes a 100x100 image needs'],
        [craftedImages.pngWithIccProfile(64 * 1024 * 1024), 'Input data is not a valid image: the PNG ICC profile (iCCP) inflates to more than 8 MB'],
        [craftedImages.gifWithOversizedFrame(8000), 'Input data is not a valid image: the first GIF frame (8000x8000 at 0,0) extends beyond the 100x100 image'],
        [craftedImages.jpegWithSecondFrameHeader(4000), 'Input data is not a valid image: a JPEG frame header declares more pixels than the 100x100 image'],
      ];
      for (const [bytes, message] of cases) {
        const body = expectError(await analyzeBytes(bytes), '400', 'InvalidRequest', 'InvalidImageFormat');
        expect(body.error.innererror?.message).toBe(message);
      }
      // A PNG with a profile of a size real ones have is analysed.
      expect((await analyzeBytes(craftedImages.pngWithIccProfile(1024 * 1024))).status).toBe('200');
    });

    it('analyses a progressive JPEG of 100 scans and refuses one of 101, each scan being a pass over the whole image', async () => {
      // 2000 such scans of a 6000×6000 image (120 KB) held the local Azure's event loop 50 s; 20 MB of them, over an hour.
      const analyzed = await analyzeBytes(craftedImages.progressiveJpeg(200, 100));
      expect(analyzed.status).toBe('200');
      const body = expectError(await analyzeBytes(craftedImages.progressiveJpeg(200, 101)), '400', 'InvalidRequest', 'InvalidImageFormat');
      expect(body.error.innererror?.message).toBe('Input data is not a valid image: the JPEG has more than 100 scans (encoders write about 10; each is a pass over the whole image)');
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
      ['something that is no URL', 'not a url'],
    ])('answers InvalidImageUrl for %s', async (_case, url) => {
      expectError(await analyzeUrl(url), '400', 'InvalidRequest', 'InvalidImageUrl');
    });

    it('answers a downloaded non-image with InvalidImageFormat, without what the decoder found', async () => {
      const body = expectError(await analyzeUrl(`${imagesUrl}/not-an-image`), '400', 'InvalidRequest', 'InvalidImageFormat');
      expect(body.error.innererror?.message).toBe('Input data is not a valid image.');
    });

    it('stops downloading at 20 MB, declared or not', async () => {
      expectError(await analyzeUrl(`${imagesUrl}/huge`), '400', 'InvalidRequest');
      const endless = expectError(await analyzeUrl(`${imagesUrl}/endless`), '400', 'InvalidRequest');
      expect(endless.error.message).toContain('20971520 bytes');
    });
  });

  describe('when an image URL leads to an address that is not on the internet', () => {
    /** Azure's one answer for every unusable URL: nothing about addresses, ports or connection errors. */
    const generic = {
      error: { code: 'InvalidRequest', message: 'The provided image url is not accessible.', innererror: { code: 'InvalidImageUrl', message: 'The provided image url is not accessible.' } },
    };
    const probes = (): [string, string][] => [
      ['loopback', `http://127.0.0.1:${hiddenPort}/product.jpg`],
      ['loopback, elsewhere in 127/8', `http://127.1.2.3:${hiddenPort}/product.jpg`],
      ['loopback as one decimal number', `http://2130706433:${hiddenPort}/product.jpg`],
      ['loopback in hexadecimal', `http://0x7f.0.0.1:${hiddenPort}/product.jpg`],
      ['a name resolving to loopback (localhost)', `http://localhost:${hiddenPort}/product.jpg`],
      ['IPv6 loopback', `http://[::1]:${hiddenPort}/product.jpg`],
      ['IPv4-mapped loopback', `http://[::ffff:127.0.0.1]:${hiddenPort}/product.jpg`],
      ['IPv4-compatible loopback', `http://[::127.0.0.1]:${hiddenPort}/product.jpg`],
      ['the unspecified address', `http://0.0.0.0:${hiddenPort}/product.jpg`],
      ['the IPv6 unspecified address', `http://[::]:${hiddenPort}/product.jpg`],
      ['a private address (10/8)', 'http://10.0.0.1/image.png'],
      ['a private address (172.16/12)', 'http://172.16.0.1/image.png'],
      ['a private address (192.168/16)', 'http://192.168.1.1/image.png'],
      ['a cloud metadata address (link-local)', 'http://169.254.169.254/metadata/identity/oauth2/token'],
      ['an IPv4-mapped metadata address', 'http://[::ffff:169.254.169.254]/metadata/identity/oauth2/token'],
      ['IPv6 link-local', 'http://[fe80::1]/image.png'],
      ['CGNAT (100.64/10)', 'http://100.64.0.1/image.png'],
      ['IPv6 unique-local', 'http://[fd00::1]/image.png'],
      ['an IPv4-mapped private address', 'http://[::ffff:10.0.0.1]/image.png'],
      ['multicast', 'http://224.0.0.1/image.png'],
      ['https to loopback', `https://127.0.0.1:${hiddenPort}/product.jpg`],
    ];

    it('refuses every class before connecting, with Azure’s generic answer and nothing internal', async () => {
      for (const [what, url] of probes()) {
        const response = await analyzeUrl(url);
        expect({ what, status: response.status, body: response.body }).toEqual({ what, status: '400', body: generic });
        expect(JSON.stringify(response.body)).not.toMatch(/127\.|::1|localhost|ECONN|refused|loopback|private|\d{4,5}/);
      }
      expect(hiddenRequests).toEqual([]);
    });

    it.each([
      ['a loopback service that is not allowed', '/to-hidden'],
      ['the allowed server under another name (localhost)', '/to-localhost'],
      ['the cloud metadata address', '/to-metadata'],
    ])('checks every redirect again: an allowed host redirecting to %s is refused', async (_case, path) => {
      expect((await analyzeUrl(`${imagesUrl}${path}`)).body).toEqual(generic);
      expect(hiddenRequests).toEqual([]);
    });

    it('writes each refusal to the authorization log, with the class of address but not to the caller', async () => {
      await analyzeUrl(`http://[::ffff:169.254.169.254]/metadata/identity/oauth2/token`);
      const [latest] = test.azure.auditLog.authorizations({ limit: 1 });
      expect(latest).toMatchObject({
        resource: 'vision',
        decision: 'denied',
        identity: 'id-keyless',
        operation: expect.stringMatching(/^fetch an image URL \(request .+\)$/),
        reason: expect.stringContaining('link-local address'),
      });
    });

    it('fetches from a host:port on the allow-list, and only that one', async () => {
      const allowed = await analyzeUrl(`${imagesUrl}/product.jpg`);
      expect(allowed.status).toBe('200');
      expect((await analyzeUrl(`http://localhost:${new URL(imagesUrl).port}/product.jpg`)).body).toEqual(generic);
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

    // Image Analysis 4.0 produces only application/json (its REST spec) and does not negotiate: no 406.
    it.each(['application/xml', 'text/html'])('answers JSON whatever the Accept header, here %s', async (accept) => {
      const analysed = await post({ headers: { 'content-type': 'application/octet-stream', accept }, body: redCircle.png() });
      expect(analysed.status).toBe(200);
      expect(analysed.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await analysed.json()).toMatchObject({ captionResult: { text: expect.any(String) } });
      const refused = await post({ headers: { 'content-type': 'text/plain', accept }, body: 'hello' });
      expect(refused.status).toBe(415);
      expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await refused.json()) as ErrorBody).error.innererror?.code).toBe('UnsupportedMediaType');
    });
  });
});
