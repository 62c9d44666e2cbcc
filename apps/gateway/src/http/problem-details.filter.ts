import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { trace } from '@opentelemetry/api';
import type { Request, Response } from 'express';
import { isAccessDeniedError } from '@keyless/auth';
import { isMessagingError, RequestTimeoutError, type RemoteErrorPayload } from '@keyless/messaging';
import { ProblemException, titleOf, type ProblemDetails } from './problem-details.js';

/** Seconds a client should wait before retrying after a 503 (downstream or Azure access unavailable). */
const retryAfterSeconds = 5;

/**
 * Turns every error into RFC 9457 problem details (`application/problem+json`):
 * - {@link ProblemException} (validation, auth, rate limit, size and media type) as raised;
 * - a remote handler's error code: `not-found` → 404, `invalid-request` → 400, `access-denied` and
 *   `dependency-unavailable` → 503, `internal` → 502;
 * - no reply in time → 504; the gateway's own Service Bus access failing → 503 (the access diagnostic goes
 *   to the log, never into the response);
 * - Nest's HTTP errors (unknown route, body too large or malformed) with their status;
 * - anything else → 500, logged with its stack.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly log = new Logger('Problems');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    const problem = this.toProblem(exception, request);
    const traceId = trace.getActiveSpan()?.spanContext().traceId;
    const body: ProblemDetails = { ...problem.body, instance: request.originalUrl, ...(traceId ? { traceId } : {}) };
    if (body.status >= 500) this.log.error(`${request.method} ${request.originalUrl} → ${body.status}: ${body.detail ?? body.title}`);
    response
      .status(body.status)
      .set({ 'content-type': 'application/problem+json', ...problem.headers })
      .send(JSON.stringify(body));
  }

  private toProblem(exception: unknown, request: Request): { body: ProblemDetails; headers?: Record<string, string> } {
    if (exception instanceof ProblemException) {
      return { body: exception.toProblem(request.originalUrl), ...(exception.extras.headers ? { headers: exception.extras.headers } : {}) };
    }
    if (exception instanceof RpcException) return this.remote(exception.getError() as RemoteErrorPayload);
    if (exception instanceof RequestTimeoutError) {
      return { body: problem(504, 'downstream-timeout', `The ${serviceOf(exception.pattern)} service did not answer within ${exception.timeoutInMs} ms.`) };
    }
    if (isAccessDeniedError(exception)) {
      this.log.error(`the gateway's identity was denied: ${exception.message}`);
      return { body: problem(503, 'azure-access-unavailable', 'The gateway cannot reach Azure Service Bus right now.'), headers: { 'retry-after': `${retryAfterSeconds}` } };
    }
    if (isMessagingError(exception) || (exception as { name?: string })?.name === 'ServiceBusError') {
      this.log.error(`Service Bus: ${(exception as Error).message}`);
      return { body: problem(503, 'messaging-unavailable', 'Messaging is unavailable right now.'), headers: { 'retry-after': `${retryAfterSeconds}` } };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      return { body: problem(status, status === 404 ? 'not-found' : 'http-error', exception.message) };
    }
    const status = Number((exception as { status?: unknown })?.status);
    if (status >= 400 && status < 500) {
      // Body-parser errors (too large, malformed JSON) carry their own status.
      const type = (exception as { type?: string }).type;
      const detail = type === 'entity.too.large' ? 'The request body is larger than the gateway accepts.' : type === 'entity.parse.failed' ? 'The request body is not valid JSON.' : (exception as Error).message;
      return { body: problem(status, type === 'entity.too.large' ? 'body-too-large' : 'malformed-body', detail) };
    }
    this.log.error(`unexpected error: ${(exception as Error)?.stack ?? String(exception)}`);
    return { body: problem(500, 'internal', 'Something went wrong in the gateway; the trace id finds it in the logs.') };
  }

  private remote(error: RemoteErrorPayload): { body: ProblemDetails; headers?: Record<string, string> } {
    switch (error.code) {
      case 'not-found':
        return { body: problem(404, 'not-found', error.message) };
      case 'invalid-request':
        return {
          body: {
            ...problem(400, 'invalid-request', error.message),
            ...(error.details ? { errors: error.details.map((d) => ({ field: d.path, message: d.message })) } : {}),
          },
        };
      case 'access-denied':
        this.log.error(`a downstream service was denied access to Azure: ${error.message} (its log has the diagnostic and the fix)`);
        return { body: problem(503, 'azure-access-unavailable', 'A service behind the gateway cannot reach an Azure resource right now.'), headers: { 'retry-after': `${retryAfterSeconds}` } };
      case 'dependency-unavailable':
        return { body: problem(503, 'dependency-unavailable', 'A service behind the gateway is unavailable right now.'), headers: { 'retry-after': `${retryAfterSeconds}` } };
      default:
        this.log.error(`downstream error: ${error.message}`);
        return { body: problem(502, 'downstream-error', 'A service behind the gateway failed to answer the request.') };
    }
  }
}

function problem(status: number, type: string, detail: string): ProblemDetails {
  return { type: `https://keyless.dev/problems/${type}`, title: titleOf(status), status, detail };
}

function serviceOf(pattern: string): string {
  return pattern.split('.')[0] ?? 'downstream';
}
