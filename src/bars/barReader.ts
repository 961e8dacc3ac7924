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
import { adjustPrices, BAR_COLUMNS, fieldOfName, resolveNames, sniffDelimiter, type BarField, type BarFormat, type CsvDelimiter, type FieldPositions, type NameProblem } from './barFormat.js';

/**
 * Streaming bar readers for CSV (a header naming timestamp, symbol, open, high, low, close and
 * volume, in any order, by any name of the alias table `BAR_FIELD_ALIASES`; delimited by `,`
 * `;` or tab, as the header line shows), JSON lines (one object per line with those keys;
 * prices as numbers or numeric strings) and `.json` files holding one array of ccxt OHLCV rows
 * (`[[t,o,h,l,c,v],…]`, t in epoch ms) or of bar objects. The options say what a file does not:
 * the symbol (`symbol`), the zone of naive times (`assumeZone`), the epoch unit (`epoch`),
 * adjusted prices (`adjusted`), and whether names of no field are skipped (`ignoreExtra`).
 * The file is read in 1 MiB chunks and handed out as batches of validated
 * bars, so a 1 GB file is never held whole (a `.json` array too: its elements are cut out as they come). A FIFO (`mkfifo`, `<(…)`) is read as a pipe: opening
 * it does not wait for a writer, and `signal` stops the read at once, writer or not.
 *
 * Text is UTF-8, a leading BOM skipped; lines end in LF, CRLF or (decided by the first line
 * ending) a bare CR. A file that starts with a UTF-16 or UTF-32 byte order mark, or whose first
 * 8 KiB hold bytes that are not UTF-8, is refused whole (`UNSUPPORTED_ENCODING`), and so is one
 * with a NUL byte there (`NOT_TEXT`: a binary file, or UTF-16 without a BOM).
 *
 * CSV: a line without a `"` is split on the delimiter directly (the common case, and the fast
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
  | 'AMBIGUOUS_HEADER'
  | 'SYMBOL_MISMATCH'
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
export type BarFileFormat = 'csv' | 'jsonl' | 'json';

/** How to read a bar file: its format options ({@link BarFormat}: epoch, symbol, adjusted, ignoreExtra), the zone, and how to hand it out. */
export interface ReadBarsOptions extends BarFormat {
  /** Default: `jsonl` for `.jsonl`/`.ndjson` files, `json` for `.json`, else `csv`. */
  format?: BarFileFormat;
  /** The IANA zone naive timestamps and dates alone were written in; without it they are refused. */
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

export { BAR_COLUMNS } from './barFormat.js';

/** One row's raw values by field (undefined: the file has no such column or key). */
type RawBar = Record<BarField, unknown>;

/** The format a file name implies. */
export function formatOf(file: string): BarFileFormat {
  if (/\.(jsonl|ndjson)$/i.test(file)) return 'jsonl';
  return /\.json$/i.test(file) ? 'json' : 'csv';
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
  const validator = new RowValidator(file, options);
  const rows = format === 'csv' ? new CsvRows(validator) : format === 'jsonl' ? new JsonRows(validator) : new JsonArrayRows(validator);

  if (aborted()) return;
  const stream = await openBytes(file);
  if (signal !== undefined) addAbortSignal(signal, stream);
  let bytesRead = 0;
  let batch: BarBatch = { bars: [], errors: [], bytesRead };
  let pending: BarInputError | null = null;
  const accept = (row: Bar | BarInputError): void => {
    if (pending !== null) return; // stop mode: nothing after the first bad row
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
      if (rows instanceof JsonArrayRows) {
        // A JSON array is cut into elements, not lines: one line may hold the whole file.
        if (consumed < SNIFF_CHARS) sniffText(file, text.slice(0, SNIFF_CHARS - consumed), rows.lineNumber);
        consumed += text.length;
        rows.text(text, accept);
        if (pending !== null) break;
        if (batch.bars.length + batch.errors.length >= batchSize) {
          yield batch;
          if (aborted()) return;
          batch = { bars: [], errors: [], bytesRead };
        }
        continue;
      }
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
      if (rows instanceof JsonArrayRows) {
        if (consumed < SNIFF_CHARS) sniffText(file, carry.slice(0, SNIFF_CHARS - consumed), rows.lineNumber);
        rows.text(carry, accept);
      } else if (carry.length > 0) {
        // What is left is one line (a CR-terminated file ends with an empty one, never read).
        lineNumber += 1;
        const line = eol === LF && carry.endsWith('\r') ? carry.slice(0, -1) : carry;
        if (consumed < SNIFF_CHARS) sniff(file, line, lineNumber);
        rows.line(line, lineNumber, accept);
      }
      if (pending === null) rows.end(accept);
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

/** {@link sniff} for the first characters of a file not read by lines (a JSON array), from line `firstLine` on. */
function sniffText(file: string, text: string, firstLine: number): void {
  text.split('\n').forEach((line, i) => sniff(file, line, firstLine + i));
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

/** Turns one row's raw values into a bar or the error naming the bad field (by its canonical name). */
class RowValidator {
  readonly #file: string;
  readonly #parseTimestamp: (value: string | number) => TimestampResult;
  /** ccxt's t is epoch milliseconds, whatever the default; an `epoch` named still wins. */
  readonly #parseCcxtTimestamp: (value: string | number) => TimestampResult;
  readonly symbol: string | null;
  readonly adjusted: boolean;
  readonly ignoreExtra: boolean;

  constructor(file: string, options: ReadBarsOptions) {
    this.#file = file;
    this.#parseTimestamp = timestampParser({ assumeZone: options.assumeZone ?? null, epoch: options.epoch ?? null });
    this.#parseCcxtTimestamp = timestampParser({ assumeZone: options.assumeZone ?? null, epoch: options.epoch ?? 'ms' });
    this.symbol = options.symbol ?? null;
    this.adjusted = options.adjusted === true;
    this.ignoreExtra = options.ignoreExtra === true;
  }

  get nameRules(): { symbolGiven: boolean; adjusted: boolean; ignoreExtra: boolean } {
    return { symbolGiven: this.symbol !== null, adjusted: this.adjusted, ignoreExtra: this.ignoreExtra };
  }

  error(line: number, field: string | null, reason: BarInputReason, detail: string): BarInputError {
    return new BarInputError(this.#file, line, field, reason, detail);
  }

  /** A name problem as this file's error (a CSV header's, or a JSON row's). */
  nameError(line: number, problem: NameProblem, suffix = ''): BarInputError {
    return this.error(line, problem.name, problem.reason, `${problem.detail}${suffix}`);
  }

  bar(line: number, raw: RawBar, ccxt = false): Bar | BarInputError {
    const { timestamp } = raw;
    if (timestamp === '' || timestamp === null || timestamp === undefined) return this.error(line, 'timestamp', 'MISSING_FIELD', 'timestamp is empty');
    if (typeof timestamp !== 'string' && typeof timestamp !== 'number') {
      return this.error(line, 'timestamp', 'TIMESTAMP_MALFORMED', `expected a string or an epoch number, got ${shownValue(timestamp)}`);
    }
    const parsed = (ccxt ? this.#parseCcxtTimestamp : this.#parseTimestamp)(timestamp);
    if (!parsed.ok) return this.error(line, 'timestamp', parsed.problem, parsed.detail);
    // No symbol column or key: the file is `--symbol`'s (the header checked it was given).
    const symbol = raw.symbol === undefined && this.symbol !== null ? this.symbol : raw.symbol;
    if (symbol === '' || symbol === null || symbol === undefined) return this.error(line, 'symbol', 'MISSING_FIELD', 'symbol is empty');
    if (typeof symbol !== 'string') return this.error(line, 'symbol', 'INVALID_SYMBOL', `a symbol is a string, got ${shownValue(symbol)}`);
    if (this.symbol !== null && symbol !== this.symbol) {
      return this.error(line, 'symbol', 'SYMBOL_MISMATCH', `${shownValue(symbol)} is not ${shownValue(this.symbol)}, the symbol --symbol names`);
    }
    let open = this.#number(line, 'open', raw.open);
    if (typeof open !== 'number') return open;
    let high = this.#number(line, 'high', raw.high);
    if (typeof high !== 'number') return high;
    let low = this.#number(line, 'low', raw.low);
    if (typeof low !== 'number') return low;
    let close = this.#number(line, 'close', raw.close);
    if (typeof close !== 'number') return close;
    const volume = this.#number(line, 'volume', raw.volume);
    if (typeof volume !== 'number') return volume;
    if (this.adjusted) {
      const adjClose = this.#number(line, 'adjClose', raw.adjClose);
      if (typeof adjClose !== 'number') return adjClose;
      // A close of 0 or less is refused below as it is; it scales nothing.
      if (close > 0) [open, high, low, close] = adjustPrices(open, high, low, close, adjClose);
    }
    const bar: Bar = { symbol, ts: parsed.ts, open, high, low, close, volume };
    const defect = barDefect(bar);
    if (defect === null) return bar;
    // The bar's `ts` is the file's `timestamp`.
    return this.error(line, defect.field === 'ts' ? 'timestamp' : defect.field, defect.problem, defect.detail);
  }

  #number(line: number, field: BarField, raw: unknown): number | BarInputError {
    if (raw === '' || raw === null || raw === undefined) return this.error(line, field, 'MISSING_FIELD', `${field} is empty`);
    const value = typeof raw === 'number' ? raw : typeof raw === 'string' ? toNumber(raw) : Number.NaN;
    if (!Number.isFinite(value)) return this.error(line, field, 'NOT_A_NUMBER', `${shownValue(raw)} is not a finite number`);
    return value;
  }
}

/** CSV rows: the header (which also decides the delimiter), then one bar per record. */
class CsvRows {
  readonly #validator: RowValidator;
  /** Each column's name in errors: its field, or the name as written for a column skipped. */
  #names: string[] | null = null;
  /** Index of each field in a record (-1: absent). */
  #index: FieldPositions | null = null;
  #delimiter: CsvDelimiter = ',';
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
    const fields = splitOn(text, this.#delimiter);
    if (fields.length === 1 && text.trim().length === 0) return; // a blank line
    this.#record(fields, line, accept);
  }

  end(): void {
    if (this.#names === null) throw this.#validator.error(1, null, 'BAD_HEADER', `the file is empty; ${EXPECTED_HEADER}`);
  }

  /**
   * The first line that is not blank is the header; a header that cannot be read is the file's
   * error (BAD_HEADER), in `stop` and `skip` mode alike: no later line is read as one.
   */
  #headerLine(text: string, line: number): void {
    if (text.trim().length === 0) return;
    if (text.trimStart().startsWith('{') || text.trimStart().startsWith('[')) {
      throw this.#validator.error(line, null, 'BAD_HEADER', `this line is JSON, not a CSV header: name a JSON-lines file .jsonl, a JSON array .json; ${EXPECTED_HEADER}`);
    }
    const delimiter = sniffDelimiter(text);
    if (delimiter === null) throw this.#validator.error(line, null, 'BAD_HEADER', `cannot tell the delimiter: the header holds as many of two of , ; and tab; ${EXPECTED_HEADER}`);
    this.#delimiter = delimiter;
    if (!text.includes('"')) {
      this.#header(splitOn(text, delimiter), line);
      return;
    }
    let records: string[][];
    try {
      records = parseCsvRecord(text, { relax_column_count: true, delimiter }) as string[][];
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
      records = parseCsvRecord(text, { relax_column_count: true, delimiter: this.#delimiter }) as string[][];
    } catch (error) {
      const { index, detail } = csvParseProblem(error);
      accept(this.#validator.error(line, index === null ? null : (this.#names?.[index] ?? `column ${index + 1}`), 'MALFORMED_ROW', detail));
      return;
    }
    const [fields] = records;
    if (fields !== undefined) this.#record(fields, line, accept);
  }

  #record(fields: string[], line: number, accept: Accept): void {
    const index = this.#index;
    const names = this.#names;
    if (index === null || names === null) return;
    if (fields.length > names.length) {
      accept(this.#validator.error(line, `column ${names.length + 1}`, 'EXTRA_FIELD', `${fields.length} fields, the header has ${names.length}`));
      return;
    }
    if (fields.length < names.length) {
      const missing = names[fields.length] ?? 'unknown';
      accept(this.#validator.error(line, missing, 'MISSING_FIELD', `${fields.length} fields, the header has ${names.length}`));
      return;
    }
    // No `fields[-1]` for an absent column: a negative index is a slow property lookup, on every row.
    accept(
      this.#validator.bar(line, {
        timestamp: fields[index.timestamp],
        symbol: index.symbol === -1 ? undefined : fields[index.symbol],
        open: fields[index.open],
        high: fields[index.high],
        low: fields[index.low],
        close: fields[index.close],
        volume: fields[index.volume],
        adjClose: index.adjClose === -1 ? undefined : fields[index.adjClose],
      }),
    );
  }

  /** Names are matched by the alias table (trimmed, any case); the error names a bad one as written. */
  #header(fields: string[], line: number): void {
    const resolved = resolveNames(fields, this.#validator.nameRules, 'column');
    if ('reason' in resolved) throw this.#validator.nameError(line, resolved, `; ${EXPECTED_HEADER}`);
    this.#index = resolved;
    this.#names = fields.map((name) => fieldOfName(name) ?? name.trim());
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

const EXPECTED_HEADER = `expected columns ${BAR_COLUMNS.join(',')} in any order, by any of their names (see the README's alias table)`;

/** `text.split(delimiter)`, which V8 runs about twice as slowly on the sliced strings lines are. */
function splitOn(text: string, delimiter: CsvDelimiter): string[] {
  const fields: string[] = [];
  let from = 0;
  for (let at = text.indexOf(delimiter, from); at !== -1; at = text.indexOf(delimiter, from)) {
    fields.push(text.slice(from, at));
    from = at + 1;
  }
  fields.push(text.slice(from));
  return fields;
}

function countQuotes(text: string): number {
  let count = 0;
  for (let at = text.indexOf('"'); at !== -1; at = text.indexOf('"', at + 1)) count += 1;
  return count;
}

/**
 * Bar objects (a JSON line, an element of a JSON array): keys by the alias table. The keys'
 * resolution is kept while the next object has the same keys in the same order, as a file's do.
 */
class JsonObjects {
  readonly #validator: RowValidator;
  #keys: readonly string[] = [];
  #resolved: FieldPositions | NameProblem | null = null;

  constructor(validator: RowValidator) {
    this.#validator = validator;
  }

  record(line: number, record: Record<string, unknown>, accept: Accept): void {
    const keys = Object.keys(record);
    let resolved = this.#resolved;
    if (resolved === null || !sameKeys(keys, this.#keys)) {
      resolved = resolveNames(keys, this.#validator.nameRules, 'key');
      this.#keys = keys;
      this.#resolved = resolved;
    }
    if ('reason' in resolved) {
      accept(this.#validator.nameError(line, resolved));
      return;
    }
    const value = (position: number): unknown => (position === -1 ? undefined : record[keys[position] ?? '']);
    accept(
      this.#validator.bar(line, {
        timestamp: value(resolved.timestamp),
        symbol: value(resolved.symbol),
        open: value(resolved.open),
        high: value(resolved.high),
        low: value(resolved.low),
        close: value(resolved.close),
        volume: value(resolved.volume),
        adjClose: value(resolved.adjClose),
      }),
    );
  }
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

/** JSON lines: one bar object per line. */
class JsonRows {
  readonly #validator: RowValidator;
  readonly #objects: JsonObjects;
  #first = true;

  constructor(validator: RowValidator) {
    this.#validator = validator;
    this.#objects = new JsonObjects(validator);
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
    this.#objects.record(line, value as Record<string, unknown>, accept);
  }

  end(): void {}
}

/** Whether `text` reads as a CSV header of bar columns (any order, any name of the alias table, quoted or not). */
function isCsvHeader(text: string): boolean {
  const names = text.split(sniffDelimiter(text) ?? ',').map((name) => name.trim().replace(/^"(.*)"$/, '$1'));
  return names.length >= 5 && names.every((name) => fieldOfName(name) !== null);
}

/** A ccxt OHLCV row's fields, in order. */
const CCXT_FIELDS = ['timestamp', 'open', 'high', 'low', 'close', 'volume'] as const;

const enum ArrayState {
  /** Before the `[` that opens the file's array. */
  Start,
  /** Between elements (after `[` or a `,`). */
  Between,
  /** Inside an element. */
  Element,
  /** After the closing `]`. */
  Done,
}

/**
 * A `.json` file: one array of ccxt OHLCV rows (`[t,o,h,l,c,v]`, t epoch ms, the symbol from
 * `--symbol`) or bar objects (as JSON lines have them), mixed or not. The text is scanned as it
 * comes (strings and nesting tracked) and each element parsed alone once its `,` or the closing
 * `]` is seen, so a file of one line is never held whole; an element longer than the line
 * limit is refused. An element that is not JSON, or neither a row nor an object, is that
 * element's MALFORMED_ROW (its line is where it starts); a file that does not start with `[` is
 * BAD_HEADER.
 */
class JsonArrayRows {
  readonly #validator: RowValidator;
  readonly #objects: JsonObjects;
  #state = ArrayState.Start;
  /** Between: a `,` was the last thing seen (or nothing yet but `[`: `empty`). */
  #afterComma = false;
  #empty = true;
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** The element's text from earlier chunks. */
  #partial = '';
  #elementLine = 0;
  /** The 1-based line the scan is on. */
  lineNumber = 1;
  #trailingReported = false;
  #ccxtChecked = false;

  constructor(validator: RowValidator) {
    this.#validator = validator;
    this.#objects = new JsonObjects(validator);
  }

  text(text: string, accept: Accept): void {
    let start = 0;
    for (let i = 0; i < text.length; i += 1) {
      const code = text.charCodeAt(i);
      if (code === 10) this.lineNumber += 1;
      if (this.#state === ArrayState.Element) {
        if (this.#inString) {
          if (this.#escaped) this.#escaped = false;
          else if (code === 92) this.#escaped = true;
          else if (code === 34) this.#inString = false;
        } else if (code === 34) this.#inString = true;
        else if (code === 91 || code === 123) this.#depth += 1;
        else if ((code === 93 || code === 125) && this.#depth > 0) this.#depth -= 1;
        else if ((code === 44 || code === 93) && this.#depth === 0) {
          this.#element(this.#partial + text.slice(start, i), accept);
          this.#partial = '';
          this.#state = code === 44 ? ArrayState.Between : ArrayState.Done;
          this.#afterComma = code === 44;
        }
        continue;
      }
      if (code === 32 || code === 10 || code === 13 || code === 9) continue;
      if (this.#state === ArrayState.Start) {
        if (code !== 91) {
          const hint = code === 123 ? 'one object per line is JSON lines: name the file .jsonl' : 'is it CSV? Name it .csv';
          throw this.#validator.error(this.lineNumber, null, 'BAD_HEADER', `a .json bar file holds one JSON array ([[t,o,h,l,c,v],…] or [{…},…]); ${hint}`);
        }
        this.#state = ArrayState.Between;
      } else if (this.#state === ArrayState.Done) {
        if (!this.#trailingReported) accept(this.#validator.error(this.lineNumber, null, 'MALFORMED_ROW', 'text after the array\'s closing ]'));
        this.#trailingReported = true;
      } else if (code === 93) {
        if (this.#afterComma) accept(this.#validator.error(this.lineNumber, null, 'MALFORMED_ROW', 'a comma before the closing ]'));
        this.#state = ArrayState.Done;
      } else if (code === 44) {
        if (this.#afterComma || this.#empty) accept(this.#validator.error(this.lineNumber, null, 'MALFORMED_ROW', 'an empty element (two commas, or a comma after [)'));
        this.#afterComma = true;
      } else {
        // The element starts here: scan this character again inside it.
        this.#state = ArrayState.Element;
        this.#empty = false;
        this.#afterComma = false;
        this.#depth = 0;
        this.#elementLine = this.lineNumber;
        start = i;
        i -= 1;
      }
    }
    if (this.#state === ArrayState.Element) {
      this.#partial += text.slice(start);
      if (this.#partial.length > MAX_LINE_CHARS) {
        throw this.#validator.error(this.#elementLine, null, 'MALFORMED_ROW', `an element longer than ${MAX_LINE_CHARS} characters: not a bar file`);
      }
    }
  }

  end(accept: Accept): void {
    if (this.#state === ArrayState.Start) throw this.#validator.error(1, null, 'BAD_HEADER', 'the file is empty; a .json bar file holds one JSON array');
    if (this.#state !== ArrayState.Done) accept(this.#validator.error(this.lineNumber, null, 'MALFORMED_ROW', 'the array is not closed: the file ends inside it (cut short?)'));
  }

  #element(text: string, accept: Accept): void {
    const line = this.#elementLine;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      accept(this.#validator.error(line, null, 'MALFORMED_ROW', `not JSON: ${describeError(error)}`));
      return;
    }
    if (Array.isArray(value)) this.#ccxtRow(line, value, accept);
    else if (typeof value === 'object' && value !== null) this.#objects.record(line, value as Record<string, unknown>, accept);
    else accept(this.#validator.error(line, null, 'MALFORMED_ROW', 'an element must be a ccxt OHLCV row [t,o,h,l,c,v] or a bar object'));
  }

  #ccxtRow(line: number, row: unknown[], accept: Accept): void {
    if (!this.#ccxtChecked) {
      // What a ccxt file lacks is the file's error, not each row's.
      if (this.#validator.symbol === null) throw this.#validator.error(line, 'symbol', 'BAD_HEADER', 'ccxt OHLCV rows [t,o,h,l,c,v] carry no symbol: name it with --symbol SYM');
      if (this.#validator.adjusted) throw this.#validator.error(line, 'adjClose', 'BAD_HEADER', '--adjusted needs an adjusted close, which ccxt OHLCV rows do not have');
      this.#ccxtChecked = true;
    }
    if (row.length < CCXT_FIELDS.length) {
      accept(this.#validator.error(line, CCXT_FIELDS[row.length] ?? null, 'MISSING_FIELD', `${row.length} values, a ccxt OHLCV row has 6 (t,o,h,l,c,v)`));
      return;
    }
    if (row.length > CCXT_FIELDS.length && !this.#validator.ignoreExtra) {
      accept(this.#validator.error(line, `column ${CCXT_FIELDS.length + 1}`, 'EXTRA_FIELD', `${row.length} values, a ccxt OHLCV row has 6 (t,o,h,l,c,v; --ignore-extra skips the rest)`));
      return;
    }
    const [timestamp, open, high, low, close, volume] = row;
    accept(this.#validator.bar(line, { timestamp, symbol: undefined, open, high, low, close, volume, adjClose: undefined }, true));
  }
}
