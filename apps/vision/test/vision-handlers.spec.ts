import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { encode } from 'fast-png';
import { AuthModule, AzureClientFactory } from '@keyless/auth';
import { visionDataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { MessagingClient } from '@keyless/messaging';
import { createInMemoryMessaging } from '@keyless/messaging/testing';
import { createServer, type Server } from 'node:http';
import { IMAGE_ANALYSIS_CLIENT, ImageAnalyzer } from '../src/analysis/image-analyzer.js';
import { VisionHandlers } from '../src/analysis/vision.handlers.js';

/** A 96×96 PNG: a red square on white. */
function redSquare(): Buffer {
  const data = new Uint8Array(96 * 96 * 3).fill(255);
  for (let y = 24; y < 72; y++) for (let x = 24; x < 72; x++) data.set([220, 30, 30], (y * 96 + x) * 3);
  return Buffer.from(encode({ width: 96, height: 96, data, channels: 3 }));
}

// The vision service's handlers with the real Vision client (from @keyless/auth) against the local Azure
// AI Vision, and the in-memory transport double around them.
describe(VisionHandlers.name, () => {
  let test: TestAzure;
  let app: INestApplication;
  let images: Server;
  let imageUrl: string;
  const messaging = createInMemoryMessaging({ maxAttempts: 2 });

  beforeAll(async () => {
    const png = redSquare();
    images = createServer((req, res) => (req.url === '/red.png' ? res.writeHead(200, { 'content-type': 'image/png' }).end(png) : res.writeHead(404).end()));
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
    const imageHost = `127.0.0.1:${(images.address() as { port: number }).port}`;
    imageUrl = `http://${imageHost}/red.png`;
    // A developer's image server on loopback: the local Vision fetches it only because it is allow-listed.
    test = await startTestAzure({ dataPlanes: [visionDataPlane], config: { resources: { vision: { allowedImageHosts: [imageHost] } } } });
    const env = test.enterHost('vision');

    @Module({
      imports: [AuthModule.forRoot({ clientId: env.AZURE_CLIENT_ID!, audiences: ['cognitiveServices'], resources: { vision: { endpoint: env.AZURE_VISION_ENDPOINT!, resourceId: env.AZURE_VISION_RESOURCE_ID! } } })],
      controllers: [VisionHandlers],
      providers: [
        ImageAnalyzer,
        { provide: IMAGE_ANALYSIS_CLIENT, inject: [AzureClientFactory], useFactory: (clients: AzureClientFactory) => clients.create('vision') },
        { provide: MessagingClient, useValue: messaging.client },
      ],
    })
    class VisionTestModule {}

    app = await NestFactory.create(VisionTestModule, { logger: false });
    app.connectMicroservice({ strategy: messaging.server });
    await app.startAllMicroservices();
    await app.init();
  }, 30_000);
  afterAll(async () => {
    await app?.close();
    images?.close();
    await test?.stop();
  });

  it('answers an analysis request with caption, tags and size', async () => {
    const analysis = await messaging.client.request('vision.analyze-image', { imageBase64: redSquare().toString('base64'), contentType: 'image/png' });
    expect(analysis).toMatchObject({ width: 96, height: 96, caption: { text: expect.stringMatching(/red square/) } });
    expect(analysis.tags.map((t) => t.name)).toEqual(expect.arrayContaining(['red', 'square']));
  });

  it('answers invalid-request when Vision refuses the image', async () => {
    await expect(messaging.client.request('vision.analyze-image', { imageBase64: Buffer.from('not an image').toString('base64'), contentType: 'image/png' })).rejects.toMatchObject({
      error: { code: 'invalid-request', message: expect.stringMatching(/InvalidImageFormat/) },
    });
  });

  it('analyses the image of an upserted product and publishes vision.image.analyzed', async () => {
    const product = { id: 'mug-1', name: 'Red Mug', description: '', category: 'kitchen', price: 9.5, imageUrl, available: true };
    await messaging.client.publish('catalog.product.upserted', { product, upsertedAt: new Date().toISOString() });
    expect(messaging.bus.published.at(-1)).toMatchObject({ pattern: 'vision.image.analyzed', payload: { productId: 'mug-1', imageUrl, analysis: { width: 96 } } });
  });

  it('publishes vision.image.analysis-failed, with Vision\'s code, for an image that cannot be fetched', async () => {
    const product = { id: 'mug-2', name: 'Lost Mug', description: '', category: 'kitchen', price: 9.5, imageUrl: `${imageUrl}.missing`, available: true };
    await messaging.client.publish('catalog.product.upserted', { product, upsertedAt: new Date().toISOString() });
    expect(messaging.bus.published.at(-1)).toMatchObject({ pattern: 'vision.image.analysis-failed', payload: { productId: 'mug-2', code: 'InvalidImageUrl' } });
  });

  it('does nothing for a product without an image', async () => {
    const before = messaging.bus.published.length;
    await messaging.client.publish('catalog.product.upserted', { product: { id: 'plain', name: 'Plain', description: '', category: 'x', price: 1, available: true }, upsertedAt: new Date().toISOString() });
    expect(messaging.bus.published.slice(before).map((p) => p.pattern)).toEqual(['catalog.product.upserted']);
  });

  it('retries, then dead-letters, a product image while its role is missing (AccessDeniedError is not a refused image)', async () => {
    const shared = test.azure.directory.userAssignedIdentity('id-keyless')!;
    const removed = test.azure.roleAssignments.delete({ principalId: shared.principalId, scope: test.azure.directory.resourceId('vision') });
    try {
      await expect(app.get(ImageAnalyzer).analyze({ url: imageUrl })).rejects.toMatchObject({ name: 'AccessDeniedError', role: { name: 'Cognitive Services User' } });
      const product = { id: 'mug-3', name: 'Mug', description: '', category: 'kitchen', price: 9.5, imageUrl, available: true };
      await messaging.client.publish('catalog.product.upserted', { product, upsertedAt: new Date().toISOString() });
      expect(messaging.bus.deadLettered.at(-1)).toMatchObject({ reason: 'MaxAttemptsExceeded', description: expect.stringMatching(/AccessDeniedError/) });
    } finally {
      test.azure.applyAccessFile();
    }
    expect(removed).toHaveLength(1);
    await expect(app.get(ImageAnalyzer).analyze({ url: imageUrl })).resolves.toMatchObject({ width: 96 });
  });
});
