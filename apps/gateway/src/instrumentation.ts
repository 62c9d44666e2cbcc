// Imported first by main.ts: OpenTelemetry is set up before the rest of the app loads, so every span and
// metric of the libraries has a provider (W3C context across HTTP and the bus, trace ids in the logs).
import { startTelemetry } from '@keyless/observability';
import { settingsSchema } from '@keyless/contracts';
import { z } from 'zod';

// A blank variable is unset (settingsSchema), as for the app's own settings.
const env = settingsSchema({
  /** OTLP/HTTP collector (e.g. http://localhost:4318). Unset: spans are recorded but not exported over OTLP. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
}).parse(process.env);

export const telemetry = startTelemetry({
  serviceName: 'gateway',
  ...(env.OTEL_EXPORTER_OTLP_ENDPOINT ? { otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT } : {}),
});
