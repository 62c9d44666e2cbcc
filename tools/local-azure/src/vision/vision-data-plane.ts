import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { DataPlane, DataPlaneContext, RunningDataPlane } from '../data-plane.js';
import { faultDefaults } from '../faults/fault-catalog.js';
import { TokenRejectedError, type Caller } from '../guard/resource-guard.js';
import { answeringClientErrors, BodyTooLargeError, listenerOptions, readBody, requestId, Router, sendJson } from '../http/http-kit.js';
import { listen } from '../net/listen.js';
import { dataActions } from '../rbac/built-in-roles.js';
import { WorkerPoolError } from '../runtime/worker-pool.js';
import type { BoundingBox, ImageReading } from './image-analyzer.js';
import { ImageDecodeError, readHeader } from './image-decoder.js';
import { fetchImage, ImageUrlError } from './image-fetcher.js';
import { ImageWorkerPool } from './image-worker-pool.js';
import { isVisionRequestError, visionErrors, type VisionRequestError } from './vision-errors.js';

/** Options of {@link createVisionDataPlane}. */
export interface VisionDataPlaneOptions {
  /** Time allowed to download a `{url}` image (connect, redirects, body). Default: 10 000 ms. */
  urlTimeoutInMs?: number;
  /** Redirects followed for a `{url}` image. Default: 3. */
  maxUrlRedirects?: number;
  /** Largest image decoded, in pixels (Azure accepts 16000×16000; decoding that takes 1 GB). Default: 40 000 000. */
  maxDecodedPixels?: number;
  /**
   * Time a decoding thread may spend on one image (decode and analysis); past it the thread is replaced and the
   * caller gets 400 `Timeout`. Default: 30 000 ms.
   */
  decodeTimeoutInMs?: number;
}

const defaults = {
  urlTimeoutInMs: 10_000,
  maxUrlRedirects: 3,
  maxDecodedPixels: 40_000_000,
  decodeTimeoutInMs: 30_000,
  /** Azure's limit: less than 20 MB (20 971 520 bytes). */
  maxImageBytes: 20_971_520,
  /** Azure's limits: larger than 50 × 50 and smaller than 16000 × 16000 pixels. */
  minDimension: 50,
  maxDimension: 16_000,
  requestTimeoutInMs: 60_000,
};

/** Image Analysis 4.0 GA api-versions. */
export const visionApiVersions: readonly string[] = ['2023-10-01', '2024-02-01'];

const knownFeatures = ['tags', 'caption', 'denseCaptions', 'objects', 'read', 'smartCrops', 'people'] as const;
type Feature = (typeof knownFeatures)[number];
/** What the local model can produce honestly: no text recognition, no people detection. */
const localFeatures: readonly Feature[] = ['tags', 'caption', 'denseCaptions', 'objects', 'smartCrops'];

interface AnalyzeParameters {
  features: Set<Feature>;
  aspectRatios: number[];
}

/**
 * The local Azure AI Vision: `POST /computervision/imageanalysis:analyze` (Image Analysis 4.0) over HTTPS,
 * behind Entra tokens and the analyze data action, with Azure's limits and error bodies and a local
 * pixel-statistics model (see `docs/local-openai-vision.md`).
 */
export function createVisionDataPlane(options: VisionDataPlaneOptions = {}): DataPlane {
  const settings: typeof defaults = {
    ...defaults,
    urlTimeoutInMs: options.urlTimeoutInMs ?? defaults.urlTimeoutInMs,
    maxUrlRedirects: options.maxUrlRedirects ?? defaults.maxUrlRedirects,
    maxDecodedPixels: options.maxDecodedPixels ?? defaults.maxDecodedPixels,
    decodeTimeoutInMs: options.decodeTimeoutInMs ?? defaults.decodeTimeoutInMs,
  };
  return {
    resource: 'vision',
    async start(context: DataPlaneContext): Promise<RunningDataPlane> {
      const decoder = new ImageWorkerPool({ timeoutInMs: settings.decodeTimeoutInMs });
      const service = new VisionService(context, settings, decoder);
      const listener = await listen(() => {
        const options = listenerOptions(context.config.network.limits, { requestTimeoutInMs: settings.requestTimeoutInMs });
        return answeringClientErrors(createServer({ cert: context.tls.certPem, key: context.tls.keyPem, ...options }, service.router().listener()), { listener: 'vision', auditLog: context.auditLog, log: context.log });
      }, context.bind);
      const endpoint = `https://${context.publicHost}:${listener.port}`;
      return {
        port: listener.port,
        env: { AZURE_VISION_ENDPOINT: endpoint, AZURE_VISION_RESOURCE_ID: context.directory.resourceId('vision') },
        endpoint,
        summary: `Azure AI Vision  ${endpoint}  (Image Analysis 4.0: ${localFeatures.join(', ')})`,
        // Together: a stop never waits for a decode in progress (its thread is terminated, its connection closed).
        stop: async () => {
          await Promise.all([listener.close(), decoder.stop()]);
        },
      };
    },
  };
}

/** The local Azure AI Vision with its defaults. */
export const visionDataPlane: DataPlane = createVisionDataPlane();

class VisionService {
  private readonly scope: string;

  constructor(
    private readonly context: DataPlaneContext,
    private readonly settings: typeof defaults,
    private readonly decoder: ImageWorkerPool,
  ) {
    this.scope = context.directory.resourceId('vision');
  }

  router(): Router {
    const notFound = (request: IncomingMessage, response: ServerResponse): void => this.fail(response, requestId(request), visionErrors.resourceNotFound());
    return new Router((line) => this.context.log(`vision: ${line}`), notFound).on('POST', /^\/computervision\/imageanalysis:analyze$/, (req, res, { url }) => this.analyze(req, res, url));
  }

  private async analyze(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const id = requestId(request);
    try {
      const caller = await this.authenticate(request);
      this.authorize(caller);
      this.throwInjectedFault();
      const parameters = this.parameters(url);
      const { bytes, downloaded } = await this.imageBytes(request, id, caller);
      if (bytes.length === 0 || bytes.length > this.settings.maxImageBytes) throw visionErrors.imageTooLarge(this.settings.maxImageBytes);
      const reading = await this.read(bytes, downloaded);
      sendJson(response, 200, result(reading, parameters), { 'apim-request-id': id, 'request-id': id, 'x-ms-region': 'local' });
    } catch (error) {
      if (!isVisionRequestError(error)) throw error;
      this.fail(response, id, error);
    }
  }

  private async authenticate(request: IncomingMessage): Promise<Caller> {
    try {
      return await this.context.guard.authenticate(request.headers.authorization, ['https://cognitiveservices.azure.com']);
    } catch (error) {
      if (!(error instanceof TokenRejectedError)) throw error;
      this.context.log(`vision: 401 for ${request.method} ${request.url}: ${error.message} (${error.reason})`);
      throw visionErrors.unauthorized();
    }
  }

  private authorize(caller: Caller): void {
    const action = dataActions.visionAnalyze;
    const decision = this.context.guard.authorize(caller, action, this.scope, { resource: 'vision', operation: 'POST /computervision/imageanalysis:analyze' });
    if (decision.allowed) return;
    const role = decision.roleNeeded?.name ?? 'Cognitive Services User';
    this.context.log(
      `vision: PermissionDenied: principal ${caller.principalId} lacks ${action} on ${this.scope}. ` +
        `Fix: az role assignment create --assignee-object-id ${caller.principalId} --assignee-principal-type ServicePrincipal --role "${role}" --scope ${this.scope}`,
    );
    throw visionErrors.permissionDenied(caller.principalId, action);
  }

  /** A `vision 429|500` fault answers every authorized request (after authentication and RBAC, as Azure's throttling does). */
  private throwInjectedFault(): void {
    const { mode } = this.context.faults.get('vision');
    if (mode === '429') throw visionErrors.rateLimited(faultDefaults.retryAfterInSeconds);
    if (mode === '500') throw visionErrors.serverError();
  }

  private parameters(url: URL): AnalyzeParameters {
    const version = url.searchParams.get('api-version');
    if (!version) throw visionErrors.resourceNotFound();
    if (!visionApiVersions.includes(version)) {
      throw visionErrors.badArgument(`The api-version '${version}' is not supported. Supported versions: ${visionApiVersions.join(', ')}.`);
    }
    const requested = (url.searchParams.get('features') ?? '').split(',').map((f) => f.trim()).filter(Boolean);
    if (!requested.length) throw visionErrors.badArgument(`The 'features' parameter is required: one or more of ${knownFeatures.join(', ')}.`);
    const features = new Set<Feature>();
    for (const name of requested) {
      const feature = knownFeatures.find((f) => f.toLowerCase() === name.toLowerCase());
      if (!feature) throw visionErrors.notSupportedFeature(`The feature '${name}' is not valid. Valid features: ${knownFeatures.join(', ')}.`);
      if (!localFeatures.includes(feature)) {
        throw visionErrors.notSupportedFeature(
          `The feature '${feature}' is not supported by the local Azure AI Vision, whose models cannot produce it honestly. Supported here: ${localFeatures.join(', ')}.`,
        );
      }
      features.add(feature);
    }
    const language = url.searchParams.get('language');
    if (language && language.toLowerCase() !== 'en') throw visionErrors.notSupportedLanguage(language);
    const neutral = url.searchParams.get('gender-neutral-caption');
    if (neutral !== null && !/^(true|false)$/i.test(neutral)) throw visionErrors.badArgument(`'gender-neutral-caption' must be true or false, not '${neutral}'.`);
    const modelVersion = url.searchParams.get('model-version');
    if (modelVersion !== null && !['latest', '2023-10-01'].includes(modelVersion)) {
      throw visionErrors.badArgument(`The model-version '${modelVersion}' is not supported. Use 'latest' or '2023-10-01'.`);
    }
    const ratios = (url.searchParams.get('smartcrops-aspect-ratios') ?? '').split(',').filter((r) => r.trim()).map(Number);
    if (ratios.some((r) => !Number.isFinite(r) || r < 0.75 || r > 1.8)) {
      throw visionErrors.badArgument("Every value of 'smartcrops-aspect-ratios' must be a number between 0.75 and 1.8.");
    }
    return { features, aspectRatios: ratios };
  }

  /** The image: the body's bytes, or what its `{url}` downloads (`downloaded`). */
  private async imageBytes(request: IncomingMessage, id: string, caller: Caller): Promise<{ bytes: Buffer; downloaded: boolean }> {
    const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const limit = this.settings.maxImageBytes;
    const read = (max: number): Promise<Buffer> =>
      readBody(request, max).catch((error: unknown) => {
        if (error instanceof BodyTooLargeError) throw visionErrors.imageTooLarge(limit);
        throw error;
      });
    if (contentType === 'application/octet-stream' || contentType.startsWith('image/')) return { bytes: await read(limit), downloaded: false };
    if (contentType !== 'application/json') throw visionErrors.unsupportedMediaType(contentType || 'none');
    let body: unknown;
    try {
      body = JSON.parse((await read(64 * 1024)).toString('utf8'));
    } catch (error) {
      if (isVisionRequestError(error)) throw visionErrors.badArgument('The JSON body must be {"url": "<image url>"} and smaller than 64 KB.');
      throw visionErrors.badArgument('The request body is not valid JSON.');
    }
    const imageUrl = (body as { url?: unknown } | null)?.url;
    if (typeof imageUrl !== 'string' || !imageUrl) throw visionErrors.badArgument('The JSON body must be {"url": "<image url>"}.');
    try {
      const bytes = await fetchImage(imageUrl, {
        timeoutInMs: this.settings.urlTimeoutInMs,
        maxBytes: limit,
        maxRedirects: this.settings.maxUrlRedirects,
        extraCaPem: this.context.tls.caCertPem,
        allowedHosts: this.context.config.resources.vision.allowedImageHosts,
      });
      return { bytes, downloaded: true };
    } catch (error) {
      if (!(error instanceof ImageUrlError)) throw error;
      if (error.reason === 'too-large') throw visionErrors.imageTooLarge(limit);
      this.refuseUrl(id, caller, error);
      throw visionErrors.inaccessibleUrl();
    }
  }

  /**
   * What went wrong with an image URL goes to the console (and, for an address that is not on the
   * internet, to the authorization log); the caller gets Azure's one generic answer, so the service
   * cannot be used to map what listens where.
   */
  private refuseUrl(id: string, caller: Caller, error: ImageUrlError): void {
    this.context.log(`vision: request ${id}: the image URL cannot be used (${error.reason}): ${error.message}`);
    if (error.reason !== 'blocked-address') return;
    const identity = this.context.directory.findIdentity(caller.principalId);
    this.context.auditLog.recordAuthorization({
      resource: 'vision',
      principalId: caller.principalId,
      ...(caller.clientId ? { clientId: caller.clientId } : {}),
      ...(identity ? { identity: identity.name } : {}),
      dataAction: dataActions.visionAnalyze,
      scope: this.scope,
      decision: 'denied',
      operation: `fetch an image URL (request ${id})`,
      reason: `the URL leads to a ${error.addressClass ?? 'non-public'} address; only internet addresses and resources.vision.allowedImageHosts are fetched`,
    });
  }

  private async read(bytes: Buffer, downloaded: boolean): Promise<ImageReading> {
    try {
      const header = readHeader(bytes);
      const { minDimension: min, maxDimension: max } = this.settings;
      if (header.width < min || header.height < min || header.width > max || header.height > max) {
        throw visionErrors.invalidDimensions(min, max, header.width, header.height);
      }
      if (header.width * header.height > this.settings.maxDecodedPixels) {
        throw visionErrors.beyondDecodingLimit(header.width, header.height, this.settings.maxDecodedPixels);
      }
      return await this.decoder.read(bytes, header);
    } catch (error) {
      if (error instanceof ImageDecodeError) throw downloaded ? visionErrors.invalidFormat() : visionErrors.invalidFormat(error.message);
      if (!(error instanceof WorkerPoolError)) throw error;
      this.context.log(`vision: an image was not analysed (${error.reason}): ${error.message}`);
      switch (error.reason) {
        case 'timeout':
          throw visionErrors.analysisTimeout(this.decoder.timeoutInMs);
        case 'memory':
          throw visionErrors.outOfMemory();
        case 'busy':
          throw visionErrors.rateLimited(faultDefaults.retryAfterInSeconds);
        default:
          throw visionErrors.serverError();
      }
    }
  }

  private fail(response: ServerResponse, id: string, error: VisionRequestError): void {
    sendJson(response, error.status, error.body, { 'apim-request-id': id, 'request-id': id, 'x-ms-error-code': error.body.error.code, ...error.headers });
  }
}

/** The Image Analysis 4.0 result: only the requested features, as Azure returns them. */
function result(reading: ImageReading, parameters: AnalyzeParameters): Record<string, unknown> {
  const { features } = parameters;
  const whole: BoundingBox = { x: 0, y: 0, w: reading.width, h: reading.height };
  return {
    modelVersion: '2023-10-01',
    metadata: { width: reading.width, height: reading.height },
    ...(features.has('caption') ? { captionResult: { text: reading.caption.text, confidence: reading.caption.confidence } } : {}),
    ...(features.has('denseCaptions')
      ? {
          denseCaptionsResult: {
            values: [
              { text: reading.caption.text, confidence: reading.caption.confidence, boundingBox: whole },
              ...reading.objects.map((o) => ({ text: `a ${o.colour} ${o.shape}`.replace(/^a ([aeiou])/, 'an $1'), confidence: o.confidence, boundingBox: o.boundingBox })),
            ],
          },
        }
      : {}),
    ...(features.has('tags') ? { tagsResult: { values: reading.tags } } : {}),
    ...(features.has('objects')
      ? { objectsResult: { values: reading.objects.map((o) => ({ boundingBox: o.boundingBox, tags: [{ name: o.shape, confidence: o.confidence }] })) } }
      : {}),
    ...(features.has('smartCrops') ? { smartCropsResult: { values: smartCrops(reading, parameters.aspectRatios) } } : {}),
  };
}

/**
 * One crop per requested aspect ratio (width / height): the largest box of that ratio inside the image,
 * centred on the objects (or the image centre). Without ratios, one crop whose ratio is the objects'
 * (clamped to Azure's 0.75–1.8).
 */
function smartCrops(reading: ImageReading, ratios: readonly number[]): { aspectRatio: number; boundingBox: BoundingBox }[] {
  const { width, height, objects } = reading;
  const focus = objects.length
    ? {
        x: Math.min(...objects.map((o) => o.boundingBox.x)),
        y: Math.min(...objects.map((o) => o.boundingBox.y)),
        right: Math.max(...objects.map((o) => o.boundingBox.x + o.boundingBox.w)),
        bottom: Math.max(...objects.map((o) => o.boundingBox.y + o.boundingBox.h)),
      }
    : { x: 0, y: 0, right: width, bottom: height };
  const chosen = ratios.length ? ratios : [Math.min(1.8, Math.max(0.75, Math.round(((focus.right - focus.x) / (focus.bottom - focus.y)) * 100) / 100))];
  const centreX = (focus.x + focus.right) / 2;
  const centreY = (focus.y + focus.bottom) / 2;
  return chosen.map((ratio) => {
    const w = Math.min(width, Math.round(height * ratio));
    const h = Math.min(height, Math.round(w / ratio));
    const x = Math.round(Math.min(Math.max(0, centreX - w / 2), width - w));
    const y = Math.round(Math.min(Math.max(0, centreY - h / 2), height - h));
    return { aspectRatio: ratio, boundingBox: { x, y, w, h } };
  });
}
