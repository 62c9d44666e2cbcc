import { ConfigurableModuleBuilder } from '@nestjs/common';
import { authDefaults, type AuthModuleOptions } from './auth-options.js';

/** Extra options of `AuthModule.forRoot`/`forRootAsync` that shape the module rather than the credential. */
export interface AuthModuleExtras {
  /** Register the module globally (one credential per process). Default: `true`. */
  isGlobal?: boolean;
}

export const {
  ConfigurableModuleClass: AuthConfigurableModule,
  /** Injection token of the raw options: `'AUTH_MODULE_OPTIONS'`. */
  MODULE_OPTIONS_TOKEN: AUTH_MODULE_OPTIONS,
  OPTIONS_TYPE: AUTH_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: AUTH_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<AuthModuleOptions>({ moduleName: 'Auth' })
  .setClassMethodName('forRoot')
  .setExtras<AuthModuleExtras>({ isGlobal: authDefaults.isGlobal }, (definition, extras) => ({ ...definition, global: extras.isGlobal ?? authDefaults.isGlobal }))
  .build();

/** Injection token of the validated options with defaults applied (`ResolvedAuthOptions`). */
export const RESOLVED_AUTH_OPTIONS = Symbol('RESOLVED_AUTH_OPTIONS');
