import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { HttpServerLimits } from '@keyless/contracts';

/** Options of {@link HealthModule}. */
export interface HealthModuleOptions {
  /**
   * Port of a second listener that serves `GET /health/ready` **with details** (the identity's client id,
   * identity endpoint, token expiries, entity paths, reply session, last errors). It binds to `detailsHost`
   * only, never to the public interface. 0 picks a free port (logged). **Default**: none — the details are not
   * served at all; the public `/health/ready` says only up or down per check.
   */
  detailsPort?: number;
  /** Address of the details listener. **Default**: `127.0.0.1` (reachable from the host or container only). */
  detailsHost?: string;
  /** How long the details listener waits for a slow client (see `serviceHttpDefaults`). **Default**: Node's. */
  limits?: HttpServerLimits;
  /**
   * How long the service may take to become ready before its failing checks are logged as one warning (with their
   * reasons, the identity's ids and endpoint left out). **Default**: 60000 ms.
   */
  startupWarningAfterInMs?: number;
}

export const {
  ConfigurableModuleClass: HealthConfigurableModule,
  MODULE_OPTIONS_TOKEN: HEALTH_MODULE_OPTIONS,
} = new ConfigurableModuleBuilder<HealthModuleOptions>({ moduleName: 'Health' }).setClassMethodName('forRoot').build();
