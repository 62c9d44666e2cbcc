import { STATUS_CODES } from 'node:http';
import { applyDecorators, type INestApplication } from '@nestjs/common';
import { ApiExtension, ApiResponse, DocumentBuilder, getSchemaPath, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { gatewayAppRoles, type GatewayAppRole } from '@keyless/contracts';

/** The Entra security scheme's name in the document. */
export const entraSchemeName = 'entra';

/** The name of the plain bearer scheme (the same token, pasted): an operation accepts either scheme. */
export const bearerSchemeName = 'bearer';

/** The problem+json schema's name under `components.schemas`. */
const problemSchemaName = 'ProblemDetails';

/** The schema of the problems Node's HTTP parser answers before the gateway reads the request (no `instance`). */
const parserProblemSchemaName = 'ParserProblemDetails';

/** A status the gateway answers with problem details, what it means, and the problem types (`type` URI tails) it carries. */
export const problemStatuses = {
  400: {
    description:
      'The request is invalid: a field (`errors` names every invalid one: `path.id`, `body.price`, `query.limit`), a body that is not valid JSON, ' +
      'an unreadable form, or a request a service behind the gateway refuses (`reason`: `InvalidImageUrl`, `InvalidImageFormat`, `InvalidImageSize`).',
    types: ['validation', 'malformed-body', 'invalid-request'],
  },
  401: {
    description: 'No valid Entra access token for the gateway (missing, expired, wrong audience or issuer, bad signature). `WWW-Authenticate: Bearer`.',
    types: ['unauthenticated'],
    headers: { 'WWW-Authenticate': { description: '`Bearer` without a token; `Bearer error="invalid_token"` with a token that is refused.', schema: { type: 'string' } } },
  },
  403: { description: "The caller's token lacks the app role this operation needs (see `x-keyless-app-roles`).", types: ['forbidden'] },
  404: {
    description: 'The product does not exist, or is not indexed yet (`reason`: `product-not-found`, `product-not-indexed`, `no-indexed-products`).',
    types: ['not-found'],
  },
  413: { description: 'The body is larger than the gateway reads (JSON: 64 KB; an image: its upload limit; a form field: 1 KiB).', types: ['body-too-large'] },
  415: { description: 'A body the gateway does not read: an unsupported content type, charset or content encoding.', types: ['unsupported-media-type'] },
  429: {
    description: 'Too many requests from this client address (before authentication) or from this caller. `Retry-After` says when to retry.',
    types: ['rate-limited'],
    headers: { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } },
  },
  502: { description: 'A service behind the gateway failed, or answered with something the gateway cannot use.', types: ['downstream-error'] },
  503: {
    description:
      'Temporarily unavailable: caller tokens cannot be verified (the tenant keys cannot be fetched), messaging is unavailable, ' +
      'or the gateway or a service behind it cannot reach an Azure resource. `Retry-After` says when to retry.',
    types: ['authentication-unavailable', 'messaging-unavailable', 'azure-access-unavailable', 'dependency-unavailable'],
    headers: { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } },
  },
  504: { description: 'The service behind the gateway did not answer in time.', types: ['downstream-timeout'] },
} as const satisfies Record<number, ProblemStatusDoc>;

export type ProblemStatus = keyof typeof problemStatuses;

/**
 * A status Node's HTTP parser answers (`answerClientErrors` of @keyless/contracts, through `applyHttpServerLimits` of
 * @keyless/observability) on every operation, before the gateway reads the request, with {@link parserProblemSchemaName}
 * problem details and `Connection: close`: what it means, and the problem types it carries.
 */
export const parserProblemStatuses = {
  400: { description: 'The request line or a header is not valid HTTP/1.1 (a control character in a header, a space in the path).', types: ['malformed-request'] },
  408: {
    description:
      'The request did not arrive in time: its headers within `HTTP_HEADERS_TIMEOUT_MS` (10 s by default) or the whole request, body included, ' +
      'within `HTTP_REQUEST_TIMEOUT_MS` (30 s); `detail` names both.',
    types: ['request-timeout'],
  },
  413: { description: "A chunked body's chunk extensions are longer than Node reads (16 KiB a chunk).", types: ['chunk-extensions-too-large'] },
  431: {
    description: "The request's headers are larger than the gateway reads: 16 KiB in all (Node's limit, `--max-http-header-size`), request line included; `detail` names the limit.",
    types: ['headers-too-large'],
  },
} as const satisfies Record<number, ProblemStatusDoc>;

export type ParserProblemStatus = keyof typeof parserProblemStatuses;

/** What the document says of a problem status: what it means, its problem types (`type` URI tails), its headers. */
interface ProblemStatusDoc {
  description: string;
  types: readonly string[];
  headers?: Record<string, object>;
}

/**
 * What every authenticated operation can answer before its handler runs: body parsing (400, 413, 415 —
 * the parsers read any request's body, an operation without one included), authentication (401, and 503
 * while the tenant's keys cannot be fetched), its app role (403), the address and caller limits (429). Every
 * operation also gets {@link parserProblemStatuses} from {@link gatewayOpenApiDocument}.
 */
export const guardedRoute = [400, 401, 403, 413, 415, 429, 503] as const satisfies readonly ProblemStatus[];

/** What a request over the bus adds: a failed or unusable reply (502), none in time (504). */
export const requestReply = [502, 504] as const satisfies readonly ProblemStatus[];

/** The OpenAPI extension naming the app roles an operation accepts (any one suffices). */
export const appRolesExtension = 'x-keyless-app-roles';

/** Documents the app roles a route accepts: `RequireRoles` applies it, so a route's roles are declared once. */
export const ApiAppRoles = (roles: readonly GatewayAppRole[]): MethodDecorator & ClassDecorator => ApiExtension(appRolesExtension, roles);

/** Where {@link ApiRequestBodies} keeps a route's bodies until {@link gatewayOpenApiDocument} makes them its `requestBody`. */
const requestBodiesExtension = 'x-keyless-request-bodies';

/**
 * Documents a required request body with its own schema per content type (`ApiBody` gives every content type of
 * `ApiConsumes` one schema, which makes a raw image an object and a form a URL): what a typed client is generated from.
 *
 * @example
 * ```ts
 * @ApiRequestBodies({ 'application/json': { schema: urlSchema }, 'image/*': { schema: { type: 'string', format: 'binary' } } })
 * ```
 */
export const ApiRequestBodies = (content: Record<string, { schema: SchemaObject }>): MethodDecorator => ApiExtension(requestBodiesExtension, content);

/**
 * Documents a route's problem responses (`application/problem+json`, {@link problemStatuses}).
 *
 * @example
 * ```ts
 * @ProblemResponses(...guardedRoute, 404, ...requestReply)
 * ```
 */
export function ProblemResponses(...statuses: ProblemStatus[]): MethodDecorator {
  return applyDecorators(
    ...[...new Set(statuses)].map((status) => ApiResponse({ status, ...problemResponse(status) })),
  );
}

/** A problem response object of the document: its description, the problem+json schema, its headers. */
interface ProblemResponseObject {
  description: string;
  content: Record<string, { schema: { $ref: string } | { anyOf: { $ref: string }[] } }>;
  headers?: Record<string, object>;
}

/** The response object of a status the gateway answers itself: its description, the problem+json schema, its headers. */
function problemResponse(status: ProblemStatus): ProblemResponseObject {
  const { description, types, ...headers } = problemStatuses[status] as ProblemStatusDoc;
  return { description: `${description} ${problemTypes(types)}`, content: problemJson({ $ref: getSchemaPath(problemSchemaName) }), ...headers };
}

/** How Node's HTTP parser answers, whatever the status: what a client can tell such an answer by. */
const parserAnswers = 'before the gateway reads the request, with `Connection: close`, no `instance` and no correlation id';

/**
 * The response object of a status Node's HTTP parser answers, on an operation whose own response for that status is
 * `own` (from {@link problemResponse}) or none. With one, the answer has either shape — the gateway's `ProblemDetails`
 * or the parser's `ParserProblemDetails` — and the description says which problem types come in which. `anyOf`, not
 * `oneOf`: a gateway problem with a `detail` has every member the parser's schema requires too, so it matches both.
 */
function parserProblemResponse(status: ParserProblemStatus, own: ProblemResponseObject | undefined): ProblemResponseObject {
  const { description, types } = parserProblemStatuses[status];
  if (!own) return { description: `${description} Answered by Node's HTTP parser ${parserAnswers}. ${problemTypes(types)}`, content: problemJson({ $ref: getSchemaPath(parserProblemSchemaName) }) };
  return {
    ...own,
    description:
      `From the gateway (\`${problemSchemaName}\`): ${own.description} ` +
      `From Node's HTTP parser (\`${parserProblemSchemaName}\`), ${parserAnswers}: ${description} ${problemTypes(types)}`,
    content: problemJson({ anyOf: [{ $ref: getSchemaPath(problemSchemaName) }, { $ref: getSchemaPath(parserProblemSchemaName) }] }),
  };
}

/** `Problem types: `a`, `b`.`: what the conformance spec finds a problem's type by. */
function problemTypes(types: readonly string[]): string {
  return `Problem types: ${types.map((type) => `\`${type}\``).join(', ')}.`;
}

/** The `content` of a problem response: `application/problem+json` with `schema`. */
function problemJson(schema: ProblemResponseObject['content'][string]['schema']): ProblemResponseObject['content'] {
  return { 'application/problem+json': { schema } };
}

/** Where the Entra security scheme's tokens come from. */
export interface OpenApiIdentity {
  /** Entra authority host (`https://login.microsoftonline.com`, or the local Azure's). */
  authorityHost: string;
  tenantId: string;
  /** The gateway's application ID URI (`api://keyless-gateway`). */
  audience: string;
}

/**
 * The gateway's OpenAPI 3.0 document: its operations, their problem responses (RFC 9457, one schema), and
 * the app role each needs — an Entra `oauth2` client-credentials scheme whose scopes are the gateway's app
 * roles, and per operation one security requirement per role that grants it (any one of them suffices), plus
 * the same token as a plain bearer (what Swagger UI can paste).
 */
export function gatewayOpenApiDocument(app: INestApplication, identity: OpenApiIdentity): OpenAPIObject {
  const authority = `${identity.authorityHost.replace(/\/+$/, '')}/${identity.tenantId}`;
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Keyless gateway')
      .setDescription(
        'Product catalog, recommendations and image analysis. Callers authenticate with an Entra access token for the ' +
          `gateway's app ID URI (\`${identity.audience}\`; client credentials: scope \`${identity.audience}/.default\`) and need ` +
          `the app role each operation names (its \`${appRolesExtension}\`, and the scopes of its security requirement: any one suffices); ` +
          "the token carries the caller's app roles in its `roles` claim. Errors are RFC 9457 problem details (`application/problem+json`); " +
          'a defect in the gateway answers 500 with the same shape and a correlation id.',
      )
      .setVersion('1')
      .addOAuth2(
        {
          type: 'oauth2',
          description: "Entra ID. The scopes are the gateway's app roles, granted to the caller's identity and carried in the token's `roles` claim.",
          flows: { clientCredentials: { tokenUrl: `${authority}/oauth2/v2.0/token`, scopes: { ...gatewayAppRoles } } },
        },
        entraSchemeName,
      )
      // For Swagger UI's "Authorize": paste a token (`npm run -s token` locally); it must carry one of the roles all the same.
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: `An Entra access token for ${identity.audience} that carries one of the operation's app roles.` }, bearerSchemeName)
      .build(),
  );
  document.components = {
    ...document.components,
    schemas: { ...document.components?.schemas, [problemSchemaName]: problemDetailsSchema, [parserProblemSchemaName]: parserProblemDetailsSchema },
  };
  for (const item of Object.values(document.paths)) {
    for (const operation of [item.get, item.put, item.post, item.delete, item.patch]) {
      if (!operation) continue;
      const extensions = operation as unknown as Record<string, unknown>;
      const roles = extensions[appRolesExtension] as string[] | undefined;
      const bodies = extensions[requestBodiesExtension] as Record<string, { schema: SchemaObject }> | undefined;
      if (bodies) {
        operation.requestBody = { required: true, content: bodies };
        delete extensions[requestBodiesExtension];
      }
      // A response without a description (a route of a library, such as /health/live) gets its status text: the field is required.
      for (const [status, response] of Object.entries(operation.responses)) if (response && 'description' in response && !response.description) response.description = STATUS_CODES[status] ?? status;
      if (operation === item.get) documentConditionalGet(operation);
      if (roles) operation.security = [...roles.map((role) => ({ [entraSchemeName]: [role] })), { [bearerSchemeName]: [] }];
      // The per-address limit answers before anything else, public routes (health) included.
      else operation.responses['429'] ??= problemResponse(429);
      // Node's HTTP parser answers these on any operation, before any route or guard, health routes included.
      for (const status of Object.keys(parserProblemStatuses).map(Number) as ParserProblemStatus[]) {
        operation.responses[status] = parserProblemResponse(status, operation.responses[status] as ProblemResponseObject | undefined);
      }
    }
  }
  documentHealth(document.paths);
  return document;
}

/** The `Cache-Control` every health answer carries (libs/observability's HealthController). */
const noStoreHeader = { description: 'Always `no-cache, no-store, must-revalidate`: a cached "up" would hide a service that went down.', schema: { type: 'string' } };

/**
 * Documents the health routes of `@keyless/observability`, which carry no OpenAPI decorators of their own: what
 * `/health/live` answers (Terminus documents `/health/ready`'s bodies), and that no answer of either may be cached.
 */
function documentHealth(paths: OpenAPIObject['paths']): void {
  const live = paths['/health/live']?.get?.responses['200'] as ResponseObject | undefined;
  if (live) {
    live.description = 'The process answers: always this body, whatever the state of its dependencies (readiness is `/health/ready`).';
    live.content = { 'application/json': { schema: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } } };
  }
  for (const [path, status] of [['/health/live', '200'], ['/health/ready', '200'], ['/health/ready', '503']] as const) {
    const response = paths[path]?.get?.responses[status] as ResponseObject | undefined;
    if (response) response.headers = { ...response.headers, 'Cache-Control': noStoreHeader };
  }
}

/** The `ETag` header of a GET's 200 and 304. */
const etagHeader = { description: "A weak validator of the body (`W/\"…\"`): send it back as `If-None-Match`.", schema: { type: 'string' } };

/**
 * Documents what Express does for every GET: a 200 carries an `ETag` computed from its body, and a request whose
 * `If-None-Match` names it is answered 304 without a body (the request still runs in full: this saves the transfer only).
 */
function documentConditionalGet(operation: OperationObject): void {
  const ok = operation.responses['200'] as ResponseObject | undefined;
  if (!ok) return;
  ok.headers = { ...ok.headers, ETag: etagHeader };
  operation.responses['304'] ??= { description: "Not Modified: `If-None-Match` names the current body's `ETag`; no body.", headers: { ETag: etagHeader } };
  operation.parameters = [
    ...(operation.parameters ?? []),
    { name: 'If-None-Match', in: 'header', required: false, description: 'The `ETag` of a 200 this client holds: 304 if the body is still the same.', schema: { type: 'string' } },
  ];
}

type OperationObject = NonNullable<OpenAPIObject['paths'][string]['get']>;
type ResponseObject = Extract<OperationObject['responses'][string], { description: string }>;

/** A schema of the document (the package does not export the type by name). */
type SchemaObject = NonNullable<NonNullable<OpenAPIObject['components']>['schemas']>[string];

/** The members every problem of the gateway has, whoever answers it. */
const problemIdentity = {
  type: { type: 'string', format: 'uri', description: 'A stable URI per kind of problem: `https://keyless.dev/problems/<type>`.', example: 'https://keyless.dev/problems/validation' },
  title: { type: 'string', description: 'The HTTP status text.' },
  status: { type: 'integer', description: 'The HTTP status code.' },
} as const;

/** RFC 9457 problem details as the gateway writes them (`ProblemDetails` in problem-details.ts). */
const problemDetailsSchema: SchemaObject = {
  type: 'object',
  required: ['type', 'title', 'status', 'instance'],
  properties: {
    ...problemIdentity,
    detail: { type: 'string', description: 'What went wrong, for a person; names nothing internal.' },
    instance: { type: 'string', description: 'The request target as sent: path and query.' },
    errors: {
      type: 'array',
      description: 'Every invalid field (400 `validation`).',
      items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string', example: 'body.price' }, message: { type: 'string' } } },
    },
    reason: { type: 'string', description: 'A stable refinement of `type` from the service behind the gateway (`product-not-indexed`, `InvalidImageUrl`).' },
    traceId: { type: 'string', description: 'The W3C trace id of the request.' },
    correlationId: { type: 'string', description: "Found in the gateway's log lines about this failure (the trace id when there is one); absent on the per-address 429." },
  },
};

/** RFC 9457 problem details of a request Node's HTTP parser refused (`answerClientErrors` of @keyless/contracts). */
const parserProblemDetailsSchema: SchemaObject = {
  type: 'object',
  description: "A request refused before the gateway read it: its URL may not even have arrived, so there is no `instance`, and the gateway's log line about it (`HttpParser`) names the client's address and port, not a correlation id.",
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    ...problemIdentity,
    detail: { type: 'string', description: "What to change, naming the gateway's limit: `The request's headers exceed 16 KiB: send fewer or shorter headers.`" },
  },
};
