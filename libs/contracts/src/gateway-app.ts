/**
 * The app roles of the gateway's Entra app registration: a caller's token carries the ones it was granted
 * in its `roles` claim, and each gateway route requires one of them. One list for the gateway's routes, the
 * local Entra's app registration and the Azure one (`infra/gateway-app-roles.json`, checked against this).
 */
export const gatewayAppRoles = {
  'Catalog.Write': 'Create and update products (PUT /v1/products/{id})',
  'Catalog.Read': 'Read products and their enrichment (GET /v1/products/{id})',
  'Recommendations.Read': 'Similar products and shopper recommendations',
  'Images.Analyze': 'Analyze images (POST /v1/images:analyze)',
} as const;

/** The name of one of the gateway's app roles, as it appears in a token's `roles` claim. */
export type GatewayAppRole = keyof typeof gatewayAppRoles;

/** The application ID URI callers request tokens for, locally (in Azure: `api://<app id>`, see infra/README.md). */
export const localGatewayAudience = 'api://keyless-gateway';
