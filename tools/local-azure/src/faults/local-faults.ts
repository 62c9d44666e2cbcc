import { faultCatalog, faultDefaults, faultModesOf, faultTargets, isFaultTarget, type FaultMode, type FaultSetting, type FaultTarget } from './fault-catalog.js';

/** A fault request the local Azure cannot apply: unknown target or mode, or a bad delay. The message says what is allowed. */
export class InvalidFaultError extends Error {
  override readonly name = 'InvalidFaultError';
  readonly code = 'InvalidFault';
}

/** One target's state, as the admin API and `fault list` show it. */
export interface FaultState {
  target: FaultTarget;
  mode: string;
  delayInMs?: number;
  /** What the current mode does (or that the target is healthy). */
  effect: string;
  /** When the current mode was set (ISO 8601); absent while healthy since start. */
  since?: string;
}

type FaultListener = (target: FaultTarget, setting: FaultSetting) => void | Promise<void>;

/**
 * The faults currently injected into the local Azure, one setting per target (see {@link faultCatalog}).
 * The parts that misbehave read {@link get} on every request, frame or commit; parts that must act when a
 * fault starts or heals (closing a listener, dropping connections, releasing held commits) subscribe
 * with {@link onChange}.
 *
 * @example
 * await azure.faults.set('openai', { mode: '429' });
 * await azure.faults.set('identity-endpoint', { mode: 'delay', delayInMs: 3000 });
 * await azure.faults.set('openai', { mode: 'none' }); // heals
 */
export class LocalFaults {
  private readonly settings = new Map<FaultTarget, FaultSetting & { since: string }>();
  private readonly listeners = new Set<FaultListener>();

  /** The fault of `target`; `{ mode: 'none' }` while healthy. */
  get<T extends FaultTarget>(target: T): FaultSetting<T> {
    return (this.settings.get(target) as FaultSetting<T> | undefined) ?? ({ mode: 'none' } as FaultSetting<T>);
  }

  /** Whether `target` is in `mode` right now. */
  is<T extends FaultTarget>(target: T, mode: FaultMode<T>): boolean {
    return this.get(target).mode === mode;
  }

  /**
   * Sets (or with mode `none`, heals) the fault of a target and resolves once every subscriber has acted on it.
   *
   * @throws {InvalidFaultError} for an unknown target or mode, or a delay outside 0…300000 ms.
   */
  async set(target: string, setting: { mode: string; delayInMs?: number | undefined }): Promise<FaultState> {
    const checked = validateFault(target, setting);
    if (checked.setting.mode === 'none') this.settings.delete(checked.target);
    else this.settings.set(checked.target, { ...checked.setting, since: new Date().toISOString() });
    for (const listener of this.listeners) await listener(checked.target, checked.setting);
    return this.state(checked.target);
  }

  /** Heals every target. */
  async clear(): Promise<void> {
    for (const target of [...this.settings.keys()]) await this.set(target, { mode: 'none' });
  }

  /** Every target with its current mode. */
  list(): FaultState[] {
    return faultTargets.map((target) => this.state(target));
  }

  /** Targets that are not healthy right now. */
  active(): FaultState[] {
    return this.list().filter((state) => state.mode !== 'none');
  }

  /** Calls `listener` after every change (awaited by {@link set}); returns the unsubscribe function. */
  onChange(listener: FaultListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private state(target: FaultTarget): FaultState {
    const setting = this.settings.get(target);
    if (!setting) return { target, mode: 'none', effect: `healthy: ${faultCatalog[target].description}` };
    const effect = (faultCatalog[target].modes as Record<string, string>)[setting.mode as string]!.replace('<ms>', String(setting.delayInMs ?? faultDefaults.delayInMs));
    return { target, mode: setting.mode as string, ...(setting.delayInMs !== undefined ? { delayInMs: setting.delayInMs } : {}), effect, since: setting.since };
  }
}

/** Checks a fault request; `delay` modes get their default delay. @throws {InvalidFaultError} */
export function validateFault(target: string, setting: { mode: string; delayInMs?: number | undefined }): { target: FaultTarget; setting: FaultSetting } {
  if (!isFaultTarget(target)) throw new InvalidFaultError(`Unknown fault target "${target}". Targets: ${faultTargets.join(', ')}.`);
  const modes = faultModesOf(target);
  if (!modes.includes(setting.mode)) throw new InvalidFaultError(`The fault target ${target} has no mode "${setting.mode}". Modes: ${modes.join(', ')}.`);
  if (setting.mode !== 'delay') {
    if (setting.delayInMs !== undefined) throw new InvalidFaultError(`A delay applies only to the delay mode, not to ${target} ${setting.mode}.`);
    return { target, setting: { mode: setting.mode as FaultMode } };
  }
  const delayInMs = setting.delayInMs ?? faultDefaults.delayInMs;
  if (!Number.isInteger(delayInMs) || delayInMs < 0 || delayInMs > faultDefaults.maxDelayInMs) {
    throw new InvalidFaultError(`The delay of ${target} must be a whole number of milliseconds from 0 to ${faultDefaults.maxDelayInMs}, not ${String(setting.delayInMs)}.`);
  }
  return { target, setting: { mode: 'delay' as FaultMode, delayInMs } };
}
