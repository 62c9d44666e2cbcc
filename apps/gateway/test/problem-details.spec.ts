import { Controller, Get, Module, NotFoundException, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RpcException } from '@nestjs/microservices';
import { AccessDeniedError } from '@keyless/auth';
import { InvalidReplyError, RequestTimeoutError } from '@keyless/messaging';
import { RecordingLogger } from '@keyless/testing';
import { ProblemDetailsFilter } from '../src/http/problem-details.filter.js';
import { ProblemException } from '../src/http/problem-details.js';

const sendDenied = new AccessDeniedError({
  principal: { clientId: 'c-1', objectId: '1234', type: 'ServicePrincipal' },
  resource: 'serviceBus',
  dataAction: 'Microsoft.ServiceBus/namespaces/messages/send/action',
  role: { name: 'Azure Service Bus Data Sender', id: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' },
  scope: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns/topics/events',
  fixCommand: 'az role assignment create --assignee-object-id 1234 --assignee-principal-type ServicePrincipal --role "Azure Service Bus Data Sender" --scope /subscriptions/s',
  localFixCommand: 'npm run local-azure -- role assignment create --assignee-object-id 1234 …',
  detail: 'UnauthorizedAccess',
});

@Controller()
class ThrowingController {
  @Get('remote/:code') remote(): never {
    throw new RpcException({ code: 'not-found', message: 'No product "x".' });
  }
  @Get('remote-not-indexed') notIndexed(): never {
    throw new RpcException({ code: 'not-found', reason: 'product-not-indexed', message: 'Product "x" is not indexed yet (pending).' });
  }
  @Get('remote-image-url') imageUrl(): never {
    throw new RpcException({
      code: 'invalid-request',
      reason: 'InvalidImageUrl',
      message: 'The image was refused: InvalidImageUrl: connect ECONNREFUSED 127.0.0.1:7071',
      details: [{ path: 'url', message: 'http://127.0.0.1:7071/admin is not an image' }],
    });
  }
  @Get('remote-unknown-reason') unknownReason(): never {
    throw new RpcException({ code: 'invalid-request', reason: 'SomethingNew', message: 'internal state 0xdeadbeef' });
  }
  @Get('invalid-reply') invalidReply(): never {
    throw new InvalidReplyError('recommendation.get-product', 'm-9', [{ path: 'data.product', message: 'Required' }]);
  }
  @Get('remote-denied') denied(): never {
    throw new RpcException({ code: 'access-denied', message: 'principal 1234 lacks a role' });
  }
  @Get('remote-unavailable') unavailable(): never {
    throw new RpcException({ code: 'dependency-unavailable', message: 'OpenAI answered 429' });
  }
  @Get('remote-internal') internal(): never {
    throw new RpcException({ code: 'internal', message: 'TypeError in the handler' });
  }
  @Get('timeout') timeout(): never {
    throw new RequestTimeoutError('vision.analyze-image', 'vision-requests', 4000, 'm-1');
  }
  @Get('own-access') ownAccess(): never {
    throw sendDenied;
  }
  @Get('problem') problem(): never {
    throw new ProblemException(429, 'rate-limited', 'slow down', { headers: { 'retry-after': '7' } });
  }
  @Get('http') http(): never {
    throw new NotFoundException('gone');
  }
  @Get('bus-connection-lost') busConnectionLost(): never {
    // What a publish rejects with while the broker resets connections: rhea-promise's bare error.
    throw new Error('Failed to connect');
  }
  @Get('bug') bug(): never {
    throw new TypeError('cannot read properties of undefined');
  }
}

@Module({ controllers: [ThrowingController] })
class TestModule {}

// Through real HTTP: the status, the content type and the body a client gets for each kind of failure.
describe(ProblemDetailsFilter.name, () => {
  let app: INestApplication;
  let base: string;
  const logger = new RecordingLogger();

  beforeAll(async () => {
    app = await NestFactory.create(TestModule, { logger });
    app.useGlobalFilters(new ProblemDetailsFilter());
    await app.listen(0, '127.0.0.1');
    base = await app.getUrl();
  });
  afterAll(() => app.close());

  it.each([
    ['/remote/not-found', 404, 'not-found'],
    ['/remote-not-indexed', 404, 'not-found'],
    ['/remote-image-url', 400, 'invalid-request'],
    ['/invalid-reply', 502, 'downstream-error'],
    ['/remote-denied', 503, 'azure-access-unavailable'],
    ['/remote-unavailable', 503, 'dependency-unavailable'],
    ['/remote-internal', 502, 'downstream-error'],
    ['/timeout', 504, 'downstream-timeout'],
    ['/own-access', 503, 'azure-access-unavailable'],
    ['/problem', 429, 'rate-limited'],
    ['/http', 404, 'not-found'],
    ['/bus-connection-lost', 503, 'messaging-unavailable'],
    ['/bug', 500, 'internal'],
  ])('%s → %i %s', async (path, status, type) => {
    const response = await fetch(`${base}${path}`);
    const body = (await response.json()) as Record<string, unknown>;
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(body).toMatchObject({ type: `https://keyless.dev/problems/${type}`, status, instance: path });
  });

  it('answers an unknown route with a fixed text (the path is in `instance`, not in `detail`)', async () => {
    const response = await fetch(`${base}/no/such/route?x=1`, { method: 'DELETE' });
    const body = (await response.json()) as Record<string, unknown>;
    expect(response.status).toBe(404);
    expect(body).toMatchObject({ type: 'https://keyless.dev/problems/not-found', detail: 'No operation of this API matches the method and path; /docs lists them.', instance: '/no/such/route?x=1' });
  });

  it('keeps access diagnostics out of the response (they go to the log)', async () => {
    const text = await (await fetch(`${base}/own-access`)).text();
    expect(text).not.toMatch(/1234|az role|send\/action/);
    const remote = await (await fetch(`${base}/remote-denied`)).text();
    expect(remote).not.toMatch(/1234/);
  });

  describe('when a service behind the gateway fails', () => {
    it.each([
      ['/remote/not-found', 'The requested resource was not found.', undefined],
      ['/remote-not-indexed', 'The product is not indexed yet; try again shortly.', 'product-not-indexed'],
      ['/remote-image-url', 'Azure AI Vision cannot download the image: give a public http(s) URL of an image, or upload the image.', 'InvalidImageUrl'],
      ['/remote-unknown-reason', 'A service behind the gateway refused the request as invalid.', undefined],
      ['/remote-internal', 'A service behind the gateway failed to answer the request.', undefined],
    ])('%s answers a fixed text per stable reason, never the downstream message', async (path, detail, reason) => {
      const body = (await (await fetch(`${base}${path}`)).json()) as Record<string, unknown>;
      expect(body.detail).toBe(detail);
      expect(body.reason).toBe(reason);
      expect(body).not.toHaveProperty('errors');
      expect(JSON.stringify(body)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|deadbeef|TypeError|pending|"x"/);
    });

    it('logs the downstream cause under the correlation id the caller gets', async () => {
      const body = (await (await fetch(`${base}/remote-image-url`)).json()) as { correlationId: string };
      expect(body.correlationId).toMatch(/^[0-9a-f-]{32,36}$/);
      const line = logger.messages().find((l) => l.includes(`[correlation ${body.correlationId}]`));
      expect(line).toContain('ECONNREFUSED 127.0.0.1:7071');
      expect(line).toContain('http://127.0.0.1:7071/admin is not an image');
    });
  });

  it('tells clients when to retry a 503, and passes Retry-After of a 429 through', async () => {
    expect((await fetch(`${base}/remote-unavailable`)).headers.get('retry-after')).toBe('5');
    expect((await fetch(`${base}/problem`)).headers.get('retry-after')).toBe('7');
  });
});
