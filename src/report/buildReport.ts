import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { readStateDirLedger, type LedgerContents } from '../broker/paperBrokerLedger.js';
import { AistockError, describeError } from '../common/errors.js';
import { parseMoney, type Money, type Price, type Ratio } from '../common/money.js';
import type { Fill } from '../common/order.js';
import { restorePortfolio, valuation, PortfolioSnapshotSchema, type Portfolio } from '../portfolio/portfolio.js';
import type { TradingState } from '../risk/risk.js';
import { CHECKPOINT_SCHEMA_VERSION } from '../checkpointer/checkpointStore.js';
import { lockStateDir } from '../stateDir/stateDirLock.js';
import { checkEnvelope, errnoCode } from '../stateDir/stateFile.js';
import { maxDrawdown, maxExposure, type CurvePoint, type MaxDrawdown, type MaxExposure } from './equityCurve.js';
import {
  addCounts,
  countDenials,
  countInputRejections,
  riskIntervals,
  totalReturn,
  type DenialCounts,
  type RiskChange,
  type RiskInterval,
} from './reportFigures.js';
import { readRecording, type Recording, type RunLine } from './reportStore.js';
import { fifoRoundTrips, symbolPnl, type RoundTripBook, type SymbolPnl } from './roundTrips.js';

/**
 * Everything a report shows, read from a state dir: the session's own state (the checkpoint:
 * the account, its marks, the data guard's counts), the broker's ledger (every fill), and what
 * `aistock replay` recorded for the report (reportStore.ts). Money as scaled bigints.
 */
export interface ReportData {
  readonly stateDir: string;
  /** Wall time the report was made (epoch ms). */
  readonly generatedAt: number;
  readonly runs: readonly RunRow[];
  /** The account now; null when neither the checkpoint nor a run's summary can say. */
  readonly account: Account | null;
  readonly totalReturn: Ratio | null;
  /** The recorded curve: one point per bar time (the last recorded), in recorded order. */
  readonly curve: readonly CurvePoint[];
  /** The curve's bucket width (points closer than this were decimated); null without a recording. */
  readonly bucketMs: number | null;
  readonly maxDrawdown: MaxDrawdown | null;
  readonly maxExposure: MaxExposure | null;
  readonly fills: number;
  readonly book: RoundTripBook;
  readonly symbols: readonly SymbolPnl[];
  readonly denials: DenialCounts;
  readonly barsRejected: Readonly<Record<string, number>>;
  readonly risk: readonly RiskInterval[];
  /** What the report could not read or had to leave out, in words. */
  readonly notes: readonly string[];
}

/** The account the report shows. */
export interface Account {
  readonly initialCash: Money;
  readonly cash: Money;
  readonly equity: Money;
  readonly netDeposits: Money;
  readonly grossExposure: Money | null;
  /** Where it comes from: the checkpoint (the state a resume starts from) or the last run's summary. */
  readonly source: 'checkpoint' | 'summary';
}

/** One run of `aistock replay` on the state dir. */
export interface RunRow {
  readonly run: number;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly file: string | null;
  readonly startEquity: string;
  readonly endEquity: string | null;
  readonly ordersSubmitted: number | null;
  readonly fills: number | null;
  readonly denied: number | null;
}

/** The state dir is missing or not a directory. */
export class ReportStateDirError extends AistockError {
  constructor(stateDir: string, detail: string) {
    super('REPORT_STATE_DIR', `${stateDir}: ${detail}`);
  }
}

/** What the report reads of a checkpoint's data: the account and the data guard's counts. */
const CheckpointViewSchema = z.object({
  portfolio: PortfolioSnapshotSchema,
  pipeline: z.object({ guard: z.object({ rejected: z.record(z.string(), z.number().int().nonnegative()) }) }),
});

/** What the report reads of a run's `end` line summary; a summary without it leaves the run's figures (or the account) unknown. */
const RunEndSummarySchema = z.object({
  portfolio: z.object({ initialCash: z.string(), cash: z.string(), equity: z.string() }),
  orders: z.object({ submitted: z.number(), denied: z.number() }),
  fills: z.number(),
});

interface CheckpointView {
  portfolio: Portfolio;
  guardRejected: Record<string, number>;
}

/**
 * Where a report reads the session's broker ledger and checkpoint: the state dir's files by
 * default; a session on a store (`--store`) keeps both there (see `openPostgresAudit`).
 */
export interface ReportSources {
  /** The broker ledger, every fill included. */
  ledger(): Promise<LedgerContents>;
  /** The checkpoint's envelope text; null when there is none. */
  checkpoint(): Promise<string | null>;
}

/** The state dir's own files: `<stateDir>/broker` and `<stateDir>/checkpoint.json`. */
function stateDirSources(stateDir: string): ReportSources {
  return {
    ledger: async () => {
      // Every session on files makes it at start: none means the ledger is elsewhere, which the report says.
      return readStateDirLedger(stateDir);
    },
    checkpoint: () =>
      readFile(join(stateDir, 'checkpoint.json'), 'utf8').catch((error: unknown) => {
        if (errnoCode(error) === 'ENOENT') return null;
        throw error;
      }),
  };
}

/** The checkpoint, read only (never moved aside: that is the session's call at its next start). */
async function readCheckpoint(sources: ReportSources, notes: string[]): Promise<CheckpointView | null> {
  let text: string | null;
  try {
    text = await sources.checkpoint();
  } catch (error) {
    notes.push(`checkpoint unreadable: ${describeError(error)}`);
    return null;
  }
  if (text === null) {
    notes.push('no checkpoint: the account is the last run’s summary, and open positions are not marked');
    return null;
  }
  // The checkpointer's own check (envelope, version, then the data), without its move aside.
  const verdict = checkEnvelope(text, { schema: CheckpointViewSchema, schemaVersion: CHECKPOINT_SCHEMA_VERSION });
  const unusable = (detail: string): null => {
    notes.push(`checkpoint not usable (${detail.slice(0, 200)}): the account is the last run’s summary`);
    return null;
  };
  if (!verdict.ok) return unusable(`${verdict.reason}: ${verdict.detail}`);
  try {
    return { portfolio: restorePortfolio(verdict.data.portfolio), guardRejected: verdict.data.pipeline.guard.rejected };
  } catch (error) {
    // A snapshot that parses but breaks the portfolio's invariants.
    return unusable(describeError(error));
  }
}

async function readFills(sources: ReportSources, notes: string[]): Promise<Fill[]> {
  try {
    // Every fill, those only an order line carries (a crash cut off their copy) included.
    return (await sources.ledger()).fills;
  } catch (error) {
    notes.push(`broker ledger unreadable (${describeError(error)}): no trades shown`);
    return [];
  }
}

/** The last run summary's portfolio, when a run finished. */
function lastSummaryAccount(runs: readonly RunLine[]): Account | null {
  const end = runs.findLast((line) => line.kind === 'end');
  if (end === undefined || end.kind !== 'end') return null;
  const parsed = RunEndSummarySchema.pick({ portfolio: true }).safeParse(end.summary);
  if (!parsed.success) return null;
  const { initialCash, cash, equity } = parsed.data.portfolio;
  return { initialCash: parseMoney(initialCash), cash: parseMoney(cash), equity: parseMoney(equity), netDeposits: 0n, grossExposure: null, source: 'summary' };
}

/** One point per bar time: a later point at the same time (the rest of that bar time's readings) replaces it. */
function lastPerBarTime(points: readonly CurvePoint[]): CurvePoint[] {
  const kept: CurvePoint[] = [];
  for (const point of points) {
    if (kept.length > 0 && (kept.at(-1) as CurvePoint).at === point.at) kept[kept.length - 1] = point;
    else kept.push(point);
  }
  return kept;
}

function runRows(runs: readonly RunLine[]): RunRow[] {
  const rows = new Map<number, RunRow>();
  for (const line of runs) {
    if (line.kind === 'start') {
      rows.set(line.run, {
        run: line.run,
        startedAt: line.startedAt,
        endedAt: null,
        file: line.file?.path ?? null,
        startEquity: line.equity,
        endEquity: null,
        ordersSubmitted: null,
        fills: null,
        denied: null,
      });
      continue;
    }
    const row = rows.get(line.run);
    if (row === undefined) continue;
    const summary = RunEndSummarySchema.safeParse(line.summary);
    rows.set(line.run, {
      ...row,
      endedAt: line.endedAt,
      endEquity: summary.success ? summary.data.portfolio.equity : null,
      ordersSubmitted: summary.success ? summary.data.orders.submitted : null,
      fills: summary.success ? summary.data.fills : null,
      denied: summary.success ? summary.data.orders.denied : null,
    });
  }
  return [...rows.values()].sort((a, b) => a.run - b.run);
}

/** The figures of a report from what was read (pure). */
export function reportFrom(input: {
  stateDir: string;
  generatedAt: number;
  recording: Recording;
  fills: readonly Fill[];
  checkpoint: CheckpointView | null;
  notes: readonly string[];
}): ReportData {
  const { recording, fills, checkpoint } = input;
  const notes = [...input.notes];
  const portfolio = checkpoint?.portfolio ?? null;
  let account: Account | null = null;
  if (portfolio !== null) {
    const value = valuation(portfolio);
    account = {
      initialCash: portfolio.initialCash,
      cash: value.cash,
      equity: value.equity,
      netDeposits: portfolio.netDeposits,
      grossExposure: value.grossExposure,
      source: 'checkpoint',
    };
  } else account = lastSummaryAccount(recording.runs);
  const multiplierOf = (symbol: string): bigint => portfolio?.contractMultipliers.get(symbol) ?? 1n;
  const book = fifoRoundTrips(fills, multiplierOf);
  const lastPrices: ReadonlyMap<string, Price> = portfolio?.lastPrices ?? new Map();
  const points = recording.provisional === null ? recording.points : [...recording.points, recording.provisional];
  const curve = lastPerBarTime(points);
  const runs = runRows(recording.runs);
  const firstStart = recording.runs.find((line) => line.kind === 'start');
  const initialRisk: TradingState = firstStart?.kind === 'start' ? firstStart.risk : 'active';
  const changes: RiskChange[] = recording.risk.map((line) => ({
    at: line.at,
    state: line.state,
    reasons: [...line.haltReasons, ...(line.reduceReason === null ? [] : [line.reduceReason])].map((reason) => `${reason.code}: ${reason.detail}`),
  }));
  const times = [...curve.map((point) => point.at), ...recording.denials.map((line) => line.at), ...fills.map((fill) => fill.filledAt)];
  const span = times.length === 0 ? null : { from: times.reduce((a, b) => Math.min(a, b)), to: times.reduce((a, b) => Math.max(a, b)) };
  const inputRejected = countInputRejections(
    recording.runs.flatMap((line) => {
      if (line.kind !== 'end') return [];
      const start = recording.runs.find((other) => other.kind === 'start' && other.run === line.run);
      return [{ file: start?.kind === 'start' ? start.file : null, byReason: line.inputRejected }];
    }),
  );
  if (recording.header === null) notes.push('nothing recorded for the report in this state dir (made before aistock recorded reports?): no curve, drawdown or risk timeline');
  const unfinished = runs.filter((row) => row.endedAt === null).length;
  if (unfinished > 0) notes.push(`${unfinished} run(s) did not finish (killed, or a crash): what they did after their last checkpoint is in the next run, if any`);
  for (const [file, n] of Object.entries(recording.badLines)) notes.push(`${n} unreadable line(s) in report/${file}.jsonl were skipped`);
  return {
    stateDir: input.stateDir,
    generatedAt: input.generatedAt,
    runs,
    account,
    totalReturn: account === null ? null : totalReturn(account.initialCash, account.equity, account.netDeposits),
    curve,
    bucketMs: recording.header?.bucketMs ?? null,
    maxDrawdown: maxDrawdown(points),
    maxExposure: maxExposure(points),
    fills: fills.length,
    book,
    symbols: symbolPnl(fills, book, lastPrices, multiplierOf),
    denials: countDenials(recording.denials),
    barsRejected: addCounts(checkpoint?.guardRejected ?? {}, inputRejected),
    risk: span === null ? [] : riskIntervals(initialRisk, changes, span),
    notes,
  };
}

/**
 * Reads a state dir for its report. Holds the state dir's lock while reading (the ledger
 * reader cuts a torn last line, which must never race a session appending to it): a state dir
 * a running session holds is refused with `StateDirLockedError`.
 */
export async function readReport(stateDir: string, wallMs: () => number = Date.now, sources: ReportSources = stateDirSources(stateDir)): Promise<ReportData> {
  const stats = await stat(stateDir).catch((error: unknown) => {
    throw new ReportStateDirError(stateDir, errnoCode(error) === 'ENOENT' ? 'no such state dir' : describeError(error));
  });
  if (!stats.isDirectory()) throw new ReportStateDirError(stateDir, 'not a directory');
  const lock = await lockStateDir(stateDir, { wallMs });
  try {
    const notes: string[] = [];
    const recording = await readRecording(stateDir);
    const fills = await readFills(sources, notes);
    const checkpoint = await readCheckpoint(sources, notes);
    return reportFrom({ stateDir, generatedAt: wallMs(), recording, fills, checkpoint, notes });
  } finally {
    await lock.release();
  }
}
