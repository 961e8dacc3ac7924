import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../src/common/clock.js';

describe('ManualClock', () => {
  it('moves wall and monotonic time together when time passes', () => {
    const clock = new ManualClock({ wallMs: 1_000, monoMs: 5 });
    clock.advance(250);
    expect([clock.wallMs(), clock.monoMs()]).toEqual([1_250, 255]);
  });

  it('jumps the wall clock backwards without moving the monotonic clock', () => {
    const clock = new ManualClock({ wallMs: 10_000, monoMs: 100 });
    clock.jumpWall(-3_600_000);
    expect([clock.wallMs(), clock.monoMs()]).toEqual([10_000 - 3_600_000, 100]);
  });

  it('jumps the wall clock forwards without moving the monotonic clock', () => {
    const clock = new ManualClock({ wallMs: 10_000, monoMs: 100 });
    clock.jumpWall(600_000);
    expect([clock.wallMs(), clock.monoMs()]).toEqual([610_000, 100]);
  });

  it('refuses to move time backwards through advance', () => {
    const clock = new ManualClock();
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.advance(Number.NaN)).toThrow(RangeError);
  });
});

describe('systemClock', () => {
  it('reads the real wall clock and a monotonic clock that never goes back', () => {
    const before = Date.now();
    const wall = systemClock.wallMs();
    expect(wall).toBeGreaterThanOrEqual(before);
    expect(wall).toBeLessThanOrEqual(Date.now());
    const readings = Array.from({ length: 1_000 }, () => systemClock.monoMs());
    expect(readings.every((value, i) => i === 0 || value >= (readings[i - 1] ?? value))).toBe(true);
  });
});
