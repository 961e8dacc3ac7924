import { describe, expect, it } from 'vitest';
import { FillCounts, FillCountsSchema } from '../../src/session/fillCounts.js';

describe('FillCounts', () => {
  it('holds no fills for an order it has never seen', () => {
    expect(FillCounts.EMPTY.get('AAPL-1')).toBe(0);
    expect(FillCounts.EMPTY.total).toBe(0);
    expect(FillCounts.EMPTY.orders).toBe(0);
  });

  it('returns a new version with the changed orders and leaves the old one as it was', () => {
    const before = FillCounts.of({ A: 1, B: 2 });
    const after = before.with([['B', 3], ['C', 1]]);

    expect([after.get('A'), after.get('B'), after.get('C')]).toEqual([1, 3, 1]);
    expect(after.total).toBe(5);
    expect(before.toJSON()).toEqual({ A: 1, B: 2 });
    expect(before.total).toBe(3);
  });

  it('returns itself when nothing is given', () => {
    const counts = FillCounts.of({ A: 1 });
    expect(counts.with([])).toBe(counts);
  });

  it('keeps ids named like Object members as plain keys', () => {
    const counts = FillCounts.of({}).with([['constructor', 2], ['__proto__', 1]]);

    expect(counts.get('constructor')).toBe(2);
    expect(counts.get('toString')).toBe(0);
    expect(Object.keys(counts.toJSON()).sort()).toEqual(['__proto__', 'constructor']);
  });

  it('round-trips through JSON as the record a checkpoint holds', () => {
    const counts = FillCounts.of({ A: 1 }).with(Array.from({ length: 5_000 }, (_, i) => [`O-${i}`, (i % 3) + 1] as const));

    const restored = FillCountsSchema.parse(JSON.parse(JSON.stringify(counts)));

    expect(restored.toJSON()).toEqual(counts.toJSON());
    expect(restored.total).toBe(counts.total);
    expect(restored.orders).toBe(5_001);
  });

  it('refuses a checkpoint record with a count that is not a whole number of fills', () => {
    expect(FillCountsSchema.safeParse({ A: -1 }).success).toBe(false);
    expect(FillCountsSchema.safeParse({ A: 1.5 }).success).toBe(false);
  });
});
