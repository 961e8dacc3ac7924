import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMoney, parseRatio } from '../../src/common/money.js';
import { decimate, fitToBudget, keepExtremes, maxDrawdown, maxExposure, nextPoint, type CurvePoint } from '../../src/report/equityCurve.js';

const MINUTE = 60_000;

/** A curve from equity values one minute apart (cash = equity, gross as given or 0), peaks folded from `start`. */
function curve(values: readonly number[], start: number | null = null, gross: readonly number[] = []): CurvePoint[] {
  let peak = start === null ? null : parseMoney(String(start));
  return values.map((value, i) => {
    const point = nextPoint(peak, i * MINUTE, parseMoney(String(value)), parseMoney(String(value)), parseMoney(String(gross[i] ?? 0)));
    peak = point.peak;
    return point;
  });
}

describe('maxDrawdown', () => {
  it('is the deepest fall below the running peak, as a fraction of that peak', () => {
    const result = maxDrawdown(curve([100, 110, 90, 120, 100, 130]));

    expect(result?.ratio).toBe(parseRatio('0.18181818')); // 20 / 110, half-even at 1e-8
    expect(result?.amount).toBe(parseMoney('20'));
    expect(result?.at).toBe(2 * MINUTE);
    expect(result?.peakAt).toBe(1 * MINUTE);
  });

  it('counts the starting equity as a peak', () => {
    const result = maxDrawdown(curve([95, 96], 100));
    expect(result?.amount).toBe(parseMoney('5'));
    expect(result?.peakAt).toBeNull();
  });

  it('is null for a curve that never fell', () => {
    expect(maxDrawdown(curve([100, 101, 102]))).toBeNull();
  });
});

describe('decimation', () => {
  it('keeps a bucket’s first, last, lowest, highest, deepest-drawdown (and its peak) and widest points', () => {
    const points = curve([100, 103, 99, 101, 98, 104, 102], null, [0, 0, 5, 0, 0, 0, 0]);

    const kept = keepExtremes(points).map((p) => p.at / MINUTE);

    // 0 first; 1 the peak 98 fell from; 2 widest; 4 lowest and deepest; 5 highest; 6 last.
    expect(kept).toEqual([0, 1, 2, 4, 5, 6]);
  });

  it('never changes the max drawdown, the highest equity or the largest exposure, however wide the buckets (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 50, max: 150 }), { minLength: 1, maxLength: 400 }), fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 400 }), fc.integer({ min: 1, max: 64 }), (values, gross, width) => {
        const points = curve(values, 100, gross);

        const kept = decimate(points, width * MINUTE);

        expect(maxDrawdown(kept)).toEqual(maxDrawdown(points));
        expect(maxExposure(kept)).toEqual(maxExposure(points));
        expect(kept.at(-1)).toEqual(points.at(-1));
        expect(kept.reduce((m, p) => (p.equity > m ? p.equity : m), 0n)).toBe(points.reduce((m, p) => (p.equity > m ? p.equity : m), 0n));
      }),
      { numRuns: 300 },
    );
  });

  it('fits a long curve into its budget by doubling the bucket width', () => {
    const points = curve(Array.from({ length: 10_000 }, (_, i) => 100 + Math.round(10 * Math.sin(i / 37) + ((i * 7919) % 13))));

    const fitted = fitToBudget(points, MINUTE, 2_000);

    expect(fitted.points.length).toBeLessThanOrEqual(2_000);
    expect(fitted.bucketMs).toBeGreaterThan(MINUTE);
    expect(maxDrawdown(fitted.points)).toEqual(maxDrawdown(points));
  });
});
