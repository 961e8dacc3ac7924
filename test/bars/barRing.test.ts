import { describe, expect, it } from 'vitest';
import { BarRing } from '../../src/bars/barRing.js';
import type { TimeframeBar } from '../../src/bars/timeframe.js';

function bar(close: number): TimeframeBar {
  return { symbol: 'AAPL', timeframe: '1m', ts: close * 60_000, open: close, high: close, low: close, close, volume: 1 };
}

const closes = (ring: BarRing): number[] => [...ring].map((b) => b.close);

function filled(capacity: number, count: number): BarRing {
  let ring = BarRing.empty(capacity);
  for (let i = 1; i <= count; i += 1) ring = ring.append(bar(i));
  return ring;
}

describe('a bar ring', () => {
  it('keeps the newest bars up to its capacity, oldest first', () => {
    const ring = filled(3, 7);

    expect(closes(ring)).toEqual([5, 6, 7]);
    expect(ring.length).toBe(3);
    expect(ring.newest(2).map((b) => b.close)).toEqual([6, 7]);
    expect(ring.newest(0)).toEqual([]);
  });

  it('never changes a ring it was appended from, even when two rings grow from it', () => {
    const base = filled(4, 3);
    const left = base.append(bar(10));
    const right = base.append(bar(20)).append(bar(21));

    expect(closes(base)).toEqual([1, 2, 3]);
    expect(closes(left)).toEqual([1, 2, 3, 10]);
    expect(closes(right)).toEqual([2, 3, 20, 21]);
    expect(closes(left.append(bar(11)))).toEqual([2, 3, 10, 11]);
    expect(closes(right)).toEqual([2, 3, 20, 21]);
  });

  it("extends a ring in place only for the batch that made it, and never an earlier batch's ring", () => {
    const earlier = filled(3, 2);
    const batch = {};
    const own = earlier.append(bar(10), batch);

    expect(own).not.toBe(earlier);
    expect(own.append(bar(11), batch)).toBe(own);
    expect(closes(own)).toEqual([2, 10, 11]);
    expect(closes(earlier)).toEqual([1, 2]);
    // Across the storage's cut back (at 2 × capacity) the batch's ring is a new one, still its own.
    let ring = own;
    for (let close = 12; close <= 17; close += 1) ring = ring.append(bar(close), batch);
    expect(closes(ring)).toEqual([15, 16, 17]);
    // Another batch's append, or one without a token, is a new ring: this one keeps its bars.
    const next = ring.append(bar(18), {});
    expect(next).not.toBe(ring);
    expect(closes(next)).toEqual([16, 17, 18]);
    expect(closes(ring)).toEqual([15, 16, 17]);
    expect(ring.append(bar(19))).not.toBe(ring);
  });

  it('keeps every earlier ring intact across the cut back of its storage', () => {
    const rings = [BarRing.empty(3)];
    for (let i = 1; i <= 20; i += 1) rings.push((rings.at(-1) ?? BarRing.empty(3)).append(bar(i)));

    rings.forEach((ring, n) => expect(closes(ring)).toEqual([n - 2, n - 1, n].filter((c) => c >= 1)));
  });

  it('is written as the checkpoint format and read back to the same bars', () => {
    for (const count of [0, 2, 3, 5]) {
      const ring = filled(3, count);
      const json = JSON.parse(JSON.stringify(ring));

      expect(json.items.map((b: TimeframeBar) => b.close)).toEqual(closes(ring));
      expect(closes(BarRing.fromJSON(json, 3))).toEqual(closes(ring));
    }
  });

  it('reads a full ring of the earlier slot layout (next: the oldest slot) in order', () => {
    const ring = BarRing.fromJSON({ items: [bar(4), bar(5), bar(3)], next: 2 }, 3);

    expect(closes(ring)).toEqual([3, 4, 5]);
    expect(closes(ring.append(bar(6)))).toEqual([4, 5, 6]);
  });

  it('compares by its bars under toEqual', () => {
    expect(filled(3, 5)).toEqual(BarRing.fromJSON({ items: [bar(3), bar(4), bar(5)], next: 0 }, 3));
    expect(filled(3, 5)).not.toEqual(filled(3, 4));
  });
});
