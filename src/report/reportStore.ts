import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { formatMoney, parseMoney } from '../common/money.js';
import { MoneyStringSchema } from '../common/order.js';
import { errnoCode } from '../stateDir/stateFile.js';
import type { CurvePoint } from './equityCurve.js';

/**
 * What `aistock replay` records for the report, in `<stateDir>/report/` (JSON lines, appended;
 * a resumed run appends to them, so the report covers every run):
 * - `equity.jsonl` — a header (`format`, `bucketMs`, `startEquity`), then the curve's points
 *   (`at`, `equity`, `cash`, `gross`, `peak`), decimated to at most {@link CURVE_BUDGET}
 *   (equityCurve.ts; the file is rewritten atomically when it outgrows the budget). A point is
 *   the account after every reading at its bar time; at a checkpoint the bar time still being
 *   read is written `provisional`, and the point that completes it supersedes it;
 * - `risk.jsonl` — each change of the risk engine's trading state, at a bar time;
 * - `denials.jsonl` — each intent risk denied: its client order id, bar time, symbol, codes;
 * - `runs.jsonl` — a `start` line per run (its bar file, the risk state and equity it started
 *   with) and an `end` line per run that finished (its summary, the rows its reader rejected).
 * Money is decimal strings, as everywhere in aistock. The files are the report's, not the
 * session's: nothing reads them to trade, and they are not fsynced (a power cut may lose the tail).
 */

/** The recording's folder inside the state dir. */
export const REPORT_DIR = 'report';
/** File names inside {@link REPORT_DIR}. */
export const REPORT_FILES = { equity: 'equity.jsonl', risk: 'risk.jsonl', denials: 'denials.jsonl', runs: 'runs.jsonl' } as const;
/** The most points `equity.jsonl` holds before it is decimated to half as many. */
export const CURVE_BUDGET = 4_000;
/** The first bucket width: one point per minute of bar time (one per bar time for 1-minute bars). */
export const INITIAL_BUCKET_MS = 60_000;

/** The first line of `equity.jsonl`. */
export const CurveHeaderSchema = z.object({
  format: z.literal(1),
  /** The current bucket width: points closer in bar time than this may have been decimated. */
  bucketMs: z.number().int().positive(),
  /** The equity the first recorded run started with (the first point's peak counts it). */
  startEquity: MoneyStringSchema,
});
/** See {@link CurveHeaderSchema}. */
export type CurveHeader = z.infer<typeof CurveHeaderSchema>;

/** A point line of `equity.jsonl`. */
export const CurvePointLineSchema = z.object({
  at: z.number().int(),
  equity: MoneyStringSchema,
  cash: MoneyStringSchema,
  gross: MoneyStringSchema,
  peak: MoneyStringSchema,
  /** The newest bar time as it stood at a checkpoint: superseded by any point after it. */
  provisional: z.literal(true).optional(),
});

const ReasonLineSchema = z.object({ code: z.string(), detail: z.string(), at: z.number() });

/** A line of `risk.jsonl`. */
export const RiskLineSchema = z.object({
  at: z.number().int(),
  state: z.enum(['active', 'reducing', 'halted']),
  haltReasons: z.array(ReasonLineSchema),
  reduceReason: ReasonLineSchema.nullable(),
});
/** See {@link RiskLineSchema}. */
export type RiskLine = z.infer<typeof RiskLineSchema>;

/** A line of `denials.jsonl`. */
export const DenialLineSchema = z.object({ id: z.string(), at: z.number().int(), symbol: z.string(), codes: z.array(z.string()) });
/** See {@link DenialLineSchema}. */
export type DenialLine = z.infer<typeof DenialLineSchema>;

const FileIdentitySchema = z.object({ path: z.string(), size: z.number(), mtimeMs: z.number() });

/** A line of `runs.jsonl`. */
export const RunLineSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('start'),
    run: z.number().int().positive(),
    startedAt: z.number(),
    file: FileIdentitySchema.nullable(),
    risk: z.enum(['active', 'reducing', 'halted']),
    equity: MoneyStringSchema,
  }),
  z.object({
    kind: z.literal('end'),
    run: z.number().int().positive(),
    endedAt: z.number(),
    inputRejected: z.record(z.string(), z.number().int().nonnegative()),
    /** The session's Summary at stop, as `replay --json` prints it (before the reader's rejections are added). */
    summary: z.record(z.string(), z.unknown()),
  }),
]);
/** See {@link RunLineSchema}. */
export type RunLine = z.infer<typeof RunLineSchema>;

/** A curve point as its line. */
export function pointLine(point: CurvePoint, provisional = false): z.infer<typeof CurvePointLineSchema> {
  const line = { at: point.at, equity: formatMoney(point.equity), cash: formatMoney(point.cash), gross: formatMoney(point.gross), peak: formatMoney(point.peak) };
  return provisional ? { ...line, provisional: true } : line;
}

/** A curve point from its line. */
export function pointOf(line: z.infer<typeof CurvePointLineSchema>): CurvePoint {
  return { at: line.at, equity: parseMoney(line.equity), cash: parseMoney(line.cash), gross: parseMoney(line.gross), peak: parseMoney(line.peak) };
}

/** The lines of a JSON-lines file that pass `schema`; how many did not; whether the last was torn (no newline). */
export interface JsonLinesRead<T> {
  readonly records: T[];
  readonly badLines: number;
  readonly torn: boolean;
}

/** Reads a JSON-lines file leniently (missing = empty): a bad line is counted and skipped, a torn last line ignored. */
export async function readJsonLines<T>(path: string, schema: z.ZodType<T>): Promise<JsonLinesRead<T>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { records: [], badLines: 0, torn: false };
    throw error;
  }
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const records: T[] = [];
  let badLines = 0;
  for (const line of lines) {
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      badLines += 1;
      continue;
    }
    const parsed = schema.safeParse(json);
    if (parsed.success) records.push(parsed.data);
    else badLines += 1;
  }
  return { records, badLines, torn: last !== '' };
}

/** Cuts a torn last line (one without its newline, left by a crash mid-append) so the next append starts a line. */
export async function cutTornTail(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r+');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  try {
    const bytes = await handle.readFile();
    const end = bytes.lastIndexOf(0x0a) + 1;
    if (end < bytes.length) await handle.truncate(end);
  } finally {
    await handle.close();
  }
}

/** Everything recorded in a state dir's report folder. */
export interface Recording {
  readonly header: CurveHeader | null;
  /** The curve's points (provisional ones that a later point superseded left out). */
  readonly points: CurvePoint[];
  /** The newest bar time as the last checkpoint saw it, when nothing completed it (the run was killed). */
  readonly provisional: CurvePoint | null;
  /** Provisional lines on file (superseded or not): they make the file longer than its curve. */
  readonly provisionalLines: number;
  readonly risk: RiskLine[];
  readonly denials: DenialLine[];
  readonly runs: RunLine[];
  /** Lines that could not be read, per file (a file edited by hand, a disk fault). */
  readonly badLines: Partial<Record<keyof typeof REPORT_FILES, number>>;
}

/** Reads `<stateDir>/report/` (an absent folder is an empty recording). */
export async function readRecording(stateDir: string): Promise<Recording> {
  const dir = join(stateDir, REPORT_DIR);
  const equity = await readJsonLines(join(dir, REPORT_FILES.equity), z.unknown());
  const [first, ...rest] = equity.records;
  const header = CurveHeaderSchema.safeParse(first);
  const points: CurvePoint[] = [];
  let provisional: CurvePoint | null = null;
  let provisionalLines = 0;
  let curveBad = equity.badLines + (first !== undefined && !header.success ? 1 : 0);
  for (const line of rest) {
    const parsed = CurvePointLineSchema.safeParse(line);
    if (!parsed.success) {
      curveBad += 1;
      continue;
    }
    // Any later line supersedes a provisional point (the point completing its bar time, or a later provisional one).
    if (parsed.data.provisional === true) {
      provisional = pointOf(parsed.data);
      provisionalLines += 1;
    } else {
      provisional = null;
      points.push(pointOf(parsed.data));
    }
  }
  const risk = await readJsonLines(join(dir, REPORT_FILES.risk), RiskLineSchema);
  const denials = await readJsonLines(join(dir, REPORT_FILES.denials), DenialLineSchema);
  const runs = await readJsonLines(join(dir, REPORT_FILES.runs), RunLineSchema);
  const badLines: Recording['badLines'] = {};
  if (curveBad > 0) badLines.equity = curveBad;
  if (risk.badLines > 0) badLines.risk = risk.badLines;
  if (denials.badLines > 0) badLines.denials = denials.badLines;
  if (runs.badLines > 0) badLines.runs = runs.badLines;
  return {
    header: header.success ? header.data : null,
    points: header.success ? points : [],
    provisional: header.success ? provisional : null,
    provisionalLines,
    risk: risk.records,
    denials: denials.records,
    runs: runs.records,
    badLines,
  };
}
