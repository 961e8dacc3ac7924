import { z } from 'zod';
import { MAX_BAR_TS, MIN_BAR_TS, type Bar } from './bar.js';
import { AistockError } from '../common/errors.js';
import { zoneOffsets, type ZoneOffsetTable } from './zoneOffsets.js';

/**
 * Timeframes and bucket alignment. Buckets follow the wall clock of a zone, not UTC:
 *
 * - an intraday bucket (`5s` … `4h`) is a wall-clock interval `[B, B + tf)` with `B` a
 *   multiple of `tf` after local midnight, shifted by the optional session anchor (`09:30`
 *   makes 1h buckets start at 09:30, 10:30, …);
 * - a `1d` bucket is the local calendar day: 23 h or 25 h long on DST days;
 * - a bucket's UTC start is the latest instant at or before the bar at which the wall clock
 *   read `B`. So a fall-back hour that repeats gives two 1h buckets with distinct UTC starts,
 *   and a bucket whose wall-clock start was skipped (spring-forward, or Lord Howe's 30-minute
 *   jump) starts at the jump.
 *
 * A bar belongs to the bucket that holds its start `ts`.
 */

/** The supported timeframes, shortest first. */
export const TIMEFRAMES = ['5s', '30s', '1m', '5m', '15m', '30m', '1h', '4h', '1d'] as const;

/** A timeframe name, as written on the command line and in config. */
export const TimeframeSchema = z.enum(TIMEFRAMES);

/** One of {@link TIMEFRAMES}. */
export type Timeframe = z.infer<typeof TimeframeSchema>;

/** A bar aggregated into (or read as) a timeframe. */
export type TimeframeBar = Bar & { readonly timeframe: Timeframe };

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Nominal length of each timeframe in ms (`1d` is 24 h; a local day may be 23 or 25 h). */
export const TIMEFRAME_MS: Readonly<Record<Timeframe, number>> = {
  '5s': 5_000,
  '30s': 30_000,
  '1m': MINUTE_MS,
  '5m': 5 * MINUTE_MS,
  '15m': 15 * MINUTE_MS,
  '30m': 30 * MINUTE_MS,
  '1h': HOUR_MS,
  '4h': 4 * HOUR_MS,
  '1d': DAY_MS,
};

/** Whether bars of `base` can be aggregated into `target`: `target` is a whole multiple of `base`. */
export function divides(base: Timeframe, target: Timeframe): boolean {
  return TIMEFRAME_MS[target] % TIMEFRAME_MS[base] === 0;
}

/** A session anchor `HH:MM` (local wall clock), e.g. `09:30` for US equities. */
export const SessionAnchorSchema = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a session anchor is HH:MM, 00:00..23:59');

/** A compiled bucketing rule: one timeframe in one zone with one anchor. Build with {@link bucketRule}. */
export interface BucketRule {
  readonly timeframe: Timeframe;
  readonly zone: ZoneOffsetTable;
  /** Bucket length on the wall clock. */
  readonly lengthMs: number;
  /** Where intraday buckets start, as ms after local midnight modulo `lengthMs` (0 for `1d`). */
  readonly anchorMs: number;
}

/**
 * Compiles `timeframe` in `zone` with an optional `HH:MM` anchor. The anchor only moves
 * intraday buckets; `1d` is always the local calendar day. Throws `RangeError` for an
 * unknown zone or a malformed anchor (validate config with the schemas first).
 */
export function bucketRule(timeframe: Timeframe, zone: string, anchor?: string | null): BucketRule {
  const lengthMs = TIMEFRAME_MS[timeframe];
  let anchorMs = 0;
  if (anchor !== undefined && anchor !== null && timeframe !== '1d') {
    if (!SessionAnchorSchema.safeParse(anchor).success) throw new RangeError(`session anchor "${anchor}" is not HH:MM`);
    const minutes = Number(anchor.slice(0, 2)) * 60 + Number(anchor.slice(3, 5));
    anchorMs = (minutes * MINUTE_MS) % lengthMs;
  }
  return { timeframe, zone: zoneOffsets(zone), lengthMs, anchorMs };
}

/** The UTC start of the bucket holding instant `ts` (see the module comment). */
export function bucketStart(ts: number, timeframe: Timeframe, zone: string, anchor?: string | null): number {
  return startOf(bucketRule(timeframe, zone, anchor), ts);
}

/**
 * Instants the zone tables cover: the bar range (`MIN_BAR_TS` .. `MAX_BAR_TS`). Outside it, a
 * zone's segments run out and a search would not end, so it is refused instead (bars outside
 * it are refused by `barDefect` before they get here).
 */
function assertInRange(ts: number): void {
  if (!(ts >= MIN_BAR_TS && ts < MAX_BAR_TS)) throw new TimestampOutOfRangeError(ts);
}

/** An instant outside 1900-01-01 .. 2200-01-01 UTC was given to a bucket computation (a caller's bug). */
export class TimestampOutOfRangeError extends AistockError {
  constructor(ts: number) {
    super('TIMESTAMP_OUT_OF_RANGE', `${ts} is outside 1900-01-01 .. 2200-01-01 UTC`);
  }
}

/** The UTC `[start, end)` of the bucket holding `ts`; `end` is the next bucket's start. */
export function bucketBounds(rule: BucketRule, ts: number): { start: number; end: number } {
  const start = startOf(rule, ts);
  return { start, end: endOf(rule, ts, start) };
}

/** The UTC end of the bucket holding `ts`, whose start is `start` (the hot path: no object per call). */
export function endOf(rule: BucketRule, ts: number, start: number): number {
  let segment = rule.zone.segmentAt(ts);
  const wallStart = alignWall(rule, ts + segment.offsetMs);
  for (;;) {
    const end = wallStart + rule.lengthMs - segment.offsetMs;
    if (end < segment.end) return end;
    // The bucket's wall-clock end lies past an offset change: the next segment either
    // starts a new bucket (the change skipped or repeated our end) or continues this one.
    const next = rule.zone.segmentAt(segment.end);
    if (startOf(rule, next.start) !== start) return next.start;
    segment = next;
  }
}

/** The UTC start of the bucket holding `ts`, for a compiled rule (the hot path). */
export function startOf(rule: BucketRule, ts: number): number {
  assertInRange(ts);
  let segment = rule.zone.segmentAt(ts);
  const wallStart = alignWall(rule, ts + segment.offsetMs);
  for (;;) {
    const start = wallStart - segment.offsetMs;
    if (start >= segment.start) return start;
    // The wall-clock start lies before this offset took effect: it happened in the previous
    // segment, unless the clock jumped over it, in which case the bucket starts at the jump.
    const previous = rule.zone.segmentAt(segment.start - 1);
    if (wallStart - previous.offsetMs >= segment.start) return segment.start;
    segment = previous;
  }
}

function alignWall(rule: BucketRule, wallMs: number): number {
  const { lengthMs, anchorMs } = rule;
  return Math.floor((wallMs - anchorMs) / lengthMs) * lengthMs + anchorMs;
}
