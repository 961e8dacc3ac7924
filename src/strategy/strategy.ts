import { z } from 'zod';
import { AistockError } from '../common/errors.js';
import { own } from '../common/keyed.js';
import type { Bar } from '../bars/bar.js';
import type { TimeframeBar } from '../bars/timeframe.js';
import type { OrderIntent } from '../common/order.js';

/**
 * A strategy turns closed bars into order intents. It is pure: its memory is a plain,
 * JSON-serialisable state that the session checkpoints, so a restart resumes it exactly and
 * re-processing a bar after a crash yields the same intents (and so the same order ids).
 */
export interface Strategy<TState = unknown> {
  /** Part of every client order id: keep it short and stable across releases. */
  readonly id: string;
  /** Validates the state restored from a checkpoint. */
  readonly stateSchema: z.ZodType<TState>;
  initialState(): TState;
  /**
   * One closed base-timeframe bar of one symbol. `position` is the signed quantity held now
   * (a decimal string); `market.completed` the higher-timeframe bars this bar completed. Returns
   * the next state and the orders to place, in order.
   */
  onBar(state: TState, bar: Bar, position: string, market: BarMarket): { state: TState; intents: OrderIntent[] };
}

/**
 * What the session has aggregated as of a bar, beside the bar itself.
 *
 * `completed` holds the bars of the session's higher timeframes (`timeframes`, e.g. 5m, 1h, 1d)
 * that this base bar completed — the 5-minute bar on its fifth minute, the hour on its last —
 * shortest timeframe first; empty for most bars. It depends only on the bars' times, never on how
 * they were batched, so a strategy that keeps the history it needs in its state (bounded: it is
 * checkpointed with it) decides the same in a replay, live, and after a restart.
 */
export interface BarMarket {
  readonly completed: readonly TimeframeBar[];
}

/** Options of {@link smaCross}. */
export const SmaCrossOptionsSchema = z
  .object({
    fast: z.number().int().min(1).default(10),
    slow: z.number().int().min(2).default(30),
    /**
     * Money spent on a cross up, in whole shares at the bar's close (default 900: under the
     * default 1 % per-trade risk limit of a 100,000 account). The whole position is sold on a
     * cross down.
     */
    notional: z.number().positive().default(900),
  })
  .refine((o) => o.fast < o.slow, { message: 'fast must be shorter than slow', path: ['fast'] });

const closesSchema = z.record(z.string(), z.array(z.number()));
type SmaCrossState = z.infer<typeof closesSchema>;

/**
 * The sample strategy: per symbol, go long `notional` worth when the fast simple moving average of closes
 * crosses above the slow one while flat, and sell the whole position when it crosses below.
 */
export function smaCross(options: z.input<typeof SmaCrossOptionsSchema> = {}): Strategy<SmaCrossState> {
  const { fast, slow, notional } = SmaCrossOptionsSchema.parse(options);
  const mean = (values: readonly number[], from: number): number => {
    let sum = 0;
    for (let i = from; i < values.length; i += 1) sum += values[i] ?? 0;
    return sum / (values.length - from);
  };
  return {
    id: `sma${fast}x${slow}`,
    stateSchema: closesSchema,
    initialState: () => ({}),
    onBar(state, bar, position) {
      const previous = own(state, bar.symbol) ?? [];
      // Keep slow + 1 closes: the averages now and one bar ago decide a cross.
      const closes = previous.length > slow ? [...previous.slice(previous.length - slow), bar.close] : [...previous, bar.close];
      const next = { ...state, [bar.symbol]: closes };
      if (closes.length <= slow) return { state: next, intents: [] };
      const before = closes.slice(0, -1);
      const wasAbove = mean(before, before.length - fast) > mean(before, before.length - slow);
      const isAbove = mean(closes, closes.length - fast) > mean(closes, closes.length - slow);
      const flat = !/[1-9]/.test(position);
      const long = !flat && !position.startsWith('-');
      const shares = Math.floor(notional / bar.close);
      if (isAbove && !wasAbove && flat && shares > 0) {
        return { state: next, intents: [{ symbol: bar.symbol, side: 'buy', qty: String(shares), type: 'market', reason: 'sma cross up' }] };
      }
      if (!isAbove && wasAbove && long) {
        return { state: next, intents: [{ symbol: bar.symbol, side: 'sell', qty: position, type: 'market', reason: 'sma cross down' }] };
      }
      return { state: next, intents: [] };
    },
  };
}

/** A strategy's `onBar` ran longer than the session allows (`strategyTimeoutMs`). */
export class StrategyTimeoutError extends AistockError {
  readonly tookMs: number;

  constructor(strategyId: string, tookMs: number, limitMs: number) {
    super('STRATEGY_TIMEOUT', `${strategyId}.onBar took ${tookMs} ms, over strategyTimeoutMs ${limitMs}`);
    this.tookMs = tookMs;
  }
}

/**
 * `strategy`, its every `onBar` timed on `monoMs`: one that returns after more than `limitMs`
 * throws {@link StrategyTimeoutError} instead of its result, so the session faults
 * (`STRATEGY_FAILED`) rather than trade on a strategy that cannot keep up. `onBar` is
 * synchronous and runs on the session's thread: a call that never returns cannot be cut short
 * here (that needs a worker thread), only one that returns late.
 */
export function timeLimited<TState>(strategy: Strategy<TState>, monoMs: () => number, limitMs: number): Strategy<TState> {
  return {
    id: strategy.id,
    stateSchema: strategy.stateSchema,
    initialState: () => strategy.initialState(),
    onBar(state, bar, position, market) {
      const started = monoMs();
      const step = strategy.onBar(state, bar, position, market);
      const tookMs = monoMs() - started;
      if (tookMs > limitMs) throw new StrategyTimeoutError(strategy.id, tookMs, limitMs);
      return step;
    },
  };
}
