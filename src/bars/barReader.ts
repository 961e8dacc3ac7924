import { parse as parseCsvRecord } from 'csv-parse/sync';
import { open } from 'node:fs/promises';
import { barDefect, type Bar, type BarProblem } from './bar.js';
import { AistockError, describeError } from '../common/errors.js';
import { timestampParser, type TimestampProblem, type TimestampResult } from './timestamps.js';

/**
 * Streaming bar readers for CSV (header `timestamp,symbol,open,high,low,close,volume`, in
 * any column order; UTF-8 BOM and CRLF accepted) and JSON lines (one object per line with the
 * same keys; prices as numbers or numeric strings). The file is read in 1 MiB chunks and
 * handed out as batches of validated bars, so a 1 GB file is never held whole.
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
 * A bad header, a file that cannot be opened, or a line longer than 1 Mi characters (not a
 * bar file, and it would have to be held whole) always throws.
 */

/** Why a row (or the file) was refused: a closed set. */
export type BarInputReason =
  | 'FILE_UNREADABLE'
  | 'BAD_HEADER'
  | 'MALFORMED_ROW'
  | 'MISSING_FIELD'
  | 'EXTRA_FIELD'
  | TimestampProblem
  | BarProblem;

/** Bad bar input: the file, the 1-based line (0: the file as a whole), the field (null: the row as a whole). */
export class BarInputError extends AistockError {
  readonly file: string;
  readonly line: number;
  readonly field: string | null;
  readonly reason: BarInputReason;
  readonly detail: string;

  constructor(file: string, line: number, field: string | null, reason: BarInputReason, detail: string, cause?: unknown) {
    const where = line === 0 ? file : `${file}:${line}`;
    super('BAD_BAR_INPUT', `${where}: ${field === null ? '' : `field "${field}": `}${detail} (${reason})`, { cause });
    this.file = file;
    this.line = line;
    this.field = field;
    this.reason = reason;
    this.detail = detail;
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
}

/** Validated bars in file order, plus (in `skip` mode) the rows refused among them. */
export interface BarBatch {
  bars: Bar[];
  errors: BarInputError[];
}

/** The columns (CSV) or keys (JSON lines) of a bar file. */
export const BAR_COLUMNS = ['timestamp', 'symbol', 'open', 'high', 'low', 'close', 'volume'] as const;

type Column = (typeof BAR_COLUMNS)[number];

/** The format a file name implies. */
export function formatOf(file: string): BarFileFormat {
  return /\.(jsonl|ndjson)$/i.test(file) ? 'jsonl' : 'csv';
}

/**
 * Reads a bar file as batches. Throws {@link BarInputError} for a file that cannot be opened,
 * a bad CSV header and (in `stop` mode) the first bad row; other I/O errors propagate.
 * Throws `RangeError` for an unknown `assumeZone` (check it first).
 */
export async function* readBars(file: string, options: ReadBarsOptions = {}): AsyncGenerator<BarBatch> {
  const format = options.format ?? formatOf(file);
  const batchSize = options.batchSize ?? 4096;
  const stopOnBadRow = (options.onBadRow ?? 'stop') === 'stop';
  const rows = format === 'csv' ? new CsvRows(file, options.assumeZone ?? null) : new JsonRows(file, options.assumeZone ?? null);

  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw new BarInputError(file, 0, null, 'FILE_UNREADABLE', `cannot open: ${describeError(error)}`, error);
  }
  let batch: BarBatch = { bars: [], errors: [] };
  let pending: BarInputError | null = null;
  const accept = (row: Bar | BarInputError): void => {
    if (!(row instanceof BarInputError)) batch.bars.push(row);
    else if (stopOnBadRow) pending ??= row;
    else batch.errors.push(row);
  };
  try {
    const stream = handle.createReadStream({ encoding: 'utf8', highWaterMark: 1 << 20 });
    let carry = '';
    let lineNumber = 0;
    let first = true;
    for await (const chunk of stream as AsyncIterable<string>) {
      let text = carry + chunk;
      if (first) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        first = false;
      }
      let from = 0;
      for (let newline = text.indexOf('\n', from); newline !== -1; newline = text.indexOf('\n', from)) {
        lineNumber += 1;
        rows.line(text.slice(from, text.charCodeAt(newline - 1) === 13 ? newline - 1 : newline), lineNumber, accept);
        from = newline + 1;
        if (pending !== null) break;
        if (batch.bars.length + batch.errors.length >= batchSize) {
          yield batch;
          batch = { bars: [], errors: [] };
        }
      }
      carry = text.slice(from);
      if (pending !== null) break;
      if (carry.length > MAX_LINE_CHARS) {
        throw new BarInputError(file, lineNumber + 1, null, 'MALFORMED_ROW', `a line longer than ${MAX_LINE_CHARS} characters: not a bar file`);
      }
    }
    if (pending === null) {
      if (carry.length > 0) {
        lineNumber += 1;
        rows.line(carry.endsWith('\r') ? carry.slice(0, -1) : carry, lineNumber, accept);
      }
      rows.end();
    }
  } finally {
    await handle.close();
  }
  if (batch.bars.length > 0 || batch.errors.length > 0) yield batch;
  if (pending !== null) throw pending;
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
      return this.error(line, 'timestamp', 'TIMESTAMP_MALFORMED', `expected a string or epoch milliseconds, got ${JSON.stringify(timestamp)}`);
    }
    const parsed = this.#parseTimestamp(timestamp);
    if (!parsed.ok) return this.error(line, 'timestamp', parsed.problem, parsed.detail);
    if (symbol === '' || symbol === null || symbol === undefined) return this.error(line, 'symbol', 'MISSING_FIELD', 'symbol is empty');
    if (typeof symbol !== 'string') return this.error(line, 'symbol', 'MALFORMED_ROW', `symbol must be a string, got ${JSON.stringify(symbol)}`);
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
    return defect === null ? bar : this.error(line, defect.field, defect.problem, defect.detail);
  }

  #number(line: number, field: Column, raw: unknown): number | BarInputError {
    if (raw === '' || raw === null || raw === undefined) return this.error(line, field, 'MISSING_FIELD', `${field} is empty`);
    const value = typeof raw === 'number' ? raw : typeof raw === 'string' ? toNumber(raw) : Number.NaN;
    if (!Number.isFinite(value)) return this.error(line, field, 'NOT_A_NUMBER', `${JSON.stringify(raw)} is not a finite number`);
    return value;
  }
}

/** CSV rows: the header, then one bar per record. */
class CsvRows {
  readonly #validator: RowValidator;
  #columns: Column[] | null = null;
  /** Index of each column in a record. */
  #index: Record<Column, number> | null = null;
  constructor(file: string, assumeZone: string | null) {
    this.#validator = new RowValidator(file, assumeZone);
  }

  line(text: string, line: number, accept: Accept): void {
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

  #quoted(text: string, line: number, accept: Accept): void {
    let records: string[][];
    try {
      records = parseCsvRecord(text, { relax_column_count: true }) as string[][];
    } catch (error) {
      accept(this.#validator.error(line, null, 'MALFORMED_ROW', describeError(error)));
      return;
    }
    const [fields] = records;
    if (fields !== undefined) this.#record(fields, line, accept);
  }

  #record(fields: string[], line: number, accept: Accept): void {
    const index = this.#index;
    if (index === null) {
      this.#header(fields, line);
      return;
    }
    const columns = this.#columns ?? [];
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

  #header(fields: string[], line: number): void {
    const names = fields.map((field) => field.trim().toLowerCase());
    const expected = `expected the header ${BAR_COLUMNS.join(',')} (any order)`;
    const unknown = names.find((name) => !(BAR_COLUMNS as readonly string[]).includes(name));
    if (unknown !== undefined) throw this.#validator.error(line, unknown, 'BAD_HEADER', `unknown column "${unknown}"; ${expected}`);
    const missing = BAR_COLUMNS.find((column) => !names.includes(column));
    if (missing !== undefined) throw this.#validator.error(line, missing, 'BAD_HEADER', `no "${missing}" column; ${expected}`);
    if (names.length !== BAR_COLUMNS.length) throw this.#validator.error(line, null, 'BAD_HEADER', `a column is repeated; ${expected}`);
    const columns = names as Column[];
    this.#columns = columns;
    this.#index = Object.fromEntries(BAR_COLUMNS.map((column) => [column, columns.indexOf(column)])) as Record<Column, number>;
  }
}

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

  constructor(file: string, assumeZone: string | null) {
    this.#validator = new RowValidator(file, assumeZone);
  }

  line(text: string, line: number, accept: Accept): void {
    if (text.trim().length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
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
        accept(this.#validator.error(line, key, 'EXTRA_FIELD', `unknown key "${key}"; expected ${BAR_COLUMNS.join(', ')}`));
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
