/**
 * The one lifecycle every component shares: `idle → running → draining → shutdown`, plus
 * `faulted` for components that can fail for good.
 *
 * `STOP` is handled in every state, so no sequence of stops can leave a caller waiting:
 * - `idle`: straight to `shutdown` (nothing to drain);
 * - `running`: to `draining`, whose own `always`/`invoke`/`after` finishes the work;
 * - `draining`, `shutdown`: an explicit transition that changes nothing (a second stop);
 * - `faulted`: to `shutdown` (a dead component still releases its resources).
 *
 * `shutdown` is deliberately not a `final` state: a stopped component keeps answering, so
 * it can refuse late commands with a typed error instead of dropping them.
 */

/** The lifecycle's own state names, for `snapshot.matches(...)` and tests. */
export const LIFECYCLE = {
  idle: 'idle',
  running: 'running',
  draining: 'draining',
  shutdown: 'shutdown',
  faulted: 'faulted',
} as const;

/** The lifecycle's own events. */
export type LifecycleEvent = { type: 'START' } | { type: 'STOP' };

/** A second `STOP` while stopping: handled, so it is visible in diagrams, and does nothing. */
export const IGNORED_STOP = { description: 'already stopping: a second STOP changes nothing' } as const;

type StateParts = { on?: object; [key: string]: unknown };

interface LifecycleParts<TIdle, TRunning, TDraining, TShutdown> {
  idle?: TIdle;
  running: TRunning;
  draining: TDraining;
  shutdown?: TShutdown;
}

/**
 * Builds a component's `states` in the lifecycle shape. Each part is that state's own config
 * (entry, invoke, child states, its own events); the lifecycle adds the `START`/`STOP`
 * transitions. A part's own `START` or `STOP` overrides the default (e.g. `idle` that must
 * load something before `running`), except in `draining` and `shutdown`, where `STOP` is
 * always the no-op. Pass `faulted` for a component that can fail for good.
 */
export function lifecycleStates<
  const TIdle extends StateParts = {},
  const TRunning extends StateParts = {},
  const TDraining extends StateParts = {},
  const TShutdown extends StateParts = {},
>(parts: LifecycleParts<TIdle, TRunning, TDraining, TShutdown>) {
  const idle = parts.idle ?? ({} as TIdle);
  const shutdown = parts.shutdown ?? ({} as TShutdown);
  return {
    idle: { ...idle, on: { START: LIFECYCLE.running, STOP: LIFECYCLE.shutdown, ...idle.on } },
    running: { ...parts.running, on: { STOP: LIFECYCLE.draining, ...parts.running.on } },
    draining: { ...parts.draining, on: { ...parts.draining.on, STOP: IGNORED_STOP } },
    shutdown: { ...shutdown, tags: ['stopped'], on: { ...shutdown.on, STOP: IGNORED_STOP } },
  } as const;
}

/** {@link lifecycleStates} plus `faulted`: failed for good, left only by `STOP` (to `shutdown`). */
export function lifecycleStatesWithFault<
  const TIdle extends StateParts = {},
  const TRunning extends StateParts = {},
  const TDraining extends StateParts = {},
  const TShutdown extends StateParts = {},
  const TFaulted extends StateParts = {},
>(parts: LifecycleParts<TIdle, TRunning, TDraining, TShutdown> & { faulted: TFaulted }) {
  return {
    ...lifecycleStates(parts),
    faulted: { ...parts.faulted, on: { STOP: LIFECYCLE.shutdown, ...parts.faulted.on } },
  } as const;
}
