import { open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { clientOrderIdSchema } from '../idempotency/clientOrderId.js';
import { AistockError, describeError } from '../common/errors.js';
import { FillSchema, PriceStringSchema, QtyStringSchema, SideSchema, SymbolSchema } from '../common/order.js';
import { errnoCode, syncDirectory } from '../stateDir/stateFile.js';

/**
 * The PaperBroker's ledger: the market's own record, JSON lines appended and fsynced by the
 * broker (format in DESIGN.md). Each file is opened in append mode; an append resolves only
 * after `write` + `fdatasync`, and appends made while one is being synced are written
 * together by the next (group commit).
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
 * A ledger line that is not what the broker writes, before the last line (or a line that
 * contradicts the others, such as a fill of an order never received). The ledger is the
 * market's record: it is never repaired or set aside automatically. Not retryable.
 */
export class BrokerLedgerCorruptError extends AistockError {
  readonly path: string;
  /** 1-based line number of the bad line. */
  readonly line: number;

  constructor(path: string, line: number, detail: string) {
    super('BROKER_LEDGER_CORRUPT', `broker ledger ${path} line ${line}: ${detail}`);
    this.path = path;
    this.line = line;
  }
}

/** A ledger file's lines, after a torn last line (if any) was cut off. */
export interface LedgerRead<T> {
  readonly records: T[];
  /** Bytes cut off the end (a last line without its newline); 0 when the file was whole. */
  readonly tornBytes: number;
}

/**
 * Reads a ledger file (missing = empty). A last line without its newline was torn by a crash
 * mid-append: it is cut off durably (truncate + fdatasync) and reported. Any other bad line
 * throws {@link BrokerLedgerCorruptError}.
 */
export async function readLedgerFile<T>(path: string, schema: z.ZodType<T>): Promise<LedgerRead<T>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { records: [], tornBytes: 0 };
    throw error;
  }
  const bodyLength = bytes.lastIndexOf(0x0a) + 1;
  const tornBytes = bytes.length - bodyLength;
  if (tornBytes > 0) {
    const handle = await open(path, 'r+');
    try {
      await handle.truncate(bodyLength);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }
  const lines = bytes.subarray(0, bodyLength).toString('utf8').split('\n');
  lines.pop(); // the empty string after the final newline
  const records = lines.map((text, index) => parseLine(path, index + 1, text, schema));
  return { records, tornBytes };
}

function parseLine<T>(path: string, line: number, text: string, schema: z.ZodType<T>): T {
  const quoted = JSON.stringify(text.slice(0, 80));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BrokerLedgerCorruptError(path, line, `not JSON (${describeError(error)}): ${quoted}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new BrokerLedgerCorruptError(path, line, `${z.prettifyError(parsed.error)} in ${quoted}`);
  return parsed.data;
}

interface PendingAppend {
  readonly text: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * One append-only JSON-lines file. `append` resolves once the line is durable; a failed write
 * rejects every append of its batch, and what it may have left past the durable end is cut
 * off before the next write, so a failure never leaves a half line in the middle.
 */
export class LedgerAppender {
  readonly path: string;
  readonly #handle: FileHandle;
  /** Test hook: called before each write; throwing fails the batch as an I/O error would. */
  readonly #beforeWrite: () => void;
  #durableSize: number;
  #tailDirty = false;
  #pending: PendingAppend[] = [];
  #draining: Promise<void> | undefined;

  private constructor(path: string, handle: FileHandle, size: number, beforeWrite: () => void) {
    this.path = path;
    this.#handle = handle;
    this.#durableSize = size;
    this.#beforeWrite = beforeWrite;
  }

  /** Opens (creating) `path` for appending; makes a new file's directory entry durable. */
  static async open(path: string, beforeWrite: () => void): Promise<LedgerAppender> {
    const handle = await open(path, 'a');
    const { size } = await handle.stat();
    if (size === 0) await syncDirectory(dirname(path));
    return new LedgerAppender(path, handle, size, beforeWrite);
  }

  /** Appends one JSON line; resolves once it is on disk. */
  append(record: object): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ text: `${JSON.stringify(record)}\n`, resolve, reject });
      // Start on the next microtask, so appends made in the same tick share one sync.
      this.#draining ??= Promise.resolve().then(() => this.#drain());
    });
  }

  /** Waits for appends in flight, then closes the file. */
  async close(): Promise<void> {
    await this.#draining;
    await this.#handle.close();
  }

  async #drain(): Promise<void> {
    for (let batch = this.#pending.splice(0); batch.length > 0; batch = this.#pending.splice(0)) {
      await this.#commit(batch);
    }
    this.#draining = undefined;
  }

  async #commit(batch: readonly PendingAppend[]): Promise<void> {
    const buffer = Buffer.from(batch.map((append) => append.text).join(''));
    try {
      this.#beforeWrite();
      if (this.#tailDirty) {
        await this.#handle.truncate(this.#durableSize);
      }
      this.#tailDirty = true;
      let written = 0;
      while (written < buffer.length) {
        // Append mode: the kernel writes at the end of the file whatever the position.
        const { bytesWritten } = await this.#handle.write(buffer, written, buffer.length - written);
        written += bytesWritten;
      }
      await this.#handle.datasync();
    } catch (error) {
      for (const append of batch) append.reject(error);
      return;
    }
    this.#durableSize += buffer.length;
    this.#tailDirty = false;
    for (const append of batch) append.resolve();
  }
}

