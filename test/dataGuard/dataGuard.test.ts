import { describe, expect, it } from 'vitest';
import type { Bar } from '../../src/bars/bar.js';
import {
  GuardStateSchema,
  createDataGuard,
  rejectedTotal,
  screenBars,
  sizeFactorOf,
  type DataGuardConfigInput,
} from '../../src/dataGuard/dataGuard.js';

const T0 = Date.parse('2025-11-03T14:30:00Z');
const MINUTE = 60_000;

function bar(minute: number, fields: Partial<Bar> = {}): Bar {
  return { symbol: 'AAPL', ts: T0 + minute * MINUTE, open: 100, high: 101, low: 99, close: 100.5, volume: 1_000, ...fields };
}

/** Screens `history` first (all expected to pass), then `probe`; returns the probe's verdicts. */
function screenAfter(history: Bar[], probe: Bar, config: DataGuardConfigInput = {}, receivedAtMs: number | null = null) {
  const warm = screenBars(createDataGuard(config), history);
  expect(warm.findings.filter((finding) => finding.action === 'block')).toEqual([]);
  return screenBars(warm.state, [probe], receivedAtMs);
}

describe('the data guard blocks', () => {
  it.each([
    ['NON_POSITIVE_PRICE', bar(0, { low: 0 })],
    ['NON_POSITIVE_PRICE', bar(0, { open: -1 })],
    ['HIGH_BELOW_LOW', bar(0, { high: 98, low: 99, open: 98.5, close: 98.5 })],
    ['OUTSIDE_HIGH_LOW', bar(0, { close: 101.5 })],
    ['NOT_A_NUMBER', bar(0, { close: Number.NaN })],
    ['NEGATIVE_VOLUME', bar(0, { volume: -1 })],
    ['VOLUME_OUT_OF_RANGE', bar(0, { volume: 1e300 })],
    ['VOLUME_OUT_OF_RANGE', bar(0, { volume: Number.MAX_SAFE_INTEGER + 2 })],
    ['INVALID_SYMBOL', bar(0, { symbol: '__proto__' })],
    ['INVALID_SYMBOL', bar(0, { symbol: 'HAS SPACE' })],
    ['INVALID_SYMBOL', bar(0, { symbol: 'A,B' })],
    ['INVALID_SYMBOL', bar(0, { symbol: 'x'.repeat(33) })],
    ['TIMESTAMP_OUT_OF_RANGE', bar(0, { ts: 8_640_000_000_000_001 })],
    ['TIMESTAMP_OUT_OF_RANGE', bar(0, { ts: Date.UTC(2200, 0, 1) })],
    ['TIMESTAMP_OUT_OF_RANGE', bar(0, { ts: Date.UTC(1899, 11, 31) })],
  ])('%s bars', (reason, bad) => {
    const result = screenBars(createDataGuard(), [bad]);

    expect(result.passed).toEqual([]);
    expect(result.findings).toMatchObject([{ symbol: bad.symbol, ts: bad.ts, action: 'block', reason }]);
    expect(result.state.rejected).toEqual({ [reason]: 1 });
  });

  it('OUT_OF_ORDER bars, older than the last accepted one', () => {
    const result = screenAfter([bar(0), bar(1)], bar(0, { close: 100 }));

    expect(result.passed).toEqual([]);
    expect(result.findings).toMatchObject([{ action: 'block', reason: 'OUT_OF_ORDER' }]);
  });

  it('DUPLICATE_TIMESTAMP bars, at the time of the last accepted one', () => {
    const result = screenAfter([bar(0), bar(1)], bar(1));

    expect(result.findings).toMatchObject([{ action: 'block', reason: 'DUPLICATE_TIMESTAMP' }]);
    expect(result.findings[0]?.detail).toContain('2025-11-03T14:31:00.000Z');
  });

  it('STALE bars, received more than maxStalenessMs after they ended', () => {
    const ended = bar(0).ts + MINUTE;

    const fresh = screenBars(createDataGuard(), [bar(0)], ended + 600_000);
    const stale = screenBars(createDataGuard(), [bar(0)], ended + 600_001);

    expect(fresh.findings).toEqual([]);
    expect(stale.findings).toMatchObject([{ action: 'block', reason: 'STALE' }]);
  });

  it('no bar as STALE in replay, where no receive time is given', () => {
    const result = screenBars(createDataGuard(), [bar(0)]);

    expect(result.passed).toHaveLength(1);
  });

  it('EXTREME_RANGE bars, with a range above 15 % of the midpoint', () => {
    const atLimit = bar(0, { high: 107.5, low: 92.5, open: 100, close: 100 }); // exactly 15 %
    const beyond = bar(1, { high: 108, low: 92, open: 100, close: 100 });

    const result = screenBars(createDataGuard(), [atLimit, beyond]);

    expect(result.passed).toEqual([atLimit]);
    expect(result.findings).toMatchObject([{ ts: beyond.ts, action: 'block', reason: 'EXTREME_RANGE' }]);
  });

  it('nothing extreme when the threshold is raised, and only warns when told to', () => {
    const wide = bar(0, { high: 120, low: 90, open: 100, close: 100 });

    expect(screenBars(createDataGuard({ extremeRangeFraction: 0.5 }), [wide]).findings).toEqual([]);
    const warned = screenBars(createDataGuard({ extremeRangeAction: 'warn' }), [wide]);
    expect(warned.passed).toEqual([wide]);
    expect(warned.findings).toMatchObject([{ action: 'warn', reason: 'EXTREME_RANGE' }]);
    expect(warned.state.flagged).toEqual({ EXTREME_RANGE: 1 });
  });
});

describe('the data guard flags but passes', () => {
  it('GAP: missing bars within a session, as a warning', () => {
    const result = screenAfter([bar(0)], bar(4));

    expect(result.passed).toHaveLength(1);
    expect(result.findings).toMatchObject([{ action: 'warn', reason: 'GAP' }]);
    expect(result.findings[0]?.detail).toContain('3 bar(s) missing');
    expect(result.state.flagged).toEqual({ GAP: 1 });
  });

  it('no GAP across a market closure (overnight) or with the check off', () => {
    expect(screenAfter([bar(0)], bar(17 * 60)).findings).toEqual([]);
    expect(screenAfter([bar(0)], bar(4), { barIntervalMs: null }).findings).toEqual([]);
  });

  it('LOW_VOLUME: a thin average over the window reduces size', () => {
    const thin = Array.from({ length: 9 }, (_, i) => bar(i, { volume: 50 }));

    const result = screenAfter(thin, bar(9, { volume: 50 }));

    expect(result.passed).toHaveLength(1);
    expect(result.findings).toMatchObject([{ action: 'reduceSize', reason: 'LOW_VOLUME' }]);
    expect(sizeFactorOf(result.state, 'AAPL')).toBe(0.3);
  });

  it('no LOW_VOLUME before the window is full, once volume recovers, or when off (FX)', () => {
    const thin = Array.from({ length: 8 }, (_, i) => bar(i, { volume: 0 }));
    expect(screenAfter(thin, bar(8, { volume: 0 })).findings).toEqual([]);

    const recovered = screenAfter([...thin, bar(8, { volume: 0 })], bar(9, { volume: 100_000 }));
    expect(recovered.findings).toEqual([]);
    expect(sizeFactorOf(recovered.state, 'AAPL')).toBe(1);

    const fx = screenAfter([...thin, bar(8, { volume: 0 })], bar(9, { volume: 0 }), { lowVolume: null });
    expect(fx.findings).toEqual([]);
  });
});

describe('the data guard state', () => {
  it('keeps symbols apart', () => {
    const result = screenBars(createDataGuard(), [bar(1), bar(0, { symbol: 'MSFT' }), bar(1, { symbol: 'MSFT' })]);

    expect(result.passed).toHaveLength(3);
    expect(result.state.symbols.get('MSFT')?.accepted).toBe(2);
  });

  it('counts accepted and rejected bars by reason, and a rejected bar moves nothing', () => {
    const result = screenBars(createDataGuard(), [bar(0), bar(0), bar(-1), bar(1, { low: -1 }), bar(1)]);

    expect(result.state.accepted).toBe(2);
    expect(result.state.rejected).toEqual({ DUPLICATE_TIMESTAMP: 1, OUT_OF_ORDER: 1, NON_POSITIVE_PRICE: 1 });
    expect(rejectedTotal(result.state)).toBe(3);
    expect(result.state.symbols.get('AAPL')).toMatchObject({ lastTs: bar(1).ts, accepted: 2, rejected: 3 });
  });

  it('survives a checkpoint: the restored guard still knows the last bar', () => {
    const first = screenBars(createDataGuard(), [bar(0), bar(1)]);

    const restored = GuardStateSchema.parse(JSON.parse(JSON.stringify(first.state)));

    expect(screenBars(restored, [bar(1)]).findings).toMatchObject([{ reason: 'DUPLICATE_TIMESTAMP' }]);
  });

  it('leaves the input state untouched', () => {
    const state = screenBars(createDataGuard(), [bar(0)]).state;
    const snapshot = JSON.stringify(state);

    screenBars(state, [bar(1), bar(2, { volume: -1 })]);

    expect(JSON.stringify(state)).toBe(snapshot);
  });
});

describe('the data guard passes', () => {
  it('a volume of 2^53 - 1, the largest it accepts', () => {
    const result = screenBars(createDataGuard({ lowVolume: null }), [bar(0, { volume: Number.MAX_SAFE_INTEGER })]);

    expect(result.passed).toHaveLength(1);
  });
});
