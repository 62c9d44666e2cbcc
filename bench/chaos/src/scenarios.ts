import type { ServiceName } from '@keyless/launcher';
import type { ChaosSystem } from './chaos-system.js';

/** One thing that goes wrong: how to break it, and how to heal it. */
export interface Scenario {
  name: string;
  /** What breaks, in a line (for the report). */
  description: string;
  inject(chaos: ChaosSystem): Promise<void>;
  heal(chaos: ChaosSystem): Promise<void>;
  /** Processes the scenario itself stops and starts again: they do not count as a restart the system needed. */
  restarts?: readonly string[];
  /**
   * A burst of upserts on top of the steady load: `upserts` sent by `concurrency` workers, the fault injected once
   * `injectAfter` of them were sent; the scenario ends when the whole burst was sent and settled.
   */
  burst?: { upserts: number; concurrency: number; injectAfter: number };
}

/** A fault of the local Azure through its CLI (`fault <target> <mode> [ms]`), healed with `<target> none`. */
export function faultScenario(target: string, mode: string, delayInMs?: number): Scenario {
  return {
    name: `${target} ${mode}${delayInMs !== undefined ? ` ${delayInMs}` : ''}`,
    description: `npm run local-azure -- fault ${target} ${mode}${delayInMs !== undefined ? ` ${delayInMs}` : ''}`,
    inject: (chaos) => chaos.fault(target, mode, delayInMs),
    heal: (chaos) => chaos.fault(target, 'none'),
  };
}

/** The shared identity's roles on Azure OpenAI and Vision removed under load, then restored (as an operator would). */
export function roleRevokeScenario(): Scenario {
  const roles = [
    ['--role', 'Cognitive Services OpenAI User', '--scope', 'openAi'],
    ['--role', 'Cognitive Services User', '--scope', 'vision'],
  ];
  return {
    name: 'role revoke',
    description: 'role assignment delete of id-keyless on Azure OpenAI and Vision, then create again',
    async inject(chaos) {
      for (const role of roles) await chaos.localAzure('role', 'assignment', 'delete', '--assignee', 'id-keyless', ...role);
    },
    async heal(chaos) {
      for (const role of roles) await chaos.localAzure('role', 'assignment', 'create', '--assignee', 'id-keyless', ...role);
    },
  };
}

/** How long a service may take to exit after SIGTERM: more than its own drain (10 s), less than Container Apps' 30 s. */
export const shutdownBoundInMs = 20_000;

/**
 * A service process stopped with `signal` under load (SIGTERM: Nest's graceful shutdown; SIGKILL: nothing at all),
 * then started again as the launcher starts it.
 */
export function killScenario(service: ServiceName, signal: 'SIGTERM' | 'SIGKILL'): Scenario {
  return {
    name: `${signal} ${service}`,
    description: `kill -${signal.slice(3)} of the ${service} process, then started again`,
    restarts: [service],
    async inject(chaos) {
      const running = chaos.system.processes.get(service);
      if (!running || running.child.exitCode !== null || running.child.signalCode !== null) throw new Error(`${service} is not running`);
      running.child.kill(signal);
      // A graceful shutdown that never ends is a finding (the platform would SIGKILL it), not a suite that waits for ever.
      let timer: NodeJS.Timeout | undefined;
      const exited = await Promise.race([running.exited.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), shutdownBoundInMs)))]);
      clearTimeout(timer);
      if (exited) return;
      running.child.kill('SIGKILL');
      await running.exited;
      throw new Error(`${service} had not exited ${shutdownBoundInMs / 1000} s after ${signal}; killed with SIGKILL`);
    },
    heal: (chaos) => chaos.system.restartService(service),
  };
}

/**
 * The identity endpoint misbehaving while a service starts (as App Service's endpoint can be slow or absent in a
 * container's first seconds): the service is killed and started again during the fault, and must become ready
 * by itself once the endpoint heals — without exiting and without another restart.
 */
export function identityFaultAtStartScenario(mode: string, service: ServiceName, delayInMs?: number): Scenario {
  let started: Promise<void> | undefined;
  return {
    name: `identity-endpoint ${mode} at ${service} start`,
    description: `fault identity-endpoint ${mode}${delayInMs !== undefined ? ` ${delayInMs}` : ''}, then ${service} killed and started during the fault`,
    restarts: [service],
    async inject(chaos) {
      await chaos.fault('identity-endpoint', mode, delayInMs);
      const running = chaos.system.processes.get(service);
      running?.child.kill('SIGKILL');
      await running?.exited;
      // Started now, ready only once it has tokens: the launcher waits (up to its start-up timeout) in the background.
      started = chaos.system.restartService(service);
      started.catch(() => undefined);
    },
    async heal(chaos) {
      await chaos.fault('identity-endpoint', 'none');
      await started;
    },
  };
}

/**
 * The local Azure (identity, RBAC, Service Bus, OpenAI, Vision — one process) killed with SIGKILL in the middle of a
 * burst of `upserts` catalog upserts, then started again on the same home and ports, as after a crash. Every
 * acknowledged send must survive (the broker acknowledges only committed sends) and the services must find it
 * again by themselves.
 */
export function localAzureKillScenario(upserts = 10_000): Scenario {
  return {
    name: `SIGKILL local-azure under ${upserts} upserts`,
    description: `kill -9 of the local Azure while ${upserts} upserts are sent, then started again on its home`,
    restarts: ['local-azure'],
    burst: { upserts, concurrency: 16, injectAfter: Math.floor(upserts / 2) },
    async inject(chaos) {
      const running = chaos.system.processes.get('local-azure');
      if (!running || running.child.exitCode !== null || running.child.signalCode !== null) throw new Error('the local Azure is not running');
      running.child.kill('SIGKILL');
      await running.exited;
    },
    heal: (chaos) => chaos.system.restartLocalAzure(),
  };
}

/** Every scenario of the suite, in the order the long run takes them (`burstUpserts`: the local Azure kill's burst). */
export function allScenarios(burstUpserts = 10_000): Scenario[] {
  return [
    faultScenario('identity-endpoint', 'error'),
    faultScenario('identity-endpoint', 'garbage'),
    faultScenario('identity-endpoint', 'hang'),
    faultScenario('identity-endpoint', 'stopped'),
    faultScenario('identity-endpoint', 'delay', 3000),
    identityFaultAtStartScenario('stopped', 'recommendation'),
    identityFaultAtStartScenario('error', 'vision'),
    identityFaultAtStartScenario('hang', 'gateway'),
    identityFaultAtStartScenario('delay', 'recommendation', 5000),
    faultScenario('openai', '429'),
    faultScenario('openai', '500'),
    faultScenario('vision', '429'),
    faultScenario('vision', '500'),
    roleRevokeScenario(),
    faultScenario('servicebus-cbs', 'refuse'),
    faultScenario('servicebus-cbs', 'delay', 5000),
    faultScenario('servicebus-connections', 'drop'),
    faultScenario('servicebus-connections', 'half-open'),
    faultScenario('servicebus-credit', 'stall'),
    faultScenario('servicebus-session-lock', 'expire'),
    faultScenario('servicebus-store', 'stall'),
    ...(['recommendation', 'vision', 'gateway'] as const).flatMap((service) => [killScenario(service, 'SIGTERM'), killScenario(service, 'SIGKILL')]),
    localAzureKillScenario(burstUpserts),
  ];
}
