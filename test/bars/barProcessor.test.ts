import { describe, expect, it } from 'vitest';
import type { Bar } from '../../src/bars/bar.js';
import { createBarsState, flushBars, processBars } from '../../src/bars/barProcessor.js';

const T0 = Date.parse('2025-11-03T14:30:00Z'); // 09:30 New York

function minute(i: number, symbol = 'AAPL'): Bar {
  return { symbol, ts: T0 + i * 60_000, open: 100 + i, high: 101 + i, low: 99 + i, close: 100 + i, volume: 10 };
}

describe('the bars a batch completed', () => {
  it('names, for each bar, the higher-timeframe bars it completed (never the base bar itself)', () => {
    const state = createBarsState({ timeframes: ['1m', '5m', '1h'] });
    const bars = Array.from({ length: 60 }, (_, i) => minute(i));

    const { completed } = processBars(state, bars);

    // 09:34 completes 09:30–09:35, every fifth minute after it the next; 09:59 also the clock hour 09:00–10:00.
    expect([...completed.keys()]).toEqual([4, 9, 14, 19, 24, 29, 34, 39, 44, 49, 54, 59]);
    expect(completed.get(4)).toEqual([{ symbol: 'AAPL', timeframe: '5m', ts: T0, open: 100, high: 105, low: 99, close: 104, volume: 50 }]);
    expect(completed.get(29)?.map((bar) => bar.timeframe)).toEqual(['5m', '1h']);
    expect(completed.get(59)?.map((bar) => bar.timeframe)).toEqual(['5m']);
  });

  it('names the bar that arrived after a gap as the one completing the bucket the gap left open', () => {
    const state = createBarsState({ timeframes: ['1m', '5m'] });

    const { completed } = processBars(state, [minute(0), minute(1), minute(7)]);

    expect(completed.get(2)).toEqual([expect.objectContaining({ timeframe: '5m', ts: T0, close: 101 })]);
  });

  it('is the same when the batch is split anywhere', () => {
    const bars = Array.from({ length: 30 }, (_, i) => minute(i, i % 2 === 0 ? 'AAPL' : 'MSFT'));
    const whole = processBars(createBarsState(), bars).completed;
    for (const cut of [1, 9, 10, 17, 29]) {
      const first = processBars(createBarsState(), bars.slice(0, cut));
      const second = processBars(first.state, bars.slice(cut));
      const joined = new Map([...first.completed, ...[...second.completed].map(([i, done]) => [i + cut, done] as const)]);
      expect(joined).toEqual(whole);
    }
  });

  it('is empty for a flush, which closes buckets without a bar', () => {
    const { state } = processBars(createBarsState(), [minute(0), minute(1)]);

    const flushed = flushBars(state);

    expect(flushed.closed.length).toBeGreaterThan(0);
    expect(flushed.completed.size).toBe(0);
  });
});
