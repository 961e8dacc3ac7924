import { describe, expect, it } from 'vitest';
import type { Bar } from '../../src/core/bar.js';
import { parsePrice } from '../../src/core/money.js';
import { applyFills, createPortfolio, valuation } from '../../src/core/portfolio.js';
import { accountView, createRiskState, startTradingDayIfDue, updateAccount } from '../../src/core/risk.js';
import { compileRiskRules, parseRiskLimits } from '../../src/core/riskLimits.js';
import { admitBatch, createPipeline, settleBatch } from '../../src/core/sessionPipeline.js';
import { buyOnBars } from '../support/sessionFixture.js';

const START = Date.UTC(2025, 10, 3, 14, 30);
const bar = (symbol: string, minute: number, close: number): Bar => ({
  symbol,
  ts: START + minute * 60_000,
  open: close,
  high: close,
  low: close,
  close,
  volume: 1_000,
});

describe('settleBatch', () => {
  const rules = compileRiskRules(parseRiskLimits({ maxDailyLossPct: 0.05 }));
  const holding = applyFills(createPortfolio({ initialCash: '100000' }), [
    { clientOrderId: 'a', symbol: 'AAA', side: 'buy', qty: '100', price: '100', commission: '0', filledAt: START },
    { clientOrderId: 'b', symbol: 'BBB', side: 'buy', qty: '10', price: '50', commission: '0', filledAt: START },
  ]).portfolio;
  const risk = startTradingDayIfDue(updateAccount(createRiskState(), rules, accountView(holding)).state, rules, START).state;

  function settle(bars: Bar[]) {
    const admitted = admitBatch(createPipeline(buyOnBars([])), bars, null);
    return settleBatch({ pipeline: admitted.pipeline, portfolio: holding, risk }, rules, admitted.bars);
  }

  it("marks each held symbol of the batch at its newest close, and leaves the others' marks alone", () => {
    const { portfolio } = settle([bar('AAA', 1, 101), bar('ZZZ', 1, 7), bar('AAA', 2, 102)]);
    expect(portfolio.lastPrices.get('AAA')).toBe(parsePrice('102'));
    expect(portfolio.lastPrices.get('BBB')).toBe(parsePrice('50'));
    // A symbol not held has no value to mark.
    expect(portfolio.lastPrices.has('ZZZ')).toBe(false);
    expect(valuation(portfolio).equity).toBe(valuation(holding).equity + 200n * 10n ** 16n);
  });

  it('keeps portfolio and risk as they are when the batch moved no held price', () => {
    const settled = settle([bar('ZZZ', 1, 7)]);
    expect(settled.portfolio).toBe(holding);
    expect(settled.risk).toBe(risk);
  });

  it('halts on a daily-loss breach the batch caused', () => {
    const { risk: after } = settle([bar('AAA', 1, 40)]);
    expect(after.haltReasons.map((reason) => reason.code)).toEqual(['DAILY_LOSS_LIMIT']);
  });
});
