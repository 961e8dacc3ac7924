import { assign, emit, enqueueActions, setup, type AnyActorRef } from 'xstate';
import type { Bar } from '../src/bars/bar.js';
import {
  createDataGuard,
  screenBars,
  type DataGuardConfigInput,
  type GuardFinding,
  type GuardState,
} from '../src/dataGuard/dataGuard.js';
import { barCount, barsRefused, isEmptyBarBatch, type BarsRefused } from './barBatch.js';
import { LIFECYCLE, lifecycleStates, type LifecycleEvent } from './lifecycle.js';

/**
 * The data guard (AIStock's EdgeCaseHandler) as an actor: screens batches of bars per symbol
 * (see `src/dataGuard/dataGuard.ts` for the reasons and actions) in one `assign` per batch.
 *
 * - `BARS` in `running` screens the batch and reports `BARS_SCREENED` (the bars that passed,
 *   and every finding) to `actor.on` listeners and to `reportTo`, if one was given
 *   (a parent passes `self`). An empty batch is an explicit no-op.
 * - `BARS` before `START` or after `STOP` is refused: `BARS_REFUSED`, counted, never dropped
 *   silently.
 * - Screening is synchronous, so `draining` has nothing to wait for and ends at once.
 * - The guard's state (`context.guard`) is plain data under `GuardStateSchema`: checkpoint it,
 *   and pass it back as `restore` after a restart.
 */

/** Events the data guard accepts. `receivedAtMs` (wall clock) turns the staleness check on: omit it in replay. */
export type DataGuardEvent = LifecycleEvent | { type: 'BARS'; bars: readonly Bar[]; receivedAtMs?: number };

/** What the data guard reports. */
export type DataGuardEmitted =
  | { type: 'BARS_SCREENED'; bars: Bar[]; findings: GuardFinding[] }
  | BarsRefused;

/** Input: thresholds, a checkpointed state to resume from, and who to report screened bars to. */
export interface DataGuardInput {
  config?: DataGuardConfigInput;
  /** A state from a checkpoint (validated with `GuardStateSchema`); its config wins over `config`. */
  restore?: GuardState;
  /** Also receives every `BARS_SCREENED` event (e.g. the session passes its `self`). */
  reportTo?: AnyActorRef;
}

/** The data guard's context. */
export interface DataGuardContext {
  guard: GuardState;
  /** The last batch's outcome, reported right after screening. */
  lastScreen: { passed: Bar[]; findings: GuardFinding[] };
  /** Bars refused because the guard was not running. */
  refusedBars: number;
  reportTo: AnyActorRef | null;
}

/** The data guard actor (`id` and `systemId` `dataGuard`): per-symbol verdicts on the shared lifecycle. */
export const dataGuardMachine = setup({
  types: {
    context: {} as DataGuardContext,
    events: {} as DataGuardEvent,
    input: {} as DataGuardInput | undefined,
    emitted: {} as DataGuardEmitted,
  },
  guards: {
    isEmptyBatch: ({ event }) => isEmptyBarBatch(event),
  },
  actions: {
    screen: assign(({ context, event }) => {
      if (event.type !== 'BARS') return {};
      const result = screenBars(context.guard, event.bars, event.receivedAtMs ?? null);
      return { guard: result.state, lastScreen: { passed: result.passed, findings: result.findings } };
    }),
    reportScreened: enqueueActions(({ context, enqueue }) => {
      const screened = { type: 'BARS_SCREENED' as const, bars: context.lastScreen.passed, findings: context.lastScreen.findings };
      enqueue.emit(screened);
      if (context.reportTo !== null) enqueue.sendTo(context.reportTo, screened);
    }),
    countRefusal: assign({
      refusedBars: ({ context, event }) => context.refusedBars + barCount(event),
    }),
    reportRefusal: emit(({ event }) => barsRefused(event)),
  },
}).createMachine({
  id: 'dataGuard',
  context: ({ input }) => ({
    guard: input?.restore ?? createDataGuard(input?.config),
    lastScreen: { passed: [], findings: [] },
    refusedBars: 0,
    reportTo: input?.reportTo ?? null,
  }),
  initial: LIFECYCLE.idle,
  states: lifecycleStates({
    idle: {
      on: { BARS: { description: 'not started: refused and counted', actions: ['countRefusal', 'reportRefusal'] } },
    },
    running: {
      on: {
        BARS: [
          { guard: 'isEmptyBatch', description: 'an empty batch changes nothing' },
          { actions: ['screen', 'reportScreened'] },
        ],
      },
    },
    draining: {
      // Screening is synchronous: nothing is ever in flight.
      always: LIFECYCLE.shutdown,
    },
    shutdown: {
      on: { BARS: { description: 'stopped: refused and counted', actions: ['countRefusal', 'reportRefusal'] } },
    },
  }),
});
