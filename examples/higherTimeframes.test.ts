/**
 * Example: a strategy that decides on 5-minute bars while the session is fed 1-minute ones,
 * written only against the public entry point (`aistock`; imported here by relative path because
 * the example lives in the repository). `npm test` runs it, so it cannot rot.
 *
 * The session aggregates every timeframe it is configured with (`timeframes`, default 1m, 5m, 1h,
 * 1d) and shows the strategy, with each base bar, the higher-timeframe bars that bar completed
 * (`market.completed`). The strategy keeps the history it needs in its state — bounded, and
 * checkpointed with it — so a restart resumes it exactly.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTradingSession, type Bar, type Strategy } from '../src/index.js';

const KEEP = 3;

/** Per symbol: long while a 5-minute close is above the mean of the 3 before it, flat otherwise. */
const fiveMinuteTrend: Strategy<Record<string, number[]>> = {
  id: 'trend5m',
  stateSchema: z.record(z.string(), z.array(z.number()).max(KEEP + 1)),
  initialState: () => ({}),
  onBar(state, bar, position, market) {
    const fiveMinute = market.completed.find((done) => done.timeframe === '5m');
    if (fiveMinute === undefined) return { state, intents: [] };
    const closes = [...(state[bar.symbol] ?? []), fiveMinute.close].slice(-(KEEP + 1));
    const next = { ...state, [bar.symbol]: closes };
    if (closes.length <= KEEP) return { state: next, intents: [] };
    const mean = closes.slice(0, KEEP).reduce((sum, close) => sum + close, 0) / KEEP;
    const flat = !/[1-9]/.test(position);
    if (fiveMinute.close > mean && flat) return { state: next, intents: [{ symbol: bar.symbol, side: 'buy', qty: '5', type: 'market' }] };
    if (fiveMinute.close < mean && !flat) return { state: next, intents: [{ symbol: bar.symbol, side: 'sell', qty: position, type: 'market' }] };
    return { state: next, intents: [] };
  },
};

/** Two hours of minute bars: up for an hour, then down. */
const bars: Bar[] = Array.from({ length: 120 }, (_, i) => {
  const close = 100 + (i < 60 ? i : 120 - i) * 0.1;
  return { symbol: 'ACME', ts: Date.UTC(2025, 10, 3, 14, 30 + i), open: close, high: close + 0.05, low: close - 0.05, close, volume: 5_000 };
});

describe('a strategy on 5-minute bars', () => {
  it('buys on the way up and sells on the way down, deciding only when a 5-minute bar completes', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'aistock-example-'));
    const session = createTradingSession({ stateDir, strategy: fiveMinuteTrend, replay: true, log: () => undefined });
    const orderMinutes: number[] = [];
    session.on('order', (order) => orderMinutes.push(new Date(order.barTs).getUTCMinutes()));
    await session.start();
    await session.ingest(bars);
    const summary = await session.stop();

    expect(summary.orders.submitted).toBe(2);
    expect(summary.portfolio.positions).toEqual({});
    // Each order was decided on the fifth minute of a 5-minute bar (minutes 4, 9, 14, … of the hour).
    expect(orderMinutes.map((minute) => minute % 5)).toEqual([4, 4]);
  });
});
