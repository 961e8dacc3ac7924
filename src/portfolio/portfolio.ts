import { z } from 'zod';
import { fieldIssues, FieldIssuesError, type FieldIssue } from '../common/fieldIssues.js';
import {
  abs,
  divRoundHalfEven,
  formatMoney,
  formatMoneyExact,
  formatPrice,
  formatQty,
  InvalidDecimalError,
  min,
  MONEY_DECIMALS,
  notional,
  parseMoney,
  parsePrice,
  parseQty,
  QTY_DECIMALS,
  type Money,
  type Price,
  type Qty,
} from '../common/money.js';
import {
  MoneyStringSchema,
  PriceStringSchema,
  SideSchema,
  SYMBOL_PATTERN,
  SymbolSchema,
  type Fill,
  type Side,
} from '../common/order.js';
import { keyed } from '../common/keyed.js';

/**
 * The portfolio (AIStock's Portfolio) as immutable data and pure functions: cash, signed
 * positions with cost basis and contract multiplier, realised P&L, commissions, a bounded
 * trade log, and mark-to-market totals kept exactly and incrementally, so an equity read is
 * O(1) however many symbols are held.
 *
 * Rules: a fill opens, adds to, reduces, closes or flips a position. Adding keeps the cost
 * basis as the exact sum of notionals (average price = basis / (qty × multiplier)); reducing
 * releases the closed share of the basis and realises `proceeds − released basis`; a flip is a
 * close followed by an open of the remainder at the fill price. Realised P&L is before
 * commissions (as in the original); commissions are tracked apart and come out of cash.
 *
 * Every function returns a new, frozen portfolio and never changes its argument, so a reader
 * holding an older portfolio keeps seeing exactly what it saw. The identity
 * `cash + Σ cost basis = initialCash + netDeposits + realizedPnl − commissions` holds after
 * every step ({@link portfolioInvariantViolations}).
 */

/** An open position. `qty` and `costBasis` carry the same sign (+ long, − short). */
export interface Position {
  readonly symbol: string;
  readonly qty: Qty;
  /** What the open quantity cost: Σ qty × price × multiplier of the fills that remain open. */
  readonly costBasis: Money;
  readonly multiplier: bigint;
  /** `qty × last price × multiplier`. */
  readonly marketValue: Money;
  /** When this position (or this side of it, after a flip) was opened, UTC epoch ms. */
  readonly openedAt: number;
  readonly updatedAt: number;
}

/** One applied fill, as the trade log keeps it: the fill as the broker reported it, and its effect. */
export interface TradeRecord {
  readonly fill: Fill;
  /** P&L this fill realised (before its commission). */
  readonly realizedPnl: Money;
  readonly cashAfter: Money;
}

/** The whole portfolio. Read it; change it only through this module's functions. */
export interface Portfolio {
  readonly initialCash: Money;
  readonly cash: Money;
  /** Deposits minus withdrawals since the start. */
  readonly netDeposits: Money;
  /** Realised P&L before commissions. */
  readonly realizedPnl: Money;
  readonly commissions: Money;
  readonly positions: ReadonlyMap<string, Position>;
  /** Newest price seen per symbol (from a mark or a fill), held or not. */
  readonly lastPrices: ReadonlyMap<string, Price>;
  /** Contract multiplier per symbol (futures: ES = 50); 1 when absent. */
  readonly contractMultipliers: ReadonlyMap<string, bigint>;
  /** Σ cost basis of open positions. */
  readonly openCostBasis: Money;
  /** Σ market value of open positions (the net exposure). */
  readonly marketValue: Money;
  /** Σ |market value| of open positions. */
  readonly grossExposure: Money;
  /**
   * The newest fills, at most `tradeLogLimit` of them, oldest first. Read-only by type, not
   * frozen: V8 slices a frozen array ~20× slower (40 µs for 1,000 records), and every fill copies it.
   */
  readonly tradeLog: readonly TradeRecord[];
  readonly tradeLogLimit: number;
  /** Fills applied since the start (not bounded by the trade log). */
  readonly fillCount: number;
}

/** A portfolio's valuation at its last prices. */
export interface Valuation {
  readonly cash: Money;
  /** `cash + marketValue`. */
  readonly equity: Money;
  /** `marketValue − openCostBasis`. */
  readonly unrealizedPnl: Money;
  readonly realizedPnl: Money;
  readonly commissions: Money;
  /** Σ |market value|. */
  readonly grossExposure: Money;
  /** Σ market value (signed). */
  readonly netExposure: Money;
}

/** The portfolio part of DESIGN.md's Summary, as decimal strings (money to the cent). */
export interface PortfolioSummary {
  initialCash: string;
  cash: string;
  equity: string;
  realizedPnl: string;
  positions: Record<string, { qty: string; avgPrice: string }>;
}

/** A fill the portfolio did not apply, and why. The rest of its batch is still applied. */
export interface FillRejection {
  readonly fill: unknown;
  readonly code: 'INVALID_FILL';
  readonly detail: string;
}

/** A refused deposit or withdrawal. */
export interface CashRefusal {
  readonly code: 'INVALID_AMOUNT' | 'INSUFFICIENT_CASH' | 'PORTFOLIO_STOPPED';
  readonly detail: string;
}

/** The outcome of a deposit or withdrawal. */
export type CashMovement = { outcome: 'applied'; portfolio: Portfolio } | { outcome: 'refused'; refusal: CashRefusal };

/** A bad portfolio option or snapshot; `issues` names every bad field. */
export class InvalidPortfolioError extends FieldIssuesError {
  constructor(what: string, issues: readonly FieldIssue[]) {
    super('INVALID_PORTFOLIO', `portfolio ${what}`, issues);
  }
}

/** The largest trade log a portfolio keeps (the original kept 1,000). */
export const MAX_TRADE_LOG_LIMIT = 100_000;

/** Options for {@link createPortfolio}. */
export const PortfolioOptionsSchema = z
  .object({
    /** Starting cash, a decimal string or a number (`"100000"`). */
    initialCash: z.union([MoneyStringSchema, z.number().finite()]),
    /** Contract multiplier per symbol; symbols not listed have 1. */
    contractMultipliers: z.record(SymbolSchema, z.number().int().positive().max(1_000_000)).default({}),
    /** How many fills the trade log keeps (default 1,000). */
    tradeLogLimit: z.number().int().min(0).max(MAX_TRADE_LOG_LIMIT).default(1_000),
  })
  .strict();
/** What {@link createPortfolio} accepts. */
export type PortfolioOptions = z.input<typeof PortfolioOptionsSchema>;

/** A fresh portfolio: all cash, no positions. Throws {@link InvalidPortfolioError} listing every bad option. */
export function createPortfolio(options: PortfolioOptions): Portfolio {
  const parsed = PortfolioOptionsSchema.safeParse(options);
  if (!parsed.success) throw new InvalidPortfolioError('options', fieldIssues(parsed.error));
  const initialCash = parseMoney(parsed.data.initialCash);
  if (initialCash < 0n) throw new InvalidPortfolioError('options', [{ field: 'initialCash', message: 'must not be negative' }]);
  return freezePortfolio({
    initialCash,
    cash: initialCash,
    netDeposits: 0n,
    realizedPnl: 0n,
    commissions: 0n,
    positions: new Map(),
    lastPrices: new Map(),
    contractMultipliers: new Map(Object.entries(parsed.data.contractMultipliers).map(([symbol, m]) => [symbol, BigInt(m)])),
    openCostBasis: 0n,
    marketValue: 0n,
    grossExposure: 0n,
    tradeLog: [],
    tradeLogLimit: parsed.data.tradeLogLimit,
    fillCount: 0,
  });
}

function freezePortfolio(portfolio: Portfolio): Portfolio {
  return Object.freeze(portfolio);
}

/** A fill in internal form: scaled integers, and the fill as received (for the trade log). */
interface ParsedFill {
  readonly source: Fill;
  readonly symbol: string;
  readonly side: Side;
  readonly qty: Qty;
  readonly price: Price;
  readonly commission: Money;
  readonly filledAt: number;
}

/** Checks a fill as it arrives (it may not have been through {@link FillSchema}) and parses it. */
function parseFill(fill: Fill): ParsedFill | string {
  if (typeof fill !== 'object' || fill === null) return 'not an object';
  const { clientOrderId, symbol, side, filledAt } = fill;
  if (typeof clientOrderId !== 'string' || clientOrderId === '') return 'clientOrderId: expected a non-empty string';
  if (typeof symbol !== 'string' || !SYMBOL_PATTERN.test(symbol)) return `symbol: ${JSON.stringify(symbol)} is not a symbol`;
  if (side !== 'buy' && side !== 'sell') return `side: expected "buy" or "sell", got ${JSON.stringify(side)}`;
  if (!Number.isSafeInteger(filledAt) || filledAt < 0) return `filledAt: expected epoch milliseconds, got ${JSON.stringify(filledAt)}`;
  try {
    const qty = parseQty(fill.qty);
    const price = parsePrice(fill.price);
    const commission = parseMoney(fill.commission);
    if (qty <= 0n) return `qty: must be greater than zero, got ${fill.qty}`;
    if (price <= 0n) return `price: must be greater than zero, got ${fill.price}`;
    if (commission < 0n) return `commission: must not be negative, got ${fill.commission}`;
    return { source: fill, symbol, side, qty, price, commission, filledAt };
  } catch (error) {
    if (error instanceof InvalidDecimalError) return error.message;
    throw error;
  }
}

/**
 * A mutable working copy for one batch: maps are copied on first write, so the input
 * portfolio is never touched and a batch costs one copy, not one per fill. The exposure
 * totals are settled once per symbol the batch touched, not once per fill.
 */
class BatchLedger {
  cash: Money;
  realizedPnl: Money;
  commissions: Money;
  fillCount: number;
  readonly trades: TradeRecord[] = [];
  private positions: Map<string, Position> | undefined;
  private lastPrices: Map<string, Price> | undefined;
  /** Each touched symbol's position as the batch found it. */
  private readonly before = new Map<string, Position | undefined>();

  constructor(private readonly base: Portfolio) {
    this.cash = base.cash;
    this.realizedPnl = base.realizedPnl;
    this.commissions = base.commissions;
    this.fillCount = base.fillCount;
  }

  applyFill(fill: ParsedFill): void {
    const { symbol, price, commission, filledAt } = fill;
    const prior = (this.positions ?? this.base.positions).get(symbol);
    const multiplier = prior?.multiplier ?? this.base.contractMultipliers.get(symbol) ?? 1n;
    const fillQty = fill.side === 'buy' ? fill.qty : -fill.qty;
    const priorQty = prior?.qty ?? 0n;
    const priorBasis = prior?.costBasis ?? 0n;
    const qty = priorQty + fillQty;

    const tradeValue = notional(fillQty, price, multiplier);
    let costBasis: Money;
    let realized = 0n;
    let openedAt = prior?.openedAt ?? filledAt;
    if (priorQty === 0n || priorQty > 0n === fillQty > 0n) {
      costBasis = priorBasis + tradeValue;
    } else {
      // Closing (part of) the position: release its share of the basis, realise the difference.
      const openQty = abs(priorQty);
      const closedQty = min(abs(fillQty), openQty);
      const released = closedQty === openQty ? priorBasis : divRoundHalfEven(priorBasis * closedQty, openQty);
      const closedValue = closedQty === fill.qty ? abs(tradeValue) : notional(closedQty, price, multiplier);
      realized = (priorQty > 0n ? closedValue : -closedValue) - released;
      costBasis = priorBasis - released;
      if (qty !== 0n && qty > 0n !== priorQty > 0n) {
        // A flip: the remainder opens a new position at the fill price.
        costBasis = notional(qty, price, multiplier);
        openedAt = filledAt;
      }
    }

    this.cash -= tradeValue + commission;
    if (commission !== 0n) this.commissions += commission;
    if (realized !== 0n) this.realizedPnl += realized;
    this.fillCount += 1;
    this.setLastPrice(symbol, price);
    this.replacePosition(
      symbol,
      prior,
      qty === 0n
        ? undefined
        : { symbol, qty, costBasis, multiplier, marketValue: notional(qty, price, multiplier), openedAt, updatedAt: filledAt },
    );
    // A copy of the fill's own fields: the caller's object may change after it was sent.
    const { clientOrderId, side } = fill.source;
    const { qty: qtyText, price: priceText, commission: commissionText } = fill.source;
    this.trades.push({
      fill: { clientOrderId, symbol, side, qty: qtyText, price: priceText, commission: commissionText, filledAt },
      realizedPnl: realized,
      cashAfter: this.cash,
    });
  }

  mark(symbol: string, price: Price): void {
    this.setLastPrice(symbol, price);
    const prior = (this.positions ?? this.base.positions).get(symbol);
    if (prior === undefined) return;
    this.replacePosition(symbol, prior, { ...prior, marketValue: notional(prior.qty, price, prior.multiplier) });
  }

  finish(): Portfolio {
    const limit = this.base.tradeLogLimit;
    let tradeLog = this.base.tradeLog;
    if (this.trades.length > 0 && limit > 0) {
      tradeLog =
        this.trades.length >= limit
          ? this.trades.slice(-limit)
          : tradeLog.slice(Math.max(0, tradeLog.length + this.trades.length - limit)).concat(this.trades);
    }
    const positions = this.positions ?? this.base.positions;
    let { openCostBasis, marketValue, grossExposure } = this.base;
    for (const [symbol, prior] of this.before) {
      const next = positions.get(symbol);
      const priorValue = prior?.marketValue ?? 0n;
      const nextValue = next?.marketValue ?? 0n;
      openCostBasis += (next?.costBasis ?? 0n) - (prior?.costBasis ?? 0n);
      marketValue += nextValue - priorValue;
      grossExposure += abs(nextValue) - abs(priorValue);
    }
    return freezePortfolio({
      ...this.base,
      cash: this.cash,
      realizedPnl: this.realizedPnl,
      commissions: this.commissions,
      openCostBasis,
      marketValue,
      grossExposure,
      fillCount: this.fillCount,
      positions,
      lastPrices: this.lastPrices ?? this.base.lastPrices,
      tradeLog,
    });
  }

  private setLastPrice(symbol: string, price: Price): void {
    this.lastPrices ??= new Map(this.base.lastPrices);
    this.lastPrices.set(symbol, price);
  }

  private replacePosition(symbol: string, prior: Position | undefined, next: Position | undefined): void {
    this.positions ??= new Map(this.base.positions);
    if (!this.before.has(symbol)) this.before.set(symbol, prior);
    if (next === undefined) this.positions.delete(symbol);
    else this.positions.set(symbol, Object.freeze(next));
  }
}

/** The signed position (decimal string, '0' when flat) of each symbol `fills` touched, in first-touched order. */
export function positionsTouched(portfolio: Portfolio, fills: readonly Fill[]): [symbol: string, qty: string][] {
  return [...new Set(fills.map((fill) => fill.symbol))].map((symbol) => [symbol, formatQty(portfolio.positions.get(symbol)?.qty ?? 0n)]);
}

/**
 * Applies a batch of fills in order. A fill that does not parse is rejected with the reason
 * and skipped; the others are applied. Returns a new portfolio.
 */
export function applyFills(portfolio: Portfolio, fills: readonly Fill[]): { portfolio: Portfolio; rejected: FillRejection[] } {
  const ledger = new BatchLedger(portfolio);
  const rejected: FillRejection[] = [];
  for (const fill of fills) {
    const parsed = parseFill(fill);
    if (typeof parsed === 'string') rejected.push({ fill, code: 'INVALID_FILL', detail: parsed });
    else ledger.applyFill(parsed);
  }
  return { portfolio: ledger.trades.length === 0 ? portfolio : ledger.finish(), rejected };
}

/** A price that could not be used to mark, and why. */
export interface MarkRejection {
  readonly symbol: string;
  readonly detail: string;
}

/** Reads last prices (numbers from bars, or decimal strings), keeping the valid ones. */
export function parseMarkPrices(prices: Readonly<Record<string, number | string>>): {
  prices: Array<readonly [string, Price]>;
  rejected: MarkRejection[];
} {
  const parsed: Array<readonly [string, Price]> = [];
  const rejected: MarkRejection[] = [];
  for (const [symbol, value] of Object.entries(prices)) {
    if (!SYMBOL_PATTERN.test(symbol)) {
      rejected.push({ symbol, detail: 'not a symbol' });
      continue;
    }
    try {
      const price = parsePrice(value);
      if (price > 0n) parsed.push([symbol, price]);
      else rejected.push({ symbol, detail: `price must be greater than zero, got ${value}` });
    } catch (error) {
      if (!(error instanceof InvalidDecimalError)) throw error;
      rejected.push({ symbol, detail: error.message });
    }
  }
  return { prices: parsed, rejected };
}

/** Marks positions to new last prices: market values, exposures and equity follow. */
export function markToMarket(portfolio: Portfolio, prices: Iterable<readonly [string, Price]>): Portfolio {
  const ledger = new BatchLedger(portfolio);
  let marked = false;
  for (const [symbol, price] of prices) {
    ledger.mark(symbol, price);
    marked = true;
  }
  return marked ? ledger.finish() : portfolio;
}

/** Equity, P&L and exposure at the last prices. O(1): the totals are kept as fills and marks arrive. */
export function valuation(portfolio: Portfolio): Valuation {
  return {
    cash: portfolio.cash,
    equity: portfolio.cash + portfolio.marketValue,
    unrealizedPnl: portfolio.marketValue - portfolio.openCostBasis,
    realizedPnl: portfolio.realizedPnl,
    commissions: portfolio.commissions,
    grossExposure: portfolio.grossExposure,
    netExposure: portfolio.marketValue,
  };
}

/** Average entry price of a position, half-even at 1e-8. */
export function averagePrice(position: Position): Price {
  return divRoundHalfEven(position.costBasis, position.qty * position.multiplier);
}

/** Reads a deposit or withdrawal amount (a decimal string or number); a bad one is a refusal. */
export function parseCashAmount(amount: string | number): Money | CashRefusal {
  try {
    return parseMoney(amount);
  } catch (error) {
    if (error instanceof InvalidDecimalError) return { code: 'INVALID_AMOUNT', detail: error.message };
    throw error;
  }
}

/** Adds cash from outside (`amount` > 0). */
export function deposit(portfolio: Portfolio, amount: Money): CashMovement {
  if (amount <= 0n) return { outcome: 'refused', refusal: { code: 'INVALID_AMOUNT', detail: `deposit must be positive, got ${formatMoneyExact(amount)}` } };
  return {
    outcome: 'applied',
    portfolio: freezePortfolio({ ...portfolio, cash: portfolio.cash + amount, netDeposits: portfolio.netDeposits + amount }),
  };
}

/** Takes cash out (`amount` > 0, at most the cash held). */
export function withdraw(portfolio: Portfolio, amount: Money): CashMovement {
  if (amount <= 0n) return { outcome: 'refused', refusal: { code: 'INVALID_AMOUNT', detail: `withdrawal must be positive, got ${formatMoneyExact(amount)}` } };
  if (amount > portfolio.cash) {
    return {
      outcome: 'refused',
      refusal: { code: 'INSUFFICIENT_CASH', detail: `withdrawal ${formatMoney(amount)} > cash ${formatMoney(portfolio.cash)}` },
    };
  }
  return {
    outcome: 'applied',
    portfolio: freezePortfolio({ ...portfolio, cash: portfolio.cash - amount, netDeposits: portfolio.netDeposits - amount }),
  };
}

/** DESIGN.md's Summary `portfolio` part: money to the cent (half-even), quantities exact, average price to 1e-8. */
export function portfolioSummary(portfolio: Portfolio): PortfolioSummary {
  const positions: PortfolioSummary['positions'] = keyed();
  for (const [symbol, position] of portfolio.positions) {
    positions[symbol] = { qty: formatQty(position.qty), avgPrice: formatPrice(averagePrice(position)) };
  }
  return {
    initialCash: formatMoney(portfolio.initialCash),
    cash: formatMoney(portfolio.cash),
    equity: formatMoney(valuation(portfolio).equity),
    realizedPnl: formatMoney(portfolio.realizedPnl),
    positions,
  };
}

/**
 * What no valid portfolio can show: a broken cash identity, totals that differ from their
 * positions, an empty or sign-mismatched position, a position without a last price. Empty
 * means consistent. Used on restore and by the stress tests on every snapshot they read.
 */
export function portfolioInvariantViolations(portfolio: Portfolio): string[] {
  const violations: string[] = [];
  let basis = 0n;
  let value = 0n;
  let gross = 0n;
  for (const [symbol, position] of portfolio.positions) {
    const last = portfolio.lastPrices.get(symbol);
    if (position.symbol !== symbol) violations.push(`${symbol}: position is filed under another symbol (${position.symbol})`);
    if (position.qty === 0n) violations.push(`${symbol}: an open position with zero quantity`);
    if (position.costBasis !== 0n && position.costBasis > 0n !== position.qty > 0n) violations.push(`${symbol}: cost basis and quantity differ in sign`);
    if (last === undefined) violations.push(`${symbol}: no last price`);
    else if (position.marketValue !== notional(position.qty, last, position.multiplier)) violations.push(`${symbol}: market value is not qty × last price`);
    basis += position.costBasis;
    value += position.marketValue;
    gross += abs(position.marketValue);
  }
  if (basis !== portfolio.openCostBasis) violations.push('openCostBasis is not the sum of the positions');
  if (value !== portfolio.marketValue) violations.push('marketValue is not the sum of the positions');
  if (gross !== portfolio.grossExposure) violations.push('grossExposure is not the sum of the positions');
  const expected = portfolio.initialCash + portfolio.netDeposits + portfolio.realizedPnl - portfolio.commissions;
  if (portfolio.cash + portfolio.openCostBasis !== expected) {
    violations.push('cash + cost basis ≠ initial cash + net deposits + realised P&L − commissions');
  }
  return violations;
}

function signedDecimal(decimals: number, example: string) {
  return z.string().regex(new RegExp(`^-?\\d+(\\.\\d{1,${decimals}})?$`), { message: `expected a decimal string like "${example}"` });
}

// The log keeps fills as the broker wrote them, so their decimals are taken as written.
const writtenDecimal = z.string().regex(/^\d+(\.\d+)?$/, { message: 'expected a decimal string' });

const TradeRecordSnapshotSchema = z.object({
  fill: z.object({
    clientOrderId: z.string().min(1),
    symbol: SymbolSchema,
    side: SideSchema,
    qty: writtenDecimal,
    price: writtenDecimal,
    commission: writtenDecimal,
    filledAt: z.number().int().nonnegative(),
  }),
  realizedPnl: MoneyStringSchema,
  cashAfter: MoneyStringSchema,
});

/** The portfolio as JSON-safe data for checkpoints: every amount an exact decimal string. */
export const PortfolioSnapshotSchema = z.object({
  initialCash: MoneyStringSchema,
  cash: MoneyStringSchema,
  netDeposits: MoneyStringSchema,
  realizedPnl: MoneyStringSchema,
  commissions: MoneyStringSchema,
  positions: z.array(
    z.object({
      symbol: SymbolSchema,
      qty: signedDecimal(QTY_DECIMALS, '-10'),
      costBasis: signedDecimal(MONEY_DECIMALS, '-1234.5'),
      multiplier: z.number().int().positive(),
      openedAt: z.number().int().nonnegative(),
      updatedAt: z.number().int().nonnegative(),
    }),
  ),
  lastPrices: z.record(SymbolSchema, PriceStringSchema),
  contractMultipliers: z.record(SymbolSchema, z.number().int().positive()),
  tradeLog: z.array(TradeRecordSnapshotSchema),
  tradeLogLimit: z.number().int().min(0).max(MAX_TRADE_LOG_LIMIT),
  fillCount: z.number().int().nonnegative(),
});
/** A portfolio snapshot (see {@link PortfolioSnapshotSchema}). */
export type PortfolioSnapshot = z.infer<typeof PortfolioSnapshotSchema>;

/** The portfolio as a snapshot; {@link restorePortfolio} gives back an equal portfolio. */
export function portfolioSnapshot(portfolio: Portfolio): PortfolioSnapshot {
  return {
    initialCash: formatMoneyExact(portfolio.initialCash),
    cash: formatMoneyExact(portfolio.cash),
    netDeposits: formatMoneyExact(portfolio.netDeposits),
    realizedPnl: formatMoneyExact(portfolio.realizedPnl),
    commissions: formatMoneyExact(portfolio.commissions),
    positions: [...portfolio.positions.values()].map((position) => ({
      symbol: position.symbol,
      qty: formatQty(position.qty),
      costBasis: formatMoneyExact(position.costBasis),
      multiplier: Number(position.multiplier),
      openedAt: position.openedAt,
      updatedAt: position.updatedAt,
    })),
    lastPrices: Object.fromEntries([...portfolio.lastPrices].map(([symbol, price]) => [symbol, formatPrice(price)])),
    contractMultipliers: Object.fromEntries([...portfolio.contractMultipliers].map(([symbol, m]) => [symbol, Number(m)])),
    tradeLog: portfolio.tradeLog.map(({ fill, realizedPnl, cashAfter }) => ({
      fill: {
        clientOrderId: fill.clientOrderId,
        symbol: fill.symbol,
        side: fill.side,
        qty: fill.qty,
        price: fill.price,
        commission: fill.commission,
        filledAt: fill.filledAt,
      },
      realizedPnl: formatMoneyExact(realizedPnl),
      cashAfter: formatMoneyExact(cashAfter),
    })),
    tradeLogLimit: portfolio.tradeLogLimit,
    fillCount: portfolio.fillCount,
  };
}

/**
 * Rebuilds a portfolio from a snapshot (of unknown origin: a checkpoint file). Checks the
 * schema, then the invariants; throws {@link InvalidPortfolioError} naming what is wrong.
 */
export function restorePortfolio(snapshot: unknown): Portfolio {
  const parsed = PortfolioSnapshotSchema.safeParse(snapshot);
  if (!parsed.success) throw new InvalidPortfolioError('snapshot', fieldIssues(parsed.error));
  const data = parsed.data;
  const lastPrices = new Map(Object.entries(data.lastPrices).map(([symbol, price]) => [symbol, parsePrice(price)]));
  const positions = new Map<string, Position>();
  const issues: FieldIssue[] = [];
  let openCostBasis = 0n;
  let marketValue = 0n;
  let grossExposure = 0n;
  data.positions.forEach((entry, index) => {
    if (positions.has(entry.symbol)) issues.push({ field: `positions.${index}.symbol`, message: `${entry.symbol} appears twice` });
    const qty = parseQty(entry.qty);
    const multiplier = BigInt(entry.multiplier);
    const value = notional(qty, lastPrices.get(entry.symbol) ?? 0n, multiplier);
    const position: Position = Object.freeze({
      symbol: entry.symbol,
      qty,
      costBasis: parseMoney(entry.costBasis),
      multiplier,
      marketValue: value,
      openedAt: entry.openedAt,
      updatedAt: entry.updatedAt,
    });
    positions.set(entry.symbol, position);
    openCostBasis += position.costBasis;
    marketValue += value;
    grossExposure += abs(value);
  });
  const portfolio = freezePortfolio({
    initialCash: parseMoney(data.initialCash),
    cash: parseMoney(data.cash),
    netDeposits: parseMoney(data.netDeposits),
    realizedPnl: parseMoney(data.realizedPnl),
    commissions: parseMoney(data.commissions),
    positions,
    lastPrices,
    contractMultipliers: new Map(Object.entries(data.contractMultipliers).map(([symbol, m]) => [symbol, BigInt(m)])),
    openCostBasis,
    marketValue,
    grossExposure,
    tradeLog: data.tradeLog.map((trade) =>
      Object.freeze({
        fill: Object.freeze(trade.fill),
        realizedPnl: parseMoney(trade.realizedPnl),
        cashAfter: parseMoney(trade.cashAfter),
      }),
    ),
    tradeLogLimit: data.tradeLogLimit,
    fillCount: data.fillCount,
  });
  for (const violation of portfolioInvariantViolations(portfolio)) issues.push({ field: 'positions', message: violation });
  if (issues.length > 0) throw new InvalidPortfolioError('snapshot', issues);
  return portfolio;
}
