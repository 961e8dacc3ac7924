import { describe, expect, it } from 'vitest';
import { BarHistoryStateSchema, createBarHistory, lastPrice, recentBars, recordBars, warmUpStatus } from '../../src/bars/barHistory.js';
import type { Timeframe, TimeframeBar } from '../../src/bars/timeframe.js';

const T0 = Date.parse('2025-11-03T14:30:00Z');

function bar(minute: number, close: number, timeframe: Timeframe = '1m', symbol = 'AAPL'): TimeframeBar {
  return { symbol, timeframe, ts: T0 + minute * 60_000, open: close, high: close, low: close, close, volume: 1 };
}

describe('bar history', () => {
  it('keeps only the newest bars per symbol and timeframe, oldest first', () => {
    const bars = Array.from({ length: 7 }, (_, i) => bar(i, 100 + i));

    const { state } = recordBars(createBarHistory({ capacity: 3 }), bars);

    expect(recentBars(state, 'AAPL', '1m').map((b) => b.close)).toEqual([104, 105, 106]);
    expect(recentBars(state, 'AAPL', '1m', 2).map((b) => b.close)).toEqual([105, 106]);
    expect(state.symbols.get('AAPL')?.series['1m']?.length).toBe(3);
  });

  it('keeps the order across batches that wrap the ring', () => {
    let state = createBarHistory({ capacity: 4 });
    for (const batch of [[bar(0, 1), bar(1, 2), bar(2, 3)], [bar(3, 4), bar(4, 5)], [bar(5, 6)]]) state = recordBars(state, batch).state;

    expect(recentBars(state, 'AAPL', '1m').map((b) => b.close)).toEqual([3, 4, 5, 6]);
  });

  it('keeps timeframes and symbols apart', () => {
    const { state } = recordBars(createBarHistory(), [bar(0, 1), bar(0, 2, '5m'), bar(0, 3, '1m', 'MSFT')]);

    expect(recentBars(state, 'AAPL', '1m').map((b) => b.close)).toEqual([1]);
    expect(recentBars(state, 'AAPL', '5m').map((b) => b.close)).toEqual([2]);
    expect(recentBars(state, 'MSFT', '1m').map((b) => b.close)).toEqual([3]);
    expect(recentBars(state, 'MSFT', '1h')).toEqual([]);
  });

  it('moves a symbol from warmingUp to ready after N bars of the warm-up timeframe, and says so once', () => {
    const history = createBarHistory({ warmUpBars: 3 });

    const first = recordBars(history, [bar(0, 1), bar(1, 2), bar(0, 9, '5m')]);
    const second = recordBars(first.state, [bar(2, 3), bar(3, 4)]);

    expect(warmUpStatus(first.state, 'AAPL')).toBe('warmingUp');
    expect(first.becameReady).toEqual([]);
    expect(warmUpStatus(second.state, 'AAPL')).toBe('ready');
    expect(second.becameReady).toEqual(['AAPL']);
    expect(recordBars(second.state, [bar(4, 5)]).becameReady).toEqual([]);
    expect(warmUpStatus(second.state, 'MSFT')).toBe('warmingUp');
  });

  it('tracks the last price from the warm-up timeframe only', () => {
    const { state } = recordBars(createBarHistory({ warmUpTimeframe: '1m' }), [bar(0, 101), bar(0, 250, '5m')]);

    expect(lastPrice(state, 'AAPL')).toBe(101);
    expect(lastPrice(state, 'MSFT')).toBeNull();
  });

  it('leaves the input state untouched and survives a checkpoint', () => {
    const { state } = recordBars(createBarHistory({ capacity: 2 }), [bar(0, 1), bar(1, 2)]);
    const snapshot = JSON.stringify(state);

    recordBars(state, [bar(2, 3)]);
    const restored = BarHistoryStateSchema.parse(JSON.parse(snapshot));

    expect(JSON.stringify(state)).toBe(snapshot);
    expect(recentBars(recordBars(restored, [bar(2, 3)]).state, 'AAPL', '1m').map((b) => b.close)).toEqual([2, 3]);
  });
});
