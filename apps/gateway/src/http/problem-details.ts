import { HttpException } from '@nestjs/common';

/** One invalid field of a request. */
export interface FieldProblem {
  /** Where: `body.price`, `query.limit`, `path.id`. */
  field: string;
  message: string;
}

/** An RFC 9457 problem details body. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  /** Every invalid field, for 400 validation problems. */
  errors?: FieldProblem[];
  /** The W3C trace id of the request, to find it in logs and traces. */
  traceId?: string;
  /** Found in the gateway's log lines about this failure (the trace id when there is one). */
  correlationId?: string;
  /** A stable refinement of `type` from the service behind the gateway (`product-not-indexed`, `InvalidImageUrl`). */
  reason?: string;
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * An HTTP error the gateway answers with `application/problem+json`. `type` is a stable URI per kind of
 * problem (documented in the OpenAPI document), so clients can branch on it.
 */
export class ProblemException extends HttpException {
  constructor(
    status: number,
    readonly problemType: string,
    detail: string,
    readonly extras: { errors?: FieldProblem[]; headers?: Record<string, string> } = {},
  ) {
    super(detail, status);
  }

  toProblem(instance: string, traceId?: string): ProblemDetails {
    return {
      type: `https://keyless.dev/problems/${this.problemType}`,
      title: titles[this.getStatus()] ?? 'Error',
      status: this.getStatus(),
      detail: this.message,
      instance,
      ...(this.extras.errors ? { errors: this.extras.errors } : {}),
      ...(traceId ? { traceId } : {}),
    };
  }
}

export function titleOf(status: number): string {
  return titles[status] ?? 'Error';
}
