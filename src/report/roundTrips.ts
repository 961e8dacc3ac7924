import { divRoundHalfEven, notional, parseMoney, parsePrice, parseQty, type Money, type Price, type Qty } from '../common/money.js';
import type { Fill } from '../common/order.js';

/**
 * Round trips from a list of fills, first in, first out: each fill that shrinks a position
 * closes the oldest open lots first; a fill that takes a position through zero closes it and
 * opens a lot the other way with the rest. Pure and exact (money.ts): a commission split
 * between the lots a fill touches is divided half-even, and the last part takes what is left,
 * so the parts always add up to the commission.
 */

/** Which way a lot or round trip was held. */
export type Direction = 'long' | 'short';

/** Where a lot came from: the entry fill's symbol, side, time, price and order (and how much of it). */
interface LotEntry {
  readonly symbol: string;
  readonly direction: Direction;
  readonly qty: Qty;
  readonly entryAt: number;
  readonly entryPrice: Price;
  readonly entryOrderId: string;
}

/** A position entered and (part of it) left again. */
export interface RoundTrip extends LotEntry {
  readonly exitAt: number;
  readonly exitPrice: Price;
  readonly exitOrderId: string;
  /** (exit − entry) × qty × multiplier, signed by direction, before fees. */
  readonly grossPnl: Money;
  /** The shares of the entry's and the exit's commissions that belong to this quantity. */
  readonly fees: Money;
  /** grossPnl − fees. */
  readonly netPnl: Money;
}

/** A lot still open after every fill: what is left of one entry fill. */
export interface OpenLot extends LotEntry {
  /** What is left of the entry fill's commission. */
  readonly fees: Money;
}

/** The round trips in the order they closed, and the lots still open, oldest first. */
export interface RoundTripBook {
  readonly trips: RoundTrip[];
  readonly open: OpenLot[];
}

/** The share of `fees` for `part` of `whole` (all of it when `part` is all). */
function feeShare(fees: Money, part: Qty, whole: Qty): Money {
  return part === whole ? fees : divRoundHalfEven(fees * part, whole);
}

/**
 * FIFO round trips of `fills`, in the order given (a ledger's order: the order they executed).
 * `multiplierOf` gives a symbol's contract multiplier (1 when not given).
 */
export function fifoRoundTrips(fills: readonly Fill[], multiplierOf: (symbol: string) => bigint = () => 1n): RoundTripBook {
  const trips: RoundTrip[] = [];
  const lots = new Map<string, OpenLot[]>();
  for (const fill of fills) {
    const direction: Direction = fill.side === 'buy' ? 'long' : 'short';
    const price = parsePrice(fill.price);
    const multiplier = multiplierOf(fill.symbol);
    let qtyLeft = parseQty(fill.qty);
    let feesLeft = parseMoney(fill.commission);
    const queue = lots.get(fill.symbol) ?? [];
    lots.set(fill.symbol, queue);
    // Close the oldest lots held the other way.
    while (qtyLeft > 0n && queue.length > 0 && (queue[0] as OpenLot).direction !== direction) {
      const lot = queue[0] as OpenLot;
      const closed = lot.qty < qtyLeft ? lot.qty : qtyLeft;
      const entryFees = feeShare(lot.fees, closed, lot.qty);
      const exitFees = feeShare(feesLeft, closed, qtyLeft);
      const move = notional(closed, price, multiplier) - notional(closed, lot.entryPrice, multiplier);
      const grossPnl = lot.direction === 'long' ? move : -move;
      const fees = entryFees + exitFees;
      trips.push({
        symbol: fill.symbol,
        direction: lot.direction,
        qty: closed,
        entryAt: lot.entryAt,
        entryPrice: lot.entryPrice,
        entryOrderId: lot.entryOrderId,
        exitAt: fill.filledAt,
        exitPrice: price,
        exitOrderId: fill.clientOrderId,
        grossPnl,
        fees,
        netPnl: grossPnl - fees,
      });
      if (closed === lot.qty) queue.shift();
      else queue[0] = { ...lot, qty: lot.qty - closed, fees: lot.fees - entryFees };
      qtyLeft -= closed;
      feesLeft -= exitFees;
    }
    // What is left opens (or adds) a lot this fill's way.
    if (qtyLeft > 0n) {
      queue.push({ symbol: fill.symbol, direction, qty: qtyLeft, entryAt: fill.filledAt, entryPrice: price, entryOrderId: fill.clientOrderId, fees: feesLeft });
    }
  }
  return { trips, open: [...lots.values()].flat() };
}

/** One symbol's result: closed trips, what is still open marked at the last price, and fees. */
export interface SymbolPnl {
  readonly symbol: string;
  readonly fills: number;
  readonly trips: number;
  /** Σ gross P&L of the closed round trips. */
  readonly realized: Money;
  /** Open lots at the last price; null when there is no last price for an open lot. */
  readonly unrealized: Money | null;
  /** Σ commissions of every fill of the symbol. */
  readonly fees: Money;
  /** realized + unrealized − fees; null with unrealized. */
  readonly net: Money | null;
  /** Signed quantity still open. */
  readonly openQty: Qty;
  readonly lastPrice: Price | null;
}

/**
 * Per-symbol P&L from a round-trip book: realized from its trips, unrealized from its open
 * lots at `lastPrices` (the portfolio's marks), and every fill's commission. Sorted by symbol.
 * The sum of `net` over the symbols is the account's whole gain: it does not depend on how
 * closes are matched to entries (FIFO here, average cost in the portfolio).
 */
export function symbolPnl(
  fills: readonly Fill[],
  book: RoundTripBook,
  lastPrices: ReadonlyMap<string, Price>,
  multiplierOf: (symbol: string) => bigint = () => 1n,
): SymbolPnl[] {
  const groups = new Map<string, { fills: Fill[]; trips: RoundTrip[]; open: OpenLot[] }>();
  const groupOf = (symbol: string) => {
    const group = groups.get(symbol) ?? { fills: [], trips: [], open: [] };
    groups.set(symbol, group);
    return group;
  };
  for (const fill of fills) groupOf(fill.symbol).fills.push(fill);
  for (const trip of book.trips) groupOf(trip.symbol).trips.push(trip);
  for (const lot of book.open) groupOf(lot.symbol).open.push(lot);
  const symbols = [...groups.keys()].sort();
  return symbols.map((symbol) => {
    const { fills: own, trips, open } = groupOf(symbol);
    const realized = trips.reduce((sum, trip) => sum + trip.grossPnl, 0n);
    const fees = own.reduce((sum, fill) => sum + parseMoney(fill.commission), 0n);
    const openQty = open.reduce((sum, lot) => sum + (lot.direction === 'long' ? lot.qty : -lot.qty), 0n);
    const lastPrice = lastPrices.get(symbol) ?? null;
    let unrealized: Money | null = 0n;
    if (open.length > 0) {
      if (lastPrice === null) unrealized = null;
      else {
        const multiplier = multiplierOf(symbol);
        unrealized = open.reduce((sum, lot) => {
          const move = notional(lot.qty, lastPrice, multiplier) - notional(lot.qty, lot.entryPrice, multiplier);
          return sum + (lot.direction === 'long' ? move : -move);
        }, 0n);
      }
    }
    return {
      symbol,
      fills: own.length,
      trips: trips.length,
      realized,
      unrealized,
      fees,
      net: unrealized === null ? null : realized + unrealized - fees,
      openQty,
      lastPrice,
    };
  });
}
