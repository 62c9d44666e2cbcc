import 'reflect-metadata';
import { telemetry } from './instrumentation.js';
import { createServiceApp, runService } from '@keyless/observability';
import { AppModule } from './app.module.js';
import { recommendationConfig } from './config/recommendation.config.js';

runService({ name: 'recommendation', env: process.env, telemetry, createApp: () => createServiceApp(AppModule), configKey: recommendationConfig.KEY, receivesFromBus: true });
