import { appendFile, mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describeError } from '../common/errors.js';
import { systemClock, type Clock } from '../common/clock.js';
import { parseMoney, type Money } from '../common/money.js';
import type { Summary, TradingSession } from '../session/createTradingSession.js';
import type { SessionEventOf } from '../session/sessionEvents.js';
import { atomicFileWriterWith, type FileWriter } from '../stateDir/stateFile.js';
import { diskSyncFor, type Durability } from '../stateDir/durability.js';
import { bucketOf, fitToBudget, keepExtremes, maxDrawdown, nextPoint, type CurvePoint, type MaxDrawdown } from './equityCurve.js';
import {
  CURVE_BUDGET,
  cutTornTail,
  INITIAL_BUCKET_MS,
  pointLine,
  readRecording,
  REPORT_DIR,
  REPORT_FILES,
  type CurveHeader,
  type DenialLine,
  type RiskLine,
  type RunLine,
} from './reportStore.js';

/**
 * Records what the report needs while `aistock replay` runs, from the session's events
 * (`session.on`), into `<stateDir>/report/` (formats in reportStore.ts). It never affects
 * trading: a listener only folds the event into memory and queues lines; files are appended
 * off the session's path (flushed at each checkpoint written and at the end), and any I/O
 * failure turns the recorder off with one warning — the run goes on.
 *
 * Resumes: a resumed run appends to what earlier runs recorded. After a crash, the resumed
 * session re-decides the bars after its checkpoint and reports them again: the recorder skips
 * equity readings up to the newest point on file (or, when that is the provisional point of a
 * bar time a checkpoint caught half read, takes it up as the reading to complete), the report
 * counts denials once per client order id, and a risk change recorded twice changes nothing in
 * the timeline. A point is only ever the account after all readings at its bar time, so the
 * curve and its figures do not depend on when checkpoints happened to be written.
 */

/** The options of {@link startReportRecorder}. */
export interface ReportRecorderOptions {
  readonly stateDir: string;
  /** The started session (its lock is held: the recorder writes into its state dir). */
  readonly session: Pick<TradingSession, 'on' | 'snapshot'>;
  /** The bar file this run reads: its identity lets the report count a re-read file's bad rows once. */
  readonly file?: string | null;
  readonly clock?: Clock;
  /** Where a recording problem is told (default: one line on stderr); it never stops the run. */
  readonly warn?: (message: string) => void;
  /** The session's durability: `none` (research mode) writes the curve without fsync (default `full`). */
  readonly durability?: Durability;
}

/** How a run ended, for its `end` line. */
export interface RunEnd {
  /** The session's summary at stop, before the reader's rejections are added to it. */
  readonly summary: Summary;
  /** Rows the bar reader rejected in this run, by reason. */
  readonly inputRejected: Readonly<Record<string, number>>;
}

/** What the recording says about every recorded run, for the terminal summary. */
export interface RecordedFigures {
  readonly maxDrawdown: MaxDrawdown | null;
  /** Points of the curve on file. */
  readonly points: number;
}

/** A running recorder. */
export interface ReportRecorder {
  /** `<stateDir>/report`. */
  readonly dir: string;
  /** Whether it still records (false after an I/O failure, which it warned about). */
  readonly recording: boolean;
  /**
   * Writes what is pending and, given how the run ended, its `end` line; stops listening.
   * Resolves with the recorded figures (null when recording failed); never rejects.
   */
  finish(end: RunEnd | null): Promise<RecordedFigures | null>;
}

interface Reading {
  at: number;
  equity: Money;
  cash: Money;
  gross: Money;
}

/**
 * Starts recording a started session's run into `<stateDir>/report/`. Call it after
 * `session.start()` (the session then holds the state dir's lock) and before the first bar.
 * Never rejects: a recorder that cannot start warns and records nothing.
 */
export async function startReportRecorder(options: ReportRecorderOptions): Promise<ReportRecorder> {
  const clock = options.clock ?? systemClock;
  const warn = options.warn ?? ((message: string) => process.stderr.write(`aistock: report recording: ${message}\n`));
  const dir = join(options.stateDir, REPORT_DIR);
  const path = (name: keyof typeof REPORT_FILES): string => join(dir, REPORT_FILES[name]);
  try {
    await mkdir(dir, { recursive: true });
    for (const name of Object.keys(REPORT_FILES) as (keyof typeof REPORT_FILES)[]) await cutTornTail(path(name));
    const recording = await readRecording(options.stateDir);
    const start = options.session.snapshot();
    const file = options.file == null ? null : await fileIdentity(options.file);
    const run = recording.runs.reduce((n, line) => Math.max(n, line.run), 0) + 1;
    const header: CurveHeader = recording.header ?? { format: 1, bucketMs: INITIAL_BUCKET_MS, startEquity: start.portfolio.equity };
    const recorder = new Recorder({
      dir,
      path,
      warn,
      header,
      points: recording.points,
      provisional: recording.provisional,
      provisionalLines: recording.provisionalLines,
      // A curve file with lines it could not read, or none yet, is written whole before appending.
      rewriteCurve: recording.header === null || Object.hasOwn(recording.badLines, 'equity'),
      run,
      clock,
      writer: atomicFileWriterWith(diskSyncFor(options.durability ?? 'full')),
    });
    recorder.queueRun({ kind: 'start', run, startedAt: clock.wallMs(), file, risk: start.risk.state as RiskLine['state'], equity: start.portfolio.equity });
    recorder.listen(options.session);
    recorder.flush();
    return recorder;
  } catch (error) {
    warn(`could not start (${describeError(error)}); this run is not recorded`);
    return { dir, recording: false, finish: () => Promise.resolve(null) };
  }
}

async function fileIdentity(file: string): Promise<{ path: string; size: number; mtimeMs: number } | null> {
  try {
    const stats = await stat(file);
    return { path: resolve(file), size: stats.size, mtimeMs: stats.mtimeMs };
  } catch {
    return null;
  }
}

interface RecorderInit {
  dir: string;
  path: (name: keyof typeof REPORT_FILES) => string;
  warn: (message: string) => void;
  header: CurveHeader;
  points: CurvePoint[];
  provisional: CurvePoint | null;
  provisionalLines: number;
  rewriteCurve: boolean;
  run: number;
  clock: Clock;
  /** How the equity curve is rewritten whole (synced, unless research mode). */
  writer: FileWriter;
}

class Recorder implements ReportRecorder {
  readonly dir: string;
  recording = true;
  readonly #path: RecorderInit['path'];
  readonly #warn: RecorderInit['warn'];
  readonly #run: number;
  readonly #clock: Clock;
  readonly #writer: FileWriter;
  #header: CurveHeader;
  /** The curve on file (and queued to it), decimated. */
  #points: CurvePoint[];
  /** Provisional lines on file (or queued) since it was last written whole: they count toward its budget. */
  #provisionalLines = 0;
  #peak: Money | null;
  /** Readings at or before this bar time are a re-decided crash tail already on file. */
  readonly #resumeThrough: number;
  /** The newest reading, until a reading at a later bar time commits it. */
  #pending: Reading | null = null;
  /** Committed points of the bucket being filled. */
  #bucket: CurvePoint[] = [];
  #bucketKey: number | null = null;
  /** The newest bar time any event named (risk changes carry no bar time of their own). */
  #seenAt = Number.NEGATIVE_INFINITY;
  #lines: Record<keyof typeof REPORT_FILES, string[]> = { equity: [], risk: [], denials: [], runs: [] };
  #rewriteCurve: boolean;
  #writing: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void)[] = [];

  constructor(init: RecorderInit) {
    this.dir = init.dir;
    this.#path = init.path;
    this.#warn = init.warn;
    this.#run = init.run;
    this.#clock = init.clock;
    this.#writer = init.writer;
    this.#header = init.header;
    this.#points = init.points;
    const last = init.points.at(-1);
    this.#peak = last?.peak ?? parseMoney(init.header.startEquity);
    // A provisional point left by a killed run: the bar time to complete (readings at it replace it).
    const { provisional } = init;
    if (provisional !== null) this.#pending = { at: provisional.at, equity: provisional.equity, cash: provisional.cash, gross: provisional.gross };
    this.#resumeThrough = provisional !== null ? provisional.at - 1 : (last?.at ?? Number.NEGATIVE_INFINITY);
    this.#rewriteCurve = init.rewriteCurve;
    this.#provisionalLines = init.provisionalLines;
  }

  listen(session: Pick<TradingSession, 'on'>): void {
    const guarded =
      <T extends Parameters<TradingSession['on']>[0]>(handler: (event: SessionEventOf<T>) => void) =>
      (event: SessionEventOf<T>): void => {
        if (!this.recording) return;
        try {
          handler(event);
        } catch (error) {
          this.#fail(error);
        }
      };
    this.#unsubscribe.push(
      session.on('equity', guarded<'equity'>((event) => this.#onEquity(event))),
      session.on('denied', guarded<'denied'>((event) => this.#onDenied(event))),
      session.on('riskState', guarded<'riskState'>((event) => this.#onRiskState(event))),
      session.on('barRejected', guarded<'barRejected'>((event) => this.#see(event.ts))),
      session.on(
        'checkpoint',
        guarded<'checkpoint'>((event) => {
          if (event.result === 'written') this.#onCheckpointWritten();
        }),
      ),
    );
  }

  #see(at: number): void {
    if (at > this.#seenAt) this.#seenAt = at;
  }

  #onEquity(event: SessionEventOf<'equity'>): void {
    this.#see(event.at);
    if (event.at <= this.#resumeThrough) return;
    const reading: Reading = { at: event.at, equity: parseMoney(event.equity), cash: parseMoney(event.cash), gross: parseMoney(event.grossExposure) };
    // Readings at one bar time (one per bar of each symbol) make one point: the account after all of them.
    if (this.#pending !== null && this.#pending.at !== reading.at) this.#commit(this.#pending);
    this.#pending = reading;
  }

  #commit(reading: Reading): void {
    const point = nextPoint(this.#peak, reading.at, reading.equity, reading.cash, reading.gross);
    this.#peak = point.peak;
    const key = bucketOf(point.at, this.#header.bucketMs);
    if (this.#bucketKey !== null && key !== this.#bucketKey) this.#closeBucket();
    this.#bucketKey = key;
    this.#bucket.push(point);
  }

  /** Moves the bucket's extremes to the curve (and its file); decimates the curve past its budget. */
  #closeBucket(): void {
    const kept = keepExtremes(this.#bucket);
    this.#bucket = [];
    this.#bucketKey = null;
    this.#points.push(...kept);
    if (!this.#compact()) for (const point of kept) this.#lines.equity.push(JSON.stringify(pointLine(point)));
  }

  /**
   * Past its budget of lines, the file is written whole: the curve decimated to half the budget
   * if it needs to be, superseded provisional lines dropped. True when it will be.
   */
  #compact(): boolean {
    if (this.#points.length + this.#provisionalLines > CURVE_BUDGET) {
      if (this.#points.length > CURVE_BUDGET / 2) {
        const fitted = fitToBudget(this.#points, this.#header.bucketMs, CURVE_BUDGET / 2);
        this.#points = fitted.points;
        this.#header = { ...this.#header, bucketMs: fitted.bucketMs };
      }
      this.#rewriteCurve = true;
    }
    if (this.#rewriteCurve) {
      // The whole file is written from memory: the lines queued so far are in it.
      this.#lines.equity = [];
      this.#provisionalLines = 0;
    }
    return this.#rewriteCurve;
  }

  #onDenied(event: SessionEventOf<'denied'>): void {
    this.#see(event.barTs);
    const line: DenialLine = { id: event.clientOrderId, at: event.barTs, symbol: event.symbol, codes: event.reasons.map((reason) => reason.code) };
    this.#lines.denials.push(JSON.stringify(line));
  }

  #onRiskState(event: SessionEventOf<'riskState'>): void {
    // The newest reason says when the state changed to halted or reducing; a resume has none.
    const reasons = [...event.haltReasons, ...(event.reduceReason === null ? [] : [event.reduceReason])];
    const reasonAt = event.state === 'active' ? null : reasons.reduce<number | null>((at, reason) => (at === null || reason.at > at ? reason.at : at), null);
    const at = reasonAt ?? this.#seenAt;
    if (!Number.isFinite(at)) return;
    const line: RiskLine = {
      at,
      state: event.state,
      haltReasons: event.haltReasons.map(({ code, detail, at: when }) => ({ code, detail, at: when })),
      reduceReason: event.reduceReason === null ? null : { code: event.reduceReason.code, detail: event.reduceReason.detail, at: event.reduceReason.at },
    };
    this.#lines.risk.push(JSON.stringify(line));
  }

  /**
   * What the checkpoint covers is final: write it now, so a crash loses nothing the resumed run
   * will not report again. The bucket being filled is written as it stands (the next points
   * start another bucket of the same width), and the bar time still being read as a
   * provisional point — not part of the curve until a later reading completes it.
   */
  #onCheckpointWritten(): void {
    if (this.#bucket.length > 0) this.#closeBucket();
    if (this.#pending !== null) {
      const { at, equity, cash, gross } = this.#pending;
      this.#compact();
      this.#lines.equity.push(JSON.stringify(pointLine(nextPoint(this.#peak, at, equity, cash, gross), true)));
      this.#provisionalLines += 1;
    }
    this.flush();
  }

  queueRun(line: RunLine): void {
    this.#lines.runs.push(JSON.stringify(line));
  }

  /** Hands the queued lines to the file writer (in order, off the session's path). */
  flush(): void {
    if (!this.recording) return;
    const work: (() => Promise<void>)[] = [];
    if (this.#rewriteCurve) {
      // Every point queued before is in it (closeBucket dropped their lines); a provisional one follows.
      const text = [this.#header, ...this.#points.map((point) => pointLine(point))].map((line) => `${JSON.stringify(line)}\n`).join('');
      this.#rewriteCurve = false;
      work.push(() => this.#writer(this.#path('equity'), text));
    }
    for (const name of Object.keys(this.#lines) as (keyof typeof REPORT_FILES)[]) {
      const lines = this.#lines[name];
      if (lines.length === 0) continue;
      this.#lines[name] = [];
      const text = `${lines.join('\n')}\n`;
      work.push(() => appendFile(this.#path(name), text));
    }
    if (work.length === 0) return;
    this.#writing = this.#writing.then(async () => {
      if (!this.recording) return;
      try {
        for (const step of work) await step();
      } catch (error) {
        this.#fail(error);
      }
    });
  }

  #fail(error: unknown): void {
    if (!this.recording) return;
    this.recording = false;
    this.#warn(`stopped (${describeError(error)}); the report will miss the rest of this run`);
  }

  async finish(end: RunEnd | null): Promise<RecordedFigures | null> {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    if (this.recording) {
      try {
        if (this.#pending !== null) this.#commit(this.#pending);
        this.#pending = null;
        if (this.#bucket.length > 0) this.#closeBucket();
        if (end !== null) {
          // Serialised now: the caller adds the reader's rejections to the same summary afterwards.
          this.queueRun({ kind: 'end', run: this.#run, endedAt: this.#clock.wallMs(), inputRejected: { ...end.inputRejected }, summary: JSON.parse(JSON.stringify(end.summary)) as Record<string, unknown> });
        }
        this.flush();
      } catch (error) {
        this.#fail(error);
      }
    }
    await this.#writing;
    return this.recording ? { maxDrawdown: maxDrawdown(this.#points), points: this.#points.length } : null;
  }
}
