import { join } from 'node:path';
import { progressLine } from './progress.js';
import { describeUsageError, parseCommandLine, UsageError } from './usage.js';
import { stat } from 'node:fs/promises';
import { describeError } from '../common/errors.js';
import { loadStrategy } from '../strategy/loadStrategy.js';
import { readReplayConfig, ReplayCashSchema, replaySettings, type ReplayFlags, type ReplaySettings } from './replayConfig.js';
import { TimeframeSchema } from '../bars/timeframe.js';
import type { Strategy } from '../strategy/strategy.js';
import { isKnownZone } from '../bars/zoneOffsets.js';
import { BarInputError, readBars } from '../bars/barReader.js';
import { BAR_FORMAT_FLAGS, barFormatFrom, barFormatUsage } from './barFormatOptions.js';
import { startInspector, type RunningInspector } from '../inspector/inspector.js';
import { describeFault } from '../../machines/session.machine.js';
import { offsetClock } from '../common/clock.js';
import { StateDirLockedError, StateDirUnwritableError } from '../stateDir/stateDirLock.js';
import { NonDurableStateDirError } from '../stateDir/nonDurableRun.js';
import { DurabilitySchema, type Durability } from '../stateDir/durability.js';
import { BrokerLedgerCorruptError } from '../broker/paperBrokerLedger.js';
import { createTradingSession, InvalidSessionOptionsError, LegacyOrderIdsError, SessionFaultedError, type Summary } from '../session/createTradingSession.js';
import { EXIT, type CliIo } from './io.js';
import { startReportRecorder, type ReportRecorder } from '../report/reportRecorder.js';
import { performanceLines, replayPerformance, type ReplayPerformance } from '../report/replayPerformance.js';
import { takeReportOption, writeSessionReport } from './reportCommand.js';
import { STORE_FLAGS, STORE_USAGE, storeChoiceFrom, type StoreChoice } from './storeFlags.js';
import { LeaseLostError, SessionLeaseHeldError } from '../postgresStore/postgresLease.js';

/** Usage of `aistock replay`. */
export const REPLAY_USAGE = `usage: aistock replay <bars.csv|bars.jsonl> [options]

Runs a paper-trading session over a bar file, resuming from --state-dir if it holds one
(bars already processed are skipped; no order is sent twice).
  --state-dir DIR      session state (default .aistock)
  --tz ZONE            IANA zone bars are aggregated in (default America/New_York)
  --assume-tz ZONE     IANA zone of timestamps written without an offset (default: refuse them)
  --timeframes LIST    e.g. 1m,5m,1h,1d (default)
  --strategy NAME|FILE sma-cross (default), or a module exporting a Strategy: ./myStrategy.js
  --cash N             initial cash (default 100000)
  --config FILE        settings from a JSON file (strategy and params, risk limits, commission,
                       slippage, bar format, ...; see the README); a flag given overrides its key
  --json               print the summary as JSON on the last line of stdout
  --durability MODE    full (default): every write fsynced; none: research mode, nothing is
                       fsynced, and a state dir a crash left behind is refused (start fresh)
  --inspect [PORT]     stream the actors to the Stately inspector: serves its page on
                       localhost:PORT (default 8080), and the offline live view (every
                       machine drawn, its current states lit, the newest events) on
                       127.0.0.1:PORT+1; prints both URLs on stderr, the live view's
                       first (on a terminal, it opens that one)
  --wait-for-viewer    with --inspect: start the session only once a live view page is open
  --report [FILE]      when done, write the HTML report of the state dir to FILE
                       (default report.html; see aistock report)
${STORE_USAGE}${barFormatUsage(23)}Exit codes: 0 done, 1 unexpected failure, 2 bad input, 3 state dir locked (or, with --store, the
session held, or taken over while this run went on) by another process,
4 done but the portfolio and the broker disagree at stop (see the summary's reconciliation),
5 the state dir (with --store, the store) could not be written (full disk, read-only, database
down): fix it, then run again to resume.
Environment: AISTOCK_CLOCK_OFFSET_MS=N runs with the wall clock N ms ahead (tests of downtime).
`;

interface ReplayOptions {
  file: string;
  /** The flags that override the config's keys, as given. */
  flags: ReplayFlags;
  /** `--config FILE`, or null. */
  configFile: string | null;
  json: boolean;
  /** The inspector's port, or null without `--inspect`. */
  inspectPort: number | null;
  /** `--wait-for-viewer`: hold the start until a live view page has connected. */
  waitForViewer: boolean;
  /** `--report [FILE]`: where to write the report when done, or null. */
  reportFile: string | null;
  /** `AISTOCK_CLOCK_OFFSET_MS`: the wall clock this far ahead. */
  clockOffsetMs: number;
  /** `--store URL --session-id ID`: the journal, checkpoints and lease in PostgreSQL; null: the state dir's files. */
  store: StoreChoice;
}

const DEFAULT_INSPECT_PORT = 8080;
/** How long a second signal waits for the checkpoint to reach the disk before exiting anyway. */
const FLUSH_DEADLINE_MS = 2_000;

/** `--inspect [PORT]`: parseArgs has no optional values, so it is taken out of argv first. */
function takeInspectOption(argv: string[]): { rest: string[]; inspectPort: number | null } {
  const rest: string[] = [];
  let inspectPort: number | null = null;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg !== '--inspect' && !arg.startsWith('--inspect=')) {
      rest.push(arg);
      continue;
    }
    // `--inspect=PORT`, `--inspect PORT`, or a bare `--inspect` (the default port).
    let value: string | null = null;
    if (arg.startsWith('--inspect=')) value = arg.slice('--inspect='.length);
    else if (/^\d+$/.test(argv[i + 1] ?? '')) {
      value = argv[i + 1] ?? null;
      i += 1;
    }
    if (value !== null && (!/^\d+$/.test(value) || Number(value) > 65_535)) {
      throw new UsageError(`--inspect: expected a port number, got ${JSON.stringify(value)}`);
    }
    inspectPort = value === null ? DEFAULT_INSPECT_PORT : Number(value);
  }
  return { rest, inspectPort };
}

/** `AISTOCK_CLOCK_OFFSET_MS`, for tests that restart "later" without waiting: an integer, or refused. */
function clockOffsetFrom(env: NodeJS.ProcessEnv): number {
  const text = env['AISTOCK_CLOCK_OFFSET_MS'];
  if (text === undefined || text === '') return 0;
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`AISTOCK_CLOCK_OFFSET_MS: expected a whole number of milliseconds, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** `--durability full|none`. */
function parseDurability(text: string): Durability {
  const parsed = DurabilitySchema.safeParse(text);
  if (!parsed.success) throw new UsageError(`--durability: expected full or none, got ${JSON.stringify(text)}`);
  return parsed.data;
}

function parseOptions(argv: string[]): ReplayOptions | 'help' {
  const { rest: withoutReport, reportFile } = takeReportOption(argv);
  const { rest, inspectPort } = takeInspectOption(withoutReport);
  const { values, positionals } = parseCommandLine({
    args: rest,
    allowPositionals: true,
    options: {
      // No defaults here: a flag not given leaves the config's value (replayConfig.ts holds the defaults).
      'state-dir': { type: 'string' },
      tz: { type: 'string' },
      'assume-tz': { type: 'string' },
      timeframes: { type: 'string' },
      strategy: { type: 'string' },
      cash: { type: 'string' },
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      durability: { type: 'string' },
      'wait-for-viewer': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      ...BAR_FORMAT_FLAGS,
      ...STORE_FLAGS,
    },
  });
  if (values.help) return 'help';
  const [file, ...extra] = positionals;
  if (file === undefined) throw new UsageError('missing the bar file');
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  if (values['wait-for-viewer'] && inspectPort === null) throw new UsageError('--wait-for-viewer needs --inspect: it waits for a viewer of the live view');
  if (values.tz !== undefined && !isKnownZone(values.tz)) throw new UsageError(`--tz: unknown IANA time zone ${JSON.stringify(values.tz)}`);
  const assumeTz = values['assume-tz'];
  if (assumeTz !== undefined && !isKnownZone(assumeTz)) throw new UsageError(`--assume-tz: unknown IANA time zone ${JSON.stringify(assumeTz)}`);
  if (values.cash !== undefined && !ReplayCashSchema.safeParse(values.cash).success) throw new UsageError(`--cash: expected a non-negative number, got ${JSON.stringify(values.cash)}`);
  const timeframes = values.timeframes?.split(',').map((text) => {
    const parsed = TimeframeSchema.safeParse(text.trim());
    if (!parsed.success) throw new UsageError(`--timeframes: unknown timeframe ${JSON.stringify(text)}`);
    return parsed.data;
  });
  return {
    file,
    flags: {
      stateDir: values['state-dir'],
      tz: values.tz,
      assumeTz,
      timeframes,
      strategy: values.strategy,
      cash: values.cash,
      durability: values.durability === undefined ? undefined : parseDurability(values.durability),
      barFormat: barFormatFrom(values),
    },
    configFile: values.config ?? null,
    json: values.json,
    inspectPort,
    waitForViewer: values['wait-for-viewer'],
    reportFile,
    clockOffsetMs: clockOffsetFrom(process.env),
    store: storeChoiceFrom(values),
  };
}

/**
 * `aistock replay <file> …`: a paper session over the file; SIGINT/SIGTERM stop it gracefully,
 * a second one exits once the newest between-batches checkpoint is on disk (at most
 * FLUSH_DEADLINE_MS), a third at once.
 */
export async function runReplayCommand(argv: string[], io: CliIo): Promise<number> {
  let options;
  let settings: ReplaySettings;
  let strategy: Strategy;
  /** The bar file's size, for progress (null: a FIFO or pipe has none). */
  let totalBytes: number | null = null;
  try {
    options = parseOptions(argv);
    if (options === 'help') {
      io.stdout.write(REPLAY_USAGE);
      return EXIT.ok;
    }
    settings = replaySettings(options.flags, options.configFile === null ? null : await readReplayConfig(options.configFile), process.cwd());
    const { file } = options;
    // Refuse a missing file or a directory before taking the state dir, not after.
    const stats = await stat(file).catch((error: unknown) => {
      throw new BarInputError(file, 0, null, 'FILE_UNREADABLE', describeError(error), error);
    });
    if (stats.isDirectory()) throw new BarInputError(file, 0, null, 'FILE_UNREADABLE', 'is a directory, not a bar file');
    totalBytes = stats.isFile() ? stats.size : null;
    strategy = await loadStrategy(settings.strategy.use, settings.strategy.params, settings.strategy.baseDir);
  } catch (error) {
    // The usage only for a command line that is wrong; a bad file (bars, config, strategy) is named alone.
    io.stderr.write(`aistock replay: ${describeUsageError(error)}\n${error instanceof UsageError ? REPLAY_USAGE : ''}`);
    return EXIT.badInput;
  }

  let inspector: RunningInspector | undefined;
  if (options.inspectPort !== null) {
    try {
      inspector = await startInspector({ port: options.inspectPort, open: true, liveView: true, openPage: io.openPage });
    } catch (error) {
      io.stderr.write(`aistock replay: --inspect: ${describeError(error)}\n`);
      return EXIT.failure;
    }
    // stderr: stdout stays the summary alone (--json). The live view first: it is the page opened, and needs no internet.
    io.stderr.write(`${inspector.live === null ? '' : `live view: ${inspector.live.url}\n`}inspector: ${inspector.url}\n`);
  }
  let session;
  try {
    session = createTradingSession({
      stateDir: settings.stateDir,
      timeZone: settings.timeZone,
      baseTimeframe: settings.baseTimeframe,
      timeframes: settings.timeframes,
      initialCash: settings.initialCash,
      strategy,
      paperBroker: settings.paperBroker,
      ...(settings.risk === undefined ? {} : { risk: settings.risk }),
      replay: true,
      durability: settings.durability,
      ...(options.clockOffsetMs === 0 ? {} : { clock: offsetClock(options.clockOffsetMs) }),
      ...(options.store === null ? {} : { store: options.store.store, sessionId: options.store.sessionId }),
      ...(inspector === undefined ? {} : { inspect: inspector.inspect }),
    });
  } catch (error) {
    await inspector?.stop();
    io.stderr.write(`aistock replay: ${describeError(error)}
`);
    return error instanceof InvalidSessionOptionsError ? EXIT.badInput : EXIT.failure;
  }
  let signals = 0;
  // The first signal also stops the read where it waits: on a FIFO no one writes to yet, say.
  const reading = new AbortController();
  const onSignal = (): void => {
    signals += 1;
    if (signals === 1) {
      io.stderr.write('aistock replay: stopping (again to exit after the checkpoint is flushed)\n');
      reading.abort();
    } else if (signals === 2) {
      io.stderr.write('aistock replay: flushing the checkpoint, then exiting (again to exit at once)\n');
      void session.flushCheckpoint(FLUSH_DEADLINE_MS).then(
        (flushed) => {
          if (!flushed) io.stderr.write(`aistock replay: the checkpoint did not reach the disk within ${FLUSH_DEADLINE_MS} ms\n`);
          process.exit(130);
        },
        (error: unknown) => {
          io.stderr.write(`aistock replay: checkpoint flush failed: ${describeError(error)}\n`);
          process.exit(130);
        },
      );
    } else process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const inputRejected: Record<string, number> = {};
  let recorder: ReportRecorder | undefined;
  try {
    if (options.waitForViewer) {
      io.stderr.write(`aistock replay: waiting for a viewer at ${inspector?.live?.url} before starting (Ctrl-C to quit)\n`);
      if ((await inspector?.live?.viewerConnected(reading.signal)) !== true) {
        await session.stop();
        io.stderr.write('aistock replay: interrupted while waiting for a viewer: nothing was replayed\n');
        return 130;
      }
    }
    await session.start();
    recorder = await startReportRecorder({ stateDir: settings.stateDir, session, file: options.file, durability: settings.durability });
    const progress = io.stdout.isTTY === true && !options.json;
    let bars = 0;
    const startedAt = globalThis.performance.now();
    for await (const batch of readBars(options.file, { ...settings.barFormat, assumeZone: settings.assumeTimeZone, onBadRow: 'skip', signal: reading.signal })) {
      for (const error of batch.errors) inputRejected[error.reason] = (inputRejected[error.reason] ?? 0) + 1;
      await session.ingest(batch.bars);
      bars += batch.bars.length;
      if (progress) io.stdout.write(`\r${progressLine({ bars, bytesRead: batch.bytesRead, totalBytes, elapsedMs: globalThis.performance.now() - startedAt })}\x1b[K`);
      if (signals > 0) break;
    }
    if (progress) io.stdout.write('\r\x1b[K');
    const summary = await session.stop();
    const recorded = await recorder.finish({ summary, inputRejected });
    const performance = replayPerformance(summary, recorded);
    // Rows the reader refused never reached the session: this run's, in its counts, not the state dir's.
    for (const counts of [summary.bars.rejected, summary.thisRun.bars.rejected]) {
      for (const [reason, n] of Object.entries(inputRejected)) counts[reason] = (counts[reason] ?? 0) + n;
    }
    io.stdout.write(options.json ? `${JSON.stringify({ ...summary, performance })}\n` : formatSummary(summary, settings.stateDir, performance));
    const outcome = withReportRecorded(replayOutcome(summary, settings.stateDir, options.store), recorded !== null, settings.stateDir);
    if (outcome.message !== null) io.stderr.write(`aistock replay: ${outcome.message}\n`);
    if (options.reportFile === null) return outcome.code;
    try {
      io.stderr.write(`report: ${(await writeSessionReport(settings.stateDir, options.reportFile, options.store)).path}\n`);
      return outcome.code;
    } catch (error) {
      io.stderr.write(`aistock replay: --report: ${describeError(error)}\n`);
      return outcome.code === EXIT.ok ? EXIT.failure : outcome.code;
    }
  } catch (error) {
    await session.stop().catch(() => undefined);
    await recorder?.finish(null);
    io.stderr.write(`aistock replay: ${describeError(error)}\n`);
    return failureExitCode(error);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // After the session has stopped, so its last events (STOP, shutdown) reach the inspector.
    await inspector?.stop();
    const dropped = inspector?.live?.viewersDropped() ?? 0;
    if (dropped > 0) io.stderr.write(`aistock replay: the live view dropped ${dropped} viewer(s) that fell too far behind (their pages reconnect)\n`);
  }
}

/** What a replay that did not finish (its start or a batch threw `error`) exits with. */
export function failureExitCode(error: unknown): number {
  if (error instanceof StateDirLockedError || error instanceof SessionLeaseHeldError) return EXIT.locked;
  // Fenced: another process took the session's lease over — while this one ran (the session
  // faulted LEASE_LOST, or its next write failed on the token) or while it started (a start
  // step's own write refused: `start()` rejects with that error itself, a LeaseLostError).
  if (error instanceof SessionFaultedError && (error.fault?.code === 'LEASE_LOST' || error.fault?.cause === 'LEASE_LOST')) return EXIT.locked;
  if (error instanceof LeaseLostError) return EXIT.locked;
  if (error instanceof StateDirUnwritableError) return EXIT.notPersisted;
  // A state dir this version cannot use is bad input too: the message says what to do with it.
  if (error instanceof BarInputError || error instanceof InvalidSessionOptionsError || error instanceof LegacyOrderIdsError) return EXIT.badInput;
  if (error instanceof NonDurableStateDirError) return EXIT.badInput; // a research run's dir left by a crash: start fresh
  if (error instanceof BrokerLedgerCorruptError) return EXIT.badInput; // a damaged paper broker ledger: file, line, reason
  return EXIT.failure;
}

/**
 * What a finished replay exits with, and the one line that says why when it is not 0: a fault
 * (1); what the journal and checkpoints' place could not keep (5: checkpoints that failed, orders
 * refused because nothing could be made durable), the state dir or, with `--store`, the store;
 * a difference with the broker at stop (4).
 */
export function replayOutcome(summary: Summary, stateDir: string, store: StoreChoice = null): { code: number; message: string | null } {
  // Taken over while stopping (its renewal found another holder): the other process has the session.
  if (summary.fault?.code === 'LEASE_LOST') return { code: EXIT.locked, message: null };
  if (summary.fault !== null) return { code: EXIT.failure, message: null };
  const refused = (summary.orders.refusedBy.JOURNAL_UNAVAILABLE ?? 0) + (summary.orders.refusedBy.PERSISTENCE_DEGRADED ?? 0);
  if (summary.checkpoints.failed > 0 || refused > 0) {
    const [place, suspect] =
      store === null
        ? [stateDir, 'a full disk or a read-only file system?']
        : [`the store ${store.store.description} (session ${store.sessionId})`, 'the database down, unreachable or out of space?'];
    return {
      code: EXIT.notPersisted,
      message:
        `${place} could not be written: ${summary.checkpoints.failed} checkpoint writes failed, ${refused} orders were refused ` +
        `because they could not be recorded first (${suspect}); fix it, then run the same command again to resume`,
    };
  }
  if (summary.orders.lostByBroker > 0) {
    return {
      code: EXIT.diverged,
      message: `the broker does not know ${summary.orders.lostByBroker} order(s) the journal recorded as sent (BROKER_LOST_ORDER in the log names them); they were not sent again: check the broker's records`,
    };
  }
  // This run's counts: on a resumed state dir the totals hold the earlier runs' accepted bars.
  const { bars: thisRun } = summary.thisRun;
  const rejected = Object.values(thisRun.rejected).reduce((n, count) => n + count, 0);
  if (thisRun.accepted === 0 && thisRun.resumedSkips === 0 && rejected > 0) {
    // Nothing silent: a file none of whose rows could be used is bad input, not a replay of nothing.
    return { code: EXIT.badInput, message: `every one of the ${rejected} bars read was rejected (see bars.rejected); nothing was replayed` };
  }
  const atStop = summary.reconciliation.findLast((report) => report.at === 'stop');
  if (atStop !== undefined && atStop.differences.length > 0) {
    const detail = atStop.differences.map((d) => `${d.symbol} local ${d.local} broker ${d.broker}`).join('; ');
    return { code: EXIT.diverged, message: `the portfolio and the broker disagree at stop (${detail}); nothing the session sent explains it` };
  }
  return { code: EXIT.ok, message: null };
}

/**
 * Nothing silent: a run whose report recording failed (it warned when it did) ends as a state dir
 * that could not be written (5), unless something worse already decides the exit.
 */
export function withReportRecorded(outcome: { code: number; message: string | null }, recorded: boolean, stateDir: string): { code: number; message: string | null } {
  if (recorded || outcome.code !== EXIT.ok) return outcome;
  return {
    code: EXIT.notPersisted,
    message: `${join(stateDir, 'report')} could not be written (see the warning above): the run is complete and durable, its report misses part of it`,
  };
}

/** `3 rejected (DUPLICATE_TIMESTAMP 2, OHLC_INVALID 1)`, or `0 rejected`. */
function rejectedCounts(byReason: Readonly<Record<string, number>>): string {
  const reasons = Object.entries(byReason);
  const total = reasons.reduce((n, [, count]) => n + count, 0);
  return `${total} rejected${reasons.length > 0 ? ` (${reasons.map(([reason, count]) => `${reason} ${count}`).join(', ')})` : ''}`;
}

/** The summary for a person: a few lines, money to the cent; with `performance`, return, max drawdown and denials by reason. */
export function formatSummary(summary: Summary, stateDir: string, performance?: ReplayPerformance): string {
  const positions = Object.entries(summary.portfolio.positions);
  const { thisRun, stateDirTotal } = summary;
  const lines = [
    `this run:        bars ${thisRun.bars.accepted} accepted, ${rejectedCounts(thisRun.bars.rejected)}` +
      (thisRun.bars.resumedSkips > 0 ? `, ${thisRun.bars.resumedSkips} already processed (resumed)` : ''),
    `                 orders ${summary.orders.submitted} submitted, ${summary.orders.duplicatesBlocked} duplicates blocked, ` +
      `${summary.orders.rejected} rejected, ${summary.orders.unknown} unknown, ${summary.orders.denied} denied by risk` +
      (summary.orders.lostByBroker > 0 ? `, ${summary.orders.lostByBroker} lost by the broker` : ''),
    `                 fills ${summary.fills}`,
    `state dir total: bars ${stateDirTotal.bars.accepted} accepted, ${rejectedCounts(stateDirTotal.bars.rejected)}; ` +
      `orders ${stateDirTotal.orders} submitted; fills ${stateDirTotal.fills}`,
    `cash      ${summary.portfolio.cash} (from ${summary.portfolio.initialCash})`,
    `equity    ${summary.portfolio.equity}, realized P&L ${summary.portfolio.realizedPnl}`,
    ...(performance === undefined ? [] : performanceLines(summary, performance)),
    `positions ${positions.length === 0 ? 'none' : positions.map(([s, p]) => `${s} ${p.qty} @ ${p.avgPrice}`).join(', ')}`,
    `risk      ${summary.risk.state}${summary.risk.haltReasons.length > 0 ? ` (${summary.risk.haltReasons.join('; ')})` : ''}`,
    `reconcile ${summary.reconciled.checks} checks, ${summary.reconciled.differences} differences` +
      (summary.reconciled.adoptedFills > 0 ? `, ${summary.reconciled.adoptedFills} positions adopted` : '') +
      (summary.reconciled.recoveredFills > 0 ? `, ${summary.reconciled.recoveredFills} own fills recovered` : '') +
      (summary.reconciled.failed > 0 ? `, ${summary.reconciled.failed} failed` : ''),
    `state     ${stateDir} (${summary.checkpoints.written} checkpoint writes, ${summary.checkpoints.failed} failed)` +
      (summary.checkpoints.setAside === null ? '' : `; the checkpoint found was ${summary.checkpoints.setAside.reason}, moved to ${summary.checkpoints.setAside.movedTo}`),
    ...(summary.listenerFailures === 0 ? [] : [`listeners ${summary.listenerFailures} calls threw (LISTENER_FAILED in the log)`]),
    ...(summary.fault === null ? [] : [`fault     ${describeFault(summary.fault)}`]),
    ...(summary.durability === 'full' ? [] : [`durability none (research mode): nothing was fsynced; after a crash ${stateDir} cannot be resumed`]),
  ];
  return `${lines.join('\n')}\n`;
}
