import { z } from 'zod';
import { abs, formatPrice, formatQty, fromNumber, parseQty, PRICE_DECIMALS, ratioOf, ONE_RATIO, type Qty } from '../common/money.js';
import type { Fill } from '../common/order.js';

/**
 * Position reconciliation (AIStock's PositionReconciler) as plain functions: the broker's
 * positions against the portfolio's, allowing for broker fills the session has not applied
 * yet (orders it will re-decide after a restart), so that only real differences are reported.
 */

/** What to do about a difference: book the broker's position (default) or halt above a tolerance. */
export const ReconcilePolicySchema = z.object({
  policy: z.enum(['adopt', 'halt']).default('adopt'),
  /** `halt`: a difference above this fraction of the larger position halts trading (10 %). */
  tolerance: z.number().min(0).max(1).default(0.1),
  /** Live sessions also reconcile between batches this often, on the feed's monotonic clock (null: never). */
  intervalMs: z.number().int().positive().nullable().default(60_000),
});
/** See {@link ReconcilePolicySchema}. */
export type ReconcilePolicy = z.infer<typeof ReconcilePolicySchema>;

/** One symbol whose positions disagree. Quantities are signed decimal strings. */
export interface PositionDifference {
  readonly symbol: string;
  /** The portfolio's position. */
  readonly local: string;
  /** The broker's position. */
  readonly broker: string;
  /** Broker fills not applied yet (they will be, when their orders are re-decided). */
  readonly pending: string;
  /** `broker − local − pending`: what no known fill explains. */
  readonly unexplained: string;
  /** |unexplained| / max(|broker|, |local|), as a fraction (1 when one side is flat). */
  readonly fraction: number;
}

/** A reconciliation's typed report. */
export interface ReconcileReport {
  readonly at: 'start' | 'scheduled' | 'stop';
  readonly differences: readonly PositionDifference[];
  /** Whether a difference exceeded the tolerance under the `halt` policy. */
  readonly halt: boolean;
}

/** Signed quantity per symbol of `fills`. */
export function netFills(fills: readonly Fill[]): Map<string, Qty> {
  const net = new Map<string, Qty>();
  for (const fill of fills) {
    const qty = parseQty(fill.qty);
    net.set(fill.symbol, (net.get(fill.symbol) ?? 0n) + (fill.side === 'buy' ? qty : -qty));
  }
  return net;
}

/** Every symbol where `broker ≠ local + pending`, in symbol order. */
export function positionDifferences(
  local: ReadonlyMap<string, Qty>,
  broker: ReadonlyMap<string, Qty>,
  pending: ReadonlyMap<string, Qty>,
): PositionDifference[] {
  const symbols = [...new Set([...local.keys(), ...broker.keys(), ...pending.keys()])].sort();
  const differences: PositionDifference[] = [];
  for (const symbol of symbols) {
    const mine = local.get(symbol) ?? 0n;
    const theirs = broker.get(symbol) ?? 0n;
    const waiting = pending.get(symbol) ?? 0n;
    const unexplained = theirs - mine - waiting;
    if (unexplained === 0n) continue;
    const base = abs(theirs) > abs(mine) ? abs(theirs) : abs(mine);
    const fraction = base === 0n ? 1 : Number(ratioOf(abs(unexplained), base)) / Number(ONE_RATIO);
    differences.push({
      symbol,
      local: formatQty(mine),
      broker: formatQty(theirs),
      pending: formatQty(waiting),
      unexplained: formatQty(unexplained),
      fraction: Math.min(1, fraction),
    });
  }
  return differences;
}

/** The report for `differences` under `policy`. */
export function reconcileReport(
  at: ReconcileReport['at'],
  differences: readonly PositionDifference[],
  policy: Pick<ReconcilePolicy, 'policy' | 'tolerance'>,
): ReconcileReport {
  return { at, differences, halt: policy.policy === 'halt' && differences.some((d) => d.fraction > policy.tolerance) };
}

/**
 * The fills that make the portfolio hold the broker's positions (`adopt`): one per differing
 * symbol, at `price` (the newest close), no commission, with a `RECON-` client order id.
 */
export function adoptionFills(differences: readonly PositionDifference[], priceOf: (symbol: string) => number | undefined, at: number): Fill[] {
  const fills: Fill[] = [];
  for (const difference of differences) {
    const price = priceOf(difference.symbol);
    const qty = parseQty(difference.unexplained);
    if (price === undefined || qty === 0n) continue;
    fills.push({
      clientOrderId: `RECON-${difference.symbol}-${at}`.slice(0, 32),
      symbol: difference.symbol,
      side: qty > 0n ? 'buy' : 'sell',
      qty: formatQty(abs(qty)),
      price: formatPrice(fromNumber(price, PRICE_DECIMALS)),
      commission: '0',
      filledAt: at,
    });
  }
  return fills;
}

/** One of the session's own orders (its id carries the session's tag) as the broker knows it. */
export interface OwnOrder {
  readonly clientOrderId: string;
  readonly symbol: string;
  /** The bar that decided it, read from its id. */
  readonly barTs: number;
  readonly fills: readonly Fill[];
}

/**
 * The broker's fills of the session's own orders that the portfolio does not hold yet
 * (`applied`: fills held per order), split by whether their bar will be decided again:
 * - `final`: the bar is at or before `decidedTo` (the newest bar decided per symbol), so it
 *   is never decided again; these fills are applied now, as the session's own, at their price.
 * - `pending`: the bar lies after it; deciding that bar again yields the same id, and the
 *   fills are applied then, in the order a run without the restart applied them.
 */
export function splitOwnFills(
  own: readonly OwnOrder[],
  applied: { get(clientOrderId: string): number },
  decidedTo: ReadonlyMap<string, number>,
): { final: Fill[]; pending: Fill[] } {
  const final: Fill[] = [];
  const pending: Fill[] = [];
  for (const order of own) {
    const unapplied = order.fills.slice(applied.get(order.clientOrderId));
    if (unapplied.length === 0) continue;
    const decided = decidedTo.get(order.symbol);
    (decided !== undefined && order.barTs <= decided ? final : pending).push(...unapplied);
  }
  return { final, pending };
}
