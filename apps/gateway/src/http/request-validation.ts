import { Injectable, type ArgumentMetadata, type CallHandler, type ExecutionContext, type NestInterceptor, type PipeTransform } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Request } from 'express';
import type { Observable } from 'rxjs';
import { ProblemException, type FieldProblem } from './problem-details.js';

/** Nest's route parameter kinds (RouteParamtypes) that carry request data, and where they are. */
const locations: Record<number, { name: string; read: (request: Request, key?: string) => unknown }> = {
  3: { name: 'body', read: (request, key) => (key ? (request.body as Record<string, unknown>)?.[key] : request.body) },
  4: { name: 'query', read: (request, key) => (key ? request.query[key] : request.query) },
  5: { name: 'path', read: (request, key) => (key ? request.params[key] : request.params) },
};

interface RouteArgument {
  index: number;
  data?: string;
  schema?: StandardSchemaV1;
}

/**
 * Validates every parameter of a route that declares a schema (`@Body({ schema })`, `@Query({ schema })`,
 * `@Param('id', { schema })`) before the handler runs, all at once, and answers one 400 problem naming
 * **every** invalid field with its location (`path.id`, `body.price`, `query.limit`). Runs after the
 * guards, so an unauthenticated caller learns nothing about the request's shape.
 */
@Injectable()
export class RequestValidationInterceptor implements NestInterceptor {
  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const request = context.switchToHttp().getRequest<Request>();
    const routeArguments = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), context.getHandler().name) ?? {}) as Record<string, RouteArgument>;
    const errors: FieldProblem[] = [];
    for (const [key, argument] of Object.entries(routeArguments)) {
      const location = locations[Number(key.split(':')[0])];
      if (!location || !argument.schema) continue;
      const result = await argument.schema['~standard'].validate(location.read(request, argument.data));
      for (const issue of result.issues ?? []) {
        const path = (issue.path ?? []).map((segment) => String(typeof segment === 'object' ? segment.key : segment));
        errors.push({ field: [location.name, ...(argument.data ? [argument.data] : []), ...path].join('.'), message: issue.message });
      }
    }
    if (errors.length) throw new ProblemException(400, 'validation', `The request has ${errors.length} invalid field${errors.length === 1 ? '' : 's'}.`, { errors });
    return next.handle();
  }
}

/**
 * Replaces each schema-declaring parameter by the schema's output (defaults, coercions). Invalid values never
 * reach it: {@link RequestValidationInterceptor} has answered 400 already.
 */
@Injectable()
export class SchemaOutputPipe implements PipeTransform {
  async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (!metadata.schema || metadata.type === 'custom') return value;
    const result = await metadata.schema['~standard'].validate(value);
    if (result.issues) throw new ProblemException(400, 'validation', 'The request is invalid.', { errors: result.issues.map((i) => ({ field: metadata.type, message: i.message })) });
    return result.value;
  }
}
