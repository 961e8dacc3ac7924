import { z } from 'zod';
import { SymbolMap } from '../common/keyed.js';
import { BarSchema } from './bar.js';
import { BarRing } from './barRing.js';
import { TimeframeSchema, type Timeframe, type TimeframeBar } from './timeframe.js';

/**
 * Bar history (AIStock's BarProcessor): per symbol and timeframe a bounded ring buffer of the
 * newest bars, a warm-up status (`warmingUp` until `warmUpBars` bars of `warmUpTimeframe`
 * have been seen, then `ready`) and the last price (close of the newest warm-up-timeframe
 * bar). Plain data with a zod schema, so it is checkpointed with the session.
 */

/** A bar with the timeframe it belongs to, validated. */
export const TimeframeBarSchema = z.intersection(BarSchema, z.object({ timeframe: TimeframeSchema }));

/** How much history to keep and when a symbol is warmed up. */
export const BarHistoryConfigSchema = z.object({
  /** Bars kept per symbol and timeframe. */
  capacity: z.number().int().positive().default(500),
  /** Bars of `warmUpTimeframe` a symbol needs before it is `ready`. */
  warmUpBars: z.number().int().nonnegative().default(20),
  /** The timeframe that counts for warm-up and last price (the base timeframe). */
  warmUpTimeframe: TimeframeSchema.default('1m'),
});

/** History config, as accepted (defaults optional). */
export type BarHistoryConfigInput = z.input<typeof BarHistoryConfigSchema>;

/** History config with defaults applied. */
export type BarHistoryConfig = z.infer<typeof BarHistoryConfigSchema>;

/** A ring as a checkpoint holds it (see `BarRing.toJSON`). */
const RingJsonSchema = z.object({
  /** Bars in insertion slots; once full, `next` is the oldest. */
  items: z.array(TimeframeBarSchema),
  /** The slot the next bar goes into. */
  next: z.number().int().nonnegative(),
});

/** Warm-up status of a symbol. */
export type WarmUpStatus = 'warmingUp' | 'ready';

const SymbolHistoryJsonSchema = z.object({
  status: z.enum(['warmingUp', 'ready']),
  barsSeen: z.number().int().nonnegative(),
  lastPrice: z.number().nullable(),
  series: z.partialRecord(TimeframeSchema, RingJsonSchema),
});

/** One symbol's history. */
export interface SymbolHistory {
  status: WarmUpStatus;
  barsSeen: number;
  lastPrice: number | null;
  series: Partial<Record<Timeframe, BarRing>>;
}

/** The whole history (plain data but for its rings, which serialize as plain data). */
export interface BarHistoryState {
  config: BarHistoryConfig;
  symbols: SymbolMap<SymbolHistory>;
}

/** The whole history as a checkpoint holds it, parsed into rings of the config's capacity. */
export const BarHistoryStateSchema = z
  .object({
    config: BarHistoryConfigSchema,
    symbols: z.record(z.string(), SymbolHistoryJsonSchema),
  })
  .transform(({ config, symbols }): BarHistoryState => {
    const restored = new SymbolMap<SymbolHistory>();
    for (const [symbol, entry] of Object.entries(symbols)) {
      const series: SymbolHistory['series'] = {};
      for (const [timeframe, ring] of Object.entries(entry.series)) {
        if (ring !== undefined) series[timeframe as Timeframe] = BarRing.fromJSON(ring, config.capacity);
      }
      restored.set(symbol, { status: entry.status, barsSeen: entry.barsSeen, lastPrice: entry.lastPrice, series });
    }
    return { config, symbols: restored };
  });

/** An empty history. Throws a `ZodError` for an invalid config. */
export function createBarHistory(config: BarHistoryConfigInput = {}): BarHistoryState {
  return { config: BarHistoryConfigSchema.parse(config), symbols: new SymbolMap() };
}

/**
 * Appends bars (each to its symbol's ring for its timeframe) and reports the symbols that
 * became `ready` with this batch. Pure: `state` is not changed; each touched entry is copied
 * once per call, and rings share their storage (see `BarRing`).
 */
export function recordBars(state: BarHistoryState, bars: readonly TimeframeBar[]): { state: BarHistoryState; becameReady: string[] } {
  const { config } = state;
  const symbols = SymbolMap.copyOf(state.symbols);
  const becameReady: string[] = [];
  // This call's rings are its own until it returns: appends after the first extend them in place.
  const batch = {};

  for (const bar of bars) {
    // Entries and rings are copied once per call: one still identical to the input's is not copied yet.
    const original = state.symbols.get(bar.symbol);
    let entry = symbols.get(bar.symbol);
    if (entry === undefined) {
      entry = { status: config.warmUpBars === 0 ? 'ready' : 'warmingUp', barsSeen: 0, lastPrice: null, series: {} };
      symbols.set(bar.symbol, entry);
      if (entry.status === 'ready') becameReady.push(bar.symbol);
    } else if (entry === original) {
      // Spelled out, not spread (V8's generic copy for mixed shapes): this runs for every bar.
      const series: SymbolHistory['series'] = {};
      for (const timeframe in entry.series) series[timeframe as Timeframe] = entry.series[timeframe as Timeframe];
      entry = { status: entry.status, barsSeen: entry.barsSeen, lastPrice: entry.lastPrice, series };
      symbols.set(bar.symbol, entry);
    }
    entry.series[bar.timeframe] = (entry.series[bar.timeframe] ?? BarRing.empty(config.capacity)).append(bar, batch);

    if (bar.timeframe === config.warmUpTimeframe) {
      entry.barsSeen += 1;
      entry.lastPrice = bar.close;
      if (entry.status === 'warmingUp' && entry.barsSeen >= config.warmUpBars) {
        entry.status = 'ready';
        becameReady.push(bar.symbol);
      }
    }
  }
  return { state: { config, symbols }, becameReady };
}

/** The newest `count` bars (default: all kept) of a symbol's timeframe, oldest first. */
export function recentBars(state: BarHistoryState, symbol: string, timeframe: Timeframe, count = Number.POSITIVE_INFINITY): TimeframeBar[] {
  return state.symbols.get(symbol)?.series[timeframe]?.newest(count) ?? [];
}

/** The close of the symbol's newest warm-up-timeframe bar, or null before its first one. */
export function lastPrice(state: BarHistoryState, symbol: string): number | null {
  return state.symbols.get(symbol)?.lastPrice ?? null;
}

/** The symbol's warm-up status (`warmingUp` for a symbol never seen). */
export function warmUpStatus(state: BarHistoryState, symbol: string): WarmUpStatus {
  return state.symbols.get(symbol)?.status ?? 'warmingUp';
}
