import { mkdir, open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { clientOrderIdSchema } from '../idempotency/clientOrderId.js';
import { AistockError, describeError } from '../common/errors.js';
import { CommissionStringSchema, FillSchema, type Fill, PriceStringSchema, QtyStringSchema, SideSchema, SymbolSchema } from '../common/order.js';
import { atomicFileWriterWith, errnoCode } from '../stateDir/stateFile.js';
import { FULL_SYNC, type DiskSync } from '../stateDir/durability.js';
import { CommitQueue } from '../common/commitQueue.js';
import { CHECKSUM_KEY, checkLine, recordOf, withChecksum, type LineChecksum } from '../stateDir/lineChecksum.js';

/**
 * The PaperBroker's ledger: the market's own record, JSON lines appended and fsynced by the
 * broker (format in DESIGN.md). Each file is opened in append mode; an append resolves only
 * after `write` + `fdatasync`, and appends made while one is being synced are written
 * together by the next (group commit).
 *
 * Format 2: every line ends with its CRC-32 (`"crc32":"…"`, see lineChecksum.ts), so a flipped
 * byte — a price digit, a quantity — is refused, naming file and line, never read as another
 * fill. There is no header (a line is an order, a fill or a cancel, as DESIGN.md says): a file
 * is format 2 as soon as one of its lines carries a well-formed checksum, and then every line
 * must carry one that matches. A file of format 1 (aistock before checksums: no line carries
 * one) is read as before, each line checked by its schema (and holding no key the broker never
 * wrote); once every line passed, it is rewritten at open, atomically, with a checksum on every
 * line and the bytes of each record unchanged, so line numbers stay what they were. The book's
 * consistency is checked after, in either format.
 *
 * A market order that fills at submit costs one durable append, not two: its `orders.jsonl`
 * line carries that fill (`fill`: qty, price, commission; `filledAt` is its `pricedAt`) and
 * decides it, and the copy in `fills.jsonl` — the shape every reader of fills expects — is
 * written right after without waiting for a sync of its own (the next sync of that file, or
 * its close, makes it durable). On open, a carried fill whose copy is missing (a crash between
 * the two) is appended to `fills.jsonl` again, so the file is whole after every open.
 * {@link readLedger} reads a ledger dir in the two shapes, carried fills included, without
 * writing anything (for readers of a dir a crash left behind).
 */

/** One line per order the broker accepted. */
export const ORDERS_FILE = 'orders.jsonl';
/** One line per execution. */
export const FILLS_FILE = 'fills.jsonl';
/** One line per cancel of a working order (not in DESIGN.md's two-file list: see paperBroker.ts). */
export const CANCELS_FILE = 'cancels.jsonl';

/**
 * A line of `orders.jsonl`: `clientOrderId, symbol, side, qty, type, receivedAt`, and
 * `limitPrice` for a limit order (a limit order cannot be rebuilt without it). A market order
 * also records the bar it was priced on (`pricedAt`, `pricedClose`), so a crash between its
 * order line and its fill line is completed on reopen at the same price, not on a later bar.
 */
const orderLineFields = {
  clientOrderId: clientOrderIdSchema,
  symbol: SymbolSchema,
  side: SideSchema,
  qty: QtyStringSchema,
};
export const OrderLineSchema = z.discriminatedUnion('type', [
  z.object({
    ...orderLineFields,
    type: z.literal('market'),
    receivedAt: z.number().int(),
    pricedAt: z.number().int().optional(),
    pricedClose: PriceStringSchema.optional(),
    /** The fill at submit, on the bar `pricedAt` (see the module comment). */
    fill: z.object({ qty: QtyStringSchema, price: PriceStringSchema, commission: CommissionStringSchema }).optional(),
  }),
  z.object({ ...orderLineFields, type: z.literal('limit'), receivedAt: z.number().int(), limitPrice: PriceStringSchema }),
]);
/** A line of `orders.jsonl` (see {@link OrderLineSchema}). */
export type OrderLine = z.infer<typeof OrderLineSchema>;

/** A line of `fills.jsonl`: exactly a {@link Fill}. */
export const FillLineSchema = FillSchema;

/** A line of `cancels.jsonl`: which order was cancelled, and when (broker wall clock). */
export const CancelLineSchema = z.object({ clientOrderId: clientOrderIdSchema, cancelledAt: z.number().int() });
/** A line of `cancels.jsonl`. */
export type CancelLine = z.infer<typeof CancelLineSchema>;

/**
 * What is wrong with a ledger line: `CHECKSUM_MISMATCH` — its CRC-32 does not match its bytes,
 * or it carries none in a file whose lines do (a flipped byte, an edit); `INVALID_LINE` — not
 * JSON, or not a record of its file; `INCONSISTENT` — a record that contradicts the others
 * (a fill of an order never received, more than the order's quantity, a cancel of nothing).
 */
export type LedgerCorruptReason = 'CHECKSUM_MISMATCH' | 'INVALID_LINE' | 'INCONSISTENT';

/**
 * A ledger line that is not what the broker writes, before the last line (or a line that
 * contradicts the others, such as a fill of an order never received). The ledger is the
 * market's record: it is never repaired or set aside automatically, and a broker that finds
 * one does not open (the session does not start: nothing is sent). Not retryable.
 */
export class BrokerLedgerCorruptError extends AistockError {
  readonly path: string;
  /** 1-based line number of the bad line. */
  readonly line: number;
  readonly reason: LedgerCorruptReason;

  constructor(path: string, line: number, reason: LedgerCorruptReason, detail: string) {
    super(
      'BROKER_LEDGER_CORRUPT',
      `broker ledger ${path} line ${line}: ${reason}: ${detail} (the paper broker's ledger is the market's record and is never ` +
        'repaired automatically: restore the file, or start a new state dir)',
    );
    this.path = path;
    this.line = line;
    this.reason = reason;
  }
}

/** A ledger file's lines, after a torn last line (if any) was cut off. */
export interface LedgerRead<T> {
  readonly records: T[];
  /** Bytes cut off the end (a last line without its newline); 0 when the file was whole. */
  readonly tornBytes: number;
  /** The file was of format 1 (no checksums) and was rewritten with one on every line. */
  readonly upgraded: boolean;
}

/**
 * Reads a ledger file (missing = empty). A last line without its newline was torn by a crash
 * mid-append: it is cut off durably (truncate + fdatasync) and reported, never checked against
 * a checksum. Any other bad line throws {@link BrokerLedgerCorruptError}. A file of format 1
 * is rewritten in format 2 (see above) once every line has passed its schema.
 */
export async function readLedgerFile<T>(path: string, schema: z.ZodType<T>, sync: DiskSync = FULL_SYNC): Promise<LedgerRead<T>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { records: [], tornBytes: 0, upgraded: false };
    throw error;
  }
  const bodyLength = bytes.lastIndexOf(0x0a) + 1;
  const tornBytes = bytes.length - bodyLength;
  if (tornBytes > 0) {
    const handle = await open(path, 'r+');
    try {
      await handle.truncate(bodyLength);
      await sync.data(handle);
    } finally {
      await handle.close();
    }
  }
  const lines = bytes.subarray(0, bodyLength).toString('utf8').split('\n');
  lines.pop(); // the empty string after the final newline
  const checksums = lines.map(checkLine);
  // Format 2 as soon as one line carries a valid checksum: one flipped byte cannot make a
  // format 2 file look like format 1, which would need every line's checksum gone.
  const checked = checksums.some((checksum) => checksum.status !== 'missing');
  const records = lines.map((text, index) => {
    const checksum = checksums[index];
    if (checked && checksum !== undefined && checksum.status !== 'ok') {
      throw new BrokerLedgerCorruptError(path, index + 1, 'CHECKSUM_MISMATCH', describeChecksum(checksum, text));
    }
    return parseLine(path, index + 1, text, schema, checked);
  });
  if (checked || lines.length === 0) return { records, tornBytes, upgraded: false };
  // Format 1: every line passed its schema; the same bytes, each with its checksum from now on.
  await atomicFileWriterWith(sync)(path, lines.map((text) => `${withChecksum(text)}\n`).join(''));
  return { records, tornBytes, upgraded: true };
}

/** The fill an order line carries (see the module comment), if any. */
export function carriedFill(line: OrderLine): Fill | undefined {
  if (line.type !== 'market' || line.fill === undefined || line.pricedAt === undefined) return undefined;
  const { clientOrderId, symbol, side } = line;
  return { clientOrderId, symbol, side, ...line.fill, filledAt: line.pricedAt };
}

/**
 * Pairs the fills order lines carry with their copies in `fills.jsonl`: `copyLines` — indexes
 * of the `fills` that are such copies; `uncopied` — carried fills without one (a crash between
 * the order line and its copy), in order-line order.
 */
export function carriedFills(orders: readonly OrderLine[], fills: readonly Fill[]): { copyLines: Set<number>; uncopied: Fill[] } {
  // Carried fills by id, until their copy is found (more than one per id only with duplicate ids).
  const waiting = new Map<string, Fill[]>();
  for (const line of orders) {
    const fill = carriedFill(line);
    if (fill === undefined) continue;
    const sameId = waiting.get(fill.clientOrderId);
    if (sameId === undefined) waiting.set(fill.clientOrderId, [fill]);
    else sameId.push(fill);
  }
  const copyLines = new Set<number>();
  fills.forEach((fill, index) => {
    const sameId = waiting.get(fill.clientOrderId);
    const at = sameId?.findIndex((carried) => sameFill(carried, fill)) ?? -1;
    if (sameId === undefined || at < 0) return;
    sameId.splice(at, 1);
    copyLines.add(index);
  });
  return { copyLines, uncopied: [...waiting.values()].flat() };
}

function sameFill(a: Fill, b: Fill): boolean {
  return (
    a.clientOrderId === b.clientOrderId &&
    a.symbol === b.symbol &&
    a.side === b.side &&
    a.qty === b.qty &&
    a.price === b.price &&
    a.commission === b.commission &&
    a.filledAt === b.filledAt
  );
}

/** An `orders.jsonl` line in DESIGN.md's shape: without the fill it may carry. */
export type LedgerOrder = Exclude<OrderLine, { type: 'market' }> | Omit<Extract<OrderLine, { type: 'market' }>, 'fill'>;

/** A ledger dir in the two shapes of DESIGN.md (and its cancels), as {@link readLedger} gives it. */
export interface LedgerContents {
  readonly orders: LedgerOrder[];
  /** Every fill: `fills.jsonl`, then the carried fills a crash left without their copy. */
  readonly fills: Fill[];
  readonly cancels: CancelLine[];
}

/** A state dir without `broker/`: its session kept the ledger elsewhere (`--store`), or never started. */
export class NoBrokerLedgerError extends AistockError {
  readonly dir: string;

  constructor(dir: string) {
    super('NO_BROKER_LEDGER', `${dir} does not exist (a session run with --store keeps its ledger in PostgreSQL: add --store URL --session-id ID)`);
    this.dir = dir;
  }
}

/** A ledger used before `open` or after `close`: a caller's bug, never retried. */
export class BrokerLedgerClosedError extends AistockError {
  constructor(where: string, why: 'not open' | 'closed') {
    super('BROKER_LEDGER_CLOSED', `the paper broker ledger in ${where} is ${why}`);
  }
}

/** The ledger of a state dir (`<stateDir>/broker`, read as {@link readLedger} does); {@link NoBrokerLedgerError} when it has none. */
export async function readStateDirLedger(stateDir: string): Promise<LedgerContents> {
  const dir = join(stateDir, 'broker');
  if (!(await stat(dir).then((found) => found.isDirectory(), () => false))) throw new NoBrokerLedgerError(dir);
  return readLedger(dir);
}

/**
 * The ledger in `dir` (`<stateDir>/broker`) as `orders.jsonl` and `fills.jsonl` lines, every
 * fill included, whatever a crash left. Like the broker's open it cuts a torn last line and
 * upgrades a format 1 file: call it only while holding the state dir's lock. Throws
 * {@link BrokerLedgerCorruptError} on a damaged line.
 */
export async function readLedger(dir: string): Promise<LedgerContents> {
  const [orders, fills, cancels] = await Promise.all([
    readLedgerFile(join(dir, ORDERS_FILE), OrderLineSchema),
    readLedgerFile(join(dir, FILLS_FILE), FillLineSchema),
    readLedgerFile(join(dir, CANCELS_FILE), CancelLineSchema),
  ]);
  return ledgerContents({ orders: orders.records, fills: fills.records, cancels: cancels.records });
}

/** A ledger's records (any store's) in the two shapes of DESIGN.md: orders without their carried fill, every fill. */
export function ledgerContents(records: Pick<LedgerRecords, 'orders' | 'fills' | 'cancels'>): LedgerContents {
  const { uncopied } = carriedFills(records.orders, records.fills);
  return {
    orders: records.orders.map(withoutFill),
    fills: [...records.fills, ...uncopied],
    cancels: [...records.cancels],
  };
}

function withoutFill(line: OrderLine): LedgerOrder {
  if (line.type !== 'market') return line;
  const { fill: _fill, ...order } = line;
  return order;
}

/** Why a line failed its checksum, quoting its start. */
function describeChecksum(checksum: LineChecksum, text: string): string {
  const quoted = JSON.stringify(text.slice(0, 80));
  return checksum.status === 'mismatch'
    ? `CRC-32 ${checksum.computed} of the line's bytes, but it says ${checksum.written}: ${quoted}`
    : `no checksum, in a file whose lines carry one: ${quoted}`;
}

/**
 * One line against its schema. A line of format 1 must hold exactly the record's keys, as this
 * broker wrote them: a key it does not know (a checksum under another name, made by a flipped
 * byte in a file that had a single line) is refused, not dropped.
 */
function parseLine<T>(path: string, line: number, text: string, schema: z.ZodType<T>, checked: boolean): T {
  const quoted = JSON.stringify(text.slice(0, 80));
  let json: unknown;
  try {
    json = JSON.parse(checked ? recordOf(text) : text);
  } catch (error) {
    throw new BrokerLedgerCorruptError(path, line, 'INVALID_LINE', `not JSON (${describeError(error)}): ${quoted}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new BrokerLedgerCorruptError(path, line, 'INVALID_LINE', `${z.prettifyError(parsed.error)} in ${quoted}`);
  if (!checked) {
    const known = parsed.data as Record<string, unknown>;
    const unknownKey = Object.keys(json as object).find((key) => !Object.hasOwn(known, key));
    if (unknownKey === CHECKSUM_KEY) throw new BrokerLedgerCorruptError(path, line, 'CHECKSUM_MISMATCH', `a malformed checksum: ${quoted}`);
    if (unknownKey !== undefined) throw new BrokerLedgerCorruptError(path, line, 'INVALID_LINE', `an unknown key ${JSON.stringify(unknownKey)} in ${quoted}`);
  }
  return parsed.data;
}

/** The ledger's three records, by what they hold (a file each in the state dir, a table each in PostgreSQL). */
export type LedgerFileKind = 'orders' | 'fills' | 'cancels';

/** The ledger as its store read it at open: every record in append order, and what the read repaired. */
export interface LedgerRecords {
  readonly orders: readonly OrderLine[];
  readonly fills: readonly Fill[];
  readonly cancels: readonly CancelLine[];
  /** Torn last lines cut off (a crash mid-append); always 0 in a database, whose commits are whole. */
  readonly tornLinesRemoved: number;
  /** Files of ledger format 1 rewritten with a checksum on every line; always 0 in a database. */
  readonly filesUpgraded: number;
}

/** What an append did: written, or not because the store holds that record already (`stored`). */
export type LedgerAppend<T> = { readonly status: 'appended' } | { readonly status: 'duplicate'; readonly stored: T };
/** What {@link PaperBrokerLedgerStore.appendOrder} did. */
export type OrderAppend = LedgerAppend<OrderLine>;
/** What {@link PaperBrokerLedgerStore.appendFill} did. */
export type FillAppend = LedgerAppend<Fill>;

/** A record written. */
export const APPENDED: LedgerAppend<never> = Object.freeze({ status: 'appended' });

/**
 * Where a {@link PaperBroker} keeps its ledger: the state dir's files ({@link filePaperBrokerLedger}, the
 * default) or PostgreSQL (`PostgresPaperBrokerLedger`, through a `postgresStore` session). The broker
 * keeps the rules — the book rebuilt from these records, an interrupted market order completed,
 * a carried fill's missing copy written again — so every store behaves the same
 * (test/broker/paperBrokerLedgerContract.ts). The contract: `open` once, before any append; an
 * append resolves only once durable (`copyFill` only once written: its order line vouches for
 * it), appends made together share one commit, and a failed commit rejects every append in it.
 */
export interface PaperBrokerLedgerStore {
  /** Where the ledger is, for messages (no password). */
  readonly where: string;
  /** The store itself refuses an order line whose client order id it holds (PostgreSQL's unique key): `appendOrder` says `duplicate`. */
  readonly uniqueClientOrderIds: boolean;
  /** Where records of `kind` are (a file, a table), for {@link BrokerLedgerCorruptError}, whose line is the record's 1-based place. */
  locate(kind: LedgerFileKind): string;
  /** Reads every record, in append order, and readies the store for appends. */
  open(): Promise<LedgerRecords>;
  /**
   * `duplicate`: the store already holds that client order id and wrote nothing (only with
   * `uniqueClientOrderIds`); `stored` is the line it holds, another broker's on the same ledger.
   */
  appendOrder(line: OrderLine): Promise<OrderAppend>;
  /**
   * A fill a bar made: `ordinal` says which of its order's fills it is (0 the first). `duplicate`:
   * the store holds that fill already (only with `uniqueClientOrderIds`: a commit whose outcome was
   * lost, written again), and `stored` is the one it holds.
   */
  appendFill(fill: Fill, ordinal: number): Promise<FillAppend>;
  /** The `fills` copy of a fill an order line carries: resolves once written, durable by the next commit at the latest. */
  copyFill(fill: Fill): Promise<void>;
  appendCancel(line: CancelLine): Promise<void>;
  /** Waits for appends in flight, then closes; idempotent. */
  close(): Promise<void>;
}

/** The three records, in the order a reader lists them. */
export const LEDGER_KINDS = ['orders', 'fills', 'cancels'] as const satisfies readonly LedgerFileKind[];
/** The file of each record in a ledger dir. */
export const LEDGER_FILES: Readonly<Record<LedgerFileKind, string>> = { orders: ORDERS_FILE, fills: FILLS_FILE, cancels: CANCELS_FILE };

/**
 * The ledger as three JSON-lines files in `dir` (`<stateDir>/broker`), created if missing: the
 * format above, a {@link LedgerAppender} each. Client order ids are not checked here: the
 * broker's book is the only writer (the state dir's lock keeps it one).
 */
export function filePaperBrokerLedger(dir: string, sync: DiskSync = FULL_SYNC): PaperBrokerLedgerStore {
  const paths: Record<LedgerFileKind, string> = { orders: join(dir, ORDERS_FILE), fills: join(dir, FILLS_FILE), cancels: join(dir, CANCELS_FILE) };
  let appenders: Record<LedgerFileKind, LedgerAppender> | undefined;
  const appender = (kind: LedgerFileKind): LedgerAppender => {
    if (appenders === undefined) throw new BrokerLedgerClosedError(dir, 'not open');
    return appenders[kind];
  };
  return {
    where: dir,
    uniqueClientOrderIds: false,
    locate: (kind) => paths[kind],
    async open() {
      await mkdir(dir, { recursive: true });
      await sync.directory(dirname(dir));
      const [orders, fills, cancels] = await Promise.all([
        readLedgerFile(paths.orders, OrderLineSchema, sync),
        readLedgerFile(paths.fills, FillLineSchema, sync),
        readLedgerFile(paths.cancels, CancelLineSchema, sync),
      ]);
      const opened: LedgerAppender[] = [];
      const openOne = async (kind: LedgerFileKind): Promise<LedgerAppender> => {
        const file = await LedgerAppender.open(paths[kind], sync);
        opened.push(file);
        return file;
      };
      try {
        appenders = { orders: await openOne('orders'), fills: await openOne('fills'), cancels: await openOne('cancels') };
      } catch (error) {
        await Promise.allSettled(opened.map((file) => file.close()));
        throw error;
      }
      const reads = [orders, fills, cancels];
      return {
        orders: orders.records,
        fills: fills.records,
        cancels: cancels.records,
        tornLinesRemoved: reads.filter((read) => read.tornBytes > 0).length,
        filesUpgraded: reads.filter((read) => read.upgraded).length,
      };
    },
    appendOrder: async (line) => {
      await appender('orders').append(line);
      return APPENDED;
    },
    appendFill: async (fill) => {
      await appender('fills').append(fill);
      return APPENDED;
    },
    copyFill: async (fill) => appender('fills').appendBehind(fill),
    appendCancel: async (line) => appender('cancels').append(line),
    async close() {
      if (appenders !== undefined) await Promise.all(LEDGER_KINDS.map((kind) => appender(kind).close()));
    },
  };
}

interface PendingAppend {
  readonly text: string;
  /** Resolve only once the line is synced (`append`), or once written (`appendBehind`). */
  readonly synced: boolean;
}

/**
 * One append-only JSON-lines file. `append` resolves once the line is durable; a failed write
 * rejects every append of its batch, and what it may have left past the written end is cut
 * off before the next write, so a failure never leaves a half line in the middle. Appends made
 * in one tick share one write and one sync (the shared {@link CommitQueue}).
 */
export class LedgerAppender {
  readonly path: string;
  readonly #handle: FileHandle;
  readonly #sync: DiskSync;
  readonly #queue = new CommitQueue<PendingAppend>((batch) => this.#commit(batch));
  /** The end of the lines written whole (synced, or written behind). */
  #writtenSize: number;
  #tailDirty = false;
  /** Lines written behind since the last sync. */
  #unsynced = false;
  #closing: Promise<void> | undefined;

  private constructor(path: string, handle: FileHandle, size: number, sync: DiskSync) {
    this.path = path;
    this.#handle = handle;
    this.#writtenSize = size;
    this.#sync = sync;
  }

  /** Opens (creating) `path` for appending; makes a new file's directory entry durable. */
  static async open(path: string, sync: DiskSync = FULL_SYNC): Promise<LedgerAppender> {
    const handle = await open(path, 'a');
    const { size } = await handle.stat();
    if (size === 0) await sync.directory(dirname(path));
    return new LedgerAppender(path, handle, size, sync);
  }

  /** Appends one JSON line; resolves once it is on disk. */
  append(record: object): Promise<void> {
    return this.#queue.push({ text: `${withChecksum(JSON.stringify(record))}\n`, synced: true });
  }

  /**
   * Appends one JSON line that another durable line already vouches for: resolves once it is
   * written, without a sync of its own; the next sync of this file (or its close) covers it.
   */
  appendBehind(record: object): Promise<void> {
    return this.#queue.push({ text: `${withChecksum(JSON.stringify(record))}\n`, synced: false });
  }

  /** Waits for appends in flight, syncs lines written behind, then closes the file. */
  close(): Promise<void> {
    this.#closing ??= this.#queue.exclusive(async () => {
      try {
        if (this.#unsynced) await this.#sync.data(this.#handle);
      } finally {
        await this.#handle.close();
      }
    });
    return this.#closing;
  }

  async #commit(batch: readonly PendingAppend[]): Promise<void> {
    const buffer = Buffer.from(batch.map((append) => append.text).join(''));
    const needsSync = batch.some((append) => append.synced);
    if (this.#tailDirty) await this.#handle.truncate(this.#writtenSize);
    this.#tailDirty = true;
    let written = 0;
    while (written < buffer.length) {
      // Append mode: the kernel writes at the end of the file whatever the position.
      const { bytesWritten } = await this.#handle.write(buffer, written, buffer.length - written);
      written += bytesWritten;
    }
    if (needsSync) await this.#sync.data(this.#handle);
    this.#writtenSize += buffer.length;
    this.#tailDirty = false;
    this.#unsynced = !needsSync;
  }
}
