import 'reflect-metadata';
import { telemetry } from './instrumentation.js';
import { createServiceApp, runService } from '@keyless/observability';
import { AppModule } from './app.module.js';
import { visionConfig } from './config/vision.config.js';

runService({ name: 'vision', env: process.env, telemetry, createApp: () => createServiceApp(AppModule), configKey: visionConfig.KEY, receivesFromBus: true });
