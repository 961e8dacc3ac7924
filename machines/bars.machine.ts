import { assign, emit, enqueueActions, setup, type AnyActorRef } from 'xstate';
import type { Bar } from '../src/bars/bar.js';
import { createBarsState, flushBars, processBars, type BarsConfigInput, type BarsState } from '../src/bars/barProcessor.js';
import type { TimeframeBar } from '../src/bars/timeframe.js';
import { barCount, barsRefused, isEmptyBarBatch, type BarsRefused } from './barBatch.js';
import { LIFECYCLE, lifecycleStates, type LifecycleEvent } from './lifecycle.js';

/**
 * The bars actor (AIStock's BarProcessor + TimeframeManager): aggregates accepted bars into
 * every configured timeframe, keeps a bounded history per symbol and timeframe, and tracks
 * warm-up (see `src/bars/barProcessor.ts`). One `assign` per batch.
 *
 * - `BARS` in `running` reports `BARS_CLOSED` (every bar that closed, base bars included)
 *   and `SYMBOLS_READY` (symbols whose warm-up just finished), to `actor.on` listeners and
 *   to `reportTo` if given. An empty batch is an explicit no-op.
 * - `BARS_SCREENED` (the data guard's report, when the guard's `reportTo` is this actor) is a
 *   batch like `BARS`, empty or not, and is answered with one `BARS_AGGREGATED` (the batch's bars,
 *   now in the history, and what closed and warmed up) to `reportTo`: the data guard feeds the
 *   bars actor, which feeds its reader one event per batch. Listeners still get `BARS_CLOSED`.
 * - `FLUSH` closes every open bucket (end of data) and reports them the same way.
 * - `STOP` does not flush: open buckets stay in `context.state`, which is checkpointed, so a
 *   restart continues the partial bars instead of emitting them early.
 * - `BARS` or `BARS_SCREENED` before `START` or after `STOP` is refused (`BARS_REFUSED`) and counted.
 */

/** Events the bars actor accepts. */
export type BarsEvent =
  | LifecycleEvent
  | { type: 'BARS'; bars: readonly Bar[] }
  /** The data guard's report (its `BARS_SCREENED`): the bars that passed it. */
  | { type: 'BARS_SCREENED'; bars: readonly Bar[] }
  | { type: 'FLUSH' };

/** What the bars actor reports. */
export type BarsEmitted =
  | { type: 'BARS_CLOSED'; bars: TimeframeBar[] }
  | { type: 'SYMBOLS_READY'; symbols: string[] }
  /** A screened batch taken (see `BARS_SCREENED`): its bars, in order, and what closed and warmed up. */
  | {
      type: 'BARS_AGGREGATED';
      bars: readonly Bar[];
      closed: TimeframeBar[];
      ready: string[];
      /** The higher-timeframe bars each bar completed, by its index in `bars` (see `ProcessResult.completed`). */
      completed: ReadonlyMap<number, readonly TimeframeBar[]>;
    }
  | BarsRefused;

/** Input: aggregation and history settings, a checkpointed state, and who to report to. */
export interface BarsInput {
  config?: BarsConfigInput;
  /** A state from a checkpoint (validated with `BarsStateSchema`); its config wins over `config`. */
  restore?: BarsState;
  /** Also receives every `BARS_CLOSED` and `SYMBOLS_READY` event (e.g. the session's `self`). */
  reportTo?: AnyActorRef;
}

/** The bars actor's context. */
export interface BarsContext {
  state: BarsState;
  /** What the last batch or flush closed and warmed up, reported right after. */
  lastClosed: TimeframeBar[];
  lastReady: string[];
  lastCompleted: ReadonlyMap<number, readonly TimeframeBar[]>;
  stats: { batches: number; bars: number; closed: number; refused: number };
  reportTo: AnyActorRef | null;
}

/** The bars actor (`id` and `systemId` `bars`): aggregation, history and warm-up on the shared lifecycle. */
export const barsMachine = setup({
  types: {
    context: {} as BarsContext,
    events: {} as BarsEvent,
    input: {} as BarsInput | undefined,
    emitted: {} as BarsEmitted,
  },
  guards: {
    isEmptyBatch: ({ event }) => isEmptyBarBatch(event),
  },
  actions: {
    ingest: assign(({ context, event }) => {
      if (event.type !== 'BARS' && event.type !== 'BARS_SCREENED') return {};
      const result = processBars(context.state, event.bars);
      return {
        state: result.state,
        lastClosed: result.closed,
        lastReady: result.becameReady,
        lastCompleted: result.completed,
        // Spelled out, not spread: this runs for every batch (every live bar), and a spread is V8's generic copy.
        stats: {
          batches: context.stats.batches + 1,
          bars: context.stats.bars + event.bars.length,
          closed: context.stats.closed + result.closed.length,
          refused: context.stats.refused,
        },
      };
    }),
    flushBuckets: assign(({ context }) => {
      const result = flushBars(context.state);
      return {
        state: result.state,
        lastClosed: result.closed,
        lastReady: result.becameReady,
        lastCompleted: result.completed,
        stats: { ...context.stats, closed: context.stats.closed + result.closed.length },
      };
    }),
    reportOutput: enqueueActions(({ context, event, enqueue }) => {
      const reports: BarsEmitted[] = [];
      if (context.lastClosed.length > 0) reports.push({ type: 'BARS_CLOSED', bars: context.lastClosed });
      if (context.lastReady.length > 0) reports.push({ type: 'SYMBOLS_READY', symbols: context.lastReady });
      // A screened batch is answered with one event (see BARS_AGGREGATED); listeners get them all.
      const screened = event.type === 'BARS_SCREENED';
      for (const report of reports) {
        enqueue.emit(report);
        if (context.reportTo !== null && !screened) enqueue.sendTo(context.reportTo, report);
      }
      if (!screened) return;
      const aggregated = {
        type: 'BARS_AGGREGATED' as const,
        bars: event.bars,
        closed: context.lastClosed,
        ready: context.lastReady,
        completed: context.lastCompleted,
      };
      enqueue.emit(aggregated);
      if (context.reportTo !== null) enqueue.sendTo(context.reportTo, aggregated);
    }),
    countRefusal: assign({
      stats: ({ context, event }) => ({
        ...context.stats,
        refused: context.stats.refused + barCount(event),
      }),
    }),
    reportRefusal: emit(({ event }) => barsRefused(event)),
  },
}).createMachine({
  id: 'bars',
  context: ({ input }) => ({
    state: input?.restore ?? createBarsState(input?.config),
    lastClosed: [],
    lastReady: [],
    lastCompleted: new Map(),
    stats: { batches: 0, bars: 0, closed: 0, refused: 0 },
    reportTo: input?.reportTo ?? null,
  }),
  initial: LIFECYCLE.idle,
  states: lifecycleStates({
    idle: {
      on: {
        BARS: { description: 'not started: refused and counted', actions: ['countRefusal', 'reportRefusal'] },
        BARS_SCREENED: { description: 'not started: refused and counted', actions: ['countRefusal', 'reportRefusal'] },
      },
    },
    running: {
      on: {
        BARS: [
          { guard: 'isEmptyBatch', description: 'an empty batch changes nothing' },
          { actions: ['ingest', 'reportOutput'] },
        ],
        BARS_SCREENED: { description: "the data guard's report: always answered, in one event", actions: ['ingest', 'reportOutput'] },
        FLUSH: { description: 'end of data: close every open bucket', actions: ['flushBuckets', 'reportOutput'] },
      },
    },
    draining: {
      // Aggregation is synchronous and open buckets are kept for the checkpoint: nothing to wait for.
      always: LIFECYCLE.shutdown,
    },
    shutdown: {
      on: {
        BARS: { description: 'stopped: refused and counted', actions: ['countRefusal', 'reportRefusal'] },
        BARS_SCREENED: { description: 'stopped: refused and counted', actions: ['countRefusal', 'reportRefusal'] },
      },
    },
  }),
});
