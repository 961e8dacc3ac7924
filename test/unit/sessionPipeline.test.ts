import { describe, expect, it } from 'vitest';
import type { Bar } from '../../src/core/bar.js';
import { parsePrice } from '../../src/core/money.js';
import { applyFills, createPortfolio, valuation } from '../../src/core/portfolio.js';
import { accountView, createRiskState, resumeTrading, startTradingDayIfDue, tradingState, updateAccount } from '../../src/core/risk.js';
import { compileRiskRules, parseRiskLimits } from '../../src/core/riskLimits.js';
import { admitBatch, createPipeline, decide, settleBar, type DecideState } from '../../src/core/sessionPipeline.js';
import type { Strategy } from '../../src/core/strategy.js';
import { buyOnBars } from '../support/sessionFixture.js';

const START = Date.UTC(2025, 10, 3, 14, 30);
const DAY = 86_400_000;
const bar = (symbol: string, minute: number, close: number): Bar => ({
  symbol,
  ts: START + minute * 60_000,
  open: close,
  high: close,
  low: close,
  close,
  volume: 1_000,
});

const holding = applyFills(createPortfolio({ initialCash: '100000' }), [
  { clientOrderId: 'a', symbol: 'AAA', side: 'buy', qty: '100', price: '100', commission: '0', filledAt: START },
  { clientOrderId: 'b', symbol: 'BBB', side: 'buy', qty: '10', price: '50', commission: '0', filledAt: START },
]).portfolio;

function riskFor(rules: ReturnType<typeof compileRiskRules>) {
  return startTradingDayIfDue(updateAccount(createRiskState(), rules, accountView(holding)).state, rules, START).state;
}

describe('settleBar', () => {
  const rules = compileRiskRules(parseRiskLimits({ maxDailyLossPct: 0.05 }));
  const risk = riskFor(rules);

  it("marks a held symbol at the bar's close, and leaves the other marks alone", () => {
    const { portfolio } = settleBar(holding, risk, rules, bar('AAA', 1, 102));
    expect(portfolio.lastPrices.get('AAA')).toBe(parsePrice('102'));
    expect(portfolio.lastPrices.get('BBB')).toBe(parsePrice('50'));
    expect(valuation(portfolio).equity).toBe(valuation(holding).equity + 200n * 10n ** 16n);
  });

  it('keeps portfolio and risk as they are for a bar of a symbol not held', () => {
    const settled = settleBar(holding, risk, rules, bar('ZZZ', 1, 7));
    expect(settled.portfolio).toBe(holding);
    expect(settled.risk).toBe(risk);
  });

  it('halts on a daily-loss breach the bar caused', () => {
    const { risk: after } = settleBar(holding, risk, rules, bar('AAA', 1, 40));
    expect(after.haltReasons.map((reason) => reason.code)).toEqual(['DAILY_LOSS_LIMIT']);
  });

  it('only reports a breach with the kill switch off: never halts', () => {
    const off = compileRiskRules(parseRiskLimits({ maxDailyLossPct: 0.05, killSwitchEnabled: false }));
    const { risk: after } = settleBar(holding, riskFor(off), off, bar('AAA', 1, 40));
    expect(after.breaches).toContain('DAILY_LOSS_LIMIT');
    expect(tradingState(after)).toBe('active');
  });

  it('halts again on a breach still standing after a RESUME, as the risk engine does', () => {
    const crashed = settleBar(holding, risk, rules, bar('AAA', 1, 40));
    const resumed = resumeTrading(crashed.risk);
    expect(tradingState(resumed)).toBe('active');
    // The next bar moves nothing, but the breach still stands.
    expect(tradingState(settleBar(crashed.portfolio, resumed, rules, bar('ZZZ', 2, 1)).risk)).toBe('halted');
  });
});

describe('decide', () => {
  const rules = compileRiskRules(parseRiskLimits({ maxOrdersPerDay: 1 }));
  const ctx = (strategy: Strategy) => ({ strategy, rules, sessionId: 's', monoMs: null });
  const start = (strategy: Strategy, bars: Bar[]): { state: DecideState; bars: Bar[] } => {
    const admitted = admitBatch(createPipeline(strategy), bars, null);
    const portfolio = createPortfolio({ initialCash: '100000' });
    return { state: { pipeline: admitted.pipeline, portfolio, risk: updateAccount(createRiskState(), rules, accountView(portfolio)).state }, bars: admitted.bars };
  };

  it('starts the trading day at the bar that opens it, not at the end of the batch', () => {
    const quiet = buyOnBars([]);
    const { state, bars } = start(quiet, [bar('AAA', 0, 100), bar('AAA', 1, 100), bar('AAA', DAY / 60_000, 100)]);
    const firstDay = decide(state, bars.slice(0, 2), 0, ctx(quiet));
    const bothDays = decide(state, bars, 0, ctx(quiet));
    expect(firstDay.risk.tradingDay?.date).toBe('2025-11-03');
    expect(bothDays.risk.tradingDay?.date).toBe('2025-11-04');
  });

  it('stops after the first bar with approved orders and settles that bar when called again', () => {
    const { state, bars } = start(buyOnBars([1]), [bar('AAA', 0, 100), bar('AAA', 1, 101)]);
    const first = decide(state, bars, 0, ctx(buyOnBars([1])));
    expect(first).toMatchObject({ next: 1, orders: [expect.objectContaining({ barTs: START })] });
    const held = applyFills(first.portfolio, [{ clientOrderId: 'x', symbol: 'AAA', side: 'buy', qty: '1', price: '100', commission: '0', filledAt: START }]).portfolio;
    const rest = decide({ ...first, portfolio: held }, bars, first.next, ctx(buyOnBars([1])), true);
    expect(rest.next).toBe(2);
    // Bar 1 settled (marked at 100), then bar 2 (marked at 101).
    expect(rest.portfolio.lastPrices.get('AAA')).toBe(parsePrice('101'));
    expect(rest.risk.account.equity).toBe(valuation(rest.portfolio).equity);
  });
});
