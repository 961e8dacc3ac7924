import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { offerSnapshot, pendingWrites, retryDelayMs, settleWrites } from '../../src/checkpointer/checkpointQueue.js';

describe('checkpoint queue', () => {
  it('keeps only the newest snapshot per key', () => {
    let pending = offerSnapshot({}, 'session', { n: 1 }, 1);
    pending = offerSnapshot(pending, 'session', { n: 2 }, 2);
    pending = offerSnapshot(pending, 'other', { n: 3 }, 3);
    expect(pendingWrites(pending)).toEqual([
      { key: 'session', snapshot: { n: 2 }, version: 2 },
      { key: 'other', snapshot: { n: 3 }, version: 3 },
    ]);
  });

  it('settles a written key only if no newer snapshot arrived during the write', () => {
    let pending = offerSnapshot({}, 'a', 'old', 1);
    pending = offerSnapshot(pending, 'b', 'only', 2);
    const batch = pendingWrites(pending);
    pending = offerSnapshot(pending, 'a', 'new', 3);
    const after = settleWrites(pending, batch);
    expect(after).toEqual({ a: { key: 'a', snapshot: 'new', version: 3 } });
  });

  it('is bounded by the number of keys however many snapshots are offered', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer()), { maxLength: 500 }), (saves) => {
        let pending = {};
        saves.forEach(([key, value], i) => (pending = offerSnapshot(pending, key, value, i + 1)));
        const writes = pendingWrites(pending);
        expect(writes.length).toBe(new Set(saves.map(([key]) => key)).size);
        for (const write of writes) {
          const newest = saves.filter(([key]) => key === write.key).at(-1);
          expect(write.snapshot).toBe(newest?.[1]);
        }
      }),
    );
  });

  it('backs off exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 5, 10, 80].map((n) => retryDelayMs(n, 50, 1_000))).toEqual([50, 100, 200, 400, 800, 1_000, 1_000]);
    expect(retryDelayMs(0, 50, 1_000)).toBe(50);
  });
});
