/**
 * The simulation's virtual clock: while installed, `new Date()` and `Date.now()` give the
 * simulated time, which moves only when the scheduler moves it (timers stay real; the engine's
 * only timers are action timeouts, cleared before the instant actions return, and heartbeats,
 * which the simulation switches off: `useHeartbeats`).
 */
export interface Clock {
  now(): number;
  set(ms: number): void;
  /** Puts the real `Date` back. */
  restore(): void;
}

export function installVirtualClock(start = Date.parse("2026-01-01T00:00:00Z")): Clock {
  const RealDate = Date;
  let now = start;
  class VirtualDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(now);
      else super(...(args as [string]));
    }
    static override now(): number {
      return now;
    }
  }
  globalThis.Date = VirtualDate as DateConstructor;
  return {
    now: () => now,
    set: (ms) => {
      now = ms;
    },
    restore: () => {
      globalThis.Date = RealDate;
    },
  };
}
