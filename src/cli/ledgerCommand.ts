import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../common/errors.js';
import { BrokerLedgerCorruptError, LEDGER_FILES, LEDGER_KINDS, NoBrokerLedgerError, readStateDirLedger, type LedgerContents, type LedgerFileKind } from '../broker/paperBrokerLedger.js';
import { openPostgresAudit, UnknownSessionError } from '../postgresStore/postgresPaperBrokerLedger.js';
import { withChecksum } from '../stateDir/lineChecksum.js';
import { StateDirLockedError, lockStateDir } from '../stateDir/stateDirLock.js';
import { atomicFileWriter, errnoCode } from '../stateDir/stateFile.js';
import { EXIT, type CliIo } from './io.js';
import { storeChoiceFrom } from './storeFlags.js';
import { optionsOrExit, parseCommandLine, UsageError } from './usage.js';

/** Usage of `aistock ledger`. */
export const LEDGER_USAGE = `usage: aistock ledger (--store URL --session-id ID | --state-dir DIR) [--kind KIND] [--out DIR]

Prints a session's PaperBroker ledger (the market's record of what it received and filled) as
JSON lines, for audit and outside checks: one store or the other, the same lines.
  --store URL          the ledger of a session in PostgreSQL (postgresql://user:password@host/db);
                       read without taking the session's lease, so also while it runs
  --session-id ID      the session whose ledger to read (required with --store)
  --state-dir DIR      the ledger in DIR/broker instead (read under the state dir's lock)
  --kind KIND          orders (default): a line per order in the shape of broker/orders.jsonl;
                       fills: a line per fill in the shape of broker/fills.jsonl (every fill);
                       cancels: a line per cancel of a working order
  --out DIR            write DIR/orders.jsonl, DIR/fills.jsonl and DIR/cancels.jsonl instead, in
                       the ledger file format (a checksum on every line), which readLedger and
                       PaperBroker.open({ dir }) read; DIR must hold no ledger yet (not with --kind)
Exit codes: 0 done, 1 unexpected failure (the database unreachable, or of a newer aistock), 2 bad
usage, no such session or state dir, a state dir with no broker/ (its session ran with --store),
a damaged ledger, or --out over a ledger, 3 a running session holds the state dir.
`;

type LedgerSource = { kind: 'store'; url: string; sessionId: string } | { kind: 'stateDir'; stateDir: string };

interface LedgerOptions {
  source: LedgerSource;
  kind: LedgerFileKind;
  out: string | null;
}

function parseOptions(argv: string[]): LedgerOptions | 'help' {
  const { values } = parseCommandLine({
    args: argv,
    allowPositionals: false,
    options: {
      store: { type: 'string' },
      'session-id': { type: 'string' },
      'state-dir': { type: 'string' },
      kind: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const kind = LEDGER_KINDS.find((known) => known === (values.kind ?? 'orders'));
  if (kind === undefined) throw new UsageError(`--kind: expected orders, fills or cancels, got ${JSON.stringify(values.kind)}`);
  if (values.out === '') throw new UsageError('--out: expected a directory');
  // --out writes all three files: a --kind beside it would be ignored, so it is refused.
  if (values.out !== undefined && values.kind !== undefined) throw new UsageError('--out writes every kind of record: not with --kind');
  const out = values.out ?? null;
  const stateDir = values['state-dir'];
  if (stateDir !== undefined) {
    if (values.store !== undefined || values['session-id'] !== undefined) throw new UsageError('--state-dir reads the files of one state dir: not with --store or --session-id');
    return { source: { kind: 'stateDir', stateDir }, kind, out };
  }
  // The same checks as replay's --store (postgresStore's own rules for the URL); the store itself is not opened: no lease is taken.
  const choice = storeChoiceFrom(values);
  if (choice === null) throw new UsageError('which ledger: --store URL --session-id ID, or --state-dir DIR');
  return { source: { kind: 'store', url: choice.url, sessionId: choice.sessionId }, kind, out };
}

/** `aistock ledger …` (see {@link LEDGER_USAGE}). */
export async function runLedgerCommand(argv: string[], io: CliIo): Promise<number> {
  const options = optionsOrExit('ledger', LEDGER_USAGE, io, () => parseOptions(argv));
  if (typeof options === 'number') return options;
  try {
    const contents = await readFrom(options.source);
    if (options.out === null) {
      let text = '';
      for (const record of contents[options.kind]) text += `${JSON.stringify(record)}\n`;
      io.stdout.write(text);
    } else {
      await writeLedgerDir(options.out, contents);
      io.stdout.write(`ledger: ${LEDGER_KINDS.map((kind) => `${contents[kind].length} ${kind}`).join(', ')} in ${options.out}\n`);
    }
    return EXIT.ok;
  } catch (error) {
    io.stderr.write(`aistock ledger: ${describeError(error)}\n`);
    if (error instanceof StateDirLockedError) return EXIT.locked;
    if (error instanceof UsageError || error instanceof UnknownSessionError || error instanceof BrokerLedgerCorruptError || error instanceof NoBrokerLedgerError) return EXIT.badInput;
    return EXIT.failure;
  }
}

async function readFrom(source: LedgerSource): Promise<LedgerContents> {
  if (source.kind === 'store') {
    const audit = await openPostgresAudit(source);
    try {
      return await audit.ledger();
    } finally {
      await audit.close();
    }
  }
  const { stateDir } = source;
  const stats = await stat(stateDir).catch((error: unknown) => {
    throw new UsageError(`${stateDir}: ${errnoCode(error) === 'ENOENT' ? 'no such state dir' : describeError(error)}`);
  });
  if (!stats.isDirectory()) throw new UsageError(`${stateDir}: not a directory`);
  // The reader cuts a torn last line: never while a session appends to the files.
  const lock = await lockStateDir(stateDir);
  try {
    return await readStateDirLedger(stateDir);
  } finally {
    await lock.release();
  }
}

/** The contents as a ledger dir of the file format: orders without their carried fill, every fill in fills.jsonl. */
async function writeLedgerDir(dir: string, contents: LedgerContents): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const kind of LEDGER_KINDS) {
    const path = join(dir, LEDGER_FILES[kind]);
    // Never over a ledger: --out is for a copy, and a state dir's broker dir is the market's record.
    if (await stat(path).then(() => true, () => false)) throw new UsageError(`--out: ${path} exists; give a directory that holds no ledger`);
  }
  for (const kind of LEDGER_KINDS) {
    await atomicFileWriter(join(dir, LEDGER_FILES[kind]), contents[kind].map((record) => `${withChecksum(JSON.stringify(record))}\n`).join(''));
  }
}
