import { randomUUID } from 'node:crypto';
import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { trace } from '@opentelemetry/api';
import type { Request, Response } from 'express';
import { isAccessDeniedError } from '@keyless/auth';
import { InvalidReplyError, isMessagingError, isTransientSendError, RequestTimeoutError, type RemoteErrorPayload } from '@keyless/messaging';
import { ProblemException, titleOf, type ProblemDetails } from './problem-details.js';

/** Seconds a client should wait before retrying after a 503 (downstream or Azure access unavailable). */
const retryAfterSeconds = 5;

/**
 * What a caller is told for a downstream error, by the handler's stable `reason`: fixed texts, never the
 * handler's own message (which may name hosts, addresses, connection errors, internal state).
 */
const safeDetails: Record<string, string> = {
  'product-not-found': 'No product with this id.',
  'product-not-indexed': 'The product is not indexed yet; try again shortly.',
  'no-indexed-products': 'None of the viewed products is indexed yet, and no query was given.',
  InvalidImageUrl: 'Azure AI Vision cannot download the image: give a public http(s) URL of an image, or upload the image.',
  InvalidImageFormat: 'The data is not an image Azure AI Vision reads (JPEG, PNG, GIF, BMP, WEBP).',
  InvalidImageSize: 'The image is empty, larger than 20 MB, or outside 50–16000 pixels in width or height.',
};

/**
 * Turns every error into RFC 9457 problem details (`application/problem+json`):
 * - {@link ProblemException} (validation, auth, rate limit, size and media type) as raised;
 * - a remote handler's error code: `not-found` → 404, `invalid-request` → 400, `access-denied` and
 *   `dependency-unavailable` → 503, `internal` → 502, with a fixed text (per known `reason`, else per code):
 *   the handler's own message and details go to the log only;
 * - a reply that breaks its contract → 502;
 * - no reply in time → 504; the gateway's own Service Bus access failing → 503 (the access diagnostic goes
 *   to the log, never into the response); a send that failed transiently (connection lost or refused) → 503;
 * - Nest's HTTP errors (unknown route, body too large or malformed) with their status; a path parameter that is not
 *   valid percent-encoding → 400 `validation`;
 * - anything else → 500, logged with its stack.
 *
 * Every body carries a `correlationId` (the trace id when there is one) that the log lines of the same
 * failure carry too.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly log = new Logger('Problems');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    const traceId = trace.getActiveSpan()?.spanContext().traceId;
    // The handle on the log lines that hold what the caller is not told.
    const correlationId = traceId ?? randomUUID();
    const where = `${request.method} ${request.originalUrl} [correlation ${correlationId}]`;
    const problem = this.toProblem(exception, request, where);
    const body: ProblemDetails = { ...problem.body, instance: request.originalUrl, correlationId, ...(traceId ? { traceId } : {}) };
    if (body.status >= 500) this.log.error(`${where} → ${body.status}: ${body.detail ?? body.title}`);
    response
      .status(body.status)
      .set({ 'content-type': 'application/problem+json', ...problem.headers })
      .send(JSON.stringify(body));
  }

  private toProblem(exception: unknown, request: Request, where: string): { body: ProblemDetails; headers?: Record<string, string> } {
    if (exception instanceof ProblemException) {
      return { body: exception.toProblem(request.originalUrl), ...(exception.extras.headers ? { headers: exception.extras.headers } : {}) };
    }
    if (exception instanceof RpcException) return this.remote(exception.getError() as RemoteErrorPayload, where);
    if (exception instanceof InvalidReplyError) {
      this.log.error(`${where}: ${exception.message}`);
      return { body: problem(502, 'downstream-error', 'A service behind the gateway answered with something the gateway cannot use.') };
    }
    if (exception instanceof RequestTimeoutError) {
      return { body: problem(504, 'downstream-timeout', `The ${serviceOf(exception.pattern)} service did not answer within ${exception.timeoutInMs} ms.`) };
    }
    if (isAccessDeniedError(exception)) {
      this.log.error(`${where}: the gateway's identity was denied: ${exception.message}`);
      return { body: problem(503, 'azure-access-unavailable', 'The gateway cannot reach Azure Service Bus right now.'), headers: { 'retry-after': `${retryAfterSeconds}` } };
    }
    // A connection lost or refused on the way to Service Bus (the broker restarting, the network dropping it) is an
    // outage of the bus, whatever shape the SDK gave the error: 503, never a 500.
    if (isMessagingError(exception) || (exception as { name?: string })?.name === 'ServiceBusError' || isTransientSendError(exception)) {
      this.log.error(`${where}: Service Bus: ${(exception as Error).message}`);
      // A publish that timed out is not known to have failed: the broker may still commit it.
      const detail = isMessagingError(exception) && exception.code === 'PublishTimeout'
        ? 'Service Bus did not confirm the change in time; it may still be applied, and retrying it is safe.'
        : 'Messaging is unavailable right now.';
      return { body: problem(503, 'messaging-unavailable', detail), headers: { 'retry-after': `${retryAfterSeconds}` } };
    }
    if (exception instanceof HttpException && isParserError(exception.cause)) {
      // Nest's Express adapter hands body-parser's errors over as HttpExceptions carrying the parser's own error.
      return this.toProblem(exception.cause, request, where);
    }
    if (exception instanceof HttpException) {
      // Nest's own: an unknown route (whose text echoes the method and path: `instance` carries them already). (A
      // readiness check that is down never gets here: the health controller's own filter answers Terminus' result.)
      const status = exception.getStatus();
      if (status === 404) return { body: problem(404, 'not-found', 'No operation of this API matches the method and path; /docs lists them.') };
      return { body: problem(status, 'http-error', exception.message) };
    }
    if (exception instanceof URIError) {
      // Express's router could not percent-decode a path parameter (`/v1/products/%E0%A4%A`): the path is what is wrong, not the body.
      this.log.warn(`${where} → 400: ${exception.message}`);
      return { body: { ...problem(400, 'validation', 'The request has 1 invalid field.'), errors: [{ field: 'path', message: 'not valid percent-encoding (UTF-8)' }] } };
    }
    const status = Number((exception as { status?: unknown })?.status);
    if (status >= 400 && status < 500) {
      // Body-parser errors (too large, malformed JSON, aborted) carry their own status; their texts stay in the log.
      const type = (exception as { type?: string }).type;
      this.log.warn(`${where} → ${status}: ${(exception as Error).message}`);
      if (type === 'entity.too.large') return { body: problem(status, 'body-too-large', 'The request body is larger than the gateway accepts.') };
      if (type === 'charset.unsupported') return { body: problem(415, 'unsupported-media-type', 'Send JSON in UTF-8: Content-Type: application/json, with no charset or charset=utf-8.') };
      if (type === 'encoding.unsupported') return { body: problem(415, 'unsupported-media-type', 'The body’s Content-Encoding is not one the gateway reads: send it as is, or gzip, deflate, br or zstd.') };
      return { body: problem(status, 'malformed-body', type === 'entity.parse.failed' ? 'The request body is not valid JSON.' : 'The request body cannot be read.') };
    }
    this.log.error(`${where}: unexpected error: ${(exception as Error)?.stack ?? String(exception)}`);
    return { body: problem(500, 'internal', 'Something went wrong in the gateway; the correlation id finds it in the logs.') };
  }

  /**
   * A downstream handler's error: a stable type per code, and a fixed text per `reason` (or per code). The
   * handler's message and field details go to the log under the correlation id, never to the caller.
   */
  private remote(error: RemoteErrorPayload, where: string): { body: ProblemDetails; headers?: Record<string, string> } {
    const reason = error.reason && safeDetails[error.reason] ? error.reason : undefined;
    const cause = `${error.code}${error.reason ? ` (${error.reason})` : ''}: ${error.message}${error.details?.length ? ` ${JSON.stringify(error.details)}` : ''}`;
    switch (error.code) {
      case 'not-found':
        this.log.log(`${where}: downstream ${cause}`);
        return { body: withReason(problem(404, 'not-found', reason ? safeDetails[reason]! : 'The requested resource was not found.'), reason) };
      case 'invalid-request':
        this.log.warn(`${where}: downstream ${cause}`);
        return { body: withReason(problem(400, 'invalid-request', reason ? safeDetails[reason]! : 'A service behind the gateway refused the request as invalid.'), reason) };
      case 'access-denied':
        this.log.error(`${where}: a downstream service was denied access to Azure: ${error.message} (its log has the diagnostic and the fix)`);
        return { body: problem(503, 'azure-access-unavailable', 'A service behind the gateway cannot reach an Azure resource right now.'), headers: { 'retry-after': `${retryAfterSeconds}` } };
      case 'dependency-unavailable':
        this.log.warn(`${where}: downstream ${cause}`);
        return { body: problem(503, 'dependency-unavailable', 'A service behind the gateway is unavailable right now.'), headers: { 'retry-after': `${retryAfterSeconds}` } };
      default:
        this.log.error(`${where}: downstream ${cause}`);
        return { body: problem(502, 'downstream-error', 'A service behind the gateway failed to answer the request.') };
    }
  }
}

/**
 * An error of body-parser (or raw-body under it): a 4xx `status`, and a `type` such as `entity.parse.failed` — none
 * when the body fails to decompress (zlib's own error, given a status).
 */
function isParserError(cause: unknown): boolean {
  const { type, status } = (cause ?? {}) as { type?: unknown; status?: unknown };
  return typeof type === 'string' || (cause instanceof Error && Number(status) >= 400 && Number(status) < 500);
}

function problem(status: number, type: string, detail: string): ProblemDetails {
  return { type: `https://keyless.dev/problems/${type}`, title: titleOf(status), status, detail };
}

function withReason(body: ProblemDetails, reason: string | undefined): ProblemDetails {
  return reason ? { ...body, reason } : body;
}

function serviceOf(pattern: string): string {
  return pattern.split('.')[0] ?? 'downstream';
}
