import { optionsOrExit, parseCommandLine } from './usage.js';
import { aggregate, createAggregator, flush } from '../bars/aggregator.js';
import { createDataGuard, screenBars, type GuardState } from '../dataGuard/dataGuard.js';
import { describeError } from '../common/errors.js';
import { SessionAnchorSchema, TIMEFRAMES, TimeframeSchema, type Timeframe, type TimeframeBar } from '../bars/timeframe.js';
import { formatInZone, isKnownZone, zoneOffsets, type ZoneOffsetTable } from '../bars/zoneOffsets.js';
import { BAR_COLUMNS, BarInputError, readBars } from '../bars/barReader.js';
import type { BarFormat } from '../bars/barFormat.js';
import { BAR_FORMAT_FLAGS, barFormatUsage, barFormatFrom } from './barFormatOptions.js';
import { EXIT, type CliIo } from './io.js';

/** Usage of `aistock bars`. */
export const BARS_USAGE = `usage: aistock bars <file> --timeframe TF [--tz ZONE] [--assume-tz ZONE] [--session-anchor HH:MM] [bar-file options]

Aggregates a bar file (CSV, JSON lines or a .json array) into one timeframe and prints it as CSV
(${BAR_COLUMNS.join(',')}).
  --timeframe TF         one of ${TIMEFRAMES.join(' ')}
  --tz ZONE              IANA zone the buckets follow and timestamps are printed in (default UTC)
  --session-anchor HH:MM where intraday buckets start, e.g. 09:30 (default: local midnight)
  --assume-tz ZONE       IANA zone of timestamps written without an offset, and of dates
                         alone (a daily bar: that calendar day's start); default: refuse them
${barFormatUsage(25)}Bars out of order or duplicated are left out and counted on stderr; bad input exits 2 at the
first bad row (so a file whose rows are all rejected never exits 0).
SIGINT/SIGTERM end it at once (killed by the signal, no handler), even while it waits for
a FIFO's writer.
`;

/**
 * `aistock bars <file> --timeframe TF [--tz ZONE] [bar-file options]` (`argv` is what follows
 * `bars`). Streams the file: bars are read in batches, screened for order (out-of-order
 * and duplicate bars are left out and counted on stderr), aggregated in `--tz` and printed
 * as they close. Returns the exit code: 0 done, 2 bad input (the message names file, line
 * and field), 1 anything else.
 */
export async function runBarsCommand(argv: string[], io: CliIo): Promise<number> {
  const options = optionsOrExit('bars', BARS_USAGE, io, () => parseOptions(argv));
  if (typeof options === 'number') return options;
  const display = zoneOffsets(options.tz);
  let aggregation = createAggregator({ zone: options.tz, timeframes: [options.timeframe], sessionAnchor: options.sessionAnchor });
  // Only ordering matters here: the bars are printed, not traded.
  let guard: GuardState = createDataGuard({ barIntervalMs: null, maxStalenessMs: null, extremeRangeFraction: null, lowVolume: null });
  try {
    io.stdout.write(`${BAR_COLUMNS.join(',')}\n`);
    for await (const batch of readBars(options.file, { ...options.barFormat, assumeZone: options.assumeTz, onBadRow: 'stop' })) {
      const screened = screenBars(guard, batch.bars);
      guard = screened.state;
      const aggregated = aggregate(aggregation, screened.passed);
      aggregation = aggregated.state;
      writeBars(io, aggregated.closed, display);
    }
    const flushed = flush(aggregation);
    writeBars(io, flushed.closed, display);
  } catch (error) {
    io.stderr.write(`aistock bars: ${describeError(error)}\n`);
    return error instanceof BarInputError ? EXIT.badInput : EXIT.failure;
  }
  const rejected = Object.entries(guard.rejected);
  if (rejected.length > 0) {
    const total = rejected.reduce((sum, [, count]) => sum + (count ?? 0), 0);
    io.stderr.write(`aistock bars: left out ${total} bar(s): ${rejected.map(([reason, count]) => `${reason} ${count}`).join(', ')}\n`);
  }
  return EXIT.ok;
}

interface BarsOptions {
  file: string;
  timeframe: Timeframe;
  tz: string;
  assumeTz: string | null;
  barFormat: BarFormat;
  sessionAnchor: string | null;
}

/** Parses and checks the arguments; throws with a message naming the bad option. */
function parseOptions(argv: string[]): BarsOptions | 'help' {
  const { values, positionals } = parseCommandLine({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      timeframe: { type: 'string' },
      tz: { type: 'string' },
      'assume-tz': { type: 'string' },
      ...BAR_FORMAT_FLAGS,
      'session-anchor': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return 'help';
  const [file, ...extra] = positionals;
  if (file === undefined) throw new Error('missing <file>');
  if (extra.length > 0) throw new Error(`unexpected argument "${extra[0]}"`);
  if (values.timeframe === undefined) throw new Error('missing --timeframe');
  const timeframe = TimeframeSchema.safeParse(values.timeframe);
  if (!timeframe.success) throw new Error(`--timeframe "${values.timeframe}" is not one of ${TIMEFRAMES.join(' ')}`);
  const tz = values.tz ?? 'UTC';
  if (!isKnownZone(tz)) throw new Error(`--tz "${tz}" is not an IANA time zone`);
  const assumeTz = values['assume-tz'] ?? null;
  if (assumeTz !== null && !isKnownZone(assumeTz)) throw new Error(`--assume-tz "${assumeTz}" is not an IANA time zone`);
  const barFormat = barFormatFrom(values);
  const sessionAnchor = values['session-anchor'] ?? null;
  if (sessionAnchor !== null && !SessionAnchorSchema.safeParse(sessionAnchor).success) {
    throw new Error(`--session-anchor "${sessionAnchor}" is not HH:MM`);
  }
  return { file, timeframe: timeframe.data, tz, assumeTz, barFormat, sessionAnchor };
}

function writeBars(io: CliIo, bars: readonly TimeframeBar[], zone: ZoneOffsetTable): void {
  if (bars.length === 0) return;
  let text = '';
  for (const bar of bars) {
    text += `${formatInZone(bar.ts, zone)},${csvField(bar.symbol)},${bar.open},${bar.high},${bar.low},${bar.close},${formatVolume(bar.volume)}\n`;
  }
  io.stdout.write(text);
}

/** A CSV field, quoted when it holds a comma, quote or line break (RFC 4180). */
function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Summed fractional volumes pick up float noise (0.1 + 0.2); print them to 8 decimals. */
function formatVolume(volume: number): string {
  return Number.isInteger(volume) ? String(volume) : String(Number(volume.toFixed(8)));
}
