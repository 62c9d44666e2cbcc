import { Injectable, type ArgumentMetadata, type CallHandler, type ExecutionContext, type NestInterceptor, type PipeTransform } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Request } from 'express';
import type { Observable } from 'rxjs';
import { z } from 'zod';
import { ProblemException, type FieldProblem } from './problem-details.js';

/** Nest's route parameter kinds (RouteParamtypes) that carry request data, and where they are. */
const locations: Record<number, { name: string; read: (request: Request, key?: string) => unknown }> = {
  3: { name: 'body', read: (request, key) => (key ? (request.body as Record<string, unknown>)?.[key] : request.body) },
  4: { name: 'query', read: (request, key) => (key ? request.query[key] : request.query) },
  5: { name: 'path', read: (request, key) => (key ? request.params[key] : request.params) },
};

/** The media types of a body a route with a body schema reads: what the gateway's JSON parser takes. */
const jsonTypes = ['application/json', 'application/*+json'];

/** Whether the request carries body bytes (`Content-Length` above 0, or chunked). */
function hasContent(request: Request): boolean {
  return request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length']) > 0;
}

/**
 * Query parameters no schema can read as meant, by field (`query.maxPrice`), with what to do. A schema coerces
 * text: a blank value (`?maxPrice=`, an empty form field) would become 0 and filter everything out, and a
 * repeated one (`?limit=3&limit=4`, an array) would become NaN and read "expected number, received NaN".
 */
function unusableQueryParameters(value: unknown, key: string | undefined): Map<string, string> {
  const found = new Map<string, string>();
  const entries = key ? [[key, value] as const] : typeof value === 'object' && value !== null ? Object.entries(value) : [];
  for (const [name, given] of entries) {
    if (Array.isArray(given)) found.set(`query.${name}`, 'given more than once: give it once');
    else if (given === '') found.set(`query.${name}`, 'blank: give a value, or leave the parameter out');
  }
  return found;
}

/** The text a number query parameter is read from, by form, and what to send instead of any other. */
const numberTexts = {
  integer: { pattern: /^-?\d+$/, expected: 'expected a whole number in decimal digits, such as 10' },
  decimal: { pattern: /^-?\d+(?:\.\d+)?$/, expected: 'expected a number in decimal digits, such as 25 or 9.99' },
} as const;

/**
 * A number query parameter: its text read as `schema`'s number only when it is plain decimal digits (with a sign, and
 * for `decimal` a fraction), so that `0x3`, `1e1`, ` 3` or `Infinity` — which `Number()`, and so `z.coerce`, would
 * take — are refused with what to send. A missing parameter reaches `schema` as undefined (its default applies); a
 * repeated or blank one is named by the interceptor ({@link unusableQueryParameters}). The OpenAPI document shows
 * `schema`'s own type and bounds.
 *
 * @example
 * z.strictObject({ limit: queryNumber('integer', z.number().int().min(1).default(10)) })
 */
export function queryNumber<T extends z.ZodType>(form: keyof typeof numberTexts, schema: T) {
  const { pattern, expected } = numberTexts[form];
  return z.preprocess((value, context) => {
    if (typeof value !== 'string') return value;
    if (pattern.test(value)) return Number(value);
    // An issue here ends the parse: `schema` never sees the text.
    context.addIssue({ code: 'custom', message: expected });
    return value;
  }, schema);
}

/**
 * Outputs the interceptor computed, by the raw value they came from (the request's body, query or params
 * object), so the pipe hands them to the handler without validating the same value a second time.
 */
const validated = new WeakMap<object, { schema: StandardSchemaV1; output: unknown }>();

interface RouteArgument {
  index: number;
  data?: string;
  schema?: StandardSchemaV1;
}

/**
 * Validates every parameter of a route that declares a schema (`@Body({ schema })`, `@Query({ schema })`,
 * `@Param('id', { schema })`) before the handler runs, all at once, and answers one 400 problem naming
 * **every** invalid field with its location (`path.id`, `body.price`, `query.limit`); a body schema's route
 * answers 415 to a body that is not JSON, and names `body` when there is none; a query parameter given blank or more
 * than once is named as such (see {@link unusableQueryParameters}). Runs after the guards, so an
 * unauthenticated caller learns nothing about the request's shape.
 */
@Injectable()
export class RequestValidationInterceptor implements NestInterceptor {
  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const request = context.switchToHttp().getRequest<Request>();
    // Express 5 parses the query string again on every read of `request.query`: one parse, kept on the request, is
    // what both this check and the handler's parameter see (and what lets the pipe find the output by identity).
    Object.defineProperty(request, 'query', { value: request.query, writable: true, enumerable: true, configurable: true });
    const routeArguments = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), context.getHandler().name) ?? {}) as Record<string, RouteArgument>;
    const errors: FieldProblem[] = [];
    for (const [key, argument] of Object.entries(routeArguments)) {
      const location = locations[Number(key.split(':')[0])];
      if (!location || !argument.schema) continue;
      // A body in another media type was never parsed (or was read as raw bytes): say what to send, not that
      // `body` is not an object. `curl -d` without a content type sends a form, for one.
      if (location.name === 'body' && !request.is(jsonTypes)) {
        if (hasContent(request)) throw new ProblemException(415, 'unsupported-media-type', 'Send the body as JSON, with Content-Type: application/json.');
        errors.push({ field: 'body', message: 'Required: a JSON body, with Content-Type: application/json.' });
        continue;
      }
      const value = location.read(request, argument.data);
      const unusable = location.name === 'query' ? unusableQueryParameters(value, argument.data) : new Map<string, string>();
      const result = await argument.schema['~standard'].validate(value);
      if (!result.issues && !unusable.size && typeof value === 'object' && value !== null) validated.set(value, { schema: argument.schema, output: result.value });
      for (const [field, message] of unusable) errors.push({ field, message });
      for (const issue of result.issues ?? []) {
        const path = (issue.path ?? []).map((segment) => String(typeof segment === 'object' ? segment.key : segment));
        const field = [location.name, ...(argument.data ? [argument.data] : []), ...path].join('.');
        // The schema's own words about a parameter named above ("expected number, received NaN") add nothing.
        if (!unusable.has(field)) errors.push({ field, message: issue.message });
      }
    }
    if (errors.length) throw new ProblemException(400, 'validation', `The request has ${errors.length} invalid field${errors.length === 1 ? '' : 's'}.`, { errors });
    return next.handle();
  }
}

/**
 * Replaces each schema-declaring parameter by the schema's output (defaults, coercions): the one
 * {@link RequestValidationInterceptor} computed for an object (body, query), computed here for a single
 * string (a path parameter). Invalid values never reach it: the interceptor has answered 400 already.
 */
@Injectable()
export class SchemaOutputPipe implements PipeTransform {
  async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (!metadata.schema || metadata.type === 'custom') return value;
    const known = typeof value === 'object' && value !== null ? validated.get(value) : undefined;
    if (known?.schema === metadata.schema) return known.output;
    const result = await metadata.schema['~standard'].validate(value);
    if (result.issues) throw new ProblemException(400, 'validation', 'The request is invalid.', { errors: result.issues.map((i) => ({ field: metadata.type, message: i.message })) });
    return result.value;
  }
}
