import { max, ratioOf, type Money, type Ratio } from '../common/money.js';

/**
 * The report's equity curve: the account at bar times, each point carrying the highest equity
 * up to and including it (`peak`), so a point's drawdown is exact on its own. Pure functions;
 * the recorder (reportRecorder.ts) folds the session's `equity` events through them and the
 * report reads the points back.
 *
 * The curve stays a bounded number of points by decimation: points are grouped into buckets of
 * bar time, and a bucket keeps only its first and last points and those where equity was
 * lowest and highest, the drawdown deepest and the gross exposure largest. So the maximum
 * drawdown, its peak, the highest equity and the largest exposure read off the kept points are
 * the ones of every point the session reported, however coarse the buckets get.
 */

/** One point of the curve: money as scaled bigints (see money.ts). */
export interface CurvePoint {
  /** Bar time, UTC epoch ms. */
  readonly at: number;
  readonly equity: Money;
  readonly cash: Money;
  /** Σ |position value|. */
  readonly gross: Money;
  /** The highest equity up to and including this point (and the starting equity). */
  readonly peak: Money;
}

/** The point at `at` after a curve whose highest equity so far is `peak` (null: no point yet). */
export function nextPoint(peak: Money | null, at: number, equity: Money, cash: Money, gross: Money): CurvePoint {
  return { at, equity, cash, gross, peak: peak === null ? equity : max(peak, equity) };
}

/** How far the point is below its peak, in money (zero or more). */
export function drawdownAmount(point: CurvePoint): Money {
  return point.peak - point.equity;
}

/** How far the point is below its peak, as a fraction of the peak (zero when the peak is not positive). */
export function drawdownRatio(point: CurvePoint): Ratio {
  return point.peak > 0n ? ratioOf(drawdownAmount(point), point.peak) : 0n;
}

/** Whether `a`'s drawdown fraction is deeper than `b`'s, compared exactly (cross-multiplied, not rounded). */
export function deeperDrawdown(a: CurvePoint, b: CurvePoint): boolean {
  if (a.peak <= 0n) return false;
  if (b.peak <= 0n) return drawdownAmount(a) > 0n;
  return drawdownAmount(a) * b.peak > drawdownAmount(b) * a.peak;
}

/**
 * The points of one bucket worth keeping, in their order: the first, the last, the lowest and
 * the highest equity, the deepest drawdown and the point where its peak was first reached (if
 * in this bucket), and the largest gross exposure (the first of each when tied). At most seven
 * points whatever the bucket holds.
 */
export function keepExtremes(points: readonly CurvePoint[]): CurvePoint[] {
  if (points.length <= 2) return [...points];
  let low = 0;
  let high = 0;
  let deepest = 0;
  let widest = 0;
  points.forEach((point, index) => {
    if (point.equity < (points[low] as CurvePoint).equity) low = index;
    if (point.equity > (points[high] as CurvePoint).equity) high = index;
    if (deeperDrawdown(point, points[deepest] as CurvePoint)) deepest = index;
    if (point.gross > (points[widest] as CurvePoint).gross) widest = index;
  });
  const peak = (points[deepest] as CurvePoint).peak;
  const peakAt = points.findIndex((point, index) => index < deepest && point.equity === peak);
  const kept = new Set([0, low, high, deepest, widest, points.length - 1, ...(peakAt < 0 ? [] : [peakAt])]);
  return [...kept].sort((a, b) => a - b).map((index) => points[index] as CurvePoint);
}

/** The bucket of bar time `at` for buckets `bucketMs` wide (aligned to the epoch, so doubling a width merges pairs). */
export function bucketOf(at: number, bucketMs: number): number {
  return Math.floor(at / bucketMs);
}

/**
 * The curve with each run of consecutive points in one bucket reduced to {@link keepExtremes}.
 * Consecutive: a curve that steps back in time (a bar file not in time order) starts a new
 * bucket rather than merging across the step.
 */
export function decimate(points: readonly CurvePoint[], bucketMs: number): CurvePoint[] {
  const kept: CurvePoint[] = [];
  let bucket: CurvePoint[] = [];
  let key: number | null = null;
  for (const point of points) {
    const pointKey = bucketOf(point.at, bucketMs);
    if (key !== null && pointKey !== key) {
      kept.push(...keepExtremes(bucket));
      bucket = [];
    }
    key = pointKey;
    bucket.push(point);
  }
  kept.push(...keepExtremes(bucket));
  return kept;
}

/**
 * Widens the buckets (doubling `bucketMs`) until the curve has at most `budget` points; returns
 * the curve and the width it needed. A curve already within the budget is returned as it is.
 */
export function fitToBudget(points: readonly CurvePoint[], bucketMs: number, budget: number): { points: CurvePoint[]; bucketMs: number } {
  let kept = [...points];
  let width = bucketMs;
  while (kept.length > budget) {
    width *= 2;
    kept = decimate(kept, width);
  }
  return { points: kept, bucketMs: width };
}

/** The deepest drawdown of a curve: where, how deep, and the peak it fell from. */
export interface MaxDrawdown {
  readonly ratio: Ratio;
  readonly amount: Money;
  readonly peak: Money;
  readonly trough: Money;
  /** Bar time of the trough. */
  readonly at: number;
  /** Bar time the peak was first reached; null when it is the starting equity. */
  readonly peakAt: number | null;
}

/** The curve's deepest drawdown (by fraction of the peak), or null for a curve without a point below its peak. */
export function maxDrawdown(points: readonly CurvePoint[]): MaxDrawdown | null {
  let deepest: number | null = null;
  points.forEach((point, index) => {
    if (drawdownAmount(point) > 0n && (deepest === null || deeperDrawdown(point, points[deepest] as CurvePoint))) deepest = index;
  });
  if (deepest === null) return null;
  const trough = points[deepest] as CurvePoint;
  const peakIndex = points.findIndex((point, index) => index < (deepest as number) && point.equity === trough.peak);
  const peakAt = peakIndex < 0 ? null : (points[peakIndex] as CurvePoint).at;
  return { ratio: drawdownRatio(trough), amount: drawdownAmount(trough), peak: trough.peak, trough: trough.equity, at: trough.at, peakAt };
}

/** The largest gross exposure of a curve, and its fraction of equity at that point. */
export interface MaxExposure {
  readonly gross: Money;
  /** gross / equity (null when equity was not positive). */
  readonly ratio: Ratio | null;
  readonly at: number;
}

/** The curve's largest gross exposure, or null for a curve that never held a position. */
export function maxExposure(points: readonly CurvePoint[]): MaxExposure | null {
  let widest: CurvePoint | null = null;
  for (const point of points) if (point.gross > 0n && (widest === null || point.gross > widest.gross)) widest = point;
  if (widest === null) return null;
  return { gross: widest.gross, ratio: widest.equity > 0n ? ratioOf(widest.gross, widest.equity) : null, at: widest.at };
}
