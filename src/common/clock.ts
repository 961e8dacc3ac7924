import { performance } from 'node:perf_hooks';

/**
 * Where every component gets time. `wallMs` is UTC epoch milliseconds and may jump (NTP,
 * a user changing the clock); `monoMs` only moves forward and measures ages and deadlines
 * inside one process. Nothing in aistock reads `Date.now()` directly.
 */
export interface Clock {
  wallMs(): number;
  monoMs(): number;
}

/** The real clock: `Date.now()` for wall time, `performance.now()` for monotonic time. */
export const systemClock: Clock = {
  wallMs: () => Date.now(),
  monoMs: () => performance.now(),
};

/**
 * A clock that moves only when told, for tests and replays. `advance` moves both clocks;
 * `jumpWall` moves only the wall clock (either way), as an NTP correction does.
 */
export class ManualClock implements Clock {
  #wall: number;
  #mono: number;

  constructor(start: { wallMs?: number; monoMs?: number } = {}) {
    this.#wall = start.wallMs ?? Date.UTC(2025, 0, 2, 14, 30);
    this.#mono = start.monoMs ?? 0;
  }

  wallMs(): number {
    return this.#wall;
  }

  monoMs(): number {
    return this.#mono;
  }

  /** Lets `ms` pass: both clocks move forward together. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ms must be >= 0, got ${ms}`);
    this.#wall += ms;
    this.#mono += ms;
  }

  /** Steps the wall clock by `ms` (negative = backwards) without time passing. */
  jumpWall(ms: number): void {
    this.#wall += ms;
  }
}

/**
 * `base` with its wall clock `offsetMs` ahead (behind, if negative): a machine whose clock
 * reads differently, or a restart that many ms later. The monotonic clock is `base`'s.
 */
export function offsetClock(offsetMs: number, base: Clock = systemClock): Clock {
  return { wallMs: () => base.wallMs() + offsetMs, monoMs: () => base.monoMs() };
}
