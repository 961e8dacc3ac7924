import { z } from 'zod';
import { SymbolMap, symbolMapSchema } from '../common/keyed.js';
import { barDefect, type Bar } from '../bars/bar.js';

/**
 * The data guard (AIStock's EdgeCaseHandler): a verdict for every bar, per symbol.
 *
 * | reason | action | when |
 * |---|---|---|
 * | `INVALID_SYMBOL`, `TIMESTAMP_OUT_OF_RANGE`, `NOT_A_NUMBER`, `NON_POSITIVE_PRICE`, `HIGH_BELOW_LOW`, `OUTSIDE_HIGH_LOW`, `NEGATIVE_VOLUME`, `VOLUME_OUT_OF_RANGE` | block | not a bar ({@link barDefect}) |
 * | `DUPLICATE_TIMESTAMP` | block | same `ts` as the symbol's last accepted bar |
 * | `OUT_OF_ORDER` | block | older than the symbol's last accepted bar |
 * | `STALE` | block | it ended more than `maxStalenessMs` before it was received (live only) |
 * | `EXTREME_RANGE` | block (or warn, configurable) | `high − low` > `extremeRangeFraction` × midpoint |
 * | `GAP` | warn | bars are missing since the last one (a pause ≥ `sessionBreakMs` is a closed market, not a gap) |
 * | `LOW_VOLUME` | reduceSize | average volume of the last `window` bars < `minAverage` |
 *
 * Checks run in that order; the first blocking reason rejects the bar (it goes no further
 * and is counted under that reason); warnings and size reductions let it pass and are
 * counted as flagged. The session never stops on bad data: it only counts it.
 *
 * Staleness needs the time the bar was received. Live feeds pass it (from the injected
 * clock); a replay passes none, which turns the check off.
 */

/** Every reason the guard can give, in check order. */
export const GUARD_REASONS = [
  'INVALID_SYMBOL',
  'TIMESTAMP_OUT_OF_RANGE',
  'NOT_A_NUMBER',
  'NON_POSITIVE_PRICE',
  'HIGH_BELOW_LOW',
  'OUTSIDE_HIGH_LOW',
  'NEGATIVE_VOLUME',
  'VOLUME_OUT_OF_RANGE',
  'DUPLICATE_TIMESTAMP',
  'OUT_OF_ORDER',
  'STALE',
  'EXTREME_RANGE',
  'GAP',
  'LOW_VOLUME',
] as const;

/** A guard reason code. */
export const GuardReasonSchema = z.enum(GUARD_REASONS);

/** One of {@link GUARD_REASONS}. */
export type GuardReason = z.infer<typeof GuardReasonSchema>;

/** What to do with a bar: pass it, pass it with a warning, pass it at reduced size, or reject it. */
export type GuardAction = 'allow' | 'warn' | 'reduceSize' | 'block';

/** A non-`allow` verdict on one bar. */
export interface GuardFinding {
  readonly symbol: string;
  readonly ts: number;
  readonly action: Exclude<GuardAction, 'allow'>;
  readonly reason: GuardReason;
  readonly detail: string;
}

/** The guard's thresholds. */
export const DataGuardConfigSchema = z.object({
  /** Expected time between bars (the base timeframe), for GAP and bar end; null turns GAP off. */
  barIntervalMs: z.number().int().positive().nullable().default(60_000),
  /** A pause at least this long is a market closure (overnight, weekend), not a gap. */
  sessionBreakMs: z.number().int().positive().default(4 * 3_600_000),
  /** A bar that ended longer ago than this when received is stale; null turns STALE off. */
  maxStalenessMs: z.number().int().positive().nullable().default(600_000),
  /** A range above this fraction of the midpoint is extreme (0.15 = 15 %); null turns it off. */
  extremeRangeFraction: z.number().positive().nullable().default(0.15),
  /** What an extreme range does: reject the bar (default, as AIStock did) or pass it with a warning. */
  extremeRangeAction: z.enum(['block', 'warn']).default('block'),
  /** Low-volume detection; null turns it off (e.g. FX, whose bars carry volume 0). */
  lowVolume: z
    .object({
      window: z.number().int().positive().default(10),
      minAverage: z.number().nonnegative().default(100),
      /** The size multiplier a low-volume bar implies. */
      sizeFactor: z.number().min(0).max(1).default(0.3),
    })
    .nullable()
    .default({ window: 10, minAverage: 100, sizeFactor: 0.3 }),
});

/** Guard config, as accepted (defaults optional). */
export type DataGuardConfigInput = z.input<typeof DataGuardConfigSchema>;

/** Guard config with defaults applied. */
export type DataGuardConfig = z.infer<typeof DataGuardConfigSchema>;

const SymbolGuardSchema = z.object({
  /** `ts` of the last accepted bar. */
  lastTs: z.number(),
  /** Volumes of the last accepted bars, oldest first, at most `lowVolume.window`. */
  recentVolumes: z.array(z.number()),
  /** The size multiplier the last accepted bar implies (1 unless it was flagged reduceSize). */
  sizeFactor: z.number(),
  accepted: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
});

/** What the guard remembers about one symbol. */
export type SymbolGuard = z.infer<typeof SymbolGuardSchema>;

const countsSchema = z.partialRecord(GuardReasonSchema, z.number().int().nonnegative());

/** The guard's whole state, checkpointable. */
export const GuardStateSchema = z.object({
  config: DataGuardConfigSchema,
  symbols: symbolMapSchema(SymbolGuardSchema),
  accepted: z.number().int().nonnegative(),
  /** Bars rejected, by reason. */
  rejected: countsSchema,
  /** Bars passed with a warning or a size reduction, by reason. */
  flagged: countsSchema,
});

/** The guard's whole state (plain data). */
export type GuardState = z.infer<typeof GuardStateSchema>;

/** What screening a batch produced. */
export interface ScreenResult {
  readonly state: GuardState;
  /** The bars that were not blocked, in input order. */
  readonly passed: Bar[];
  /** Every non-`allow` verdict, in input order. */
  readonly findings: GuardFinding[];
}

/** A fresh guard. Throws a `ZodError` for an invalid config. */
export function createDataGuard(config: DataGuardConfigInput = {}): GuardState {
  return { config: DataGuardConfigSchema.parse(config), symbols: new SymbolMap(), accepted: 0, rejected: {}, flagged: {} };
}

type GuardCounts = GuardState['rejected'];

/** `counts` with one more `reason`; still the batch's input (`original`), it is copied first. */
function countedOnce(counts: GuardCounts, original: GuardCounts, reason: GuardReason): GuardCounts {
  const own = counts === original ? { ...original } : counts;
  own[reason] = (own[reason] ?? 0) + 1;
  return own;
}

/**
 * Screens a batch of bars. `receivedAtMs` is when the batch arrived (wall clock, UTC ms);
 * omit it in replay. Pure: `state` is not changed.
 */
export function screenBars(state: GuardState, bars: readonly Bar[], receivedAtMs: number | null = null): ScreenResult {
  const { config } = state;
  const symbols = SymbolMap.copyOf(state.symbols);
  // Copied only when a bar is counted in them (most batches count none).
  let rejected = state.rejected;
  let flagged = state.flagged;
  const passed: Bar[] = [];
  const findings: GuardFinding[] = [];
  let accepted = state.accepted;

  for (const bar of bars) {
    let entry = symbols.get(bar.symbol);
    // Each touched entry is copied once: one still identical to the input's is not copied yet.
    if (entry !== undefined && entry === state.symbols.get(bar.symbol)) {
      const { lastTs, recentVolumes, sizeFactor, accepted: entryAccepted, rejected: entryRejected } = entry;
      entry = { lastTs, recentVolumes: [...recentVolumes], sizeFactor, accepted: entryAccepted, rejected: entryRejected };
      symbols.set(bar.symbol, entry);
    }
    const block = blockingFinding(config, entry, bar, receivedAtMs);
    if (block !== null) {
      findings.push(block);
      rejected = countedOnce(rejected, state.rejected, block.reason);
      if (entry !== undefined) entry.rejected += 1;
      else symbols.set(bar.symbol, { lastTs: Number.MIN_SAFE_INTEGER, recentVolumes: [], sizeFactor: 1, accepted: 0, rejected: 1 });
      continue;
    }
    if (entry === undefined) {
      entry = { lastTs: Number.MIN_SAFE_INTEGER, recentVolumes: [], sizeFactor: 1, accepted: 0, rejected: 0 };
      symbols.set(bar.symbol, entry);
    }
    let sizeFactor = 1;
    const extreme = config.extremeRangeAction === 'warn' ? extremeRange(config, bar) : null;
    if (extreme !== null) {
      findings.push(extreme);
      flagged = countedOnce(flagged, state.flagged, 'EXTREME_RANGE');
    }
    const gap = gapFinding(config, entry, bar);
    if (gap !== null) {
      findings.push(gap);
      flagged = countedOnce(flagged, state.flagged, 'GAP');
    }
    const lowVolume = config.lowVolume;
    if (lowVolume !== null) {
      const volumes = entry.recentVolumes;
      volumes.push(bar.volume);
      while (volumes.length > lowVolume.window) volumes.shift();
      if (volumes.length === lowVolume.window) {
        let sum = 0;
        for (const volume of volumes) sum += volume;
        const average = sum / volumes.length;
        if (average < lowVolume.minAverage) {
          findings.push({
            symbol: bar.symbol,
            ts: bar.ts,
            action: 'reduceSize',
            reason: 'LOW_VOLUME',
            detail: `average volume ${average} of the last ${volumes.length} bars < ${lowVolume.minAverage}`,
          });
          flagged = countedOnce(flagged, state.flagged, 'LOW_VOLUME');
          sizeFactor = lowVolume.sizeFactor;
        }
      }
    }
    entry.lastTs = bar.ts;
    entry.sizeFactor = sizeFactor;
    entry.accepted += 1;
    accepted += 1;
    passed.push(bar);
  }
  return { state: { config, symbols, accepted, rejected, flagged }, passed, findings };
}

/** The size multiplier the symbol's latest accepted bar implies (1 for a symbol never seen). */
export function sizeFactorOf(state: GuardState, symbol: string): number {
  return state.symbols.get(symbol)?.sizeFactor ?? 1;
}

/** Total bars rejected, over all reasons. */
export function rejectedTotal(state: GuardState): number {
  let total = 0;
  for (const count of Object.values(state.rejected)) total += count ?? 0;
  return total;
}

function blockingFinding(config: DataGuardConfig, entry: SymbolGuard | undefined, bar: Bar, receivedAtMs: number | null): GuardFinding | null {
  const defect = barDefect(bar);
  if (defect !== null) return { symbol: bar.symbol, ts: bar.ts, action: 'block', reason: defect.problem, detail: defect.detail };
  if (entry !== undefined && bar.ts <= entry.lastTs) {
    const reason = bar.ts === entry.lastTs ? 'DUPLICATE_TIMESTAMP' : 'OUT_OF_ORDER';
    const relation = bar.ts === entry.lastTs ? 'repeats' : 'is before';
    const detail = `${isoTime(bar.ts)} ${relation} the last accepted bar at ${isoTime(entry.lastTs)}`;
    return { symbol: bar.symbol, ts: bar.ts, action: 'block', reason, detail };
  }
  if (receivedAtMs !== null && config.maxStalenessMs !== null) {
    const ageMs = receivedAtMs - (bar.ts + (config.barIntervalMs ?? 0));
    if (ageMs > config.maxStalenessMs) {
      const detail = `bar ended ${ageMs} ms before it was received (limit ${config.maxStalenessMs} ms)`;
      return { symbol: bar.symbol, ts: bar.ts, action: 'block', reason: 'STALE', detail };
    }
  }
  return config.extremeRangeAction === 'block' ? extremeRange(config, bar) : null;
}

function extremeRange(config: DataGuardConfig, bar: Bar): GuardFinding | null {
  if (config.extremeRangeFraction === null) return null;
  const midpoint = (bar.high + bar.low) / 2;
  const fraction = (bar.high - bar.low) / midpoint;
  if (fraction <= config.extremeRangeFraction) return null;
  const detail = `range ${(fraction * 100).toFixed(2)} % of midpoint ${midpoint} > ${config.extremeRangeFraction * 100} %`;
  return { symbol: bar.symbol, ts: bar.ts, action: config.extremeRangeAction, reason: 'EXTREME_RANGE', detail };
}

function gapFinding(config: DataGuardConfig, entry: SymbolGuard, bar: Bar): GuardFinding | null {
  const interval = config.barIntervalMs;
  if (interval === null || entry.accepted === 0) return null;
  const pauseMs = bar.ts - entry.lastTs;
  if (pauseMs <= interval || pauseMs >= config.sessionBreakMs) return null;
  const missing = Math.round(pauseMs / interval) - 1;
  if (missing < 1) return null;
  const detail = `${missing} bar(s) missing between ${isoTime(entry.lastTs)} and ${isoTime(bar.ts)}`;
  return { symbol: bar.symbol, ts: bar.ts, action: 'warn', reason: 'GAP', detail };
}

function isoTime(ts: number): string {
  return new Date(ts).toISOString();
}
