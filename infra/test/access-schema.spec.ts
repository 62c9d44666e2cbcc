import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { accessFileSchema } from './rbac-knowledge.js';

// access.json points editors at access.schema.json; it must describe what the validator accepts.
describe('infra/access.schema.json', () => {
  it('is the JSON Schema of the access-file validator (regenerate with z.toJSONSchema(accessFileSchema) if this fails)', () => {
    const committed = JSON.parse(readFileSync(new URL('../access.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    const { title: _title, description: _description, ...rest } = committed;
    expect(rest).toEqual(z.toJSONSchema(accessFileSchema, { io: 'input' }));
  });
});
