import { HttpException, Injectable, mixin, type CallHandler, type ExecutionContext, type NestInterceptor, type Type } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import type { Request } from 'express';
import type { Observable } from 'rxjs';
import { ProblemException } from '../http/problem-details.js';

/** Limits of a multipart image upload (what one image and a few small fields need, no more). */
export const uploadLimits = {
  /** Text fields besides the file (a client may send a name or a caption; the gateway reads none). */
  fields: 4,
  /** Bytes of a text field's value. */
  fieldSize: 1024,
  /** Bytes of a field name. */
  fieldNameSize: 100,
  /** Parts in all: the file and the fields. */
  parts: 5,
  files: 1,
  /** Header lines per part. */
  headerPairs: 20,
  /** Multipart framing on top of the file and the fields. */
  overheadBytes: 16 * 1024,
};

/**
 * Parses a multipart upload with field `field` (at most `maxFileBytes`), refusing oversized and
 * over-partitioned bodies with problem details: a `Content-Length` above what the file, the fields and the
 * framing can need → 413 before anything is read; a file or field value too large → 413; too many fields,
 * parts or files, an unexpected file field, an over-long field name → 400. (A body without
 * `Content-Length` is bounded by the same part limits as it streams.) Runs after authentication, like
 * every interceptor.
 */
export function ImageUploadInterceptor(field: string, maxFileBytes: number): Type<NestInterceptor> {
  const maxBodyBytes = maxFileBytes + uploadLimits.fields * (uploadLimits.fieldSize + uploadLimits.fieldNameSize) + uploadLimits.overheadBytes;
  const Multer = FileInterceptor(field, {
    limits: {
      fileSize: maxFileBytes,
      files: uploadLimits.files,
      fields: uploadLimits.fields,
      fieldSize: uploadLimits.fieldSize,
      fieldNameSize: uploadLimits.fieldNameSize,
      parts: uploadLimits.parts,
      headerPairs: uploadLimits.headerPairs,
    },
  });

  @Injectable()
  class Upload implements NestInterceptor {
    private readonly multer = new Multer();

    async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
      const request = context.switchToHttp().getRequest<Request>();
      if (/^multipart\//i.test(request.headers['content-type'] ?? '') && Number(request.headers['content-length'] ?? 0) > maxBodyBytes) {
        throw tooLarge(maxFileBytes);
      }
      // Multer reads the whole body before the handler runs: its refusals come from here.
      try {
        return await this.multer.intercept(context, next);
      } catch (error) {
        throw toProblem(error, maxFileBytes);
      }
    }
  }
  return mixin(Upload);
}

/** Nest turns multer's errors into HTTP exceptions whose messages are multer's own (`Too many fields`, …). */
function toProblem(error: unknown, maxFileBytes: number): unknown {
  if (!(error instanceof HttpException) || error instanceof ProblemException) return error;
  const message = error.message;
  if (error.getStatus() === 413 || /too long|too large/i.test(message)) return tooLarge(maxFileBytes);
  if (error.getStatus() === 400) {
    return new ProblemException(400, 'malformed-body', `The form is not accepted (${message}): send one "image" file and at most ${uploadLimits.fields} short fields.`);
  }
  return error;
}

function tooLarge(maxFileBytes: number): ProblemException {
  return new ProblemException(
    413,
    'body-too-large',
    `The form is larger than the gateway accepts: one image of at most ${maxFileBytes} bytes and at most ${uploadLimits.fields} fields of ${uploadLimits.fieldSize} bytes.`,
  );
}
