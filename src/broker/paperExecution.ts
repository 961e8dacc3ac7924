import {
  divRoundHalfEven,
  fromNumber,
  max,
  parseQty,
  pow10,
  PRICE_DECIMALS,
  QTY_DECIMALS,
  type Money,
  type Price,
  type Qty,
} from '../common/money.js';
import type { Side } from '../common/order.js';

/**
 * The PaperBroker's execution arithmetic, as plain functions on exact scaled integers
 * (see src/common/money.ts): where a fill is priced, what it costs, how an order is split.
 */

/** Paper fills are priced on a 0.0001 grid: sub-penny, as US equity quotes are. */
export const PAPER_TICK_DECIMALS = 4;

const TICK: Price = pow10(PRICE_DECIMALS - PAPER_TICK_DECIMALS);
const BPS_DECIMALS = 4;
/** 1.0 as a factor at basis-point scale: 10^4 bps × 10^4 (the bps' own decimals). */
const ONE_FACTOR = pow10(BPS_DECIMALS + BPS_DECIMALS);

/** Basis points (`2.5`) as an exact integer scaled by 10^4. */
export function parseBps(bps: number): bigint {
  return fromNumber(bps, BPS_DECIMALS);
}

/**
 * The price a taker gets: `reference` moved by `slippageBps` against them (a buy pays
 * `reference × (1 + bps/10^4)`, a sell receives `reference × (1 − bps/10^4)`), rounded
 * half-even to the 0.0001 tick, and never below one tick.
 */
export function takerPrice(reference: Price, side: Side, slippageBps: bigint): Price {
  const factor = side === 'buy' ? ONE_FACTOR + slippageBps : ONE_FACTOR - slippageBps;
  const ticks = divRoundHalfEven(reference * factor, ONE_FACTOR * TICK);
  return max(ticks * TICK, TICK);
}

/**
 * What one fill costs: `qty × perShare`, at least `minimum`. Exact (money has 16 decimals,
 * quantity and per-share rate 8 each), so the portfolio and the ledger agree to the cent.
 */
export function commissionFor(qty: Qty, perShare: Price, minimum: Money): Money {
  return max(qty * perShare, minimum);
}

/**
 * Splits an order's quantity into at most `parts` nearly equal parts, in the unit the quantity
 * was written in, largest first: `"10"` in 3 → 4, 3, 3; `"0.5"` in 2 → 0.3, 0.2; `"2"` in 3 →
 * 1, 1. A whole share is the largest unit used, so `"100"` in 3 → 34, 33, 33.
 */
export function splitQty(qty: string, parts: number): Qty[] {
  const total = parseQty(qty);
  let unit = pow10(QTY_DECIMALS);
  while (total % unit !== 0n) unit /= 10n;
  const units = total / unit;
  const count = units < BigInt(parts) ? units : BigInt(parts);
  const base = units / count;
  const larger = units % count;
  const split: Qty[] = [];
  for (let index = 0n; index < count; index += 1n) split.push((index < larger ? base + 1n : base) * unit);
  return split;
}
