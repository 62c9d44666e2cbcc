import { Injectable, type ArgumentMetadata, type PipeTransform } from '@nestjs/common';
import { ProblemException } from './problem-details.js';

const locations: Record<string, string> = { body: 'body', query: 'query', param: 'path', custom: 'request' };

/**
 * Validates every parameter that declares a schema (`@Body({ schema })`, `@Query({ schema })`,
 * `@Param('id', { schema })`) and answers a 400 problem naming **every** invalid field with its location
 * (`body.price`, `query.limit`, `path.id`). Valid values are replaced by the schema's output (defaults,
 * coercions).
 */
@Injectable()
export class ProblemValidationPipe implements PipeTransform {
  async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (!metadata.schema || metadata.type === 'custom') return value;
    const result = await metadata.schema['~standard'].validate(value);
    if (!result.issues) return result.value;
    const location = [locations[metadata.type] ?? metadata.type, ...(metadata.data ? [metadata.data] : [])];
    const errors = result.issues.map((issue) => ({
      field: [...location, ...(issue.path ?? []).map((segment) => String(typeof segment === 'object' ? segment.key : segment))].join('.'),
      message: issue.message,
    }));
    throw new ProblemException(400, 'validation', `The request has ${errors.length} invalid field${errors.length === 1 ? '' : 's'}.`, { errors });
  }
}
