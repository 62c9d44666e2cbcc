import { Body, Controller, Get, Module, Post, Query } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR, NestFactory } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { similarQuerySchema } from '../products/products.controller.js';
import { ProblemDetailsFilter } from './problem-details.filter.js';
import { RequestValidationInterceptor, SchemaOutputPipe } from './request-validation.js';

/** A zod schema that counts how often it is asked to validate. */
function counted<T extends z.ZodType>(schema: T): T & { calls: number } {
  const wrapped = schema as T & { calls: number };
  wrapped.calls = 0;
  const standard = schema['~standard'];
  const validate = standard.validate.bind(standard);
  Object.defineProperty(wrapped, '~standard', { value: { ...standard, validate: (value: unknown) => (wrapped.calls++, validate(value)) } });
  return wrapped;
}

const querySchema = counted(z.strictObject({ limit: z.coerce.number().int().min(1).default(10), maxPrice: z.coerce.number().nonnegative().optional() }));
const bodySchema = counted(z.strictObject({ name: z.string().min(1) }));

@Controller('things')
class ThingsController {
  @Get()
  list(@Query({ schema: querySchema }) query: { limit: number; maxPrice?: number }): { limit: number; maxPrice?: number } {
    return query;
  }

  @Get('similar')
  similar(@Query({ schema: similarQuerySchema }) query: z.output<typeof similarQuerySchema>): z.output<typeof similarQuerySchema> {
    return query;
  }

  @Post()
  create(@Body({ schema: bodySchema }) body: { name: string }): { name: string } {
    return body;
  }
}

@Module({ controllers: [ThingsController], providers: [
    { provide: APP_INTERCEPTOR, useClass: RequestValidationInterceptor },
    { provide: APP_FILTER, useClass: ProblemDetailsFilter },
  ],
 })
class ThingsModule {}

describe(RequestValidationInterceptor.name, () => {
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    app = await NestFactory.create(ThingsModule, { logger: false });
    app.useGlobalPipes(new SchemaOutputPipe());
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });
  afterAll(() => app.close());
  beforeEach(() => {
    querySchema.calls = 0;
    bodySchema.calls = 0;
  });

  describe('when the request is valid', () => {
    it('validates the query once and hands the handler its output (defaults, coercions)', async () => {
      expect(await (await fetch(`${base}/things?limit=7`)).json()).toEqual({ limit: 7 });
      expect(await (await fetch(`${base}/things`)).json()).toEqual({ limit: 10 });
      expect(querySchema.calls).toBe(2);
    });

    it('validates the body once', async () => {
      const response = await fetch(`${base}/things`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x' }) });
      expect(await response.json()).toEqual({ name: 'x' });
      expect(bodySchema.calls).toBe(1);
    });
  });

  describe('when the body is not JSON', () => {
    it('answers 415 to a body in another media type, even one a parser read (a form, as `curl -d` sends)', async () => {
      for (const [contentType, body] of [['application/x-www-form-urlencoded', 'name=x'], ['text/plain', 'hello']]) {
        const response = await fetch(`${base}/things`, { method: 'POST', headers: { 'content-type': contentType! }, body });
        expect([contentType, response.status, await response.json()]).toEqual([
          contentType,
          415,
          expect.objectContaining({ type: 'https://keyless.dev/problems/unsupported-media-type', detail: 'Send the body as JSON, with Content-Type: application/json.' }),
        ]);
      }
      expect(bodySchema.calls).toBe(0);
    });

    it('names the missing body', async () => {
      const response = await fetch(`${base}/things`, { method: 'POST' });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ errors: [{ field: 'body', message: 'Required: a JSON body, with Content-Type: application/json.' }] });
    });
  });

  describe('when the request is invalid', () => {
    it('answers 400 before the handler, naming the field', async () => {
      const response = await fetch(`${base}/things?limit=0`);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ status: 400, errors: [{ field: 'query.limit' }] });
      expect(querySchema.calls).toBe(1);
    });
  });

  describe('when a query parameter is blank or repeated', () => {
    const problemOf = async (query: string): Promise<[number, unknown]> => {
      const response = await fetch(`${base}/things?${query}`);
      return [response.status, await response.json()];
    };

    it('refuses a blank value, which a coercing schema would read as 0', async () => {
      expect(await problemOf('maxPrice=')).toEqual([
        400,
        expect.objectContaining({ type: 'https://keyless.dev/problems/validation', errors: [{ field: 'query.maxPrice', message: 'blank: give a value, or leave the parameter out' }] }),
      ]);
    });

    it('refuses a repeated parameter with one error that says so, not the schema\'s "received NaN"', async () => {
      expect(await problemOf('limit=3&limit=4')).toEqual([400, expect.objectContaining({ errors: [{ field: 'query.limit', message: 'given more than once: give it once' }] })]);
    });

    it('says what a number parameter takes when its text is not a number (the similar-products query)', async () => {
      const response = await fetch(`${base}/things/similar?limit=ten&maxPrice=cheap`);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { errors: unknown }).errors).toEqual([
        { field: 'query.limit', message: 'expected a whole number in decimal digits, such as 10' },
        { field: 'query.maxPrice', message: 'expected a number in decimal digits, such as 25 or 9.99' },
      ]);
    });

    it('names every invalid parameter, the schema\'s refusals beside these', async () => {
      const [status, body] = await problemOf('limit=0&maxPrice=');
      expect(status).toBe(400);
      expect((body as { errors: { field: string }[] }).errors.map((e) => e.field).sort()).toEqual(['query.limit', 'query.maxPrice']);
    });
  });

  describe('when a number query parameter is not in plain decimal digits', () => {
    const errorsOf = async (query: string): Promise<[number, unknown]> => {
      const response = await fetch(`${base}/things/similar?${query}`);
      return [response.status, ((await response.json()) as { errors?: unknown }).errors];
    };

    // Each is text Number() reads as a number, and so a coercing schema did: 0x3 as 3, 1e1 as 10.
    it.each(['0x3', '1e1', '0b11', '3.0', '+3', '%203', 'Infinity'])('refuses limit=%s with what to send', async (limit) => {
      expect(await errorsOf(`limit=${limit}`)).toEqual([400, [{ field: 'query.limit', message: 'expected a whole number in decimal digits, such as 10' }]]);
    });

    it.each(['1e1', '0x10', '.5', '5.', 'Infinity'])('refuses the price maxPrice=%s with what to send', async (maxPrice) => {
      expect(await errorsOf(`maxPrice=${maxPrice}`)).toEqual([400, [{ field: 'query.maxPrice', message: 'expected a number in decimal digits, such as 25 or 9.99' }]]);
    });

    it('takes decimal digits, a fraction in a price, and leaves a negative number to the range check', async () => {
      expect(await (await fetch(`${base}/things/similar?limit=007&maxPrice=9.99`)).json()).toEqual({ limit: 7, maxPrice: 9.99 });
      expect(await errorsOf('limit=-1&maxPrice=-5')).toEqual([
        400,
        [
          { field: 'query.limit', message: expect.stringMatching(/>=\s*1/) },
          { field: 'query.maxPrice', message: expect.stringMatching(/>=\s*0/) },
        ],
      ]);
    });
  });
});
