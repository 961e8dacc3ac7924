import { parse as parseCsvRecord } from 'csv-parse/sync';
import { close, constants, createReadStream, fstat, open } from 'node:fs';
import { Socket } from 'node:net';
import { addAbortSignal, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { promisify } from 'node:util';
import { barDefect, type Bar, type BarProblem } from './bar.js';
import { AistockError, describeError } from '../common/errors.js';
import { printable, shownValue } from './printable.js';
import { timestampParser, type TimestampProblem, type TimestampResult } from './timestamps.js';

/**
 * Streaming bar readers for CSV (header `timestamp,symbol,open,high,low,close,volume`, in
 * any column order) and JSON lines (one object per line with the same keys; prices as numbers
 * or numeric strings). The file is read in 1 MiB chunks and handed out as batches of validated
 * bars, so a 1 GB file is never held whole. A FIFO (`mkfifo`, `<(…)`) is read as a pipe: opening
 * it does not wait for a writer, and `signal` stops the read at once, writer or not.
 *
 * Text is UTF-8, a leading BOM skipped; lines end in LF, CRLF or (decided by the first line
 * ending) a bare CR. A file that starts with a UTF-16 or UTF-32 byte order mark, or whose first
 * 8 KiB hold bytes that are not UTF-8, is refused whole (`UNSUPPORTED_ENCODING`), and so is one
 * with a NUL byte there (`NOT_TEXT`: a binary file, or UTF-16 without a BOM).
 *
 * CSV: a line without a `"` is split on commas directly (the common case, and the fast
 * one); a line with quotes goes through csv-parse, so quoting follows RFC 4180 — within the
 * line: a quote left open is that line's `MALFORMED_ROW`, and the next line is the next row.
 *
 * A bad row is a {@link BarInputError} naming file, line and field. `onBadRow` decides:
 * - `'stop'` (default, what `aistock bars` uses: bad input → exit 2): the bars before it are
 *   yielded, then the error is thrown;
 * - `'skip'` (what a session uses: it keeps going and counts): each batch carries the errors
 *   of its rows next to its bars, and reading continues.
 * A bad header (CSV; or a CSV header in a JSON-lines file), a file that cannot be opened or is a
 * directory, the encodings above, or a line longer than 1 Mi characters (not a bar file, and it
 * would have to be held whole) always throws, in either mode.
 */

/** Why a row (or the file) was refused: a closed set. */
export type BarInputReason =
  | 'FILE_UNREADABLE'
  | 'UNSUPPORTED_ENCODING'
  | 'NOT_TEXT'
  | 'BAD_HEADER'
  | 'MALFORMED_ROW'
  | 'MISSING_FIELD'
  | 'EXTRA_FIELD'
  | TimestampProblem
  | BarProblem;

/**
 * Bad bar input: the file, the 1-based line (0: the file as a whole), the field (null: the row as
 * a whole). The message shows the field and detail {@link printable}: input never reaches a
 * terminal raw or whole.
 */
export class BarInputError extends AistockError {
  readonly file: string;
  readonly line: number;
  readonly field: string | null;
  readonly reason: BarInputReason;
  readonly detail: string;

  constructor(file: string, line: number, field: string | null, reason: BarInputReason, detail: string, cause?: unknown) {
    const where = line === 0 ? file : `${file}:${line}`;
    const shownField = field === null ? '' : `field ${shownValue(field, 60)}: `;
    const shownDetail = printable(detail);
    super('BAD_BAR_INPUT', printable(`${where}: ${shownField}${shownDetail} (${reason})`, Number.POSITIVE_INFINITY), { cause });
    this.file = file;
    this.line = line;
    this.field = field;
    this.reason = reason;
    this.detail = shownDetail;
  }
}

/** A bar file's format. */
export type BarFileFormat = 'csv' | 'jsonl';

/** How to read a bar file. */
export interface ReadBarsOptions {
  /** Default: `jsonl` for `.jsonl`/`.ndjson` files, else `csv`. */
  format?: BarFileFormat;
  /** The IANA zone naive timestamps were written in; without it they are refused. */
  assumeZone?: string | null;
  /** Stop at the first bad row (default) or skip it and report it in the batch. */
  onBadRow?: 'stop' | 'skip';
  /** Bars per batch (default 4096). */
  batchSize?: number;
  /**
   * Stops the read when aborted (a signal to the process): the generator ends without an error,
   * and the rows read since the last batch it yielded are dropped. Waiting on a FIFO no one has
   * opened for writing is stopped too.
   */
  signal?: AbortSignal;
}

/** Validated bars in file order, plus (in `skip` mode) the rows refused among them. */
export interface BarBatch {
  bars: Bar[];
  errors: BarInputError[];
  /** Bytes of the file read so far (in 1 MiB chunks): how far along the file is, for progress. */
  bytesRead: number;
}

/** The columns (CSV) or keys (JSON lines) of a bar file. */
export const BAR_COLUMNS = ['timestamp', 'symbol', 'open', 'high', 'low', 'close', 'volume'] as const;

type Column = (typeof BAR_COLUMNS)[number];

/** The format a file name implies. */
export function formatOf(file: string): BarFileFormat {
  return /\.(jsonl|ndjson)$/i.test(file) ? 'jsonl' : 'csv';
}

/** Characters at the start of a file checked for NUL bytes and bytes that are not UTF-8. */
const SNIFF_CHARS = 8192;
const LF = 10;
const CR = 13;

/**
 * Reads a bar file as batches. Throws {@link BarInputError} for a file that cannot be opened,
 * is a directory or is not UTF-8 text, a bad CSV header and (in `stop` mode) the first bad row;
 * other I/O errors propagate. Throws `RangeError` for an unknown `assumeZone` (check it first).
 */
export async function* readBars(file: string, options: ReadBarsOptions = {}): AsyncGenerator<BarBatch> {
  const format = options.format ?? formatOf(file);
  const batchSize = options.batchSize ?? 4096;
  const stopOnBadRow = (options.onBadRow ?? 'stop') === 'stop';
  const { signal } = options;
  // A function, not a narrowed property: the signal can fire between any two awaits.
  const aborted = (): boolean => signal?.aborted === true;
  const validator = new RowValidator(file, options.assumeZone ?? null);
  const rows = format === 'csv' ? new CsvRows(validator) : new JsonRows(validator);

  if (aborted()) return;
  const stream = await openBytes(file);
  if (signal !== undefined) addAbortSignal(signal, stream);
  let bytesRead = 0;
  let batch: BarBatch = { bars: [], errors: [], bytesRead };
  let pending: BarInputError | null = null;
  const accept = (row: Bar | BarInputError): void => {
    if (!(row instanceof BarInputError)) batch.bars.push(row);
    else if (stopOnBadRow) pending ??= row;
    else batch.errors.push(row);
  };
  try {
    const decoder = new StringDecoder('utf8');
    let head: Buffer | null = Buffer.alloc(0);
    let carry = '';
    let lineNumber = 0;
    /** Characters of the file before `carry`. */
    let consumed = 0;
    /** The line terminator, once the first line ending decided it (0: not yet). */
    let eol = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytesRead += chunk.length;
      batch.bytesRead = bytesRead;
      let bytes = chunk;
      if (head !== null) {
        // The byte order mark needs the first 4 bytes, however the chunks come (a FIFO may send 1).
        head = Buffer.concat([head, chunk]);
        if (head.length < 4) continue;
        bytes = skipByteOrderMark(file, head);
        head = null;
      }
      const text = carry + decoder.write(bytes);
      if (eol === 0) eol = lineEnding(text, false);
      let from = 0;
      if (eol !== 0) {
        const terminator = eol === CR ? '\r' : '\n';
        for (let end = text.indexOf(terminator, from); end !== -1; end = text.indexOf(terminator, from)) {
          lineNumber += 1;
          if (end - from > MAX_LINE_CHARS) throw tooLong(file, lineNumber);
          const line = text.slice(from, eol === LF && text.charCodeAt(end - 1) === CR ? end - 1 : end);
          if (consumed + from < SNIFF_CHARS) sniff(file, line, lineNumber);
          rows.line(line, lineNumber, accept);
          from = end + 1;
          if (pending !== null) break;
          if (batch.bars.length + batch.errors.length >= batchSize) {
            yield batch;
            if (aborted()) return;
            batch = { bars: [], errors: [], bytesRead };
          }
        }
      }
      if (pending !== null) break;
      consumed += from;
      carry = text.slice(from);
      if (carry.length > MAX_LINE_CHARS) throw tooLong(file, lineNumber + 1);
    }
    if (pending === null) {
      // A file shorter than a byte order mark.
      if (head !== null) carry = decoder.write(skipByteOrderMark(file, head));
      carry += decoder.end();
      if (eol === 0) eol = lineEnding(carry, true);
      // What is left is one line (a CR-terminated file ends with an empty one, never read).
      if (carry.length > 0) {
        lineNumber += 1;
        const line = eol === LF && carry.endsWith('\r') ? carry.slice(0, -1) : carry;
        if (consumed < SNIFF_CHARS) sniff(file, line, lineNumber);
        rows.line(line, lineNumber, accept);
      }
      if (pending === null) rows.end();
    }
  } catch (error) {
    if (aborted()) return;
    throw error;
  } finally {
    stream.destroy();
  }
  if (aborted()) return;
  if (batch.bars.length > 0 || batch.errors.length > 0) yield batch;
  if (pending !== null) throw pending;
}

const openFile = promisify(open);
const statFd = promisify(fstat);

/**
 * The file's bytes as a stream. It is opened non-blocking, so a FIFO without a writer does not
 * hold up open(2) on libuv's thread pool (where no signal could end the wait, nor the process
 * exit); a FIFO or socket is then read as a pipe (epoll: it waits for its writer without a
 * thread, and `destroy` ends the wait), anything else as a file.
 */
async function openBytes(file: string): Promise<Readable> {
  let fd: number;
  try {
    fd = await openFile(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new BarInputError(file, 0, null, 'FILE_UNREADABLE', `cannot open: ${describeError(error)}`, error);
  }
  try {
    const stats = await statFd(fd);
    if (stats.isDirectory()) throw new BarInputError(file, 0, null, 'FILE_UNREADABLE', 'is a directory, not a bar file');
    if (stats.isFIFO() || stats.isSocket()) return new Socket({ fd, readable: true, writable: false });
    if (!stats.isFile()) {
      // A character device (a terminal, /dev/null): read it as it blocks.
      close(fd, () => undefined);
      return createReadStream(file, { highWaterMark: 1 << 20 });
    }
    return createReadStream('', { fd, highWaterMark: 1 << 20 });
  } catch (error) {
    close(fd, () => undefined);
    throw error;
  }
}

/** The byte order marks of the encodings a bar file must not be in, longest first. */
const FOREIGN_BOMS: readonly (readonly [string, readonly number[]])[] = [
  ['UTF-32 LE', [0xff, 0xfe, 0x00, 0x00]],
  ['UTF-32 BE', [0x00, 0x00, 0xfe, 0xff]],
  ['UTF-16 LE', [0xff, 0xfe]],
  ['UTF-16 BE', [0xfe, 0xff]],
];

/** The bytes after a UTF-8 byte order mark; throws for a UTF-16 or UTF-32 one. */
function skipByteOrderMark(file: string, head: Buffer): Buffer {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return head.subarray(3);
  for (const [encoding, mark] of FOREIGN_BOMS) {
    if (mark.every((byte, i) => head[i] === byte)) {
      throw new BarInputError(file, 1, null, 'UNSUPPORTED_ENCODING', `the file is ${encoding} (it starts with that byte order mark); bar files are UTF-8: convert it`);
    }
  }
  return head;
}

/** LF (for LF and CRLF) or CR, from the first line ending in `text`; 0 while it cannot tell. */
function lineEnding(text: string, atEnd: boolean): number {
  const lf = text.indexOf('\n');
  const cr = text.indexOf('\r');
  if (cr === -1 || (lf !== -1 && lf < cr)) return lf === -1 && !atEnd ? 0 : LF;
  if (cr + 1 < text.length) return text.charCodeAt(cr + 1) === LF ? LF : CR;
  return atEnd ? LF : 0;
}

/** Refuses a file whose first lines hold a NUL (binary) or U+FFFD (bytes that are not UTF-8). */
function sniff(file: string, line: string, lineNumber: number): void {
  if (line.includes('\0')) {
    throw new BarInputError(file, lineNumber, null, 'NOT_TEXT', 'a NUL byte: a binary file (or UTF-16 without a byte order mark), not text');
  }
  if (line.includes('\ufffd')) {
    throw new BarInputError(file, lineNumber, null, 'UNSUPPORTED_ENCODING', 'bytes that are not UTF-8 (Latin-1 or Windows-1252?); bar files are UTF-8: convert it');
  }
}

function tooLong(file: string, line: number): BarInputError {
  return new BarInputError(file, line, null, 'MALFORMED_ROW', `a line longer than ${MAX_LINE_CHARS} characters: not a bar file`);
}

type Accept = (row: Bar | BarInputError) => void;

/** Longest line (or quoted record) accepted; a longer one means the file is not bars, and would be held whole. */
const MAX_LINE_CHARS = 1 << 20;

/** Strict decimal: digits with an optional sign, point and exponent; no hex, no spaces, no Infinity. */
const DECIMAL = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

const POWERS_OF_TEN = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * The number in `text`, or NaN. Plain decimals of up to 15 digits (every price and volume in
 * practice) are parsed by hand: digits / 10^k with both exact in a double is correctly
 * rounded, so the result equals `Number(text)`. Anything else goes through the strict regex.
 */
function toNumber(text: string): number {
  const length = text.length;
  if (length === 0 || length > 16) return strictNumber(text);
  let mantissa = 0;
  let digits = 0;
  let fractionDigits = -1;
  let i = text.charCodeAt(0) === 45 ? 1 : 0;
  for (; i < length; i += 1) {
    const code = text.charCodeAt(i);
    if (code >= 48 && code <= 57) {
      mantissa = mantissa * 10 + (code - 48);
      digits += 1;
      if (fractionDigits >= 0) fractionDigits += 1;
    } else if (code === 46 && fractionDigits < 0) fractionDigits = 0;
    else return strictNumber(text);
  }
  if (digits === 0) return Number.NaN;
  if (digits > 15) return strictNumber(text);
  const value = fractionDigits > 0 ? mantissa / (POWERS_OF_TEN[fractionDigits] ?? Number.NaN) : mantissa;
  return text.charCodeAt(0) === 45 ? -value : value;
}

function strictNumber(text: string): number {
  return DECIMAL.test(text) ? Number(text) : Number.NaN;
}

/** Turns one row's raw values into a bar or the error naming the bad field. */
class RowValidator {
  readonly #file: string;
  readonly #parseTimestamp: (value: string | number) => TimestampResult;

  constructor(file: string, assumeZone: string | null) {
    this.#file = file;
    this.#parseTimestamp = timestampParser({ assumeZone });
  }

  error(line: number, field: string | null, reason: BarInputReason, detail: string): BarInputError {
    return new BarInputError(this.#file, line, field, reason, detail);
  }

  bar(line: number, raw: Record<Column, unknown>): Bar | BarInputError {
    const { timestamp, symbol } = raw;
    if (timestamp === '' || timestamp === null || timestamp === undefined) return this.error(line, 'timestamp', 'MISSING_FIELD', 'timestamp is empty');
    if (typeof timestamp !== 'string' && typeof timestamp !== 'number') {
      return this.error(line, 'timestamp', 'TIMESTAMP_MALFORMED', `expected a string or epoch milliseconds, got ${shownValue(timestamp)}`);
    }
    const parsed = this.#parseTimestamp(timestamp);
    if (!parsed.ok) return this.error(line, 'timestamp', parsed.problem, parsed.detail);
    if (symbol === '' || symbol === null || symbol === undefined) return this.error(line, 'symbol', 'MISSING_FIELD', 'symbol is empty');
    if (typeof symbol !== 'string') return this.error(line, 'symbol', 'INVALID_SYMBOL', `a symbol is a string, got ${shownValue(symbol)}`);
    const open = this.#number(line, 'open', raw.open);
    if (typeof open !== 'number') return open;
    const high = this.#number(line, 'high', raw.high);
    if (typeof high !== 'number') return high;
    const low = this.#number(line, 'low', raw.low);
    if (typeof low !== 'number') return low;
    const close = this.#number(line, 'close', raw.close);
    if (typeof close !== 'number') return close;
    const volume = this.#number(line, 'volume', raw.volume);
    if (typeof volume !== 'number') return volume;
    const bar: Bar = { symbol, ts: parsed.ts, open, high, low, close, volume };
    const defect = barDefect(bar);
    if (defect === null) return bar;
    // The bar's `ts` is the file's `timestamp`.
    return this.error(line, defect.field === 'ts' ? 'timestamp' : defect.field, defect.problem, defect.detail);
  }

  #number(line: number, field: Column, raw: unknown): number | BarInputError {
    if (raw === '' || raw === null || raw === undefined) return this.error(line, field, 'MISSING_FIELD', `${field} is empty`);
    const value = typeof raw === 'number' ? raw : typeof raw === 'string' ? toNumber(raw) : Number.NaN;
    if (!Number.isFinite(value)) return this.error(line, field, 'NOT_A_NUMBER', `${shownValue(raw)} is not a finite number`);
    return value;
  }
}

/** CSV rows: the header, then one bar per record. */
class CsvRows {
  readonly #validator: RowValidator;
  #columns: Column[] | null = null;
  /** Index of each column in a record. */
  #index: Record<Column, number> | null = null;
  constructor(validator: RowValidator) {
    this.#validator = validator;
  }

  line(text: string, line: number, accept: Accept): void {
    if (this.#index === null) {
      this.#headerLine(text, line);
      return;
    }
    if (text.includes('"')) {
      // A quote left open ends with its line: no field of a bar can hold a newline (the symbol
      // grammar refuses one), so the next line is the next row, in `bars` and `replay` alike.
      if (countQuotes(text) % 2 === 1) accept(this.#validator.error(line, null, 'MALFORMED_ROW', 'a quoted field is not closed on its line'));
      else this.#quoted(text, line, accept);
      return;
    }
    const fields = splitOnCommas(text);
    if (fields.length === 1 && text.trim().length === 0) return; // a blank line
    this.#record(fields, line, accept);
  }

  end(): void {
    if (this.#columns === null) throw this.#validator.error(1, null, 'BAD_HEADER', `the file is empty; expected the header ${BAR_COLUMNS.join(',')}`);
  }

  /**
   * The first line that is not blank is the header; a header that cannot be read is the file's
   * error (BAD_HEADER), in `stop` and `skip` mode alike: no later line is read as one.
   */
  #headerLine(text: string, line: number): void {
    if (text.trim().length === 0) return;
    if (text.trimStart().startsWith('{')) {
      throw this.#validator.error(line, null, 'BAD_HEADER', `this line is JSON, not a CSV header: is it a JSON-lines file? Name it .jsonl; ${EXPECTED_HEADER}`);
    }
    if (!text.includes('"')) {
      this.#header(splitOnCommas(text), line);
      return;
    }
    let records: string[][];
    try {
      records = parseCsvRecord(text, { relax_column_count: true }) as string[][];
    } catch (error) {
      if (countQuotes(text) % 2 === 1) throw this.#validator.error(line, null, 'BAD_HEADER', `a quoted name is not closed on its line; ${EXPECTED_HEADER}`);
      const { index, detail } = csvParseProblem(error);
      throw this.#validator.error(line, index === null ? null : `column ${index + 1}`, 'BAD_HEADER', `${detail}; ${EXPECTED_HEADER}`);
    }
    this.#header(records[0] ?? [], line);
  }

  #quoted(text: string, line: number, accept: Accept): void {
    let records: string[][];
    try {
      records = parseCsvRecord(text, { relax_column_count: true }) as string[][];
    } catch (error) {
      const { index, detail } = csvParseProblem(error);
      accept(this.#validator.error(line, index === null ? null : (this.#columns?.[index] ?? `column ${index + 1}`), 'MALFORMED_ROW', detail));
      return;
    }
    const [fields] = records;
    if (fields !== undefined) this.#record(fields, line, accept);
  }

  #record(fields: string[], line: number, accept: Accept): void {
    const index = this.#index;
    const columns = this.#columns;
    if (index === null || columns === null) return;
    if (fields.length > columns.length) {
      accept(this.#validator.error(line, `column ${columns.length + 1}`, 'EXTRA_FIELD', `${fields.length} fields, the header has ${columns.length}`));
      return;
    }
    if (fields.length < columns.length) {
      const missing = columns[fields.length] ?? 'unknown';
      accept(this.#validator.error(line, missing, 'MISSING_FIELD', `${fields.length} fields, the header has ${columns.length}`));
      return;
    }
    accept(
      this.#validator.bar(line, {
        timestamp: fields[index.timestamp],
        symbol: fields[index.symbol],
        open: fields[index.open],
        high: fields[index.high],
        low: fields[index.low],
        close: fields[index.close],
        volume: fields[index.volume],
      }),
    );
  }

  /** Names are matched trimmed and in any case; the error names a bad one as written. */
  #header(fields: string[], line: number): void {
    const written = fields.map((field) => field.trim());
    const names = written.map((name) => name.toLowerCase());
    const unnamed = names.indexOf('');
    if (unnamed !== -1) throw this.#validator.error(line, `column ${unnamed + 1}`, 'BAD_HEADER', `column ${unnamed + 1} has no name; ${EXPECTED_HEADER}`);
    const unknown = names.findIndex((name) => !(BAR_COLUMNS as readonly string[]).includes(name));
    if (unknown !== -1) {
      const name = written[unknown] ?? '';
      throw this.#validator.error(line, name, 'BAD_HEADER', `unknown column ${shownValue(name)}; ${EXPECTED_HEADER}`);
    }
    const missing = BAR_COLUMNS.find((column) => !names.includes(column));
    if (missing !== undefined) throw this.#validator.error(line, missing, 'BAD_HEADER', `no "${missing}" column; ${EXPECTED_HEADER}`);
    const repeated = names.find((name, i) => names.indexOf(name) !== i);
    if (repeated !== undefined) throw this.#validator.error(line, repeated, 'BAD_HEADER', `column "${repeated}" is repeated; ${EXPECTED_HEADER}`);
    const columns = names as Column[];
    this.#columns = columns;
    this.#index = Object.fromEntries(BAR_COLUMNS.map((column) => [column, columns.indexOf(column)])) as Record<Column, number>;
  }
}

/** What csv-parse found wrong with one line, said for that line (it counts lines of its own). */
function csvParseProblem(error: unknown): { index: number | null; detail: string } {
  const { code, index } = (error ?? {}) as { code?: unknown; index?: unknown };
  const at = typeof index === 'number' && Number.isSafeInteger(index) && index >= 0 ? index : null;
  if (code === 'INVALID_OPENING_QUOTE') return { index: at, detail: 'a quote inside a field that does not start with one' };
  if (code === 'CSV_INVALID_CLOSING_QUOTE') return { index: at, detail: 'text after the closing quote of a field' };
  return { index: at, detail: describeError(error).replace(/ at line \d+/g, '') };
}

const EXPECTED_HEADER = `expected the header ${BAR_COLUMNS.join(',')} (any order)`;

/** `text.split(',')`, which V8 runs about twice as slowly on the sliced strings lines are. */
function splitOnCommas(text: string): string[] {
  const fields: string[] = [];
  let from = 0;
  for (let comma = text.indexOf(',', from); comma !== -1; comma = text.indexOf(',', from)) {
    fields.push(text.slice(from, comma));
    from = comma + 1;
  }
  fields.push(text.slice(from));
  return fields;
}

function countQuotes(text: string): number {
  let count = 0;
  for (let at = text.indexOf('"'); at !== -1; at = text.indexOf('"', at + 1)) count += 1;
  return count;
}

/** JSON lines: one object per line, exactly the bar keys. */
class JsonRows {
  readonly #validator: RowValidator;
  #first = true;

  constructor(validator: RowValidator) {
    this.#validator = validator;
  }

  line(text: string, line: number, accept: Accept): void {
    if (text.trim().length === 0) return;
    const first = this.#first;
    this.#first = false;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      // A CSV file named .jsonl would otherwise be one MALFORMED_ROW per line, and a replay of nothing.
      if (first && isCsvHeader(text)) {
        throw this.#validator.error(line, null, 'BAD_HEADER', 'a CSV header in a JSON-lines file: is it a CSV file? Name it .csv');
      }
      accept(this.#validator.error(line, null, 'MALFORMED_ROW', `not JSON: ${describeError(error)}`));
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      accept(this.#validator.error(line, null, 'MALFORMED_ROW', 'a line must be a JSON object'));
      return;
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!(BAR_COLUMNS as readonly string[]).includes(key)) {
        accept(this.#validator.error(line, key, 'EXTRA_FIELD', `unknown key ${shownValue(key)}; expected ${BAR_COLUMNS.join(', ')}`));
        return;
      }
    }
    const missing = BAR_COLUMNS.find((column) => !(column in record));
    if (missing !== undefined) {
      accept(this.#validator.error(line, missing, 'MISSING_FIELD', `no "${missing}" key`));
      return;
    }
    accept(this.#validator.bar(line, record as Record<Column, unknown>));
  }

  end(): void {}
}

/** Whether `text` reads as a CSV header of bar columns (any order, any case, quoted or not). */
function isCsvHeader(text: string): boolean {
  const names = text.split(',').map((name) => name.trim().replace(/^"(.*)"$/, '$1').trim().toLowerCase());
  return names.length === BAR_COLUMNS.length && BAR_COLUMNS.every((column) => names.includes(column));
}
