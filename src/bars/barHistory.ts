import { z } from 'zod';
import { own } from '../common/keyed.js';
import { BarSchema } from './bar.js';
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

const RingSchema = z.object({
  /** Bars in insertion slots; once full, `next` is the oldest. */
  items: z.array(TimeframeBarSchema),
  /** The slot the next bar goes into. */
  next: z.number().int().nonnegative(),
});

/** A bounded ring buffer of bars. */
export type BarRing = z.infer<typeof RingSchema>;

/** Warm-up status of a symbol. */
export type WarmUpStatus = 'warmingUp' | 'ready';

const SymbolHistorySchema = z.object({
  status: z.enum(['warmingUp', 'ready']),
  barsSeen: z.number().int().nonnegative(),
  lastPrice: z.number().nullable(),
  series: z.partialRecord(TimeframeSchema, RingSchema),
});

/** One symbol's history. */
export type SymbolHistory = z.infer<typeof SymbolHistorySchema>;

/** The whole history, checkpointable. */
export const BarHistoryStateSchema = z.object({
  config: BarHistoryConfigSchema,
  symbols: z.record(z.string(), SymbolHistorySchema),
});

/** The whole history (plain data). */
export type BarHistoryState = z.infer<typeof BarHistoryStateSchema>;

/** An empty history. Throws a `ZodError` for an invalid config. */
export function createBarHistory(config: BarHistoryConfigInput = {}): BarHistoryState {
  return { config: BarHistoryConfigSchema.parse(config), symbols: {} };
}

/**
 * Appends bars (each to its symbol's ring for its timeframe) and reports the symbols that
 * became `ready` with this batch. Pure: `state` is not changed; each touched ring is copied
 * once per call.
 */
export function recordBars(state: BarHistoryState, bars: readonly TimeframeBar[]): { state: BarHistoryState; becameReady: string[] } {
  const { config } = state;
  const symbols: Record<string, SymbolHistory> = { ...state.symbols };
  const becameReady: string[] = [];

  for (const bar of bars) {
    // Entries and rings are copied once per call: one still identical to the input's is not copied yet.
    const original = own(state.symbols, bar.symbol);
    let entry = own(symbols, bar.symbol);
    if (entry === undefined) {
      entry = { status: config.warmUpBars === 0 ? 'ready' : 'warmingUp', barsSeen: 0, lastPrice: null, series: {} };
      symbols[bar.symbol] = entry;
      if (entry.status === 'ready') becameReady.push(bar.symbol);
    } else if (entry === original) {
      // Spelled out, not spread (V8's generic copy for mixed shapes): this runs for every bar.
      const series: SymbolHistory['series'] = {};
      for (const timeframe in entry.series) series[timeframe as Timeframe] = entry.series[timeframe as Timeframe];
      entry = { status: entry.status, barsSeen: entry.barsSeen, lastPrice: entry.lastPrice, series };
      symbols[bar.symbol] = entry;
    }
    let ring = entry.series[bar.timeframe];
    if (ring === undefined) {
      ring = { items: [], next: 0 };
      entry.series[bar.timeframe] = ring;
    } else if (ring === original?.series[bar.timeframe]) {
      ring = { items: [...ring.items], next: ring.next };
      entry.series[bar.timeframe] = ring;
    }
    ring.items[ring.next] = bar;
    ring.next = (ring.next + 1) % config.capacity;

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
  const ring = own(state.symbols, symbol)?.series[timeframe];
  if (ring === undefined) return [];
  const { items, next } = ring;
  const ordered = items.length < state.config.capacity ? items : [...items.slice(next), ...items.slice(0, next)];
  return count >= ordered.length ? [...ordered] : ordered.slice(ordered.length - count);
}

/** The close of the symbol's newest warm-up-timeframe bar, or null before its first one. */
export function lastPrice(state: BarHistoryState, symbol: string): number | null {
  return own(state.symbols, symbol)?.lastPrice ?? null;
}

/** The symbol's warm-up status (`warmingUp` for a symbol never seen). */
export function warmUpStatus(state: BarHistoryState, symbol: string): WarmUpStatus {
  return own(state.symbols, symbol)?.status ?? 'warmingUp';
}
