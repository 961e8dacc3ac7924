import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { parseMoney, parsePrice, parseQty } from '../../src/common/money.js';
import type { Side } from '../../src/common/order.js';
import { applyFills, createPortfolio, deposit, markToMarket, withdraw, type Portfolio } from '../../src/portfolio/portfolio.js';
import {
  ordersInLastMinute,
  ordersToday,
  holdOrder,
  NO_ORDERS,
  orderRateSnapshot,
  RATE_WINDOW_MS,
  recordOrder,
  releaseOrder,
  restoreOrderRate,
} from '../../src/risk/rateLimiter.js';
import {
  accountView,
  addHaltReason,
  checkOrder,
  checkOrders,
  createRiskState,
  InvalidRiskSnapshotError,
  reserveOrder,
  restoreRiskState,
  riskSnapshot,
  riskSummary,
  resumeTrading,
  setReduceReason,
  settleSeries,
  startTradingDayIfDue,
  tradingDayAt,
  tradingState,
  updateAccount,
  type DenyCode,
  type OrderCheck,
  type OrderVerdict,
  type RiskState,
} from '../../src/risk/risk.js';
import {
  compileRiskRules,
  DEFAULT_RISK_LIMITS,
  InvalidRiskLimitsError,
  parseRiskLimits,
  type RiskLimitsInput,
  type RiskRules,
} from '../../src/risk/riskLimits.js';

const NY = 'America/New_York';
const JAN_2_NOON_NY = DateTime.fromISO('2025-01-02T12:00', { zone: NY }).toMillis();

/** Limits loose enough that only the limit under test bites. */
const LOOSE: RiskLimitsInput = {
  perTradeRiskPct: 1,
  maxPositionFraction: 1,
  maxGrossExposure: 100,
  maxLeverage: 100,
  perSymbolNotionalCap: 1e12,
  maxSinglePositionUnits: 1e9,
  rateLimitEnabled: false,
};

function rulesWith(limits: RiskLimitsInput = {}): RiskRules {
  return compileRiskRules(parseRiskLimits({ ...LOOSE, ...limits }));
}

function portfolioHolding(cash: string, holdings: Record<string, [qty: number, price: string]> = {}): Portfolio {
  let clientOrderId = 0;
  const fills = Object.entries(holdings).map(([symbol, [qty, price]]) => ({
    clientOrderId: `seed-${(clientOrderId += 1)}`,
    symbol,
    side: (qty > 0 ? 'buy' : 'sell') as Side,
    qty: String(Math.abs(qty)),
    price,
    commission: '0',
    filledAt: 0,
  }));
  return applyFills(createPortfolio({ initialCash: cash }), fills).portfolio;
}

function stateFor(portfolio: Portfolio, rules: RiskRules, base: RiskState = createRiskState()): RiskState {
  return updateAccount(base, rules, accountView(portfolio)).state;
}

function order(symbol: string, side: Side, qty: string, price: string): OrderCheck {
  return { orderId: `${symbol}-${side}-${qty}`, symbol, side, qty: parseQty(qty), price: parsePrice(price) };
}

function codes(verdict: OrderVerdict): DenyCode[] {
  return verdict.verdict === 'approve' ? [] : verdict.reasons.map((reason) => reason.code);
}

const halt = (state: RiskState, code = 'MANUAL'): RiskState => addHaltReason(state, { code, detail: 'test', at: 0 });
const reduceOnly = (state: RiskState): RiskState => setReduceReason(state, { code: 'OPERATOR', detail: 'test', at: 0 });

describe('risk limits config', () => {
  it("defaults to the original's names and values", () => {
    expect(DEFAULT_RISK_LIMITS).toEqual({
      maxDailyLossPct: 0.05,
      maxDrawdownPct: 0.15,
      maxPositionFraction: 0.2,
      maxGrossExposure: 2,
      maxLeverage: 2,
      perTradeRiskPct: 0.01,
      perSymbolNotionalCap: 100_000,
      maxSinglePositionUnits: 1_000,
      rateLimitEnabled: true,
      maxOrdersPerMinute: 10,
      maxOrdersPerDay: 100,
      killSwitchEnabled: true,
      exchangeTimeZone: NY,
    });
  });

  it('rejects an invalid config with a typed error listing every bad field', () => {
    try {
      parseRiskLimits({ maxDailyLossPct: 0, maxLeverage: -1, maxOrdersPerMinute: 2.5, exchangeTimeZone: 'Mars/Olympus', maxDrawdonPct: 0.1 });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidRiskLimitsError);
      const invalid = error as InvalidRiskLimitsError;
      expect(invalid.code).toBe('INVALID_RISK_LIMITS');
      expect(invalid.issues.map((issue) => issue.field).sort()).toEqual(
        ['exchangeTimeZone', 'maxDailyLossPct', 'maxDrawdonPct', 'maxLeverage', 'maxOrdersPerMinute'].sort(),
      );
      expect(invalid.message).toMatch(/exchangeTimeZone: not an IANA time zone/);
    }
  });
});

describe('pre-trade check', () => {
  const rules = rulesWith();
  const flat = stateFor(portfolioHolding('100000'), rules);

  it('approves an order inside every limit', () => {
    expect(checkOrder(flat, compileRiskRules(DEFAULT_RISK_LIMITS), order('AAPL', 'buy', '5', '100'), 0)).toEqual({ verdict: 'approve' });
  });

  it('halted: only an order that closes the position completely passes', () => {
    const state = halt(stateFor(portfolioHolding('100000', { AAPL: [10, '100'] }), rules));
    expect(tradingState(state)).toBe('halted');
    expect(checkOrder(state, rules, order('AAPL', 'sell', '10', '100'), 0)).toEqual({ verdict: 'approve' });
    expect(codes(checkOrder(state, rules, order('AAPL', 'sell', '4', '100'), 0))).toEqual(['TRADING_HALTED']);
    expect(codes(checkOrder(state, rules, order('AAPL', 'sell', '11', '100'), 0))).toEqual(['TRADING_HALTED']);
    expect(codes(checkOrder(state, rules, order('MSFT', 'buy', '1', '100'), 0))).toEqual(['TRADING_HALTED']);
  });

  it('reducing: only orders that shrink a position without crossing zero pass', () => {
    const state = reduceOnly(stateFor(portfolioHolding('100000', { AAPL: [-10, '100'] }), rules));
    expect(tradingState(state)).toBe('reducing');
    expect(checkOrder(state, rules, order('AAPL', 'buy', '4', '100'), 0).verdict).toBe('approve');
    expect(checkOrder(state, rules, order('AAPL', 'buy', '10', '100'), 0).verdict).toBe('approve');
    expect(codes(checkOrder(state, rules, order('AAPL', 'buy', '11', '100'), 0))).toEqual(['REDUCING_ONLY']);
    expect(codes(checkOrder(state, rules, order('AAPL', 'sell', '1', '100'), 0))).toEqual(['REDUCING_ONLY']);
  });

  it('allows any reduction of an oversized position (the original refused them)', () => {
    const tight = rulesWith({ maxPositionFraction: 0.2 });
    const state = stateFor(portfolioHolding('100000', { AAPL: [500, '100'] }), tight);
    expect(checkOrder(state, tight, order('AAPL', 'sell', '100', '100'), 0).verdict).toBe('approve');
    expect(codes(checkOrder(state, tight, order('AAPL', 'buy', '1', '100'), 0))).toEqual(['MAX_POSITION_FRACTION']);
  });

  it('compares exactly at the boundary: exactly 20% of equity passes, one cent more does not', () => {
    const tight = rulesWith({ maxPositionFraction: 0.2 });
    expect(checkOrder(flat, tight, order('X', 'buy', '200', '100'), 0).verdict).toBe('approve');
    expect(codes(checkOrder(flat, tight, order('X', 'buy', '200', '100.00005'), 0))).toEqual(['MAX_POSITION_FRACTION']);
  });

  it('caps the notional of an order that opens or adds, but not of one that closes', () => {
    const tight = rulesWith({ perTradeRiskPct: 0.01 });
    const state = stateFor(portfolioHolding('100000', { AAPL: [50, '100'] }), tight);
    expect(checkOrder(state, tight, order('AAPL', 'buy', '10', '100'), 0).verdict).toBe('approve');
    const denied = checkOrder(state, tight, order('AAPL', 'buy', '11', '100'), 0);
    expect(denied).toEqual({ verdict: 'deny', reasons: [{ code: 'PER_TRADE_RISK', detail: 'order 1100.00 = 1.10% of equity 100000.00 > max 1.00%' }] });
    expect(checkOrder(state, tight, order('AAPL', 'sell', '50', '100'), 0).verdict).toBe('approve');
  });

  it('caps gross exposure and leverage across all positions', () => {
    const state = stateFor(portfolioHolding('100000', { A: [1000, '100'], B: [-500, '100'] }), rules);
    // gross 150k, net 50k on 100k equity
    const grossRules = rulesWith({ maxGrossExposure: 2 });
    expect(checkOrder(state, grossRules, order('C', 'sell', '500', '100'), 0).verdict).toBe('approve');
    expect(codes(checkOrder(state, grossRules, order('C', 'sell', '501', '100'), 0))).toEqual(['MAX_GROSS_EXPOSURE']);
    const leverageRules = rulesWith({ maxLeverage: 1 });
    expect(checkOrder(state, leverageRules, order('C', 'buy', '500', '100'), 0).verdict).toBe('approve');
    expect(codes(checkOrder(state, leverageRules, order('C', 'buy', '501', '100'), 0))).toEqual(['MAX_LEVERAGE']);
    expect(checkOrder(state, leverageRules, order('C', 'sell', '1000', '100'), 0).verdict).toBe('approve'); // net −50k
  });

  it('caps the notional and the units of one symbol', () => {
    const capped = rulesWith({ perSymbolNotionalCap: 10_000, maxSinglePositionUnits: 50 });
    expect(codes(checkOrder(flat, capped, order('X', 'buy', '40', '300'), 0))).toEqual(['PER_SYMBOL_NOTIONAL_CAP']);
    expect(codes(checkOrder(flat, capped, order('X', 'buy', '51', '1'), 0))).toEqual(['MAX_SINGLE_POSITION_UNITS']);
    expect(codes(checkOrder(flat, capped, order('X', 'sell', '50', '200'), 0))).toEqual([]);
  });

  it('counts the contract multiplier in exposure', () => {
    const futures = createPortfolio({ initialCash: '1000000', contractMultipliers: { ES: 50 } });
    const capped = rulesWith({ perSymbolNotionalCap: 250_000 });
    const state = stateFor(futures, capped);
    expect(checkOrder(state, capped, order('ES', 'buy', '1', '5000'), 0).verdict).toBe('approve');
    expect(codes(checkOrder(state, capped, order('ES', 'buy', '2', '5000'), 0))).toEqual(['PER_SYMBOL_NOTIONAL_CAP']);
  });

  it('refuses new exposure when equity is not positive', () => {
    expect(codes(checkOrder(createRiskState(), rules, order('X', 'buy', '1', '1'), 0))).toEqual(['EQUITY_NOT_POSITIVE']);
  });

  it('refuses new exposure while the account breaches a loss limit (kill switch), before the halt is recorded', () => {
    const limits = rulesWith({ maxDrawdownPct: 0.1, killSwitchEnabled: true });
    const p = portfolioHolding('100000', { X: [200, '100'] });
    let state = stateFor(p, limits);
    state = updateAccount(state, limits, accountView(markToMarket(p, [['X', parsePrice('1')]]))).state;
    expect(state.breaches).toEqual(['DAILY_LOSS_LIMIT', 'MAX_DRAWDOWN']);
    expect(codes(checkOrder(state, limits, order('X', 'buy', '1', '1'), 0))).toEqual(['KILL_SWITCH']);
    expect(checkOrder(state, limits, order('X', 'sell', '200', '1'), 0).verdict).toBe('approve');
    const off = rulesWith({ maxDrawdownPct: 0.1, killSwitchEnabled: false });
    expect(checkOrder(state, off, order('X', 'buy', '1', '1'), 0).verdict).toBe('approve');
  });

  it('reports every reason that applies, not only the first', () => {
    const strict = compileRiskRules(DEFAULT_RISK_LIMITS);
    const state = reduceOnly(stateFor(portfolioHolding('100000'), strict));
    expect(codes(checkOrder(state, strict, order('X', 'buy', '2001', '100'), 0))).toEqual([
      'REDUCING_ONLY',
      'PER_TRADE_RISK',
      'MAX_POSITION_FRACTION',
      'MAX_GROSS_EXPOSURE',
      'MAX_LEVERAGE',
      'PER_SYMBOL_NOTIONAL_CAP',
      'MAX_SINGLE_POSITION_UNITS',
    ]);
  });

  it('denies malformed requests as INVALID_ORDER instead of throwing', () => {
    const { verdicts } = checkOrders(
      flat,
      rules,
      [
        { orderId: 'a', intent: { symbol: 'X', side: 'buy', qty: '1e3', type: 'market' }, price: 10 },
        { orderId: 'b', intent: { symbol: 'X', side: 'buy', qty: '1', type: 'market' }, price: -10 },
        { orderId: 'c', intent: { symbol: 'bad symbol', side: 'buy', qty: '1', type: 'market' }, price: 10 },
      ],
      0,
    );
    expect(verdicts.map(codes)).toEqual([['INVALID_ORDER'], ['INVALID_ORDER'], ['INVALID_ORDER']]);
  });

  it('halted and reducing follow their rule for any position and order (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -50, max: 50 }), fc.constantFrom<Side>('buy', 'sell'), fc.integer({ min: 1, max: 120 }), (held, side, qty) => {
        const base = stateFor(portfolioHolding('1000000', held === 0 ? {} : { X: [held, '10'] }), rules);
        const next = held + (side === 'buy' ? qty : -qty);
        const closes = held !== 0 && next === 0;
        const shrinks = held > 0 ? next >= 0 && next < held : held < 0 && next <= 0 && next > held;
        const check = (state: RiskState) => checkOrder(state, rules, order('X', side, String(qty), '10'), 0);
        expect(check(halt(base)).verdict === 'approve').toBe(closes);
        expect(check(reduceOnly(base)).verdict === 'approve').toBe(shrinks);
        expect(check(base).verdict).toBe('approve');
      }),
    );
  });
});

describe('order rate limits', () => {
  const rules = rulesWith({ rateLimitEnabled: true, maxOrdersPerMinute: 10, maxOrdersPerDay: 15 });
  const base = stateFor(portfolioHolding('1000000'), rules);
  const request = (i: number) => ({ orderId: `o${i}`, intent: { symbol: 'X', side: 'buy' as const, qty: '1', type: 'market' as const }, price: 10 });

  it('admits exactly the limit from one batch: each approval holds a slot for the next check', () => {
    const { state, verdicts } = checkOrders(base, rules, Array.from({ length: 100 }, (_, i) => request(i)), 0);
    expect(verdicts.filter((v) => v.verdict === 'approve')).toHaveLength(10);
    expect(codes(verdicts[10] ?? { verdict: 'approve' })).toEqual(['RATE_LIMIT_MINUTE']);
    expect(state.orderRate.held.size).toBe(10);
  });

  it('counts on the monotonic clock: the window slides after 60 s of monotonic time only', () => {
    let state = base;
    for (let i = 0; i < 10; i += 1) state = reserveOrder(state, `o${i}`, 1_000);
    expect(codes(checkOrder(state, rules, order('X', 'buy', '1', '10'), 60_999))).toEqual(['RATE_LIMIT_MINUTE']);
    expect(checkOrder(state, rules, order('X', 'buy', '1', '10'), 61_000).verdict).toBe('approve');
  });

  it('counts a day limit that only the trading day resets', () => {
    let state = base;
    for (let i = 0; i < 15; i += 1) state = reserveOrder(state, `o${i}`, i * RATE_WINDOW_MS);
    expect(codes(checkOrder(state, rules, order('X', 'buy', '1', '10'), 20 * RATE_WINDOW_MS))).toEqual(['RATE_LIMIT_DAY']);
    state = startTradingDayIfDue(state, rules, JAN_2_NOON_NY).state;
    state = startTradingDayIfDue(state, rules, JAN_2_NOON_NY + 86_400_000).state;
    expect(checkOrder(state, rules, order('X', 'buy', '1', '10'), 20 * RATE_WINDOW_MS).verdict).toBe('approve');
  });

  it('frees a held slot when the reservation is refused, and lets an unsettled hold expire', () => {
    let rate = NO_ORDERS;
    for (let i = 0; i < 3; i += 1) rate = holdOrder(rate, `o${i}`, 0);
    rate = releaseOrder(rate, 'o1');
    expect(ordersInLastMinute(rate, 1)).toBe(2);
    rate = recordOrder(rate, 'o0', 10);
    expect([ordersInLastMinute(rate, 10), ordersToday(rate, 10)]).toEqual([2, 2]);
    expect([ordersInLastMinute(rate, RATE_WINDOW_MS), ordersToday(rate, RATE_WINDOW_MS)]).toEqual([1, 1]);
    expect(releaseOrder(rate, 'unknown')).toBe(rate);
  });

  it('counts a reservation that was never checked through the engine', () => {
    const rate = recordOrder(NO_ORDERS, 'direct', 5);
    expect([ordersInLastMinute(rate, 5), rate.reservedToday]).toEqual([1, 1]);
  });

  it('restores conservatively: the time between save and restore counts as zero', () => {
    let rate = NO_ORDERS;
    rate = recordOrder(rate, 'a', 1_000);
    rate = recordOrder(rate, 'b', 50_000);
    const snapshot = orderRateSnapshot(rate, 55_000);
    expect(snapshot).toEqual({ reservedAgesMs: [54_000, 5_000], reservedToday: 2 });
    const restored = restoreOrderRate(snapshot, 3);
    expect(ordersInLastMinute(restored, 3)).toBe(2);
    expect(ordersInLastMinute(restored, 3 + 5_999)).toBe(2);
    expect(ordersInLastMinute(restored, 3 + 6_000)).toBe(1);
    expect(ordersInLastMinute(restored, 3 + 55_000)).toBe(0);
  });
});

describe('loss breaches', () => {
  const rules = rulesWith({ maxDailyLossPct: 0.05, maxDrawdownPct: 0.15 });
  const p = portfolioHolding('100000', { X: [1000, '100'] });
  const at = (price: string, portfolio = p) => accountView(markToMarket(portfolio, [['X', parsePrice(price)]]));

  it('breaches the daily loss at exactly the limit, and the drawdown from the peak', () => {
    let { state } = updateAccount(createRiskState(), rules, at('100'));
    const justUnder = updateAccount(state, rules, at('95.00001'));
    expect(justUnder.newBreaches).toEqual([]);
    const atLimit = updateAccount(state, rules, at('95'));
    expect(atLimit.newBreaches).toEqual(['DAILY_LOSS_LIMIT']);
    state = updateAccount(state, rules, at('110')).state; // peak 110k, day start 100k
    state = startTradingDayIfDue(state, rules, JAN_2_NOON_NY).state;
    state = startTradingDayIfDue(state, rules, JAN_2_NOON_NY + 86_400_000).state; // day start 110k
    const fall = updateAccount(state, rules, at('93.5')); // −16.5k: 15% of the peak
    expect(fall.newBreaches).toEqual(['DAILY_LOSS_LIMIT', 'MAX_DRAWDOWN']);
    expect(updateAccount(fall.state, rules, at('93')).newBreaches).toEqual([]);
  });

  it('keeps the state as it is for the same account again, and still reacts to the next change', () => {
    const view = at('100');
    const { state } = updateAccount(createRiskState(), rules, view);
    const again = updateAccount(state, rules, view);
    expect(again.state).toBe(state);
    expect(again.newBreaches).toEqual([]);
    // The same figures in a new view (a new positions map) are recomputed, not assumed.
    expect(updateAccount(state, rules, at('100')).state).not.toBe(state);
    expect(updateAccount(state, rules, at('94')).newBreaches).toEqual(['DAILY_LOSS_LIMIT']);
  });

  it('does not count a withdrawal as a loss, nor a deposit as a gain', () => {
    const half = portfolioHolding('100000', { X: [500, '100'] });
    let { state } = updateAccount(createRiskState(), rules, at('100', half));
    const out = withdraw(half, parseMoney('40000'));
    if (out.outcome !== 'applied') throw new Error('refused');
    const after = updateAccount(state, rules, accountView(out.portfolio));
    expect(after.newBreaches).toEqual([]);
    expect(after.state.dayStartEquity).toBe(parseMoney('60000'));
    state = after.state;
    const back = deposit(out.portfolio, parseMoney('40000'));
    if (back.outcome !== 'applied') throw new Error('refused');
    expect(updateAccount(state, rules, accountView(back.portfolio)).state.peakEquity).toBe(parseMoney('100000'));
  });
});

describe('trading day', () => {
  it('rolls at midnight in New York, not at midnight UTC', () => {
    const day = tradingDayAt(Date.UTC(2025, 0, 3, 2, 0), NY); // 21:00 on Jan 2 in New York
    expect(day.date).toBe('2025-01-02');
    expect(day.endsAtMs).toBe(Date.UTC(2025, 0, 3, 5, 0));
  });

  it('is 23 hours long on the spring DST change and 25 on the autumn one', () => {
    const spring = tradingDayAt(DateTime.fromISO('2025-03-09T12:00', { zone: NY }).toMillis(), NY);
    const autumn = tradingDayAt(DateTime.fromISO('2025-11-02T12:00', { zone: NY }).toMillis(), NY);
    expect((spring.endsAtMs - spring.startsAtMs) / 3_600_000).toBe(23);
    expect((autumn.endsAtMs - autumn.startsAtMs) / 3_600_000).toBe(25);
    expect(autumn.startsAtMs).toBe(Date.UTC(2025, 10, 2, 4, 0));
  });

  it('resets daily: re-bases the loss, drops DAILY_LOSS_LIMIT and keeps every other halt reason', () => {
    const rules = rulesWith();
    let state = stateFor(portfolioHolding('100000'), rules);
    state = startTradingDayIfDue(state, rules, JAN_2_NOON_NY).state;
    state = halt(halt(state, 'DAILY_LOSS_LIMIT'), 'MAX_DRAWDOWN');
    expect(startTradingDayIfDue(state, rules, JAN_2_NOON_NY + 11 * 3_600_000).started).toBeNull();
    const rolled = startTradingDayIfDue(state, rules, JAN_2_NOON_NY + 12 * 3_600_000);
    expect(rolled.started?.date).toBe('2025-01-03');
    expect(rolled.state.haltReasons.map((reason) => reason.code)).toEqual(['MAX_DRAWDOWN']);
    expect(tradingState(startTradingDayIfDue(halt(state, 'DAILY_LOSS_LIMIT'), rules, JAN_2_NOON_NY + 86_400_000).state)).toBe('halted');
  });

  it('never moves back when the wall clock does', () => {
    const rules = rulesWith();
    const state = startTradingDayIfDue(createRiskState(), rules, JAN_2_NOON_NY).state;
    const back = startTradingDayIfDue(state, rules, JAN_2_NOON_NY - 3 * 86_400_000);
    expect(back.started).toBeNull();
    expect(back.state.tradingDay?.date).toBe('2025-01-02');
  });
});

describe('risk summary', () => {
  it('gives the trading state and the halt reasons, as the Summary shows them', () => {
    const state = halt(reduceOnly(createRiskState()), 'DAILY_LOSS_LIMIT');
    expect(riskSummary(state)).toEqual({ state: 'halted', haltReasons: [{ code: 'DAILY_LOSS_LIMIT', detail: 'test' }] });
    expect(riskSummary(reduceOnly(createRiskState())).state).toBe('reducing');
  });
});

describe('risk snapshot', () => {
  it('round-trips through JSON and restores the trading state and counts', () => {
    const rules = rulesWith({ rateLimitEnabled: true });
    const p = portfolioHolding('100000', { X: [10, '100'] });
    let state = stateFor(p, rules);
    state = startTradingDayIfDue(state, rules, JAN_2_NOON_NY).state;
    state = reserveOrder(reserveOrder(state, 'a', 100), 'b', 200);
    state = halt(reduceOnly(state), 'RECONCILIATION_MISMATCH');
    state = halt(state, 'spelled badly'); // a HALT is never refused for its code, so neither is its checkpoint
    const snapshot = riskSnapshot(state, 1_000);
    const restored = restoreRiskState(JSON.parse(JSON.stringify(snapshot)), rules, 5, accountView(p));
    expect(riskSnapshot(restored, 5)).toEqual(snapshot);
    expect(tradingState(restored)).toBe('halted');
    expect(restored.account.equity).toBe(parseMoney('100000'));
    expect(ordersInLastMinute(restored.orderRate, 5)).toBe(2);
  });

  it('refuses a bad snapshot, naming every bad field', () => {
    const rules = rulesWith();
    const good = riskSnapshot(createRiskState(), 0);
    try {
      restoreRiskState({ ...good, peakEquity: 'high', orderRate: { reservedAgesMs: [-1], reservedToday: 0 } }, rules, 0);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidRiskSnapshotError);
      expect((error as InvalidRiskSnapshotError).issues.map((i) => i.field).sort()).toEqual(['orderRate.reservedAgesMs.0', 'peakEquity']);
    }
  });
});

describe('settleSeries (a run of portfolio readings, as SETTLE takes it)', () => {
  const START = Date.UTC(2025, 10, 3, 14, 30);
  const DAY = 86_400_000;
  const holding = applyFills(createPortfolio({ initialCash: '100000' }), [
    { clientOrderId: 'a', symbol: 'AAA', side: 'buy', qty: '100', price: '100', commission: '0', filledAt: START },
  ]).portfolio;
  const at = (price: string) => markToMarket(holding, [['AAA', parsePrice(price)]]);
  const fresh = (rules: RiskRules) => startTradingDayIfDue(updateAccount(createRiskState(), rules, accountView(holding)).state, rules, START).state;
  const rules = compileRiskRules(parseRiskLimits({ maxDailyLossPct: 0.05 }));

  it('halts on a daily-loss breach a reading shows, with the kill switch on', () => {
    const settled = settleSeries(fresh(rules), rules, [{ at: START + 60_000, portfolio: at('40') }], null);
    expect(settled.state.haltReasons.map((reason) => reason.code)).toEqual(['DAILY_LOSS_LIMIT']);
    expect(settled.breaches.map((reason) => reason.code)).toEqual(['DAILY_LOSS_LIMIT']);
  });

  it('only reports a breach with the kill switch off: never halts', () => {
    const off = compileRiskRules(parseRiskLimits({ maxDailyLossPct: 0.05, killSwitchEnabled: false }));
    const settled = settleSeries(fresh(off), off, [{ at: START + 60_000, portfolio: at('40') }], null);
    expect(settled.state.breaches).toContain('DAILY_LOSS_LIMIT');
    expect(tradingState(settled.state)).toBe('active');
  });

  it('takes readings in their true order: a daily-loss halt, then the next day resets it', () => {
    const settled = settleSeries(fresh(rules), rules, [{ at: START + 60_000, portfolio: at('40') }], START + DAY);
    expect(settled.daysStarted).toHaveLength(1);
    expect(settled.state.haltReasons).toEqual([]);
    expect(tradingState(settled.state)).toBe('active');
  });

  it('gives the state one-at-a-time readings give, however the readings are grouped', () => {
    const readings = ['99', '60', '98', '40', '97'].map((price, i) => ({ at: START + i * (DAY / 2), portfolio: at(price) }));
    const oneByOne = readings.reduce((state, reading) => settleSeries(state, rules, [reading], null).state, fresh(rules));
    const together = settleSeries(fresh(rules), rules, readings, null).state;
    expect(riskSummary(together)).toEqual(riskSummary(oneByOne));
    expect(together.haltReasons).toEqual(oneByOne.haltReasons);
  });

  it('halts again on a breach still standing after a RESUME, at the next reading', () => {
    const crashed = settleSeries(fresh(rules), rules, [{ at: START + 60_000, portfolio: at('40') }], null).state;
    const resumed = resumeTrading(crashed);
    expect(tradingState(resumed)).toBe('active');
    expect(tradingState(settleSeries(resumed, rules, [{ at: START + 120_000, portfolio: at('40') }], null).state)).toBe('halted');
  });
});
