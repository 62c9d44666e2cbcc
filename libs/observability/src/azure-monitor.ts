/**
 * Why `APPLICATIONINSIGHTS_CONNECTION_STRING` is allowed past the secret guard: the Application Insights
 * component is deployed with local auth disabled, so the instrumentation key in it only routes telemetry;
 * ingestion takes nothing but the managed identity's Entra token.
 */
export const applicationInsightsAllowance = {
  APPLICATIONINSIGHTS_CONNECTION_STRING:
    'routes telemetry only: Application Insights has local auth disabled and accepts only the managed identity\'s token',
};

