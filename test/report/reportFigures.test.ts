import { describe, expect, it } from 'vitest';
import { parseMoney, parseRatio } from '../../src/common/money.js';
import { countDenials, countInputRejections, formatSignedPercent, riskIntervals, totalReturn } from '../../src/report/reportFigures.js';

describe('totalReturn', () => {
  it('is the gain on the starting cash, exact to 1e-8', () => {
    expect(totalReturn(parseMoney('100000'), parseMoney('100019.76'))).toBe(parseRatio('0.0001976'));
    expect(totalReturn(parseMoney('3'), parseMoney('2'))).toBe(parseRatio('-0.33333333'));
    expect(totalReturn(0n, parseMoney('5'))).toBeNull();
  });

  it('does not count deposits as gains', () => {
    expect(totalReturn(parseMoney('1000'), parseMoney('1600'), parseMoney('500'))).toBe(parseRatio('0.1'));
  });

  it('formats with a sign', () => {
    expect(formatSignedPercent(parseRatio('0.0001976'))).toBe('+0.02%');
    expect(formatSignedPercent(parseRatio('-0.0125'))).toBe('-1.25%');
    expect(formatSignedPercent(parseRatio('0.00001'))).toBe('0.00%');
  });
});

describe('riskIntervals', () => {
  const span = { from: 0, to: 100 };

  it('splits the span at each change of state', () => {
    const intervals = riskIntervals(
      'active',
      [
        { at: 30, state: 'halted', reasons: ['DAILY_LOSS_LIMIT: x'] },
        { at: 60, state: 'active', reasons: [] },
      ],
      span,
    );

    expect(intervals).toEqual([
      { state: 'active', from: 0, to: 30, reasons: [] },
      { state: 'halted', from: 30, to: 60, reasons: ['DAILY_LOSS_LIMIT: x'] },
      { state: 'active', from: 60, to: 100, reasons: [] },
    ]);
  });

  it('a change recorded twice (a resumed run re-deciding bars) adds nothing', () => {
    const once = riskIntervals('active', [{ at: 30, state: 'halted', reasons: ['A: a'] }], span);
    const twice = riskIntervals(
      'active',
      [
        { at: 30, state: 'halted', reasons: ['A: a'] },
        { at: 30, state: 'halted', reasons: ['A: a'] },
      ],
      span,
    );
    expect(twice).toEqual(once);
  });

  it('starts in the state the first run started in', () => {
    expect(riskIntervals('halted', [], span)).toEqual([{ state: 'halted', from: 0, to: 100, reasons: [] }]);
  });
});

describe('counting by reason', () => {
  it('counts a denied intent once per client order id, under each of its codes', () => {
    const counts = countDenials([
      { id: 'a', codes: ['RATE_LIMIT_DAY'] },
      { id: 'b', codes: ['TRADING_HALTED', 'KILL_SWITCH'] },
      { id: 'a', codes: ['RATE_LIMIT_DAY'] },
    ]);
    expect(counts.denied).toBe(2);
    expect({ ...counts.byReason }).toEqual({ RATE_LIMIT_DAY: 1, TRADING_HALTED: 1, KILL_SWITCH: 1 });
  });

  it('counts a re-read file’s bad rows once (even when it grew), and different files’ rows each', () => {
    const file = { path: '/d/bars.csv', size: 10, mtimeMs: 1 };
    const other = { path: '/d/more.csv', size: 10, mtimeMs: 1 };
    const counts = countInputRejections([
      { file, byReason: { MALFORMED_ROW: 2 } },
      { file: { ...file, size: 20, mtimeMs: 2 }, byReason: { MALFORMED_ROW: 2 } },
      { file: other, byReason: { MALFORMED_ROW: 1, NOT_A_NUMBER: 1 } },
    ]);
    expect({ ...counts }).toEqual({ MALFORMED_ROW: 3, NOT_A_NUMBER: 1 });
  });
});
