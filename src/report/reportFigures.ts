import { formatDecimal, ratioOf, RATIO_DECIMALS, type Money, type Ratio } from '../common/money.js';
import { keyed } from '../common/keyed.js';
import type { TradingState } from '../risk/risk.js';

/**
 * The report's figures that are not about the curve or the trades: return, the risk state's
 * timeline, denials and rejected bars counted by reason. Pure functions over recorded values.
 */

/**
 * The total return on the starting cash: (equity − net deposits − initial cash) / initial cash,
 * exact to 1e-8 (half-even); null when the starting cash is not positive.
 */
export function totalReturn(initialCash: Money, equity: Money, netDeposits: Money = 0n): Ratio | null {
  return initialCash > 0n ? ratioOf(equity - netDeposits - initialCash, initialCash) : null;
}

/** A ratio as a signed percentage with two decimals (half-even): `"+0.02%"`, `"-1.25%"`, `"0.00%"`. */
export function formatSignedPercent(ratio: Ratio): string {
  const text = formatDecimal(ratio * 100n, RATIO_DECIMALS, 2);
  return `${ratio > 0n && /[1-9]/.test(text) ? '+' : ''}${text}%`;
}

/** A change of the risk engine's trading state, at a bar time. */
export interface RiskChange {
  readonly at: number;
  readonly state: TradingState;
  /** `CODE: detail` of each reason held (halt reasons, or the reduce reason). */
  readonly reasons: readonly string[];
}

/** A stretch of bar time the risk engine spent in one state. */
export interface RiskInterval {
  readonly state: TradingState;
  readonly from: number;
  readonly to: number;
  readonly reasons: readonly string[];
}

/**
 * The risk state's timeline over `span`: it starts in `initial`, each change (taken in bar-time
 * order, the given order among equal times) ends the interval before it, and a change to the
 * state already held only updates its reasons — so a change recorded twice (a resumed run
 * re-deciding bars after a crash) adds nothing. Changes outside the span widen it.
 */
export function riskIntervals(initial: TradingState, changes: readonly RiskChange[], span: { from: number; to: number }): RiskInterval[] {
  const sorted = changes.map((change, index) => ({ change, index })).sort((a, b) => a.change.at - b.change.at || a.index - b.index);
  const from = sorted.reduce((earliest, { change }) => Math.min(earliest, change.at), span.from);
  const to = sorted.reduce((latest, { change }) => Math.max(latest, change.at), span.to);
  const intervals: RiskInterval[] = [];
  let current: RiskInterval = { state: initial, from, to, reasons: [] };
  for (const { change } of sorted) {
    if (change.state === current.state) {
      current = { ...current, reasons: change.reasons };
      continue;
    }
    if (change.at > current.from) intervals.push({ ...current, to: change.at });
    current = { state: change.state, from: change.at, to, reasons: change.reasons };
  }
  intervals.push({ ...current, to });
  return intervals;
}

/** A denied intent as recorded: its client order id and the codes of its reasons. */
export interface DenialRecord {
  readonly id: string;
  readonly codes: readonly string[];
}

/** Denied intents, and denials by the code of each reason (an intent denied for two reasons counts under both). */
export interface DenialCounts {
  readonly denied: number;
  readonly byReason: Record<string, number>;
}

/**
 * Counts denials once per client order id: ids are deterministic, so a bar re-decided after a
 * crash denies the same id again, and that is not a second denial.
 */
export function countDenials(records: readonly DenialRecord[]): DenialCounts {
  const seen = new Set<string>();
  const byReason = keyed<number>();
  for (const record of records) {
    if (seen.has(record.id)) continue;
    seen.add(record.id);
    for (const code of record.codes) byReason[code] = (byReason[code] ?? 0) + 1;
  }
  return { denied: seen.size, byReason };
}

/** One run's rows that the bar reader rejected (bad lines), and the file it read. */
export interface InputRejections {
  /** The file's identity (path, size, modification time); null when unknown. */
  readonly file: { readonly path: string; readonly size: number; readonly mtimeMs: number } | null;
  readonly byReason: Readonly<Record<string, number>>;
}

/**
 * Rows the reader rejected, over runs: a resumed run reads its whole file again, so runs that
 * read the same path count its bad rows once (the most any of them counted: a file that grew
 * between runs still holds the rows an earlier run saw); runs over different files add up.
 */
export function countInputRejections(runs: readonly InputRejections[]): Record<string, number> {
  const byFile = new Map<string, Record<string, number>>();
  runs.forEach((run, index) => {
    const key = run.file === null ? `unknown:${index}` : `path:${run.file.path}`;
    const counts = byFile.get(key) ?? keyed<number>();
    byFile.set(key, counts);
    for (const [reason, n] of Object.entries(run.byReason)) counts[reason] = Math.max(counts[reason] ?? 0, n);
  });
  return addCounts(...byFile.values());
}

/** Counts by reason added up. */
export function addCounts(...counts: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const total = keyed<number>();
  for (const record of counts) for (const [reason, n] of Object.entries(record)) total[reason] = (total[reason] ?? 0) + n;
  return total;
}
