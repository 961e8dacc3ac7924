import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { StrategyTimeoutError, timeLimited, type Strategy } from '../../src/strategy/strategy.js';
import type { Bar } from '../../src/bars/bar.js';

const bar: Bar = { symbol: 'AAPL', ts: Date.UTC(2025, 10, 3, 15), open: 1, high: 1, low: 1, close: 1, volume: 1 };

/** A strategy whose onBar takes `costMs` on the clock `now` reads. */
function slow(costMs: number, now: { ms: number }): Strategy<number> {
  return {
    id: 'slow',
    stateSchema: z.number(),
    initialState: () => 7,
    onBar: (state) => {
      now.ms += costMs;
      return { state: state + 1, intents: [] };
    },
  };
}

describe('a time-limited strategy', () => {
  it('returns what the strategy returns while onBar keeps within the limit', () => {
    const now = { ms: 0 };
    const limited = timeLimited(slow(1_000, now), () => now.ms, 1_000);

    expect(limited.id).toBe('slow');
    expect(limited.initialState()).toBe(7);
    expect(limited.onBar(7, bar, '0', { completed: [] })).toEqual({ state: 8, intents: [] });
  });

  it('throws STRATEGY_TIMEOUT, with the time taken, when onBar returns late', () => {
    const now = { ms: 0 };
    const limited = timeLimited(slow(1_001, now), () => now.ms, 1_000);

    expect(() => limited.onBar(7, bar, '0', { completed: [] })).toThrow(StrategyTimeoutError);
    expect(() => limited.onBar(7, bar, '0', { completed: [] })).toThrow(expect.objectContaining({ code: 'STRATEGY_TIMEOUT', tookMs: 1_001 }));
  });
});
