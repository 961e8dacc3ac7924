import { describeUsageError, parseCommandLine, UsageError } from './usage.js';
import { describeError } from '../common/errors.js';
import { ReportStateDirError } from '../report/buildReport.js';
import { writeReport } from '../report/writeReport.js';
import { StateDirLockedError } from '../stateDir/stateDirLock.js';
import { openPostgresAudit, UnknownSessionError } from '../postgresStore/postgresPaperBrokerLedger.js';
import { EXIT, type CliIo } from './io.js';
import { storeChoiceFrom, type StoreChoice } from './storeFlags.js';

/** Where a report goes when no file is named. */
export const DEFAULT_REPORT_FILE = 'report.html';

/** Usage of `aistock report`. */
export const REPORT_USAGE = `usage: aistock report <state-dir> [--out FILE] [--store URL --session-id ID]

Writes one self-contained HTML file (it opens offline) about a state dir's runs: equity and
drawdown curves, return, max drawdown, exposure, P&L and fees by symbol, the round trips,
orders denied and bars rejected by reason, and the risk state's timeline.
  --out FILE           where to write it (default ${DEFAULT_REPORT_FILE})
  --store URL          a session run with --store: its broker ledger and checkpoint are read
  --session-id ID      from PostgreSQL (the state dir holds its report records)
Reads the state dir under its lock: while a session runs on it, exit 3 (run it after, or use
replay --report). Exit codes: 0 written, 1 unexpected failure, 2 bad usage, no such state
dir or no such session, 3 a running session holds the state dir.
`;

/**
 * {@link writeReport} of a state dir whose session may be on a store (`--store`): then its broker
 * ledger and checkpoint are read from there, the rest from the state dir.
 */
export async function writeSessionReport(stateDir: string, out: string, store: StoreChoice): Promise<{ path: string; bytes: number }> {
  if (store === null) return writeReport(stateDir, out);
  const audit = await openPostgresAudit(store);
  try {
    return await writeReport(stateDir, out, Date.now, audit);
  } finally {
    await audit.close();
  }
}

/**
 * `--report [FILE]` of `aistock replay`, taken out of argv (parseArgs has no optional values):
 * `--report=FILE`, `--report FILE` when FILE ends in .html or .htm (so `--report bars.csv`
 * still names the bar file), or a bare `--report` ({@link DEFAULT_REPORT_FILE}).
 */
export function takeReportOption(argv: readonly string[]): { rest: string[]; reportFile: string | null } {
  const rest: string[] = [];
  let reportFile: string | null = null;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg.startsWith('--report=')) {
      reportFile = arg.slice('--report='.length);
      if (reportFile === '') throw new UsageError('--report=: expected a file name');
    } else if (arg === '--report') {
      const next = argv[i + 1];
      if (next !== undefined && /\.html?$/i.test(next)) {
        reportFile = next;
        i += 1;
      } else reportFile = DEFAULT_REPORT_FILE;
    } else rest.push(arg);
  }
  return { rest, reportFile };
}

/** `aistock report <state-dir> [--out FILE]`. */
export async function runReportCommand(argv: string[], io: CliIo): Promise<number> {
  let stateDir: string;
  let out: string;
  let store: StoreChoice;
  try {
    const { values, positionals } = parseCommandLine({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string', default: DEFAULT_REPORT_FILE },
        store: { type: 'string' },
        'session-id': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      io.stdout.write(REPORT_USAGE);
      return EXIT.ok;
    }
    const [dir, ...extra] = positionals;
    if (dir === undefined) throw new UsageError('missing the state dir');
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    if (values.out === '') throw new UsageError('--out: expected a file name');
    stateDir = dir;
    out = values.out;
    store = storeChoiceFrom(values);
  } catch (error) {
    io.stderr.write(`aistock report: ${describeUsageError(error)}\n${REPORT_USAGE}`);
    return EXIT.badInput;
  }
  try {
    const written = await writeSessionReport(stateDir, out, store);
    io.stdout.write(`report: ${written.path} (${Math.ceil(written.bytes / 1024)} KB)\n`);
    return EXIT.ok;
  } catch (error) {
    io.stderr.write(`aistock report: ${describeError(error)}\n`);
    if (error instanceof StateDirLockedError) return EXIT.locked;
    if (error instanceof ReportStateDirError || error instanceof UnknownSessionError) return EXIT.badInput;
    return EXIT.failure;
  }
}
