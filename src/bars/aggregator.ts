import { z } from 'zod';
import { SymbolMap, symbolMapSchema } from '../common/keyed.js';
import type { Bar } from './bar.js';
import {
  SessionAnchorSchema,
  TIMEFRAME_MS,
  TimeframeSchema,
  bucketRule,
  endOf,
  startOf,
  divides,
  type BucketRule,
  type Timeframe,
  type TimeframeBar,
} from './timeframe.js';
import { isKnownZone } from './zoneOffsets.js';

/**
 * Multi-timeframe aggregation (AIStock's TimeframeManager, but it really aggregates).
 *
 * The state is plain data: per symbol, the last bar time seen and one open bucket per
 * timeframe. It is checkpointed as is ({@link AggregatorStateSchema}), so a restart loses
 * no partial bar. A bucket closes, and is returned in `closed`, when:
 * - the first bar of a later bucket arrives;
 * - with `baseTimeframe` set, a bar covering the bucket's last base interval arrives
 *   (the 09:34 1m bar completes the 09:30 5m bar, so it need not wait for 09:35);
 * - {@link flush} is called (end of data).
 * A bar at or before the symbol's last bar time is late and changes nothing; a bar that falls
 * in a bucket already closed (early or by flush) is left out of that bucket. Both count in
 * `lateBars` (the data guard rejects such bars before they get here).
 */

/** What to aggregate into, and how buckets align. */
export const AggregatorConfigSchema = z
  .object({
    /** IANA zone whose wall clock buckets follow (default America/New_York). */
    zone: z.string().refine(isKnownZone, 'unknown IANA time zone').default('America/New_York'),
    timeframes: z.array(TimeframeSchema).min(1),
    /** `HH:MM` where intraday buckets start (e.g. 09:30), or null for midnight. */
    sessionAnchor: SessionAnchorSchema.nullable().default(null),
    /** The timeframe of incoming bars, when known: enables early close; must divide every target. */
    baseTimeframe: TimeframeSchema.nullable().default(null),
  })
  .superRefine((config, ctx) => {
    const base = config.baseTimeframe;
    if (base === null) return;
    for (const timeframe of config.timeframes) {
      if (!divides(base, timeframe)) {
        ctx.addIssue({ code: 'custom', path: ['timeframes'], message: `${base} bars cannot be aggregated into ${timeframe}` });
      }
    }
  });

/** Aggregator config, as accepted (defaults optional). */
export type AggregatorConfigInput = z.input<typeof AggregatorConfigSchema>;

/** Aggregator config with defaults applied. */
export type AggregatorConfig = z.infer<typeof AggregatorConfigSchema>;

const BucketSchema = z.object({
  start: z.number(),
  end: z.number(),
  open: z.number(),
  high: z.number(),
  low: z.number(),
  close: z.number(),
  volume: z.number(),
  /** Already returned as closed (early close or flush); later bars of it are late. */
  complete: z.boolean(),
});

/** One timeframe's bucket for one symbol. */
export type Bucket = z.infer<typeof BucketSchema>;

const SymbolBucketsSchema = z.object({
  lastTs: z.number(),
  /** One entry per `config.timeframes`, in that order; null before the first bar. */
  buckets: z.array(BucketSchema.nullable()),
});

/** Per-symbol aggregation state. */
export type SymbolBuckets = z.infer<typeof SymbolBucketsSchema>;

/** The aggregator's whole state, checkpointable. */
export const AggregatorStateSchema = z.object({
  config: AggregatorConfigSchema,
  symbols: symbolMapSchema(SymbolBucketsSchema),
  lateBars: z.number().int().nonnegative(),
});

/** The aggregator's whole state (plain data). */
export type AggregatorState = z.infer<typeof AggregatorStateSchema>;

/** What one call produced: the next state and the bars that closed, in arrival order. */
export interface AggregateResult {
  readonly state: AggregatorState;
  readonly closed: TimeframeBar[];
  /** For each of `closed`, the index (in the bars given) of the bar whose arrival closed it. */
  readonly closedBy: number[];
}

/** An empty aggregator. Throws a `ZodError` for an invalid config. */
export function createAggregator(config: AggregatorConfigInput): AggregatorState {
  return { config: AggregatorConfigSchema.parse(config), symbols: new SymbolMap(), lateBars: 0 };
}

/** Compiled rules per config object; configs are immutable, so identity is a safe key. */
const rulesCache = new WeakMap<AggregatorConfig, BucketRule[]>();

function rulesFor(config: AggregatorConfig): BucketRule[] {
  let rules = rulesCache.get(config);
  if (rules === undefined) {
    rules = config.timeframes.map((timeframe) => bucketRule(timeframe, config.zone, config.sessionAnchor));
    rulesCache.set(config, rules);
  }
  return rules;
}

/** A bucket's fields spelled out, not spread: buckets from a checkpoint and from here differ in shape, and a spread of mixed shapes is V8's slow generic copy. */
function copyBucket(bucket: Bucket | null): Bucket | null {
  if (bucket === null) return null;
  const { start, end, open, high, low, close, volume, complete } = bucket;
  return { start, end, open, high, low, close, volume, complete };
}

/**
 * Adds `bars` (in time order per symbol) to the open buckets. Pure: `state` is not changed;
 * the result shares untouched symbols with it and copies the touched ones once per call.
 */
export function aggregate(state: AggregatorState, bars: readonly Bar[]): AggregateResult {
  const { config } = state;
  const rules = rulesFor(config);
  const timeframes = config.timeframes;
  const baseMs = config.baseTimeframe === null ? 0 : TIMEFRAME_MS[config.baseTimeframe];
  const symbols = SymbolMap.copyOf(state.symbols);
  const closed: TimeframeBar[] = [];
  const closedBy: number[] = [];
  let lateBars = state.lateBars;

  for (let index = 0; index < bars.length; index += 1) {
    const bar = bars[index] as Bar;
    let entry = symbols.get(bar.symbol);
    if (entry === undefined) {
      entry = { lastTs: bar.ts, buckets: timeframes.map(() => null) };
      symbols.set(bar.symbol, entry);
    } else {
      // Copied once per call: an entry still identical to the input's is not copied yet.
      if (entry === state.symbols.get(bar.symbol)) {
        entry = { lastTs: entry.lastTs, buckets: entry.buckets.map(copyBucket) };
        symbols.set(bar.symbol, entry);
      }
      if (bar.ts <= entry.lastTs) {
        lateBars += 1;
        continue;
      }
      entry.lastTs = bar.ts;
    }
    let inClosedBucket = false;
    const buckets = entry.buckets;
    for (let i = 0; i < rules.length; i += 1) {
      let bucket = buckets[i] ?? null;
      if (bucket !== null && bar.ts < bucket.end) {
        if (bucket.complete) {
          inClosedBucket = true;
          continue;
        }
        bucket.high = Math.max(bucket.high, bar.high);
        bucket.low = Math.min(bucket.low, bar.low);
        bucket.close = bar.close;
        bucket.volume += bar.volume;
      } else {
        if (bucket !== null && !bucket.complete) {
          closed.push(toBar(bar.symbol, timeframes[i], bucket));
          closedBy.push(index);
        }
        const rule = rules[i];
        if (rule === undefined) continue;
        const start = startOf(rule, bar.ts);
        const end = endOf(rule, bar.ts, start);
        if (bucket === null) {
          bucket = { start, end, open: bar.open, high: bar.high, low: bar.low, close: bar.close, volume: bar.volume, complete: false };
          buckets[i] = bucket;
        } else {
          // The entry was copied in this call, so its buckets are this call's own: the next
          // bucket reuses the object (closed bars were copied out by toBar) — one less allocation per bar and timeframe.
          bucket.start = start;
          bucket.end = end;
          bucket.open = bar.open;
          bucket.high = bar.high;
          bucket.low = bar.low;
          bucket.close = bar.close;
          bucket.volume = bar.volume;
          bucket.complete = false;
        }
      }
      if (baseMs > 0 && bar.ts + baseMs >= bucket.end) {
        closed.push(toBar(bar.symbol, timeframes[i], bucket));
        closedBy.push(index);
        bucket.complete = true;
      }
    }
    if (inClosedBucket) lateBars += 1;
  }
  return { state: { config, symbols, lateBars }, closed, closedBy };
}

/** Closes every open bucket (end of data). Later bars of a flushed bucket count as late. */
export function flush(state: AggregatorState): Omit<AggregateResult, 'closedBy'> {
  const closed: TimeframeBar[] = [];
  const symbols = new SymbolMap<SymbolBuckets>();
  for (const [symbol, entry] of state.symbols) {
    symbols.set(symbol, {
      lastTs: entry.lastTs,
      buckets: entry.buckets.map((bucket, i) => {
        if (bucket === null || bucket.complete) return bucket;
        closed.push(toBar(symbol, state.config.timeframes[i], bucket));
        return { ...bucket, complete: true };
      }),
    });
  }
  return { state: { ...state, symbols }, closed };
}

/** The buckets still open (partial bars), e.g. to show progress; nothing is closed. */
export function openBars(state: AggregatorState): TimeframeBar[] {
  const open: TimeframeBar[] = [];
  for (const [symbol, entry] of state.symbols) {
    entry.buckets.forEach((bucket, i) => {
      if (bucket !== null && !bucket.complete) open.push(toBar(symbol, state.config.timeframes[i], bucket));
    });
  }
  return open;
}

function toBar(symbol: string, timeframe: Timeframe | undefined, bucket: Bucket): TimeframeBar {
  if (timeframe === undefined) throw new RangeError('bucket without a timeframe: state does not match its config');
  const { start, open, high, low, close, volume } = bucket;
  return { symbol, timeframe, ts: start, open, high, low, close, volume };
}
