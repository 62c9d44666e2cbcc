/**
 * Why the local Azure AI Vision refused a request (the top-level or inner `code` Azure answers with).
 * - `Unauthorized`: no token, or one that does not verify (401).
 * - `PermissionDenied`: the caller lacks the analyze data action (401, as Azure reports it).
 * - `ResourceNotFound`: no such route, or no `api-version` (404).
 * - `InvalidImageSize`: zero bytes, over 20 MB, dimensions outside 50–16000 px, or over the local decoding limit (400).
 * - `InvalidImageFormat`: bytes that are not an image the service decodes (400).
 * - `Timeout`: decoding and reading the image took longer than the local time budget (400: the same image would again).
 * - `FailedToProcess`: decoding the image needed more memory than the local decoding thread has (400).
 * - `InvalidImageUrl`: a URL that is not http(s), points to an address not on the internet, or cannot be
 *   fetched in time (400; one message for every reason, which goes to the log).
 * - `NotSupportedFeature`: an unknown feature, or one the local model cannot produce honestly (400).
 * - `NotSupportedLanguage`: a language other than English (400).
 * - `BadArgument`: a missing or malformed parameter or body (400).
 * - `UnsupportedMediaType`: a content type that is neither JSON nor binary (415).
 * - `RateLimited`: a `429` fault is injected, or too many images wait to be decoded (429 with `Retry-After`).
 * - `InternalServerError`: a `500` fault is injected, or the decoding thread failed (500).
 */
export type VisionErrorCode =
  | 'Unauthorized'
  | 'PermissionDenied'
  | 'ResourceNotFound'
  | 'InvalidImageSize'
  | 'InvalidImageFormat'
  | 'InvalidImageUrl'
  | 'Timeout'
  | 'FailedToProcess'
  | 'NotSupportedFeature'
  | 'NotSupportedLanguage'
  | 'BadArgument'
  | 'UnsupportedMediaType'
  | 'RateLimited'
  | 'InternalServerError';

/** A refusal with the status and body Azure AI Vision answers it with (`x-ms-error-code` carries the top code). */
export class VisionRequestError extends Error {
  override readonly name = 'VisionRequestError';

  constructor(
    readonly code: VisionErrorCode,
    readonly status: number,
    /** `{ error: { code, message, innererror? } }`, exactly as sent. */
    readonly body: { error: { code: string; message: string; innererror?: { code: string; message: string } } },
    readonly headers: Record<string, string> = {},
  ) {
    super(body.error.innererror?.message ?? body.error.message);
  }
}

export function isVisionRequestError(error: unknown): error is VisionRequestError {
  return error instanceof Error && error.name === 'VisionRequestError';
}

/** 400 `InvalidRequest` with an inner error, the shape of Image Analysis 4.0 validation errors. */
function invalidRequest(code: VisionErrorCode, message: string, innerMessage = message, status = 400): VisionRequestError {
  return new VisionRequestError(code, status, { error: { code: 'InvalidRequest', message, innererror: { code, message: innerMessage } } });
}

export const visionErrors = {
  unauthorized: () =>
    new VisionRequestError('Unauthorized', 401, {
      error: { code: '401', message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.' },
    }),
  permissionDenied: (principalId: string, dataAction: string) =>
    new VisionRequestError('PermissionDenied', 401, {
      error: {
        code: 'PermissionDenied',
        message: `The principal \`${principalId}\` lacks the required data action \`${dataAction}\` to perform \`POST /computervision/imageanalysis:analyze\` operation.`,
      },
    }),
  resourceNotFound: () => new VisionRequestError('ResourceNotFound', 404, { error: { code: '404', message: 'Resource not found' } }),
  // Azure's own body for a size violation has no inner error.
  imageTooLarge: (maxBytes: number) =>
    new VisionRequestError('InvalidImageSize', 400, {
      error: { code: 'InvalidRequest', message: `The image size is not allowed to be zero or larger than ${maxBytes} bytes.` },
    }),
  invalidDimensions: (min: number, max: number, width: number, height: number) =>
    invalidRequest(
      'InvalidImageSize',
      `The image dimension is not allowed to be smaller than ${min} and larger than ${max}.`,
      `The image dimension is not allowed to be smaller than ${min} and larger than ${max}. The image is ${width}x${height}.`,
    ),
  beyondDecodingLimit: (width: number, height: number, maxPixels: number) =>
    invalidRequest(
      'InvalidImageSize',
      `The image of ${width}x${height} pixels exceeds the local Azure AI Vision's decoding limit of ${maxPixels} pixels (Azure itself accepts up to 16000x16000).`,
    ),
  /** `detail` (what the decoder found) only for bytes the caller sent; a downloaded image's server is none of the caller's business. */
  invalidFormat: (detail?: string) =>
    invalidRequest('InvalidImageFormat', 'Image format is not valid.', detail ? `Input data is not a valid image: ${detail}` : 'Input data is not a valid image.'),
  /** 400, not a 5xx: the SDKs retry those, and the same image would take as long again. */
  analysisTimeout: (budgetInMs: number) =>
    invalidRequest('Timeout', `The image could not be analyzed within the local Azure AI Vision's time budget of ${budgetInMs / 1000} seconds.`),
  outOfMemory: () => invalidRequest('FailedToProcess', "Decoding the image needs more memory than the local Azure AI Vision's decoder allows."),
  /** The same answer whatever went wrong (refused address, connection error, HTTP status): the reason goes to the log only. */
  inaccessibleUrl: () => invalidRequest('InvalidImageUrl', 'The provided image url is not accessible.'),
  notSupportedFeature: (message: string) => invalidRequest('NotSupportedFeature', message),
  notSupportedLanguage: (language: string) =>
    invalidRequest('NotSupportedLanguage', `The language '${language}' is not supported. The local Azure AI Vision analyzes in English only ('en').`),
  badArgument: (message: string) => invalidRequest('BadArgument', message),
  rateLimited: (retryAfterInSeconds: number) =>
    new VisionRequestError(
      'RateLimited',
      429,
      { error: { code: '429', message: `Rate limit is exceeded. Try again in ${retryAfterInSeconds} seconds.` } },
      { 'retry-after': String(retryAfterInSeconds) },
    ),
  serverError: () => new VisionRequestError('InternalServerError', 500, { error: { code: 'InternalServerError', message: 'An unexpected error occurred.' } }),
  unsupportedMediaType: (contentType: string) =>
    invalidRequest('UnsupportedMediaType', `The content type '${contentType}' is not supported. Send 'application/json' with {"url": "..."} or 'application/octet-stream' with the image bytes.`, undefined, 415),
};
