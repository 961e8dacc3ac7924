import { z } from 'zod';
import { SYMBOL_PATTERN } from '../common/order.js';

const price = z.number().finite().positive();

/** The first bar time accepted: 1900-01-01T00:00Z. */
export const MIN_BAR_TS = Date.UTC(1900, 0, 1);
/** The first bar time refused: 2200-01-01T00:00Z. (Epoch microseconds and nanoseconds land beyond it.) */
export const MAX_BAR_TS = Date.UTC(2200, 0, 1);

/**
 * The largest volume accepted: 2^53 - 1, the largest integer a double counts exactly. Summed into
 * the buckets of any timeframe, volumes this size stay finite; a volume near `Number.MAX_VALUE`
 * would aggregate to Infinity, which JSON (the checkpoint) cannot hold.
 */
export const MAX_VOLUME = Number.MAX_SAFE_INTEGER;

/** The shape of a bar, without the cross-field checks (see {@link BarSchema}). */
const barShape = z.object({
  symbol: z.string().min(1),
  ts: z.number().int(),
  open: price,
  high: price,
  low: price,
  close: price,
  volume: z.number().finite().nonnegative(),
});

/**
 * A price bar: `ts` is the UTC epoch milliseconds of the bar's start; prices are plain
 * numbers (the portfolio converts them to exact money itself). Valid means: prices finite
 * and > 0, `low ≤ open, close ≤ high`, volume in 0 .. {@link MAX_VOLUME} (FX bars carry volume 0).
 */
export type Bar = Readonly<z.infer<typeof barShape>>;

/** Why a bar's numbers cannot be a bar: a closed set, shared by the reader and the data guard. */
export type BarProblem =
  | 'INVALID_SYMBOL'
  | 'TIMESTAMP_OUT_OF_RANGE'
  | 'NOT_A_NUMBER'
  | 'NON_POSITIVE_PRICE'
  | 'HIGH_BELOW_LOW'
  | 'OUTSIDE_HIGH_LOW'
  | 'NEGATIVE_VOLUME'
  | 'VOLUME_OUT_OF_RANGE';

/** A bar that is not sane, with the field to blame. */
export interface BarDefect {
  readonly problem: BarProblem;
  readonly field: keyof Bar;
  readonly detail: string;
}

const PRICE_FIELDS = ['open', 'high', 'low', 'close'] as const;

// Symbols already found valid: a Set lookup instead of a regex for every bar of a known symbol.
const validSymbols = new Set<string>();
const VALID_SYMBOLS_KEPT = 10_000;

function isValidSymbol(symbol: string): boolean {
  if (validSymbols.has(symbol)) return true;
  if (typeof symbol !== 'string' || !SYMBOL_PATTERN.test(symbol)) return false;
  if (validSymbols.size >= VALID_SYMBOLS_KEPT) validSymbols.clear();
  validSymbols.add(symbol);
  return true;
}

/**
 * The first thing wrong with a bar, or `null` when it is a valid bar. Checks run in a fixed
 * order (symbol, time, finite, positive, `high ≥ low`, open/close inside the range, volume), so
 * the same bar always reports the same defect. The symbol follows the one grammar orders use
 * (`SYMBOL_PATTERN`), so a bar the session accepts can always be traded; the time lies in
 * [{@link MIN_BAR_TS}, {@link MAX_BAR_TS}).
 */
export function barDefect(bar: Bar): BarDefect | null {
  const { open, high, low, close, volume, ts } = bar;
  // The common case in one expression: comparisons with NaN are false, so NaN falls through.
  if (
    low > 0 && low <= open && low <= close && open <= high && close <= high && Number.isFinite(high) &&
    volume >= 0 && volume <= MAX_VOLUME && Number.isSafeInteger(ts) && ts >= MIN_BAR_TS && ts < MAX_BAR_TS &&
    isValidSymbol(bar.symbol)
  ) {
    return null;
  }
  if (typeof bar.symbol !== 'string' || !SYMBOL_PATTERN.test(bar.symbol)) {
    const shown = JSON.stringify(bar.symbol)?.slice(0, 40) ?? String(bar.symbol);
    return { problem: 'INVALID_SYMBOL', field: 'symbol', detail: `symbol ${shown} is not 1-32 letters, digits or . _ : / = ^ - starting with a letter or digit` };
  }
  if (Number.isSafeInteger(ts) && (ts < MIN_BAR_TS || ts >= MAX_BAR_TS)) {
    return { problem: 'TIMESTAMP_OUT_OF_RANGE', field: 'ts', detail: `ts ${ts} is outside 1900-01-01 .. 2200-01-01 UTC (epoch milliseconds expected)` };
  }
  for (const field of PRICE_FIELDS) {
    const price = bar[field];
    if (!Number.isFinite(price)) return { problem: 'NOT_A_NUMBER', field, detail: `${field} is ${price}` };
    if (price <= 0) return { problem: 'NON_POSITIVE_PRICE', field, detail: `${field} ${price} is not > 0` };
  }
  if (!Number.isFinite(bar.volume)) return { problem: 'NOT_A_NUMBER', field: 'volume', detail: `volume is ${bar.volume}` };
  if (!Number.isSafeInteger(bar.ts)) return { problem: 'NOT_A_NUMBER', field: 'ts', detail: `ts ${bar.ts} is not an integer of milliseconds` };
  if (bar.high < bar.low) return { problem: 'HIGH_BELOW_LOW', field: 'high', detail: `high ${bar.high} < low ${bar.low}` };
  for (const field of ['open', 'close'] as const) {
    const price = bar[field];
    if (price < bar.low || price > bar.high) {
      return { problem: 'OUTSIDE_HIGH_LOW', field, detail: `${field} ${price} is outside low ${bar.low} .. high ${bar.high}` };
    }
  }
  if (bar.volume < 0) return { problem: 'NEGATIVE_VOLUME', field: 'volume', detail: `volume ${bar.volume} is < 0` };
  if (bar.volume > MAX_VOLUME) {
    return { problem: 'VOLUME_OUT_OF_RANGE', field: 'volume', detail: `volume ${bar.volume} is > ${MAX_VOLUME} (2^53 - 1): summed, it would not stay finite` };
  }
  return null;
}

/** A valid bar, for boundaries (library callers, checkpoints): shape plus {@link barDefect}. */
export const BarSchema = barShape.superRefine((bar, ctx) => {
  const defect = barDefect(bar);
  if (defect !== null) ctx.addIssue({ code: 'custom', path: [defect.field], message: `${defect.problem}: ${defect.detail}` });
});
