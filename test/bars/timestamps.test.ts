import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { parseTimestamp } from '../../src/bars/timestamps.js';
import { formatWithOffset } from '../../src/bars/zoneOffsets.js';

const utc = (iso: string) => Date.parse(iso);

describe('timestamps with an offset', () => {
  it.each([
    ['2025-11-03T14:30:00Z', '2025-11-03T14:30:00Z'],
    ['2025-11-03T14:30:00z', '2025-11-03T14:30:00Z'],
    ['2025-11-03T09:30:00-05:00', '2025-11-03T14:30:00Z'],
    ['2025-11-03T09:30-05:00', '2025-11-03T14:30:00Z'],
    ['2025-11-03 09:30:00-0500', '2025-11-03T14:30:00Z'],
    ['2025-11-03T20:00:00+05:30', '2025-11-03T14:30:00Z'],
    ['2025-11-03T23:30:00+09', '2025-11-03T14:30:00Z'],
    ['2025-11-04T03:15:00+12:45', '2025-11-03T14:30:00Z'],
    ['2025-11-03T14:30:00.250Z', '2025-11-03T14:30:00.250Z'],
    ['2025-11-03T14:30:00,5Z', '2025-11-03T14:30:00.500Z'],
    ['2025-11-03T14:30:00.123999Z', '2025-11-03T14:30:00.123Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00Z'],
  ])('reads %s as %s', (text, expected) => {
    expect(parseTimestamp(text)).toEqual({ ok: true, ts: utc(expected) });
  });

  it('keeps the written offset even when a zone is assumed (never re-labels)', () => {
    expect(parseTimestamp('2025-11-03T09:30:00-05:00', { assumeZone: 'Asia/Tokyo' })).toEqual({ ok: true, ts: utc('2025-11-03T14:30:00Z') });
  });

  it('reads epoch milliseconds, as text or as a number', () => {
    expect(parseTimestamp('1762180200000')).toEqual({ ok: true, ts: 1_762_180_200_000 });
    expect(parseTimestamp(1_762_180_200_000)).toEqual({ ok: true, ts: 1_762_180_200_000 });
  });

  it('refuses epoch seconds read as milliseconds by default, saying which --epoch would read them', () => {
    const result = parseTimestamp('1762180200');

    expect(result).toMatchObject({ ok: false, problem: 'TIMESTAMP_EPOCH_UNIT' });
    expect(result.ok ? '' : result.detail).toContain('as epoch seconds it is 2025-11-03T14:30:00.000Z (--epoch s)');
  });

  it.each(['1762180200000000', '1762180200000000000', '8640000000000001', '9007199254740991'])(
    'refuses %s (epoch microseconds, nanoseconds, past the Date range) by default instead of reading it as a far-future year',
    (text) => {
      const result = parseTimestamp(text);
      expect(result).toMatchObject({ ok: false, problem: 'TIMESTAMP_EPOCH_UNIT' });
      expect(result.ok ? '' : result.detail).toContain('cannot be epoch milliseconds');
    },
  );

  it.each([
    ['s', '1762180200', 1_762_180_200_000],
    ['ms', '1762180200123', 1_762_180_200_123],
    ['us', '1762180200123456', 1_762_180_200_123],
    ['ns', '1762180200123456789', 1_762_180_200_123],
    ['s', '31536000', Date.UTC(1971, 0, 1)],
  ] as const)('reads --epoch %s %s as %i ms (µs and ns truncated, exactly, from the digits)', (epoch, text, ts) => {
    expect(parseTimestamp(text, { epoch })).toEqual({ ok: true, ts });
  });

  it('reads epoch numbers (JSON) in the named unit too', () => {
    expect(parseTimestamp(1_762_180_200, { epoch: 's' })).toEqual({ ok: true, ts: 1_762_180_200_000 });
    expect(parseTimestamp(1_762_180_200_123_456, { epoch: 'us' })).toEqual({ ok: true, ts: 1_762_180_200_123 });
    expect(parseTimestamp(1_762_180_200_000, { epoch: 'ms' })).toEqual({ ok: true, ts: 1_762_180_200_000 });
  });

  it.each([
    ['s', '1762180200000', 'as epoch milliseconds it is 2025-11-03T14:30:00.000Z'],
    ['ms', '1762180200', 'as epoch seconds it is 2025-11-03T14:30:00.000Z'],
    ['ms', '1762180200000000', 'as epoch microseconds it is 2025-11-03T14:30:00.000Z'],
    ['us', '1762180200000', 'as epoch milliseconds'],
    ['ns', '1762180200000000', 'as epoch microseconds'],
    ['s', '31535999', ''],
    ['s', '4102444800', ''],
    ['s', '-1', ''],
  ] as const)('refuses --epoch %s %s: that magnitude is outside 1971..2100 in that unit', (epoch, text, hint) => {
    const result = parseTimestamp(text, { epoch });
    expect(result).toMatchObject({ ok: false, problem: 'TIMESTAMP_EPOCH_UNIT' });
    expect(result.ok ? '' : result.detail).toContain('is outside 1971..2100');
    expect(result.ok ? '' : result.detail).toContain(hint);
  });

  it('refuses a fraction of an epoch unit', () => {
    expect(parseTimestamp(1_762_180_200.5, { epoch: 's' })).toMatchObject({ ok: false, problem: 'TIMESTAMP_MALFORMED' });
  });

  it.each([
    ['not a date'],
    ['2025-13-01T00:00:00Z'],
    ['2025-02-29T00:00:00Z'],
    ['2025-11-31T00:00:00Z'],
    ['2025-11-03T24:00:00Z'],
    ['2025-11-03T14:60:00Z'],
    ['2025-11-03T14:30:60Z'],
    ['2025-11-03T14:30:00+5'],
    ['2025-11-03T14:30:00+05:30:00'],
    ['2025-11-03T14:30:00.Z'],
    ['2025-11-03T14:30:00 UTC'],
    ['2025/11/03 14:30'],
    ['1762180200000.5'],
  ])('refuses %s as malformed', (text) => {
    expect(parseTimestamp(text)).toMatchObject({ ok: false, problem: 'TIMESTAMP_MALFORMED' });
  });

  it('round-trips any instant written at any whole-minute offset', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1980, 0, 1), max: Date.UTC(2100, 0, 1) }),
        fc.integer({ min: -14 * 60, max: 14 * 60 }),
        (ts, offsetMinutes) => {
          expect(parseTimestamp(formatWithOffset(ts, offsetMinutes * 60_000))).toEqual({ ok: true, ts });
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('timestamps without an offset', () => {
  it('are refused without an assumed zone, not read as UTC', () => {
    const result = parseTimestamp('2025-11-03T09:30:00');

    expect(result).toMatchObject({ ok: false, problem: 'TIMESTAMP_NAIVE' });
  });

  it('are read in the assumed zone (a non-UTC input zone)', () => {
    expect(parseTimestamp('2025-11-03T09:30:00', { assumeZone: 'America/New_York' })).toEqual({ ok: true, ts: utc('2025-11-03T14:30:00Z') });
    expect(parseTimestamp('2025-07-01 09:30', { assumeZone: 'America/New_York' })).toEqual({ ok: true, ts: utc('2025-07-01T13:30:00Z') });
    expect(parseTimestamp('2025-11-03T20:00:00', { assumeZone: 'Asia/Kolkata' })).toEqual({ ok: true, ts: utc('2025-11-03T14:30:00Z') });
    expect(parseTimestamp('2025-11-03', { assumeZone: 'Europe/London' })).toEqual({ ok: true, ts: utc('2025-11-03T00:00:00Z') });
  });

  it('refuses a date alone (a daily bar) without an assumed zone, naming --assume-tz', () => {
    const result = parseTimestamp('2024-01-05');

    expect(result).toMatchObject({ ok: false, problem: 'TIMESTAMP_NAIVE' });
    expect(result.ok ? '' : result.detail).toContain('is a date alone (a daily bar): name the zone whose calendar day it is with --assume-tz');
  });

  it('reads a date alone as the first instant of that day where the clocks skip midnight (Havana, Santiago)', () => {
    expect(parseTimestamp('2025-03-09', { assumeZone: 'America/Havana' })).toEqual({ ok: true, ts: utc('2025-03-09T05:00:00Z') });
    expect(parseTimestamp('2025-09-07', { assumeZone: 'America/Santiago' })).toEqual({ ok: true, ts: utc('2025-09-07T04:00:00Z') });
  });

  it.each([
    ['America/New_York', '2025-03-09T02:30:00', '2025-03-09T02:00:00-05:00 to 2025-03-09T03:00:00-04:00'],
    ['Europe/London', '2025-03-30T01:15:00', '2025-03-30T01:00:00+00:00 to 2025-03-30T02:00:00+01:00'],
    ['Australia/Lord_Howe', '2025-10-05T02:15:00', '2025-10-05T02:00:00+10:30 to 2025-10-05T02:30:00+11:00'],
  ])('in %s, refuse %s: the clocks skipped it', (zone, text, jump) => {
    const result = parseTimestamp(text, { assumeZone: zone });

    expect(result).toMatchObject({ ok: false, problem: 'TIMESTAMP_IN_DST_GAP' });
    expect(result.ok ? '' : result.detail).toContain(jump);
  });

  it.each([
    ['America/New_York', '2025-11-02T01:30:00', '2025-11-02T05:30:00Z', '2025-11-02T06:30:00Z'],
    ['Europe/London', '2025-10-26T01:30:00', '2025-10-26T00:30:00Z', '2025-10-26T01:30:00Z'],
    ['Australia/Lord_Howe', '2025-04-06T01:45:00', '2025-04-05T14:45:00Z', '2025-04-05T15:15:00Z'],
  ])('in %s, read the repeated %s as its earlier occurrence', (zone, text, earlier, later) => {
    expect(parseTimestamp(text, { assumeZone: zone })).toEqual({ ok: true, ts: utc(earlier) });
    // The later occurrence is reachable only with an explicit offset.
    const laterOffset = DateTime.fromMillis(utc(later), { zone }).toFormat('ZZ');
    expect(parseTimestamp(`${text}${laterOffset}`)).toEqual({ ok: true, ts: utc(later) });
  });

  it('agree with luxon away from DST transitions', () => {
    const zones = ['America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/Sao_Paulo'];
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2015, 0, 1), max: Date.UTC(2035, 0, 1) }), fc.constantFrom(...zones), (ts, zone) => {
        const offsetAt = (at: number) => DateTime.fromMillis(at, { zone }).offset;
        fc.pre(offsetAt(ts - 86_400_000) === offsetAt(ts + 86_400_000));
        const text = DateTime.fromMillis(ts, { zone }).toFormat("yyyy-LL-dd'T'HH:mm:ss.SSS");
        const viaLuxon = DateTime.fromISO(text, { zone });
        expect(parseTimestamp(text, { assumeZone: zone })).toEqual({ ok: true, ts: viaLuxon.toMillis() });
      }),
      { numRuns: 500 },
    );
  });
});
