import { DateTime } from 'luxon';
import { z } from 'zod';
import { fieldIssues, FieldIssuesError, type FieldIssue } from '../common/fieldIssues.js';
import {
  abs,
  formatMoney,
  formatMoneyExact,
  formatPercent,
  formatQty,
  InvalidDecimalError,
  max,
  notional,
  ONE_RATIO,
  parseMoney,
  parsePrice,
  parseQty,
  ratioOf,
  type Money,
  type Price,
  type Qty,
} from '../common/money.js';
import { MoneyStringSchema, SYMBOL_PATTERN, type OrderIntent, type Side } from '../common/order.js';
import type { Portfolio } from '../portfolio/portfolio.js';
import {
  holdOrder,
  NO_ORDERS,
  orderRateSnapshot,
  ordersInLastMinute,
  ordersToday,
  recordOrder,
  releaseOrder,
  restoreOrderRate,
  startDayCount,
  type OrderRateState,
} from './rateLimiter.js';
import type { RiskRules } from './riskLimits.js';

/**
 * The risk engine's rules as plain data and pure functions (AIStock's RiskEngine, without its
 * lock): the pre-trade check, daily-loss and drawdown breach detection, the trading day, the
 * trading state, and the checkpoint schema. `machines/risk.machine.ts` calls these from
 * `assign`; the checks are also usable directly (they are the hot path's cost).
 *
 * Trading state is derived from the data, so a checkpoint restores it without XState:
 * - `halted` while any halt reason is held: only orders that close a position completely pass;
 * - `reducing` while a reduce reason is held: only orders that shrink a position without
 *   crossing zero pass;
 * - `active` otherwise.
 */

/** The three trading states, inside the lifecycle's `running`. */
export type TradingState = 'active' | 'reducing' | 'halted';

/** Every reason a pre-trade check can deny an order. */
export const DENY_CODES = [
  'RISK_ENGINE_STOPPED',
  'INVALID_ORDER',
  'TRADING_HALTED',
  'REDUCING_ONLY',
  'KILL_SWITCH',
  'RATE_LIMIT_MINUTE',
  'RATE_LIMIT_DAY',
  'EQUITY_NOT_POSITIVE',
  'PER_TRADE_RISK',
  'MAX_POSITION_FRACTION',
  'MAX_GROSS_EXPOSURE',
  'MAX_LEVERAGE',
  'PER_SYMBOL_NOTIONAL_CAP',
  'MAX_SINGLE_POSITION_UNITS',
] as const;
/** A closed denial code (see {@link DENY_CODES}). */
export type DenyCode = (typeof DENY_CODES)[number];

/** Why an order was denied: a closed code and a human detail with the numbers. */
export interface DenyReason {
  readonly code: DenyCode;
  readonly detail: string;
}

/** The pre-trade verdict: approve, or deny with every reason that applies. */
export type OrderVerdict = { readonly verdict: 'approve' } | { readonly verdict: 'deny'; readonly reasons: readonly DenyReason[] };

const APPROVE: OrderVerdict = Object.freeze({ verdict: 'approve' });

/** The breaches the engine detects itself; each halts trading while the kill switch is on. */
export const BREACH_CODES = ['DAILY_LOSS_LIMIT', 'MAX_DRAWDOWN'] as const;
/** A breach code (see {@link BREACH_CODES}). */
export type BreachCode = (typeof BREACH_CODES)[number];

/** Halt reasons that belong to one trading day: the daily reset removes them. */
const DAY_SCOPED_REASONS: ReadonlySet<string> = new Set<BreachCode>(['DAILY_LOSS_LIMIT']);

/** Why trading was halted or restricted: a SCREAMING_SNAKE code, a detail, and when (UTC epoch ms). */
export interface Reason {
  readonly code: string;
  readonly detail: string;
  readonly at: number;
}

/** A reason as a caller gives it with `HALT`/`REDUCE` (`at` comes from the event's clock reading). */
export const ReasonInputSchema = z.object({
  code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, { message: 'expected a SCREAMING_SNAKE code like MANUAL_HALT' }),
  detail: z.string().max(500),
});
/** See {@link ReasonInputSchema}. */
export type ReasonInput = z.infer<typeof ReasonInputSchema>;

import type { ClockReading } from '../common/clockReading.js';

export { readClock, type ClockReading } from '../common/clockReading.js';

/** What the risk engine needs to know about the account; {@link accountView} builds it from a portfolio. */
export interface AccountView {
  readonly equity: Money;
  readonly grossExposure: Money;
  readonly netExposure: Money;
  /** Deposits − withdrawals: a change moves the loss baselines, so cash movements are not losses. */
  readonly netDeposits: Money;
  readonly positions: ReadonlyMap<string, { readonly qty: Qty; readonly multiplier: bigint; readonly marketValue: Money }>;
  readonly contractMultipliers: ReadonlyMap<string, bigint>;
}

/** An account with nothing in it (before the first update). */
const EMPTY_ACCOUNT: AccountView = Object.freeze({
  equity: 0n,
  grossExposure: 0n,
  netExposure: 0n,
  netDeposits: 0n,
  positions: new Map(),
  contractMultipliers: new Map(),
});

/** The risk engine's view of a portfolio. O(1): it shares the portfolio's immutable maps. */
export function accountView(portfolio: Portfolio): AccountView {
  return {
    equity: portfolio.cash + portfolio.marketValue,
    grossExposure: portfolio.grossExposure,
    netExposure: portfolio.marketValue,
    netDeposits: portfolio.netDeposits,
    positions: portfolio.positions,
    contractMultipliers: portfolio.contractMultipliers,
  };
}

/** One trading day of the exchange: its date and its [start, end) in UTC epoch ms. */
export interface TradingDay {
  readonly date: string;
  readonly startsAtMs: number;
  readonly endsAtMs: number;
}

/** The trading day containing `wallMs`: local midnight to local midnight (23 or 25 h across DST). */
export function tradingDayAt(wallMs: number, zone: string): TradingDay {
  const start = DateTime.fromMillis(wallMs, { zone }).startOf('day');
  const end = start.plus({ days: 1 }).startOf('day');
  return { date: start.toISODate() ?? '', startsAtMs: start.toMillis(), endsAtMs: end.toMillis() };
}

/** The risk engine's state as plain data. */
export interface RiskState {
  readonly haltReasons: readonly Reason[];
  readonly reduceReason: Reason | null;
  readonly tradingDay: TradingDay | null;
  /** Equity when the trading day started (null until the first account update). */
  readonly dayStartEquity: Money | null;
  /** Highest equity seen (null until the first account update). */
  readonly peakEquity: Money | null;
  readonly account: AccountView;
  /** The breaches the newest account shows. */
  readonly breaches: readonly BreachCode[];
  /** The equity-relative limits in money for the newest equity; null while equity ≤ 0. */
  readonly exposureCaps: ExposureCaps | null;
  readonly orderRate: OrderRateState;
}

/**
 * Each equity-relative limit as money: `⌊limit × equity⌋`. For a whole-number value `v`,
 * `v > ⌊L⌋ ⇔ v > L`, so comparing against the cap is exact, and a check multiplies nothing.
 * `rules` and `equity` say what the caps were computed from.
 */
export interface ExposureCaps {
  readonly rules: RiskRules;
  readonly equity: Money;
  readonly perTrade: Money;
  readonly position: Money;
  readonly gross: Money;
  readonly net: Money;
}

function exposureCapsFor(rules: RiskRules, equity: Money): ExposureCaps | null {
  if (equity <= 0n) return null;
  return Object.freeze({
    rules,
    equity,
    perTrade: (rules.perTradeRisk * equity) / ONE_RATIO,
    position: (rules.maxPositionFraction * equity) / ONE_RATIO,
    gross: (rules.maxGrossExposure * equity) / ONE_RATIO,
    net: (rules.maxLeverage * equity) / ONE_RATIO,
  });
}

/** A fresh engine: active, no account yet. */
export function createRiskState(): RiskState {
  return Object.freeze({
    haltReasons: Object.freeze([]),
    reduceReason: null,
    tradingDay: null,
    dayStartEquity: null,
    peakEquity: null,
    account: EMPTY_ACCOUNT,
    breaches: Object.freeze([]),
    exposureCaps: null,
    orderRate: NO_ORDERS,
  });
}

/** The trading state the data holds (see the module comment). */
export function tradingState(state: RiskState): TradingState {
  if (state.haltReasons.length > 0) return 'halted';
  return state.reduceReason === null ? 'active' : 'reducing';
}

/** DESIGN.md's Summary `risk` part: the trading state and why trading is halted. */
export interface RiskSummary {
  state: TradingState;
  haltReasons: Array<{ code: string; detail: string }>;
}

/** The Summary's `risk` part. */
export function riskSummary(state: RiskState): RiskSummary {
  return { state: tradingState(state), haltReasons: state.haltReasons.map(({ code, detail }) => ({ code, detail })) };
}

/** An order to check, parsed: unsigned quantity, the side, and the reference price (e.g. the bar close). */
export interface OrderCheck {
  readonly orderId: string;
  readonly symbol: string;
  readonly side: Side;
  readonly qty: Qty;
  readonly price: Price;
}

/** An order as the session asks about it: its client order id, the intent, and a reference price. */
export interface OrderCheckRequest {
  readonly orderId: string;
  readonly intent: OrderIntent;
  /** The price the exposure checks use: the newest bar close, or the limit price. */
  readonly price: number | string;
}

/** Parses a request; a malformed one becomes an `INVALID_ORDER` denial instead of a throw. */
export function parseOrderCheck(request: OrderCheckRequest): OrderCheck | DenyReason {
  const { intent } = request;
  if (!SYMBOL_PATTERN.test(intent.symbol)) return { code: 'INVALID_ORDER', detail: `symbol ${JSON.stringify(intent.symbol)} is not a symbol` };
  if (intent.side !== 'buy' && intent.side !== 'sell') return { code: 'INVALID_ORDER', detail: `side ${JSON.stringify(intent.side)}` };
  try {
    const qty = parseQty(intent.qty);
    const price = parsePrice(request.price);
    if (qty <= 0n || price <= 0n) return { code: 'INVALID_ORDER', detail: `qty ${intent.qty} and price ${request.price} must be positive` };
    return { orderId: request.orderId, symbol: intent.symbol, side: intent.side, qty, price };
  } catch (error) {
    if (error instanceof InvalidDecimalError) return { code: 'INVALID_ORDER', detail: error.message };
    throw error;
  }
}

function withReason(reasons: DenyReason[] | undefined, code: DenyCode, detail: string): DenyReason[] {
  const list = reasons ?? [];
  list.push({ code, detail });
  return list;
}

function describeMove(symbol: string, current: Qty, next: Qty): string {
  return `${symbol} ${formatQty(current)} → ${formatQty(next)}`;
}

function share(value: Money, equity: Money): string {
  return `${formatPercent(ratioOf(value, equity))} of equity ${formatMoney(equity)}`;
}

/**
 * The pre-trade check (pure: it holds nothing; see {@link checkOrders} for the counted form).
 * Returns every reason that applies, not only the first. Exposure limits apply only to orders
 * that open, add to or flip a position: an order that only shrinks one always may (the original
 * also refused reductions of an oversized position). Comparisons are exact integer arithmetic
 * against the caps computed once per account update; details are built only for denials.
 */
export function checkOrder(state: RiskState, rules: RiskRules, order: OrderCheck, nowMono: number): OrderVerdict {
  const { limits } = rules;
  const { account } = state;
  const cached = state.exposureCaps;
  // The caps are cached per account update; other rules than the cached ones get their own.
  const caps = cached !== null && cached.rules === rules && cached.equity === account.equity ? cached : exposureCapsFor(rules, account.equity);
  const { symbol } = order;
  if (order.qty <= 0n || order.price <= 0n) return { verdict: 'deny', reasons: [{ code: 'INVALID_ORDER', detail: 'qty and price must be positive' }] };
  const position = account.positions.get(symbol);
  const current = position?.qty ?? 0n;
  const multiplier = position?.multiplier ?? account.contractMultipliers.get(symbol) ?? 1n;
  const next = current + (order.side === 'buy' ? order.qty : -order.qty);
  const shrinksOnly = current > 0n ? next >= 0n && next < current : current < 0n && next <= 0n && next > current;
  let reasons: DenyReason[] | undefined;

  const mode = tradingState(state);
  if (mode === 'halted' && !(current !== 0n && next === 0n)) {
    const held = state.haltReasons.map((reason) => reason.code).join(', ');
    reasons = withReason(reasons, 'TRADING_HALTED', `halted (${held}): only closing a position passes; ${describeMove(symbol, current, next)}`);
  }
  if (mode === 'reducing' && !shrinksOnly) {
    const why = state.reduceReason?.code ?? '';
    reasons = withReason(reasons, 'REDUCING_ONLY', `reduce-only (${why}): only shrinking a position passes; ${describeMove(symbol, current, next)}`);
  }
  if (limits.rateLimitEnabled) {
    const lastMinute = ordersInLastMinute(state.orderRate, nowMono);
    if (lastMinute >= limits.maxOrdersPerMinute) {
      reasons = withReason(reasons, 'RATE_LIMIT_MINUTE', `${lastMinute} orders in the last minute, max ${limits.maxOrdersPerMinute}`);
    }
    const today = ordersToday(state.orderRate, nowMono);
    if (today >= limits.maxOrdersPerDay) reasons = withReason(reasons, 'RATE_LIMIT_DAY', `${today} orders today, max ${limits.maxOrdersPerDay}`);
  }
  if (shrinksOnly) return reasons === undefined ? APPROVE : { verdict: 'deny', reasons };

  if (limits.killSwitchEnabled && state.breaches.length > 0) {
    reasons = withReason(reasons, 'KILL_SWITCH', `the account breaches ${state.breaches.join(', ')}: no new exposure until it recovers`);
  }
  const nextValue = notional(next, order.price, multiplier);
  const nextSize = nextValue < 0n ? -nextValue : nextValue;
  const { equity } = account;
  if (caps === null) {
    reasons = withReason(reasons, 'EQUITY_NOT_POSITIVE', `equity ${formatMoney(equity)}: no new exposure`);
  } else {
    // The per-trade cap is for orders that open or add (the original exempted closing and flipping).
    const adds = current === 0n || current > 0n === (order.side === 'buy');
    const tradeSize = adds ? notional(order.qty, order.price, multiplier) : 0n;
    if (tradeSize > caps.perTrade) {
      reasons = withReason(reasons, 'PER_TRADE_RISK', `order ${formatMoney(tradeSize)} = ${share(tradeSize, equity)} > max ${formatPercent(rules.perTradeRisk)}`);
    }
    if (nextSize > caps.position) {
      const detail = `${describeMove(symbol, current, next)} worth ${formatMoney(nextSize)} = ${share(nextSize, equity)} > max ${formatPercent(rules.maxPositionFraction)}`;
      reasons = withReason(reasons, 'MAX_POSITION_FRACTION', detail);
    }
    const currentValue = position?.marketValue ?? 0n;
    const gross = account.grossExposure - abs(currentValue) + nextSize;
    if (gross > caps.gross) {
      reasons = withReason(reasons, 'MAX_GROSS_EXPOSURE', `gross exposure ${formatMoney(gross)} = ${share(gross, equity)} > max ${formatPercent(rules.maxGrossExposure)}`);
    }
    const net = abs(account.netExposure - currentValue + nextValue);
    if (net > caps.net) {
      reasons = withReason(reasons, 'MAX_LEVERAGE', `net exposure ${formatMoney(net)} = ${share(net, equity)} > max ${formatPercent(rules.maxLeverage)}`);
    }
  }
  if (nextSize > rules.perSymbolNotionalCap) {
    const detail = `${describeMove(symbol, current, next)} worth ${formatMoney(nextSize)} > cap ${formatMoney(rules.perSymbolNotionalCap)}`;
    reasons = withReason(reasons, 'PER_SYMBOL_NOTIONAL_CAP', detail);
  }
  if (abs(next) > rules.maxSinglePositionUnits) {
    const detail = `${describeMove(symbol, current, next)}: |qty| > max ${formatQty(rules.maxSinglePositionUnits)}`;
    reasons = withReason(reasons, 'MAX_SINGLE_POSITION_UNITS', detail);
  }
  return reasons === undefined ? APPROVE : { verdict: 'deny', reasons };
}

/**
 * Checks a batch in order, as one atomic step of the risk actor: each approved order holds a
 * rate-limit slot before the next is checked, so N concurrent checks against a limit of k
 * admit exactly k. Malformed requests are denied `INVALID_ORDER`.
 */
export function checkOrders(
  state: RiskState,
  rules: RiskRules,
  requests: readonly OrderCheckRequest[],
  nowMono: number,
): { state: RiskState; verdicts: OrderVerdict[] } {
  let orderRate = state.orderRate;
  const verdicts: OrderVerdict[] = [];
  for (const request of requests) {
    const order = parseOrderCheck(request);
    if ('code' in order) {
      verdicts.push({ verdict: 'deny', reasons: [order] });
      continue;
    }
    const verdict = checkOrder(orderRate === state.orderRate ? state : { ...state, orderRate }, rules, order, nowMono);
    // Holds only matter to the rate limits; without them there is nothing to count.
    if (verdict.verdict === 'approve' && rules.limits.rateLimitEnabled) orderRate = holdOrder(orderRate, order.orderId, nowMono);
    verdicts.push(verdict);
  }
  return { state: orderRate === state.orderRate ? state : Object.freeze({ ...state, orderRate }), verdicts };
}

/** Counts an order whose client order id was reserved (see rateLimiter.ts). */
export function reserveOrder(state: RiskState, orderId: string, nowMono: number): RiskState {
  return Object.freeze({ ...state, orderRate: recordOrder(state.orderRate, orderId, nowMono) });
}

/** Frees the slot of an approved order whose reservation was refused. */
export function releaseHeldOrder(state: RiskState, orderId: string): RiskState {
  const orderRate = releaseOrder(state.orderRate, orderId);
  return orderRate === state.orderRate ? state : Object.freeze({ ...state, orderRate });
}

function breachesOf(rules: RiskRules, equity: Money, dayStart: Money | null, peak: Money | null): BreachCode[] {
  const breaches: BreachCode[] = [];
  // loss / start ≥ limit  ⇔  loss × 1 ≥ limit × start (exact; no division).
  if (dayStart !== null && dayStart > 0n && (dayStart - equity) * ONE_RATIO >= rules.maxDailyLoss * dayStart) breaches.push('DAILY_LOSS_LIMIT');
  if (peak !== null && peak > 0n && (peak - equity) * ONE_RATIO >= rules.maxDrawdown * peak) breaches.push('MAX_DRAWDOWN');
  return breaches;
}

/** The reason a breach gives, with its numbers. */
export function breachReason(state: RiskState, rules: RiskRules, code: BreachCode, at: number): Reason {
  const equity = state.account.equity;
  const [base, limit, label] =
    code === 'DAILY_LOSS_LIMIT'
      ? [state.dayStartEquity ?? 0n, rules.maxDailyLoss, "the day's start"]
      : [state.peakEquity ?? 0n, rules.maxDrawdown, 'the peak'];
  const loss = base > 0n ? ratioOf(base - equity, base) : 0n;
  return { code, detail: `equity ${formatMoney(equity)} is ${formatPercent(loss)} below ${label} ${formatMoney(base)} (max ${formatPercent(limit)})`, at };
}

/**
 * Takes a new account view: moves the loss baselines by any deposit or withdrawal (cash moved
 * in or out is not a profit or a loss), raises the peak, and re-detects breaches. Returns the
 * breaches that are new since the previous view.
 */
export function updateAccount(state: RiskState, rules: RiskRules, account: AccountView): { state: RiskState; newBreaches: BreachCode[] } {
  // The same account as last time (a bar that moved no held price): every derived figure stands.
  if (sameAccount(state, account)) return { state, newBreaches: [] };
  const moved = account.netDeposits - state.account.netDeposits;
  const dayStartEquity = state.dayStartEquity === null ? account.equity : max(0n, state.dayStartEquity + moved);
  const peakEquity = max(account.equity, state.peakEquity === null ? account.equity : max(0n, state.peakEquity + moved));
  const breaches = breachesOf(rules, account.equity, dayStartEquity, peakEquity);
  const newBreaches = breaches.filter((code) => !state.breaches.includes(code));
  return {
    state: Object.freeze({
      ...state,
      account,
      dayStartEquity,
      peakEquity,
      breaches: Object.freeze(breaches),
      exposureCaps: exposureCapsFor(rules, account.equity),
    }),
    newBreaches,
  };
}

/**
 * The halts the breaches in force call for — the one place this rule lives (the risk machine
 * and the session both take it from here). With the kill switch on, every standing breach whose
 * code is not already a halt reason: a breach that is still there after a `RESUME` halts again
 * at the next account update. With the kill switch off, none: a breach is only reported.
 */
export function breachHalts(state: RiskState, rules: RiskRules, at: number): Reason[] {
  if (!rules.limits.killSwitchEnabled || state.breaches.length === 0) return [];
  const halts: Reason[] = [];
  for (const code of state.breaches) {
    if (!state.haltReasons.some((held) => held.code === code)) halts.push(breachReason(state, rules, code, at));
  }
  return halts;
}

/** {@link updateAccount}, then {@link breachHalts} applied: the account's effect on trading. */
export function takeAccount(
  state: RiskState,
  rules: RiskRules,
  account: AccountView,
  at: number,
): { state: RiskState; newBreaches: BreachCode[]; halts: Reason[] } {
  const updated = updateAccount(state, rules, account);
  const halts = breachHalts(updated.state, rules, at);
  let next = updated.state;
  for (const reason of halts) next = addHaltReason(next, reason);
  return { state: next, newBreaches: updated.newBreaches, halts };
}

function sameAccount(state: RiskState, account: AccountView): boolean {
  const known = state.account;
  return (
    state.dayStartEquity !== null &&
    state.peakEquity !== null &&
    known.equity === account.equity &&
    known.grossExposure === account.grossExposure &&
    known.netExposure === account.netExposure &&
    known.netDeposits === account.netDeposits &&
    known.positions === account.positions &&
    known.contractMultipliers === account.contractMultipliers
  );
}

/**
 * {@link takeAccount} of `portfolio`'s view, without building the view when risk already holds
 * exactly it and nothing stands breached (the common case: a bar of a symbol not held).
 */
export function takePortfolio(
  state: RiskState,
  rules: RiskRules,
  portfolio: Portfolio,
  at: number,
): { state: RiskState; newBreaches: BreachCode[]; halts: Reason[] } {
  const known = state.account;
  const current =
    state.dayStartEquity !== null &&
    state.peakEquity !== null &&
    known.positions === portfolio.positions &&
    known.contractMultipliers === portfolio.contractMultipliers &&
    known.equity === portfolio.cash + portfolio.marketValue &&
    known.grossExposure === portfolio.grossExposure &&
    known.netExposure === portfolio.marketValue &&
    known.netDeposits === portfolio.netDeposits;
  if (current && state.breaches.length === 0) return { state, newBreaches: [], halts: [] };
  return takeAccount(state, rules, accountView(portfolio), at);
}

/** A portfolio as it stood at a bar's time (`at`, market time): one step of a {@link settleSeries}. */
export interface PortfolioAt {
  readonly at: number;
  readonly portfolio: Portfolio;
}

/** What a series of portfolio readings did to risk: the new state and what to announce. */
export interface SeriesSettled {
  readonly state: RiskState;
  /** Breaches new at some step, with their reasons (as reported when they happened). */
  readonly breaches: readonly Reason[];
  /** Trading days started along the series, the newest last. */
  readonly daysStarted: readonly TradingDay[];
}

/**
 * Takes portfolio readings in time order, each exactly as an account update at its own time
 * would: the daily reset if due, then the account and its breaches (halting per
 * {@link breachHalts}). Then, if `thenAt` is given (an order check that follows), the daily reset
 * at that time. One step per reading, so a batch of readings gives the state one-at-a-time
 * updates give, halts and resets in their true order.
 */
export function settleSeries(state: RiskState, rules: RiskRules, series: readonly PortfolioAt[], thenAt: number | null): SeriesSettled {
  let next = state;
  const breaches: Reason[] = [];
  const daysStarted: TradingDay[] = [];
  const dayStartAt = (at: number): void => {
    const day = startTradingDayIfDue(next, rules, at);
    next = day.state;
    if (day.started !== null) daysStarted.push(day.started);
  };
  for (const { at, portfolio } of series) {
    dayStartAt(at);
    const taken = takePortfolio(next, rules, portfolio, at);
    next = taken.state;
    for (const code of taken.newBreaches) breaches.push(breachReason(next, rules, code, at));
  }
  if (thenAt !== null) dayStartAt(thenAt);
  return { state: next, breaches, daysStarted };
}

/**
 * The daily reset, due when `wallMs` reaches the end of the current trading day (midnight in
 * the exchange zone). It re-bases the daily loss on the current equity, restarts the daily
 * order count and drops day-scoped halt reasons (`DAILY_LOSS_LIMIT`); other halt reasons stay.
 * If no halt reason is left, trading resumes: the one automatic resume. The first reading only
 * sets the day. A wall clock that goes back never moves the day back.
 */
export function startTradingDayIfDue(state: RiskState, rules: RiskRules, wallMs: number): { state: RiskState; started: TradingDay | null } {
  const zone = rules.limits.exchangeTimeZone;
  if (state.tradingDay === null) return { state: Object.freeze({ ...state, tradingDay: tradingDayAt(wallMs, zone) }), started: null };
  if (wallMs < state.tradingDay.endsAtMs) return { state, started: null };
  const tradingDay = tradingDayAt(wallMs, zone);
  const dayStartEquity = state.dayStartEquity === null ? null : state.account.equity;
  return {
    state: Object.freeze({
      ...state,
      tradingDay,
      dayStartEquity,
      haltReasons: Object.freeze(state.haltReasons.filter((reason) => !DAY_SCOPED_REASONS.has(reason.code))),
      breaches: Object.freeze(breachesOf(rules, state.account.equity, dayStartEquity, state.peakEquity)),
      orderRate: startDayCount(state.orderRate),
    }),
    started: tradingDay,
  };
}

/** Adds a halt reason; a code already held is not added twice (its first detail stays). */
export function addHaltReason(state: RiskState, reason: Reason): RiskState {
  if (state.haltReasons.some((held) => held.code === reason.code)) return state;
  return Object.freeze({ ...state, haltReasons: Object.freeze([...state.haltReasons, reason]) });
}

/** Sets (or replaces) the reduce-only reason. */
export function setReduceReason(state: RiskState, reason: Reason): RiskState {
  return Object.freeze({ ...state, reduceReason: reason });
}

/** `RESUME`: drops every halt and reduce reason. */
export function resumeTrading(state: RiskState): RiskState {
  return Object.freeze({ ...state, haltReasons: Object.freeze([]), reduceReason: null });
}

// Lenient on the code: a HALT is never refused for its spelling, so a checkpoint must take any.
const ReasonSchema = z.object({ code: z.string(), detail: z.string(), at: z.number().int() });

/** The risk state as JSON-safe data for checkpoints. The account comes back from the portfolio. */
export const RiskSnapshotSchema = z.object({
  haltReasons: z.array(ReasonSchema),
  reduceReason: ReasonSchema.nullable(),
  tradingDay: z.object({ date: z.string(), startsAtMs: z.number().int(), endsAtMs: z.number().int() }).nullable(),
  dayStartEquity: MoneyStringSchema.nullable(),
  peakEquity: MoneyStringSchema.nullable(),
  netDeposits: MoneyStringSchema,
  orderRate: z.object({
    reservedAgesMs: z.array(z.number().nonnegative()),
    reservedToday: z.number().int().nonnegative(),
  }),
});
/** See {@link RiskSnapshotSchema}. */
export type RiskSnapshot = z.infer<typeof RiskSnapshotSchema>;

/** A risk snapshot that does not validate; `issues` names every bad field. */
export class InvalidRiskSnapshotError extends FieldIssuesError {
  constructor(issues: readonly FieldIssue[]) {
    super('INVALID_RISK_SNAPSHOT', 'risk snapshot', issues);
  }
}

/** The state as a snapshot taken at `nowMono` (rate windows become ages). */
export function riskSnapshot(state: RiskState, nowMono: number): RiskSnapshot {
  return {
    haltReasons: state.haltReasons.map((reason) => ({ ...reason })),
    reduceReason: state.reduceReason === null ? null : { ...state.reduceReason },
    tradingDay: state.tradingDay === null ? null : { ...state.tradingDay },
    dayStartEquity: state.dayStartEquity === null ? null : formatMoneyExact(state.dayStartEquity),
    peakEquity: state.peakEquity === null ? null : formatMoneyExact(state.peakEquity),
    netDeposits: formatMoneyExact(state.account.netDeposits),
    orderRate: orderRateSnapshot(state.orderRate, nowMono),
  };
}

/**
 * Restores a snapshot (of unknown origin) at `nowMono` of this process, with the restored
 * portfolio's account. Breaches are re-detected from that account.
 * Throws {@link InvalidRiskSnapshotError}.
 */
export function restoreRiskState(snapshot: unknown, rules: RiskRules, nowMono: number, account: AccountView = EMPTY_ACCOUNT): RiskState {
  const parsed = RiskSnapshotSchema.safeParse(snapshot);
  if (!parsed.success) throw new InvalidRiskSnapshotError(fieldIssues(parsed.error));
  const data = parsed.data;
  const restored: RiskState = Object.freeze({
    haltReasons: Object.freeze(data.haltReasons),
    reduceReason: data.reduceReason,
    tradingDay: data.tradingDay,
    dayStartEquity: data.dayStartEquity === null ? null : parseMoney(data.dayStartEquity),
    peakEquity: data.peakEquity === null ? null : parseMoney(data.peakEquity),
    account: { ...EMPTY_ACCOUNT, netDeposits: parseMoney(data.netDeposits) },
    breaches: Object.freeze([]),
    exposureCaps: null,
    orderRate: restoreOrderRate(data.orderRate, nowMono),
  });
  return account === EMPTY_ACCOUNT ? restored : updateAccount(restored, rules, account).state;
}
