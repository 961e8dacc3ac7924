import { IANAZone } from 'luxon';

/**
 * Fast UTC-offset lookups for an IANA zone. Luxon (through Intl) answers "what is the offset
 * at instant t" in microseconds; bucketing a million bars a second cannot afford that per
 * bar. So each zone's offsets are computed once per UTC year with luxon and kept as
 * segments (instants with one constant offset, split at DST transitions and year starts);
 * a lookup is a comparison with the last segment used, else a binary search.
 *
 * Transitions are found by sampling each day and bisecting to the millisecond, so a zone
 * that changes its offset twice within one day would be seen as changing once: no IANA zone
 * has done that since 1970.
 */

const DAY_MS = 86_400_000;

/** Instants `[start, end)` during which a zone's UTC offset is `offsetMs` (local = utc + offset). */
export interface OffsetSegment {
  readonly start: number;
  readonly end: number;
  readonly offsetMs: number;
}

/** How a local wall-clock time maps to instants in a zone. */
export type LocalTimeResolution =
  | { readonly kind: 'unique'; readonly ts: number }
  /** The wall time happened twice (fall-back); `earlier` is the first occurrence. */
  | { readonly kind: 'ambiguous'; readonly earlier: number; readonly later: number }
  /** The wall time never happened (spring-forward); the clock jumped at `transition`. */
  | { readonly kind: 'gap'; readonly transition: number; readonly offsetBeforeMs: number; readonly offsetAfterMs: number };

/** One zone's offsets, computed lazily by year. Get it from {@link zoneOffsets}. */
export class ZoneOffsetTable {
  readonly zone: string;
  readonly #luxonZone: IANAZone;
  readonly #years = new Map<number, OffsetSegment[]>();
  #last: OffsetSegment;

  constructor(zone: string) {
    this.zone = zone;
    this.#luxonZone = IANAZone.create(zone);
    this.#last = { start: 0, end: 0, offsetMs: 0 }; // empty: the first lookup searches
  }

  /** The segment holding instant `ts`. */
  segmentAt(ts: number): OffsetSegment {
    const last = this.#last;
    if (ts >= last.start && ts < last.end) return last;
    const segments = this.#yearSegments(civilFromDays(Math.floor(ts / DAY_MS)).year);
    let lo = 0;
    let hi = segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const segment = segments[mid];
      if (segment !== undefined && segment.start <= ts) lo = mid;
      else hi = mid - 1;
    }
    const found = segments[lo];
    if (found === undefined) throw new RangeError(`no offset segment for ${ts} in ${this.zone}`);
    this.#last = found;
    return found;
  }

  /** The zone's UTC offset at instant `ts`, in milliseconds. */
  offsetAt(ts: number): number {
    return this.segmentAt(ts).offsetMs;
  }

  /** The instant(s) at which the zone's wall clock reads `localMs` (local time written as if UTC). */
  resolveLocal(localMs: number): LocalTimeResolution {
    // Every real offset lies within ±18 h, so the instant lies within ±18 h of the wall time.
    const windowMs = 18 * 3_600_000;
    const candidates: number[] = [];
    let segment = this.segmentAt(localMs - windowMs);
    for (;;) {
      const ts = localMs - segment.offsetMs;
      if (ts >= segment.start && ts < segment.end) candidates.push(ts);
      if (segment.end > localMs + windowMs) break;
      segment = this.segmentAt(segment.end);
    }
    const [first, second] = candidates;
    if (first !== undefined && second !== undefined) return { kind: 'ambiguous', earlier: first, later: second };
    if (first !== undefined) return { kind: 'unique', ts: first };
    // No instant reads localMs: find the jump that skipped it.
    let after = this.segmentAt(localMs - windowMs);
    while (after.start + after.offsetMs <= localMs) after = this.segmentAt(after.end);
    const before = this.segmentAt(after.start - 1);
    return { kind: 'gap', transition: after.start, offsetBeforeMs: before.offsetMs, offsetAfterMs: after.offsetMs };
  }

  #yearSegments(year: number): OffsetSegment[] {
    const cached = this.#years.get(year);
    if (cached !== undefined) return cached;
    const yearStart = daysFromCivil(year, 1, 1) * DAY_MS;
    const yearEnd = daysFromCivil(year + 1, 1, 1) * DAY_MS;
    const segments: OffsetSegment[] = [];
    let start = yearStart;
    let offset = this.#offsetMs(yearStart);
    for (let probe = yearStart + DAY_MS; probe < yearEnd + DAY_MS; probe += DAY_MS) {
      const at = Math.min(probe, yearEnd);
      const probeOffset = this.#offsetMs(at);
      if (probeOffset === offset) continue;
      // Bisect (at - 1 day, at] for the first millisecond with the new offset.
      let lo = at - DAY_MS;
      let hi = at;
      while (hi - lo > 1) {
        const mid = lo + Math.floor((hi - lo) / 2);
        if (this.#offsetMs(mid) === offset) lo = mid;
        else hi = mid;
      }
      if (hi >= yearEnd) break;
      segments.push({ start, end: hi, offsetMs: offset });
      start = hi;
      offset = this.#offsetMs(hi);
    }
    segments.push({ start, end: yearEnd, offsetMs: offset });
    this.#years.set(year, segments);
    return segments;
  }

  #offsetMs(ts: number): number {
    return Math.round(this.#luxonZone.offset(ts) * 60_000);
  }
}

const tables = new Map<string, ZoneOffsetTable>();

/** Whether `zone` is an IANA zone name luxon (and so this machine's Intl) knows. */
export function isKnownZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

/** The shared offset table for `zone`; throws `RangeError` for an unknown zone (check {@link isKnownZone} first). */
export function zoneOffsets(zone: string): ZoneOffsetTable {
  let table = tables.get(zone);
  if (table === undefined) {
    if (!isKnownZone(zone)) throw new RangeError(`unknown time zone "${zone}"`);
    table = new ZoneOffsetTable(zone);
    tables.set(zone, table);
  }
  return table;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`). */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** Days in a month of the proleptic Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  return daysFromCivil(month === 12 ? year + 1 : year, month === 12 ? 1 : month + 1, 1) - daysFromCivil(year, month, 1);
}

/**
 * `ts` as ISO-8601 with the zone's offset at that instant: `2025-11-02T01:30:00-05:00`
 * (milliseconds only when not zero). The offset is always numeric, `+00:00` for UTC.
 */
export function formatInZone(ts: number, table: ZoneOffsetTable): string {
  return formatWithOffset(ts, table.offsetAt(ts));
}

/** `ts` as ISO-8601 at a fixed UTC offset (see {@link formatInZone}). */
export function formatWithOffset(ts: number, offsetMs: number): string {
  const local = ts + offsetMs;
  const days = Math.floor(local / DAY_MS);
  const { year, month, day } = civilFromDays(days);
  const msOfDay = local - days * DAY_MS;
  const hour = Math.floor(msOfDay / 3_600_000);
  const minute = Math.floor((msOfDay % 3_600_000) / 60_000);
  const second = Math.floor((msOfDay % 60_000) / 1000);
  const millis = msOfDay % 1000;
  const sign = offsetMs < 0 ? '-' : '+';
  const offsetMinutes = Math.round(Math.abs(offsetMs) / 60_000);
  const date = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
  const time = `${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${millis === 0 ? '' : `.${pad(millis, 3)}`}`;
  return `${date}T${time}${sign}${pad(Math.floor(offsetMinutes / 60), 2)}:${pad(offsetMinutes % 60, 2)}`;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}
