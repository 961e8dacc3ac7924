import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../common/packageRoot.js';
import { runBarsCommand } from './barsCommand.js';
import { runDiagramsCommand } from './diagramsCommand.js';
import { runLedgerCommand } from './ledgerCommand.js';
import { EXIT, type CliIo } from './io.js';
import { runReplayCommand } from './replayCommand.js';
import { runReportCommand } from './reportCommand.js';

const HELP = `aistock — the state-management core of a trading session, as XState actors

Usage:
  aistock <command> [options]

Commands:
  replay <bars.csv|bars.jsonl> [--state-dir DIR] [--tz ZONE] [--assume-tz ZONE]
         [--timeframes 1m,5m,1h,1d] [--strategy sma-cross] [--cash N] [--json] [--inspect [PORT]]
         [--report [FILE]]
                       Paper-trade a bar file, resuming from the state dir; --report then
                       writes its HTML report (default report.html).
  report <state-dir> [--out FILE] [--store URL --session-id ID]
                       Write one self-contained HTML report of a state dir's runs (with
                       --store, the session's ledger and checkpoint from PostgreSQL).
  ledger (--store URL --session-id ID | --state-dir DIR) [--kind orders|fills|cancels] [--out DIR]
                       Print a session's PaperBroker ledger as JSON lines (orders.jsonl's or
                       fills.jsonl's shape), or write it to DIR as ledger files.
  bars <file> --timeframe TF [--tz ZONE] [--assume-tz ZONE] [--session-anchor HH:MM]
                       Print the bars of a CSV or JSON-lines file aggregated to TF, as CSV.
  diagrams [--out DIR]  Print Mermaid state diagrams of every machine as markdown,
                       or write them to DIR/machines.md.
  help [COMMAND]       Show this help, or that command's.
  version              Print the version.

Options:
  -h, --help           Show this help.
  -v, --version        Print the version.

Exit codes: 0 done, 1 unexpected failure, 2 bad input (or a state dir of aistock 0.1),
3 state dir locked by another process, 4 portfolio and broker disagree at stop,
5 state dir not writable (full or read-only disk).
`;

type Command = (argv: string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  bars: runBarsCommand,
  replay: runReplayCommand,
  report: runReportCommand,
  ledger: runLedgerCommand,
  diagrams: runDiagramsCommand,
};

/** Runs the `aistock` command line; returns the exit code. */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest[0] !== undefined) {
    // `aistock help replay` is `aistock replay --help`.
    const described = COMMANDS[rest[0]];
    if (described !== undefined) return described(['--help'], io);
    io.stderr.write(`aistock: no command "${rest[0]}" to describe\n\n${HELP}`);
    return EXIT.badInput;
  }
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.stdout.write(HELP);
    return EXIT.ok;
  }
  if (name === 'version' || name === '--version' || name === '-v') {
    io.stdout.write(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr.write(`aistock: unknown command "${name}"\n\n${HELP}`);
    return EXIT.badInput;
  }
  return command(rest, io);
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown };
  return String(pkg.version);
}
