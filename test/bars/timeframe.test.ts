import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { TIMEFRAMES, bucketBounds, bucketRule, bucketStart, divides, startOf, TimestampOutOfRangeError, type Timeframe } from '../../src/bars/timeframe.js';
import { formatInZone, zoneOffsets } from '../../src/bars/zoneOffsets.js';

const HOUR = 3_600_000;

/** The bucket holding `iso`, written in the zone's local time with its offset. */
function bucketIn(zone: string, timeframe: Timeframe, iso: string, anchor?: string) {
  const { start, end } = bucketBounds(bucketRule(timeframe, zone, anchor), Date.parse(iso));
  const table = zoneOffsets(zone);
  return { start: formatInZone(start, table), end: formatInZone(end, table), hours: (end - start) / HOUR };
}

describe('timeframes', () => {
  it('aggregate only into whole multiples', () => {
    expect(divides('1m', '5m')).toBe(true);
    expect(divides('5m', '1h')).toBe(true);
    expect(divides('4h', '1d')).toBe(true);
    expect(divides('5s', '30s')).toBe(true);
    expect(divides('5m', '1m')).toBe(false);
    expect(divides('15m', '1m')).toBe(false);
    expect(divides('1d', '4h')).toBe(false);
  });

  it('compile a session anchor only for intraday buckets, and refuse a malformed one', () => {
    expect(bucketRule('1h', 'America/New_York', '09:30').anchorMs).toBe(30 * 60_000);
    expect(bucketRule('1d', 'America/New_York', '09:30').anchorMs).toBe(0);
    expect(() => bucketRule('1h', 'America/New_York', '9:30')).toThrow(RangeError);
    expect(() => bucketRule('1h', 'Mars/Olympus_Mons')).toThrow(RangeError);
  });
});

describe('buckets in America/New_York across DST', () => {
  it('make 2025-03-09 a 23-hour day', () => {
    expect(bucketIn('America/New_York', '1d', '2025-03-09T20:00:00Z')).toEqual({
      start: '2025-03-09T00:00:00-05:00',
      end: '2025-03-10T00:00:00-04:00',
      hours: 23,
    });
  });

  it('make 2025-11-02 a 25-hour day', () => {
    expect(bucketIn('America/New_York', '1d', '2025-11-02T20:00:00Z')).toEqual({
      start: '2025-11-02T00:00:00-04:00',
      end: '2025-11-03T00:00:00-05:00',
      hours: 25,
    });
  });

  it('give the repeated 01:00 hour of 2025-11-02 two 1h buckets with distinct UTC starts', () => {
    const first = bucketIn('America/New_York', '1h', '2025-11-02T05:30:00Z');
    const second = bucketIn('America/New_York', '1h', '2025-11-02T06:30:00Z');

    expect(first).toEqual({ start: '2025-11-02T01:00:00-04:00', end: '2025-11-02T01:00:00-05:00', hours: 1 });
    expect(second).toEqual({ start: '2025-11-02T01:00:00-05:00', end: '2025-11-02T02:00:00-05:00', hours: 1 });
  });

  it('let the 1h bucket before the 2025-03-09 jump end at 03:00 EDT', () => {
    expect(bucketIn('America/New_York', '1h', '2025-03-09T06:59:00Z')).toEqual({
      start: '2025-03-09T01:00:00-05:00',
      end: '2025-03-09T03:00:00-04:00',
      hours: 1,
    });
  });

  it('give a 4h bucket spanning the fall-back five hours', () => {
    expect(bucketIn('America/New_York', '4h', '2025-11-02T06:30:00Z').hours).toBe(5);
  });

  it('start 1h buckets at the session anchor 09:30', () => {
    expect(bucketIn('America/New_York', '1h', '2025-11-03T15:45:00Z', '09:30')).toEqual({
      start: '2025-11-03T10:30:00-05:00',
      end: '2025-11-03T11:30:00-05:00',
      hours: 1,
    });
  });
});

describe('buckets in Europe/London across DST', () => {
  it('make 2025-03-30 a 23-hour day and 2025-10-26 a 25-hour day', () => {
    expect(bucketIn('Europe/London', '1d', '2025-03-30T12:00:00Z').hours).toBe(23);
    expect(bucketIn('Europe/London', '1d', '2025-10-26T12:00:00Z').hours).toBe(25);
  });

  it('give the repeated 01:00 hour of 2025-10-26 two 1h buckets', () => {
    expect(bucketIn('Europe/London', '1h', '2025-10-26T00:10:00Z').start).toBe('2025-10-26T01:00:00+01:00');
    expect(bucketIn('Europe/London', '1h', '2025-10-26T01:10:00Z').start).toBe('2025-10-26T01:00:00+00:00');
  });
});

describe('buckets in zones with 30-minute offsets', () => {
  it('align Asia/Kolkata hours to its wall clock, at :30 past the UTC hour', () => {
    expect(bucketIn('Asia/Kolkata', '1h', '2025-04-05T15:15:00Z')).toEqual({
      start: '2025-04-05T20:00:00+05:30',
      end: '2025-04-05T21:00:00+05:30',
      hours: 1,
    });
    expect(bucketStart(Date.parse('2025-04-05T15:15:00Z'), '1h', 'Asia/Kolkata')).toBe(Date.parse('2025-04-05T14:30:00Z'));
  });

  it('start the Australia/Lord_Howe 02:00 hour at the 30-minute spring jump (02:00 → 02:30)', () => {
    expect(bucketIn('Australia/Lord_Howe', '1h', '2025-10-04T15:20:00Z')).toEqual({
      start: '2025-10-05T01:00:00+10:30',
      end: '2025-10-05T02:30:00+11:00',
      hours: 1,
    });
    expect(bucketIn('Australia/Lord_Howe', '1h', '2025-10-04T15:40:00Z')).toEqual({
      start: '2025-10-05T02:30:00+11:00',
      end: '2025-10-05T03:00:00+11:00',
      hours: 0.5,
    });
  });

  it('keep the repeated Lord_Howe half hour (01:30–02:00) in the 01:00 hour, which lasts 1.5 h', () => {
    expect(bucketIn('Australia/Lord_Howe', '1h', '2025-04-05T15:15:00Z')).toEqual({
      start: '2025-04-06T01:00:00+11:00',
      end: '2025-04-06T02:00:00+10:30',
      hours: 1.5,
    });
    expect(bucketIn('Australia/Lord_Howe', '30m', '2025-04-05T15:15:00Z').start).toBe('2025-04-06T01:30:00+10:30');
    expect(bucketIn('Australia/Lord_Howe', '1d', '2025-04-05T15:15:00Z').hours).toBe(24.5);
  });
});

describe('bucket bounds, for any instant, timeframe, zone and anchor', () => {
  const zones = ['UTC', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/St_Johns'];

  it('hold the instant, tile time without gaps, and start on the wall clock', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2027, 0, 1) }),
        fc.constantFrom(...TIMEFRAMES),
        fc.constantFrom(...zones),
        fc.constantFrom(undefined, '09:30', '17:45'),
        (ts, timeframe, zone, anchor) => {
          const rule = bucketRule(timeframe, zone, anchor);
          const { start, end } = bucketBounds(rule, ts);

          expect(start).toBeLessThanOrEqual(ts);
          expect(end).toBeGreaterThan(ts);
          expect(startOf(rule, start)).toBe(start);
          expect(startOf(rule, end - 1)).toBe(start);
          expect(startOf(rule, end)).toBe(end);
          // The start reads as an aligned wall time, unless the clock jumped over that wall time.
          const wall = DateTime.fromMillis(start, { zone });
          const isJump = DateTime.fromMillis(start - 1, { zone }).offset !== wall.offset;
          if (!isJump) {
            const anchorMs = anchor === undefined || timeframe === '1d' ? 0 : (Number(anchor.slice(0, 2)) * 60 + Number(anchor.slice(3))) * 60_000;
            const msOfDay = ((wall.hour * 60 + wall.minute) * 60 + wall.second) * 1000 + wall.millisecond;
            const lengthMs = bucketRule(timeframe, 'UTC').lengthMs;
            expect((((msOfDay - anchorMs) % lengthMs) + lengthMs) % lengthMs).toBe(0);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('instants outside 1900 .. 2200', () => {
  it.each([8_640_000_000_000_001, 9_007_199_254_740_991, Date.UTC(2200, 0, 1), -8_640_000_000_000_000, Number.NaN])(
    'are refused with a typed error for %d, never searched for ever',
    (ts) => {
      expect(() => bucketStart(ts, '1h', 'America/New_York')).toThrow(TimestampOutOfRangeError);
      expect(() => bucketBounds(bucketRule('1d', 'Europe/London'), ts)).toThrow(TimestampOutOfRangeError);
    },
  );
});
