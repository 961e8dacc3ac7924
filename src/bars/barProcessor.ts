import { z } from 'zod';
import { AggregatorStateSchema, aggregate, createAggregator, flush } from './aggregator.js';
import type { Bar } from './bar.js';
import { BarHistoryStateSchema, createBarHistory, recordBars } from './barHistory.js';
import { SessionAnchorSchema, TIMEFRAMES, TimeframeSchema, divides, type TimeframeBar } from './timeframe.js';
import { isKnownZone } from './zoneOffsets.js';

/**
 * The bar processor (AIStock's BarProcessor + TimeframeManager): accepted bars of the base
 * timeframe in, bars of every configured timeframe out, with a bounded history and warm-up
 * per symbol. The base timeframe is always among the outputs, and a base bar closes as soon
 * as it arrives (each bar covers its whole bucket), so the strategy sees it without delay.
 */

/** How bars are aggregated and kept. */
export const BarsConfigSchema = z
  .object({
    /** IANA zone whose wall clock buckets follow. */
    zone: z.string().refine(isKnownZone, 'unknown IANA time zone').default('America/New_York'),
    /** The timeframe of incoming bars. */
    baseTimeframe: TimeframeSchema.default('1m'),
    /** Timeframes to produce (the base is added if missing). */
    timeframes: z.array(TimeframeSchema).min(1).default(['1m', '5m', '1h', '1d']),
    /** `HH:MM` where intraday buckets start (e.g. `09:30`), or null for local midnight. */
    sessionAnchor: SessionAnchorSchema.nullable().default(null),
    /** Bars kept per symbol and timeframe. */
    historySize: z.number().int().positive().default(500),
    /** Base bars a symbol needs before it is `ready`. */
    warmUpBars: z.number().int().nonnegative().default(20),
  })
  .superRefine((config, ctx) => {
    for (const timeframe of config.timeframes) {
      if (!divides(config.baseTimeframe, timeframe)) {
        ctx.addIssue({ code: 'custom', path: ['timeframes'], message: `${config.baseTimeframe} bars cannot be aggregated into ${timeframe}` });
      }
    }
  });

/** Bars config, as accepted (defaults optional). */
export type BarsConfigInput = z.input<typeof BarsConfigSchema>;

/** Bars config with defaults applied. */
export type BarsConfig = z.infer<typeof BarsConfigSchema>;

/** The processor's state: open buckets and history, checkpointable. */
export const BarsStateSchema = z.object({
  aggregation: AggregatorStateSchema,
  history: BarHistoryStateSchema,
});

/** The processor's state (plain data). */
export type BarsState = z.infer<typeof BarsStateSchema>;

/** What one batch produced. */
export interface ProcessResult {
  readonly state: BarsState;
  /** Every bar that closed, base timeframe included, in arrival order. */
  readonly closed: TimeframeBar[];
  /** Symbols whose warm-up finished with this batch. */
  readonly becameReady: string[];
  /**
   * The higher-timeframe bars (not the base timeframe's) each bar of the batch completed, by its
   * index in the batch: the 5-minute bar its fifth minute closed, the hour its last. A flush completes none.
   */
  readonly completed: ReadonlyMap<number, readonly TimeframeBar[]>;
}

/** A batch (or flush) that completed no higher-timeframe bar. */
export const NONE_COMPLETED: ReadonlyMap<number, readonly TimeframeBar[]> = new Map();

/** A fresh processor. Throws a `ZodError` for an invalid config. */
export function createBarsState(input: BarsConfigInput = {}): BarsState {
  const config = BarsConfigSchema.parse(input);
  const wanted = new Set([config.baseTimeframe, ...config.timeframes]);
  return {
    aggregation: createAggregator({
      zone: config.zone,
      timeframes: TIMEFRAMES.filter((timeframe) => wanted.has(timeframe)),
      sessionAnchor: config.sessionAnchor,
      baseTimeframe: config.baseTimeframe,
    }),
    history: createBarHistory({ capacity: config.historySize, warmUpBars: config.warmUpBars, warmUpTimeframe: config.baseTimeframe }),
  };
}

/** Aggregates a batch of accepted bars and records what closed. Pure. */
export function processBars(state: BarsState, bars: readonly Bar[]): ProcessResult {
  const aggregated = aggregate(state.aggregation, bars);
  const completed = completedBy(aggregated.closed, aggregated.closedBy, state.aggregation.config.baseTimeframe);
  return settle(state, aggregated.state, aggregated.closed, completed);
}

/** Closes every open bucket (end of data) and records those bars. Pure. */
export function flushBars(state: BarsState): ProcessResult {
  const flushed = flush(state.aggregation);
  return settle(state, flushed.state, flushed.closed, NONE_COMPLETED);
}

/** The higher-timeframe bars among `closed`, grouped by the index of the bar that closed them. */
function completedBy(closed: readonly TimeframeBar[], closedBy: readonly number[], base: string | null): ReadonlyMap<number, readonly TimeframeBar[]> {
  // Most live bars complete only their own base bar: no map is made for them.
  let completed: Map<number, TimeframeBar[]> | null = null;
  for (let i = 0; i < closed.length; i += 1) {
    const bar = closed[i] as TimeframeBar;
    const by = closedBy[i];
    if (bar.timeframe === base || by === undefined) continue;
    completed ??= new Map();
    const list = completed.get(by);
    if (list === undefined) completed.set(by, [bar]);
    else list.push(bar);
  }
  return completed ?? NONE_COMPLETED;
}

/** The result of a batch or flush: what closed, recorded in the history. Built whole, not spread: it runs for every batch (every live bar). */
function settle(state: BarsState, aggregation: BarsState['aggregation'], closed: TimeframeBar[], completed: ProcessResult['completed']): ProcessResult {
  if (closed.length === 0) return { state: { aggregation, history: state.history }, closed, becameReady: [], completed };
  const recorded = recordBars(state.history, closed);
  return { state: { aggregation, history: recorded.state }, closed, becameReady: recorded.becameReady, completed };
}
