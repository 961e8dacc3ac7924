import { shownValue } from './printable.js';
import { daysFromCivil, daysInMonth, formatWithOffset, zoneOffsets, type ZoneOffsetTable } from './zoneOffsets.js';

/**
 * Reading bar timestamps. Accepted: ISO-8601 with an offset or `Z`
 * (`2025-11-03T09:30:00-05:00`, `2025-11-03T14:30:00.250Z`, `+0530`, `+05`), or integer epoch
 * milliseconds. A timestamp without an offset is never re-labelled as UTC:
 *
 * - without `assumeZone` it is refused (`TIMESTAMP_NAIVE`);
 * - with `assumeZone` it is read as that zone's wall clock (offsets from luxon): a wall time
 *   the clock skipped (spring-forward) is refused (`TIMESTAMP_IN_DST_GAP`); a wall time that
 *   happened twice (fall-back) is read as its **earlier** occurrence, the one before the
 *   clocks went back (the same rule as luxon and Python's `fold=0`). A file written in local
 *   time that repeats that hour therefore repeats timestamps, which the data guard rejects
 *   as duplicates: write offsets to keep the second hour.
 * - An explicit offset always wins; `assumeZone` only applies to naive timestamps.
 *
 * A date alone (`2024-01-05`, a daily bar) is the start of that calendar day in `assumeZone`
 * (its local midnight, or the first instant of the day where the clocks skip midnight); without
 * `assumeZone` it is refused (`TIMESTAMP_NAIVE`), naming `--assume-tz`.
 *
 * Epoch numbers (an integer, or text of digits) are read in the unit `epoch` names (`s`, `ms`,
 * `us`, `ns`; `--epoch`); the instant must then lie in 1971-01-01 .. 2100-01-01, else it is
 * refused (`TIMESTAMP_EPOCH_UNIT`: that magnitude cannot be that unit). Without `epoch` a number
 * is read as milliseconds (the documented default) only where it cannot be another unit: below
 * 10^11 (before 1973-03-03: epoch seconds, read as ms, land in 1970) or from 2200 on (epoch µs
 * and ns of any recent date) it is refused with `TIMESTAMP_EPOCH_UNIT` too, and the message
 * says which unit would fit, never guessed. µs and ns are truncated to the millisecond.
 */

/** Why a timestamp was refused: a closed set. */
export type TimestampProblem = 'TIMESTAMP_MALFORMED' | 'TIMESTAMP_NAIVE' | 'TIMESTAMP_IN_DST_GAP' | 'TIMESTAMP_EPOCH_UNIT';

/** The units an epoch timestamp can be read in (`--epoch`). */
export const EPOCH_UNITS = ['s', 'ms', 'us', 'ns'] as const;
/** An epoch timestamp's unit. */
export type EpochUnit = (typeof EPOCH_UNITS)[number];

/** A parsed timestamp (UTC epoch ms), or why it was refused. */
export type TimestampResult =
  | { readonly ok: true; readonly ts: number }
  | { readonly ok: false; readonly problem: TimestampProblem; readonly detail: string };

/** How to read timestamps: `assumeZone` names the IANA zone naive ones were written in; `epoch` the unit of epoch numbers. */
export interface TimestampOptions {
  readonly assumeZone?: string | null;
  /** Default: milliseconds, where the magnitude can only be milliseconds. */
  readonly epoch?: EpochUnit | null;
}

/** The smallest accepted epoch-milliseconds magnitude; below it the value looks like seconds. */
export const MIN_EPOCH_MS = 100_000_000_000;

/** The first epoch value refused: 2200-01-01T00:00Z in milliseconds. */
const MAX_EPOCH_MS = Date.UTC(2200, 0, 1);
/**
 * The instants an epoch number of a named unit may be: 1971-01-01 .. 2100-01-01. That span is a
 * factor of ~130, less than the 1000 between two units, so no number fits two units (1970 is left
 * out: epoch seconds read as milliseconds land there).
 */
const MIN_UNIT_EPOCH_MS = Date.UTC(1971, 0, 1);
const MAX_UNIT_EPOCH_MS = Date.UTC(2100, 0, 1);

const MS_PER_DAY = 86_400_000;

/**
 * A reusable parser for one `assumeZone` (resolving the zone once). Use this in loops; throws
 * `RangeError` if `assumeZone` is not a known IANA zone.
 */
export function timestampParser(options: TimestampOptions = {}): (value: string | number) => TimestampResult {
  const zone = options.assumeZone ? zoneOffsets(options.assumeZone) : null;
  const unit = options.epoch ?? null;
  // Bars come in runs of the same day: remember the last valid date's day number.
  const lastDate = { text: '', days: 0 };
  return (value) => (typeof value === 'number' ? epochNumber(value, String(value), unit) : parseText(value, zone, lastDate, unit));
}

/** Parses one timestamp (see the module comment for the rules). */
export function parseTimestamp(value: string | number, options: TimestampOptions = {}): TimestampResult {
  return timestampParser(options)(value);
}

function refuse(problem: TimestampProblem, detail: string): TimestampResult {
  return { ok: false, problem, detail };
}

function epochNumber(value: number, text: string, unit: EpochUnit | null): TimestampResult {
  if (unit === null) return defaultEpochMs(value, text);
  // µs and ns of today are past 2^53: integers, but not safe ones (their ms part still is).
  const integer = unit === 'us' || unit === 'ns' ? Number.isInteger(value) : Number.isSafeInteger(value);
  if (!integer) return refuse('TIMESTAMP_MALFORMED', `${shownValue(text)} is not an integer of epoch ${UNIT_NAMES[unit]}`);
  const ms = unit === 's' ? value * 1000 : unit === 'ms' ? value : Math.floor(value / (unit === 'us' ? 1e3 : 1e6));
  return unitEpochMs(ms, text, unit);
}

/** Digits of an epoch (with a sign, perhaps) in `unit`; µs and ns are cut as text, see {@link msOfDigits}. */
function epochText(text: string, unit: EpochUnit | null): TimestampResult {
  if (unit === null || unit === 's' || unit === 'ms') return epochNumber(Number(text), text, unit);
  return unitEpochMs(text.startsWith('-') ? -1 : msOfDigits(text, unit), text, unit);
}

/** The instant that digits of an epoch in `unit` name, in ms: µs and ns cut to whole ms as text, so 19 digits lose nothing. */
function msOfDigits(digits: string, unit: EpochUnit): number {
  if (unit === 's') return Number(digits) * 1000;
  if (unit === 'ms') return Number(digits);
  const cut = unit === 'us' ? 3 : 6;
  return digits.length <= cut ? 0 : Number(digits.slice(0, digits.length - cut));
}

const UNIT_NAMES: Readonly<Record<EpochUnit, string>> = { s: 'seconds', ms: 'milliseconds', us: 'microseconds', ns: 'nanoseconds' };

/** An instant from an epoch of a named unit: it must lie in 1971 .. 2100. */
function unitEpochMs(ms: number, text: string, unit: EpochUnit): TimestampResult {
  if (ms >= MIN_UNIT_EPOCH_MS && ms < MAX_UNIT_EPOCH_MS) return { ok: true, ts: ms };
  return refuse('TIMESTAMP_EPOCH_UNIT', `${shownValue(text)} as epoch ${UNIT_NAMES[unit]} is outside 1971..2100${fittingUnit(text, unit)}`);
}

function defaultEpochMs(value: number, text: string): TimestampResult {
  if (!Number.isInteger(value)) return refuse('TIMESTAMP_MALFORMED', `${shownValue(text)} is not an integer of epoch milliseconds`);
  // Below 10^11 is epoch seconds read as 1970; from 2200 on, µs or ns of a recent date: say so, never guess.
  if (!Number.isSafeInteger(value) || Math.abs(value) < MIN_EPOCH_MS || value >= MAX_EPOCH_MS) {
    return refuse('TIMESTAMP_EPOCH_UNIT', `${shownValue(text)} cannot be epoch milliseconds (they are 10^11 .. 2200-01-01)${fittingUnit(text, 'ms')}; name the unit with --epoch s|ms|us|ns`);
  }
  return { ok: true, ts: value };
}

/** `: as epoch seconds it is 2025-11-03T14:31:00.000Z (--epoch s)` for the first other unit that puts `text` in 1971..2100. */
function fittingUnit(text: string, tried: EpochUnit): string {
  if (!/^\d+$/.test(text)) return '';
  for (const unit of EPOCH_UNITS) {
    const ms = msOfDigits(text, unit);
    if (unit !== tried && ms >= MIN_UNIT_EPOCH_MS && ms < MAX_UNIT_EPOCH_MS) return `: as epoch ${UNIT_NAMES[unit]} it is ${new Date(ms).toISOString()} (--epoch ${unit})`;
  }
  return '';
}

/** `count` decimal digits at `at`, or -1. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i += 1) {
    const code = text.charCodeAt(i) - 48; // NaN past the end
    if (!(code >= 0 && code <= 9)) return -1;
    value = value * 10 + code;
  }
  return value;
}

function isAllDigits(text: string, from: number): boolean {
  if (from >= text.length) return false;
  for (let i = from; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return true;
}

function malformedText(text: string, why: string): TimestampResult {
  return refuse('TIMESTAMP_MALFORMED', `${shownValue(text)} is not an ISO-8601 timestamp or epoch milliseconds: ${why}`);
}

function parseText(text: string, zone: ZoneOffsetTable | null, lastDate: { text: string; days: number }, unit: EpochUnit | null): TimestampResult {
  let days: number;
  if (lastDate.text.length === 10 && text.startsWith(lastDate.text)) days = lastDate.days;
  else {
    if (isAllDigits(text, text.charCodeAt(0) === 45 ? 1 : 0)) return epochText(text, unit);
    if (text.length < 10 || text[4] !== '-' || text[7] !== '-') return malformedText(text, 'expected YYYY-MM-DD');
    const year = digits(text, 0, 4);
    const month = digits(text, 5, 2);
    const day = digits(text, 8, 2);
    if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return malformedText(text, 'no such date');
    days = daysFromCivil(year, month, day);
    lastDate.text = text.slice(0, 10);
    lastDate.days = days;
  }
  const n = text.length;
  let i = 10;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let millis = 0;
  const separator = text[i];
  if (separator === 'T' || separator === 't' || separator === ' ') {
    hour = digits(text, i + 1, 2);
    minute = text[i + 3] === ':' ? digits(text, i + 4, 2) : -1;
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59) return malformedText(text, 'expected a time HH:MM in 00:00..23:59');
    i += 6;
    if (text[i] === ':') {
      second = digits(text, i + 1, 2);
      if (second < 0 || second > 59) return malformedText(text, 'seconds must be 00..59');
      i += 3;
      if (text[i] === '.' || text[i] === ',') {
        const from = i + 1;
        i = from;
        while (i < n && i - from < 9 && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i += 1;
        if (i === from) return malformedText(text, 'empty fraction of a second');
        millis = digits(`${text.slice(from, Math.min(i, from + 3))}00`, 0, 3);
      }
    }
  } else if (i < n) {
    // `2025-11-03Z`, `2025-11-03+05:00`: ISO-8601 gives an offset only to a time.
    return malformedText(text, `unexpected ${shownValue(text.slice(i))} after the date: an offset needs a time, like 2025-11-03T00:00Z`);
  }
  const localMs = days * MS_PER_DAY + hour * 3_600_000 + minute * 60_000 + second * 1000 + millis;

  if (i === n) {
    if (zone === null) {
      if (n === 10) return refuse('TIMESTAMP_NAIVE', `${shownValue(text)} is a date alone (a daily bar): name the zone whose calendar day it is with --assume-tz (assumeZone)`);
      return refuse('TIMESTAMP_NAIVE', `${shownValue(text)} has no UTC offset: add one (Z, -05:00) or name the zone it was written in with --assume-tz (assumeZone)`);
    }
    return fromZone(text, localMs, zone, n === 10);
  }
  const sign = text[i];
  if ((sign === 'Z' || sign === 'z') && i + 1 === n) return { ok: true, ts: localMs };
  if (sign !== '+' && sign !== '-') return malformedText(text, `unexpected ${shownValue(text.slice(i))} after the time`);
  const offsetHours = digits(text, i + 1, 2);
  let offsetMinutes = 0;
  if (i + 3 === n) offsetMinutes = 0;
  else if (text[i + 3] === ':' && i + 6 === n) offsetMinutes = digits(text, i + 4, 2);
  else if (i + 5 === n) offsetMinutes = digits(text, i + 3, 2);
  else return malformedText(text, 'offset must be ±HH, ±HHMM or ±HH:MM');
  if (offsetHours < 0 || offsetHours > 23 || offsetMinutes < 0 || offsetMinutes > 59) return malformedText(text, 'offset out of range');
  const offsetMs = (sign === '-' ? -1 : 1) * (offsetHours * 3_600_000 + offsetMinutes * 60_000);
  return { ok: true, ts: localMs - offsetMs };
}

/** A wall time in `zone`; a date alone (`dateOnly`) is its day's first instant, even where midnight was skipped. */
function fromZone(text: string, localMs: number, zone: ZoneOffsetTable, dateOnly: boolean): TimestampResult {
  const resolved = zone.resolveLocal(localMs);
  switch (resolved.kind) {
    case 'unique':
      return { ok: true, ts: resolved.ts };
    case 'ambiguous':
      return { ok: true, ts: resolved.earlier };
    case 'gap': {
      if (dateOnly) return { ok: true, ts: resolved.transition };
      const jumpedFrom = formatWithOffset(resolved.transition, resolved.offsetBeforeMs);
      const jumpedTo = formatWithOffset(resolved.transition, resolved.offsetAfterMs);
      return refuse(
        'TIMESTAMP_IN_DST_GAP',
        `${shownValue(text)} never happened in ${zone.zone}: the clocks jumped from ${jumpedFrom} to ${jumpedTo}`,
      );
    }
  }
}
