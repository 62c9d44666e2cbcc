// Imported first by main.ts: OpenTelemetry is set up before the rest of the app loads, so every span and
// metric of the libraries has a provider (W3C context across HTTP and the bus, trace ids in the logs).
import { startServiceTelemetry } from '@keyless/observability';

export const telemetry = startServiceTelemetry('recommendation', process.env);
