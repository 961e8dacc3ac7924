import { z } from 'zod';

const price = z.number().finite().positive();

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
 * and > 0, `low ≤ open, close ≤ high`, volume finite and ≥ 0 (FX bars carry volume 0).
 */
export type Bar = Readonly<z.infer<typeof barShape>>;

/** Why a bar's numbers cannot be a bar: a closed set, shared by the reader and the data guard. */
export type BarProblem = 'NOT_A_NUMBER' | 'NON_POSITIVE_PRICE' | 'HIGH_BELOW_LOW' | 'OUTSIDE_HIGH_LOW' | 'NEGATIVE_VOLUME';

/** A bar that is not sane, with the field to blame. */
export interface BarDefect {
  readonly problem: BarProblem;
  readonly field: keyof Bar;
  readonly detail: string;
}

const PRICE_FIELDS = ['open', 'high', 'low', 'close'] as const;

/**
 * The first thing wrong with a bar's numbers, or `null` when it is a valid bar. Checks run in
 * a fixed order (finite, positive, `high ≥ low`, open/close inside the range, volume), so
 * the same bar always reports the same defect.
 */
export function barDefect(bar: Bar): BarDefect | null {
  const { open, high, low, close, volume } = bar;
  // The common case in one expression: comparisons with NaN are false, so NaN falls through.
  if (low > 0 && low <= open && low <= close && open <= high && close <= high && Number.isFinite(high) && volume >= 0 && Number.isFinite(volume) && Number.isSafeInteger(bar.ts)) {
    return null;
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
  return null;
}

/** A valid bar, for boundaries (library callers, checkpoints): shape plus {@link barDefect}. */
export const BarSchema = barShape.superRefine((bar, ctx) => {
  const defect = barDefect(bar);
  if (defect !== null) ctx.addIssue({ code: 'custom', path: [defect.field], message: `${defect.problem}: ${defect.detail}` });
});
