import 'reflect-metadata';
import { telemetry } from './instrumentation.js';
import { runService } from '@keyless/observability';
import { gatewayConfig } from './config/gateway.config.js';
import { createGatewayApp } from './gateway.app.js';

runService({ name: 'gateway', env: process.env, telemetry, createApp: () => createGatewayApp(), configKey: gatewayConfig.KEY, listeningNote: '(OpenAPI at /docs)' });
