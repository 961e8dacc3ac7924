import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregatorStateSchema, aggregate, createAggregator, flush, openBars, type AggregatorConfigInput } from '../../src/bars/aggregator.js';
import type { Bar } from '../../src/bars/bar.js';
import { bucketRule, startOf, type Timeframe, type TimeframeBar } from '../../src/bars/timeframe.js';
import { formatInZone, zoneOffsets } from '../../src/bars/zoneOffsets.js';

const MINUTE = 60_000;

function minuteBar(symbol: string, iso: string, open: number, high: number, low: number, close: number, volume: number): Bar {
  return { symbol, ts: Date.parse(iso), open, high, low, close, volume };
}

/** All bars out of one run: every batch's closed bars, then the flush. */
function run(config: AggregatorConfigInput, batches: readonly (readonly Bar[])[]): TimeframeBar[] {
  let state = createAggregator(config);
  const closed: TimeframeBar[] = [];
  for (const batch of batches) {
    const result = aggregate(state, batch);
    state = result.state;
    closed.push(...result.closed);
  }
  closed.push(...flush(state).closed);
  return closed;
}

const bySymbolAndTime = (a: Bar, b: Bar) => (a.symbol === b.symbol ? a.ts - b.ts : a.symbol < b.symbol ? -1 : 1);

describe('aggregating 1m bars', () => {
  const bars = [
    minuteBar('AAPL', '2025-11-03T14:30:00Z', 100, 101, 99.5, 100.5, 10),
    minuteBar('AAPL', '2025-11-03T14:31:00Z', 100.5, 102, 100, 101.5, 20),
    minuteBar('AAPL', '2025-11-03T14:34:00Z', 101.5, 101.8, 98, 99, 30),
    minuteBar('AAPL', '2025-11-03T14:35:00Z', 99, 99.5, 98.5, 99.2, 40),
  ];

  it('closes a 5m bar when the first bar of the next bucket arrives', () => {
    const { closed, state } = aggregate(createAggregator({ zone: 'America/New_York', timeframes: ['5m'] }), bars);

    expect(closed).toEqual([{ symbol: 'AAPL', timeframe: '5m', ts: Date.parse('2025-11-03T14:30:00Z'), open: 100, high: 102, low: 98, close: 99, volume: 60 }]);
    expect(openBars(state)).toEqual([{ symbol: 'AAPL', timeframe: '5m', ts: Date.parse('2025-11-03T14:35:00Z'), open: 99, high: 99.5, low: 98.5, close: 99.2, volume: 40 }]);
  });

  it('with a base timeframe, closes a bucket as soon as its last base bar arrives', () => {
    const config = { zone: 'America/New_York', timeframes: ['1m', '5m'] as Timeframe[], baseTimeframe: '1m' as const };

    const { closed } = aggregate(createAggregator(config), bars.slice(0, 3));

    expect(closed.map((bar) => [bar.timeframe, new Date(bar.ts).toISOString()])).toEqual([
      ['1m', '2025-11-03T14:30:00.000Z'],
      ['1m', '2025-11-03T14:31:00.000Z'],
      ['1m', '2025-11-03T14:34:00.000Z'],
      ['5m', '2025-11-03T14:30:00.000Z'],
    ]);
  });

  it('flushes open buckets at the end of data, once', () => {
    const { state } = aggregate(createAggregator({ zone: 'America/New_York', timeframes: ['5m'] }), bars);

    const flushed = flush(state);

    expect(flushed.closed.map((bar) => bar.ts)).toEqual([Date.parse('2025-11-03T14:35:00Z')]);
    expect(flush(flushed.state).closed).toEqual([]);
  });

  it('ignores and counts bars at or before the last one of their symbol', () => {
    const first = aggregate(createAggregator({ zone: 'UTC', timeframes: ['5m'] }), bars);

    const late = aggregate(first.state, [bars[1] as Bar, bars[3] as Bar]);

    expect(late.closed).toEqual([]);
    expect(late.state.lateBars).toBe(2);
    expect(openBars(late.state)).toEqual(openBars(first.state));
  });

  it('leaves a later bar out of a bucket already flushed, and counts it', () => {
    const flushed = flush(aggregate(createAggregator({ zone: 'UTC', timeframes: ['1m', '5m'] }), bars.slice(0, 2)).state);

    const next = aggregate(flushed.state, [bars[2] as Bar]);

    expect(next.state.lateBars).toBe(1);
    expect(openBars(next.state).map((bar) => [bar.timeframe, bar.ts])).toEqual([['1m', bars[2]?.ts]]);
  });

  it('leaves the input state untouched', () => {
    const state = createAggregator({ zone: 'UTC', timeframes: ['5m', '1h'] });
    const first = aggregate(state, bars.slice(0, 2));
    const snapshot = JSON.stringify(first.state);

    aggregate(first.state, bars.slice(2));

    expect(JSON.stringify(first.state)).toBe(snapshot);
    expect(state.symbols.size).toBe(0);
  });

  it('refuses a base timeframe that does not divide a target', () => {
    expect(() => createAggregator({ zone: 'UTC', timeframes: ['1h'], baseTimeframe: '4h' })).toThrow(/cannot be aggregated into 1h/);
    expect(() => createAggregator({ zone: 'Nowhere/City', timeframes: ['1h'] })).toThrow(/unknown IANA time zone/);
  });

  it('loses no partial bar across a checkpoint and restart', () => {
    const config = { zone: 'America/New_York', timeframes: ['5m', '1h', '1d'] as Timeframe[] };
    const uninterrupted = run(config, [bars]);

    const before = aggregate(createAggregator(config), bars.slice(0, 2));
    const restored = AggregatorStateSchema.parse(JSON.parse(JSON.stringify(before.state)));
    const after = aggregate(restored, bars.slice(2));

    expect([...before.closed, ...after.closed, ...flush(after.state).closed]).toEqual(uninterrupted);
  });
});

describe('aggregating across DST in America/New_York', () => {
  /** 1m bars every minute from `from` (inclusive) to `to` (exclusive), UTC ISO. */
  function everyMinute(symbol: string, from: string, to: string): Bar[] {
    const out: Bar[] = [];
    for (let ts = Date.parse(from), i = 0; ts < Date.parse(to); ts += MINUTE, i += 1) {
      out.push({ symbol, ts, open: 100 + i, high: 101 + i, low: 99 + i, close: 100.5 + i, volume: 1 });
    }
    return out;
  }

  it('gives the fall-back night of 2025-11-02 two 01:00 hours and a 25-hour day', () => {
    const night = everyMinute('ES', '2025-11-02T04:00:00Z', '2025-11-02T08:00:00Z');
    const day = everyMinute('ES', '2025-11-02T08:00:00Z', '2025-11-03T05:00:00Z');
    const table = zoneOffsets('America/New_York');

    const closed = run({ zone: 'America/New_York', timeframes: ['1h', '1d'] }, [night, day]);

    const hours = closed.filter((bar) => bar.timeframe === '1h').slice(0, 4);
    expect(hours.map((bar) => [formatInZone(bar.ts, table), bar.volume])).toEqual([
      ['2025-11-02T00:00:00-04:00', 60],
      ['2025-11-02T01:00:00-04:00', 60],
      ['2025-11-02T01:00:00-05:00', 60],
      ['2025-11-02T02:00:00-05:00', 60],
    ]);
    const days = closed.filter((bar) => bar.timeframe === '1d');
    expect(days.map((bar) => [formatInZone(bar.ts, table), bar.volume])).toEqual([['2025-11-02T00:00:00-04:00', 25 * 60]]);
  });

  it('gives 2025-03-09 a 23-hour day with no 02:00 hour', () => {
    const minutes = everyMinute('ES', '2025-03-09T05:00:00Z', '2025-03-10T04:00:00Z');
    const table = zoneOffsets('America/New_York');

    const closed = run({ zone: 'America/New_York', timeframes: ['1h', '1d'] }, [minutes]);

    const hours = closed.filter((bar) => bar.timeframe === '1h').map((bar) => formatInZone(bar.ts, table));
    expect(hours).toHaveLength(23);
    expect(hours.slice(0, 3)).toEqual(['2025-03-09T00:00:00-05:00', '2025-03-09T01:00:00-05:00', '2025-03-09T03:00:00-04:00']);
    expect(closed.filter((bar) => bar.timeframe === '1d').map((bar) => bar.volume)).toEqual([23 * 60]);
  });
});

/** Random 1m bars: a few symbols, random pauses, random walks, starting near a DST change. */
const zones = ['America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kolkata'] as const;
const transitions = ['2025-03-09T06:00:00Z', '2025-11-02T04:30:00Z', '2025-03-30T00:00:00Z', '2025-10-04T15:00:00Z', '2025-04-05T14:00:00Z'];

const minuteBars = fc
  .record({
    start: fc.constantFrom(...transitions).chain((iso) => fc.integer({ min: -180, max: 60 }).map((minutes) => Date.parse(iso) + minutes * MINUTE)),
    symbols: fc.uniqueArray(fc.constantFrom('AAPL', 'MSFT', 'EURUSD'), { minLength: 1, maxLength: 3 }),
    steps: fc.array(
      fc.record({
        pause: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 30, max: 400 })),
        move: fc.integer({ min: -50, max: 50 }),
        wick: fc.nat(20),
        volume: fc.nat(5_000),
      }),
      { minLength: 1, maxLength: 400 },
    ),
  })
  .map(({ start, symbols, steps }) => {
    const bars: Bar[] = [];
    const price = new Map(symbols.map((symbol) => [symbol, 10_000]));
    let ts = start;
    steps.forEach((step, i) => {
      ts += step.pause * MINUTE;
      const symbol = symbols[i % symbols.length] ?? 'AAPL';
      const open = price.get(symbol) ?? 10_000;
      const close = Math.max(100, open + step.move);
      price.set(symbol, close);
      const high = Math.max(open, close) + step.wick;
      const low = Math.min(open, close) - step.wick;
      bars.push({ symbol, ts, open: open / 100, high: high / 100, low: low / 100, close: close / 100, volume: step.volume });
    });
    return bars;
  });

describe('aggregation properties (fast-check)', () => {
  it('1m → 5m → 1h equals 1m → 1h', () => {
    fc.assert(
      fc.property(minuteBars, fc.constantFrom(...zones), (bars, zone) => {
        const fiveMinute = run({ zone, timeframes: ['5m'] }, [bars]).sort(bySymbolAndTime);
        const viaFive = run({ zone, timeframes: ['1h'] }, [fiveMinute]).sort(bySymbolAndTime);
        const direct = run({ zone, timeframes: ['1h'] }, [bars]).sort(bySymbolAndTime);

        expect(viaFive).toEqual(direct);
      }),
      { numRuns: 150 },
    );
  });

  it('conserves volume in every timeframe', () => {
    fc.assert(
      fc.property(minuteBars, fc.constantFrom(...zones), (bars, zone) => {
        const timeframes: Timeframe[] = ['1m', '5m', '15m', '1h', '4h', '1d'];
        const closed = run({ zone, timeframes }, [bars]);
        const total = bars.reduce((sum, bar) => sum + bar.volume, 0);

        for (const timeframe of timeframes) {
          expect(closed.filter((bar) => bar.timeframe === timeframe).reduce((sum, bar) => sum + bar.volume, 0)).toBe(total);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('makes open the first, close the last, high the max and low the min of each bucket', () => {
    fc.assert(
      fc.property(minuteBars, fc.constantFrom(...zones), fc.constantFrom<Timeframe>('5m', '30m', '1h', '4h', '1d'), (bars, zone, timeframe) => {
        const rule = bucketRule(timeframe, zone);
        const expected = new Map<string, TimeframeBar>();
        for (const bar of bars) {
          const key = `${bar.symbol}@${startOf(rule, bar.ts)}`;
          const seen = expected.get(key);
          expected.set(
            key,
            seen === undefined
              ? { ...bar, ts: startOf(rule, bar.ts), timeframe }
              : { ...seen, high: Math.max(seen.high, bar.high), low: Math.min(seen.low, bar.low), close: bar.close, volume: seen.volume + bar.volume },
          );
        }

        const closed = run({ zone, timeframes: [timeframe] }, [bars]);

        expect(closed.sort(bySymbolAndTime)).toEqual([...expected.values()].sort(bySymbolAndTime));
      }),
      { numRuns: 150 },
    );
  });

  it('does not depend on how the input is split into batches', () => {
    fc.assert(
      fc.property(
        minuteBars,
        fc.constantFrom(...zones),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.boolean(),
        (bars, zone, cuts, withBase) => {
          const config: AggregatorConfigInput = { zone, timeframes: ['1m', '5m', '1h', '1d'], baseTimeframe: withBase ? '1m' : null };
          const points = [...new Set(cuts.map((cut) => cut % (bars.length + 1)))].sort((a, b) => a - b);
          const batches = [0, ...points].map((from, i) => bars.slice(from, [...points, bars.length][i]));

          expect(run(config, batches)).toEqual(run(config, [bars]));
        },
      ),
      { numRuns: 150 },
    );
  });
});
