// @keyless/contracts: what the services say to each other over Service Bus — entity names, message
// patterns and payload schemas — and how every process reads its settings and holds its HTTP listeners to them. No
// Nest, no Azure: both sides of every exchange import only this.
export { eventDeliveryAttempts, queues, subscriptions, topics } from './entities.js';
export type { QueueName, SubscriptionName, TopicName } from './entities.js';
export { productIdSchema, productSchema, productUpsertedSchema } from './catalog.js';
export type { Product, ProductUpserted } from './catalog.js';
export {
  analyzeImageRequestSchema,
  imageAnalysisFailedSchema,
  imageAnalysisSchema,
  imageAnalyzedSchema,
  imageUrlRequestSchema,
  inlineImageContentType,
  maxInlineImageBytes,
  tagSchema,
} from './vision.js';
export type { AnalyzeImageRequest, ImageAnalysis, ImageAnalysisFailed, ImageAnalyzed } from './vision.js';
export {
  getProductRequestSchema,
  indexingStateSchema,
  productViewSchema,
  rankedItemSchema,
  recommendationFiltersSchema,
  recommendationResultSchema,
  recommendRequestSchema,
  resultLimit,
  similarProductsRequestSchema,
} from './recommendation.js';
export type { ProductView, RecommendationFilters, RecommendationResult, RecommendRequest, SimilarProductsRequest } from './recommendation.js';
export { eventContracts, requestContracts } from './patterns.js';
export type { EventInputOf, EventOf, EventPattern, ParsedRequestOf, ReplyOf, RequestOf, RequestPattern } from './patterns.js';
export { replyErrorCodes, replyErrorSchema } from './errors.js';
export type { ReplyError, ReplyErrorCode } from './errors.js';
export { openAiApiVersion, serviceAccess } from './services.js';
export type { AiOperation, EntityRef, ServiceAccess, ServiceName } from './services.js';
export { gatewayAppRoles, localGatewayAudience } from './gateway-app.js';
export type { GatewayAppRole } from './gateway-app.js';
export { builtInRoles, dataActions, findRole, grants, grantsAction, rolesGranting } from './azure-roles.js';
export type { RoleDefinition } from './azure-roles.js';
export { effectiveDataActions, entityScope, entityScopePath, roleAssignmentCreateCommands, scopeContains } from './check-access.js';
export type { AssignmentRef, EffectiveDataAction, RoleAssignmentCommands } from './check-access.js';
export { commandForCompose, commandForHome, shellWord } from './local-azure-home.js';
export { envFileLine, parseEnvFile } from './env-file.js';
export type { LocalAzureHomeRef } from './local-azure-home.js';
export { systemInstancesFileName } from './system-instances.js';
export type { SystemInstance, SystemInstancesFile } from './system-instances.js';
export { alertRules } from './alert-rules.js';
export type { AlertRule, AlertRuleId, AlertSeverity, AlertSignalType } from './alert-rules.js';
export { readSetting, settingsSchema, withoutBlankSettings } from './settings.js';
export { postgresServer, postgresSettings } from './postgres-settings.js';
export { guidSetting, httpServerOptions, serviceConfiguration, serviceHttpDefaults, serviceSettings } from './service-settings.js';
export type { HttpServerLimits, ServiceConfiguration, ServiceSettings } from './service-settings.js';
export { answerClientErrors, endpointOf, logLineBound, refusalLogLines } from './http-client-errors.js';
export type { AnswerClientErrorsOptions, ClientErrorBody, ClientErrorKind, ClientErrorRefusal, CutOffResponse, RefusalLogLine, RefusedClientRequest } from './http-client-errors.js';
export type { PostgresSettings } from './postgres-settings.js';
export type { Settings } from './settings.js';
