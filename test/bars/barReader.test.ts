import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Bar } from '../../src/bars/bar.js';
import { BarInputError, readBars, type ReadBarsOptions } from '../../src/bars/barReader.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'bars');
const fixture = (name: string) => join(fixtures, name);

const tempDirs: string[] = [];

/** A fresh temp dir, removed after the file's tests. */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-bars-'));
  tempDirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function readAll(file: string, options: ReadBarsOptions = {}): Promise<{ bars: Bar[]; errors: BarInputError[]; batches: number }> {
  const bars: Bar[] = [];
  const errors: BarInputError[] = [];
  let batches = 0;
  for await (const batch of readBars(file, options)) {
    batches += 1;
    bars.push(...batch.bars);
    errors.push(...batch.errors);
  }
  return { bars, errors, batches };
}

async function firstError(file: string, options: ReadBarsOptions = {}): Promise<BarInputError> {
  try {
    await readAll(file, options);
  } catch (error) {
    if (error instanceof BarInputError) return error;
    throw error;
  }
  throw new Error(`${file} was read without an error`);
}

describe('reading CSV bars', () => {
  it('reads offsets, Z and epoch milliseconds into UTC bar starts', async () => {
    const { bars, errors } = await readAll(fixture('good.csv'));

    expect(errors).toEqual([]);
    expect(bars).toEqual([
      { symbol: 'AAPL', ts: Date.parse('2025-11-03T14:30:00Z'), open: 261.85, high: 262.06, low: 261.84, close: 262.01, volume: 208415 },
      { symbol: 'MSFT', ts: Date.parse('2025-11-03T14:30:00Z'), open: 521.65, high: 521.7, low: 521.1, close: 521.19, volume: 102009 },
      { symbol: 'AAPL', ts: Date.parse('2025-11-03T14:31:00Z'), open: 262.01, high: 262.3, low: 261.9, close: 262.2, volume: 150000 },
      { symbol: 'AAPL', ts: Date.parse('2025-11-03T14:32:00Z'), open: 262.2, high: 262.25, low: 262, close: 262.1, volume: 90000 },
    ]);
  });

  it('accepts a UTF-8 byte order mark and CRLF line ends', async () => {
    const { bars, errors } = await readAll(fixture('bom-crlf.csv'));

    expect(errors).toEqual([]);
    expect(bars.map((bar) => [bar.symbol, bar.ts, bar.volume])).toEqual([
      ['AAPL', Date.parse('2025-11-03T14:30:00Z'), 208415],
      ['AAPL', Date.parse('2025-11-03T14:31:00Z'), 150000],
    ]);
  });

  it('reads quoted fields through csv-parse; a quote left open ends with its line; symbols follow the one grammar', async () => {
    const { bars, errors } = await readAll(fixture('quoted.csv'), { onBadRow: 'skip' });

    expect(bars.map((bar) => bar.symbol)).toEqual(['BRK.B']);
    expect(errors.map((error) => [error.line, error.field, error.reason])).toEqual([
      // "BRK<newline>B": no bar field can hold a newline, so each half is a bad row of its own.
      [3, null, 'MALFORMED_ROW'],
      [4, null, 'MALFORMED_ROW'],
      // The same symbol grammar as orders: a bar the session accepts can always be traded.
      [5, 'symbol', 'INVALID_SYMBOL'],
    ]);
  });

  it('loses no row after an unterminated quote: it is that line\'s error, in bars (stop) and replay (skip) alike', async () => {
    const dir = await tempDir();
    const file = join(dir, 'open-quote.csv');
    const rows = Array.from({ length: 20 }, (_, i) => `2025-11-03T14:${String(i).padStart(2, '0')}:00Z,${i === 5 ? '"AAPL' : 'AAPL'},1,1,1,1,10`);
    await writeFile(file, `timestamp,symbol,open,high,low,close,volume\n${rows.join('\n')}\n`);

    const skipped = await readAll(file, { onBadRow: 'skip' });
    expect(skipped.bars).toHaveLength(19);
    expect(skipped.errors.map((error) => [error.line, error.reason])).toEqual([[7, 'MALFORMED_ROW']]);
    await expect(readAll(file)).rejects.toMatchObject({ line: 7, reason: 'MALFORMED_ROW' });
  });

  it('accepts the columns in any order', async () => {
    const dir = await tempDir();
    const file = join(dir, 'reordered.csv');
    await writeFile(file, 'symbol,volume,close,low,high,open,timestamp\nAAPL,10,101,99,102,100,2025-11-03T14:30:00Z\n');

    const { bars } = await readAll(file);

    expect(bars).toEqual([{ symbol: 'AAPL', ts: Date.parse('2025-11-03T14:30:00Z'), open: 100, high: 102, low: 99, close: 101, volume: 10 }]);
  });

  it('streams a large file in batches of the requested size', async () => {
    const dir = await tempDir();
    const file = join(dir, 'large.csv');
    const start = Date.parse('2025-01-02T14:30:00Z');
    const rows = Array.from({ length: 20_000 }, (_, i) => `${start + i * 60_000},SPY,100,101,99,100.5,${i}`);
    await writeFile(file, `timestamp,symbol,open,high,low,close,volume\n${rows.join('\n')}`); // no final newline

    const { bars, batches } = await readAll(file, { batchSize: 1000 });

    expect(bars).toHaveLength(20_000);
    expect(batches).toBe(20);
    expect(bars.at(-1)).toEqual({ symbol: 'SPY', ts: start + 19_999 * 60_000, open: 100, high: 101, low: 99, close: 100.5, volume: 19_999 });
  });

  it('parses prices exactly as Number() does, and refuses hex, blanks and Infinity', async () => {
    const dir = await tempDir();
    const file = join(dir, 'numbers.csv');
    const prices = ['0.1', '1e2', '123456.789012', '.5', '7.', '99999999999999999'];
    const body = prices.map((price, i) => `${Date.parse('2025-01-02T14:30:00Z') + i * 60_000},X,${price},${price},${price},${price},0`);
    const bad = ['0x10', ' 1', '1 ', 'Infinity', '1_0', '+-1'].map((price, i) => `${Date.parse('2025-01-03T14:30:00Z') + i * 60_000},X,1,1,1,${price},0`);
    await writeFile(file, `timestamp,symbol,open,high,low,close,volume\n${[...body, ...bad].join('\n')}\n`);

    const { bars, errors } = await readAll(file, { onBadRow: 'skip' });

    expect(bars.map((bar) => bar.close)).toEqual(prices.map(Number));
    expect(errors.map((error) => [error.line, error.field, error.reason])).toEqual(
      [8, 9, 10, 11, 12, 13].map((line) => [line, 'close', 'NOT_A_NUMBER']),
    );
  });
});

describe('reading JSON lines', () => {
  it('reads objects with numbers or numeric strings and skips blank lines', async () => {
    const { bars, errors } = await readAll(fixture('good.jsonl'));

    expect(errors).toEqual([]);
    expect(bars).toEqual([
      { symbol: 'AAPL', ts: Date.parse('2025-11-03T14:30:00Z'), open: 261.85, high: 262.06, low: 261.84, close: 262.01, volume: 208415 },
      { symbol: 'AAPL', ts: Date.parse('2025-11-03T14:31:00Z'), open: 262.01, high: 262.3, low: 261.9, close: 262.2, volume: 150000 },
    ]);
  });

  it('reports a missing key, an unknown key and a line that is not JSON, each with its line', async () => {
    const { bars, errors } = await readAll(fixture('bad.jsonl'), { onBadRow: 'skip' });

    expect(bars).toHaveLength(1);
    expect(errors.map((error) => [error.line, error.field, error.reason])).toEqual([
      [2, 'volume', 'MISSING_FIELD'],
      [3, 'vwap', 'EXTRA_FIELD'],
      [4, null, 'MALFORMED_ROW'],
    ]);
  });
});

describe('the malformed-row corpus', () => {
  it.each([
    ['missing-field.csv', 3, 'high', 'MISSING_FIELD'],
    ['short-row.csv', 2, 'close', 'MISSING_FIELD'],
    ['nan.csv', 2, 'close', 'NOT_A_NUMBER'],
    ['negative.csv', 3, 'open', 'NON_POSITIVE_PRICE'],
    ['negative-volume.csv', 2, 'volume', 'NEGATIVE_VOLUME'],
    ['high-below-low.csv', 2, 'high', 'HIGH_BELOW_LOW'],
    ['bad-date.csv', 3, 'timestamp', 'TIMESTAMP_MALFORMED'],
    ['extra-columns.csv', 2, 'column 8', 'EXTRA_FIELD'],
    ['naive.csv', 2, 'timestamp', 'TIMESTAMP_NAIVE'],
    ['unterminated-quote.csv', 2, null, 'MALFORMED_ROW'],
    ['bad-header.csv', 1, 'when', 'BAD_HEADER'],
  ])('%s stops at line %i, field %s, with %s', async (name, line, field, reason) => {
    const error = await firstError(fixture(name));

    expect({ file: error.file, line: error.line, field: error.field, reason: error.reason, code: error.code }).toEqual({
      file: fixture(name),
      line,
      field,
      reason,
      code: 'BAD_BAR_INPUT',
    });
    expect(error.message).toContain(`${fixture(name)}:${line}`);
    if (field !== null) expect(error.message).toContain(`"${field}"`);
  });

  it('yields the bars before the bad row, then throws (stop mode)', async () => {
    const seen: Bar[] = [];
    const reading = (async () => {
      for await (const batch of readBars(fixture('negative.csv'))) seen.push(...batch.bars);
    })();

    await expect(reading).rejects.toBeInstanceOf(BarInputError);
    expect(seen.map((bar) => bar.ts)).toEqual([Date.parse('2025-11-03T14:30:00Z')]);
  });

  it('reports the bad row next to the good ones and keeps reading (skip mode)', async () => {
    const { bars, errors } = await readAll(fixture('mixed-naive-aware.csv'), { onBadRow: 'skip' });

    expect(bars.map((bar) => bar.ts)).toEqual([Date.parse('2025-11-03T14:30:00Z'), Date.parse('2025-11-03T14:32:00Z')]);
    expect(errors.map((error) => [error.line, error.reason])).toEqual([[3, 'TIMESTAMP_NAIVE']]);
  });

  it('names a file that cannot be opened', async () => {
    const error = await firstError(fixture('no-such-file.csv'));

    expect([error.line, error.field, error.reason]).toEqual([0, null, 'FILE_UNREADABLE']);
  });

  it('refuses a line too long to be a bar instead of holding it whole', async () => {
    const dir = await tempDir();
    const file = join(dir, 'one-line.csv');
    await writeFile(file, `timestamp,symbol,open,high,low,close,volume\n${'9'.repeat(3 << 20)}`);

    const error = await firstError(file, { onBadRow: 'skip' });

    expect([error.line, error.reason]).toEqual([2, 'MALFORMED_ROW']);
  });

  it('refuses an empty CSV file for its missing header', async () => {
    const dir = await tempDir();
    const file = join(dir, 'empty.csv');
    await writeFile(file, '');

    expect((await firstError(file)).reason).toBe('BAD_HEADER');
  });
});

describe('naive timestamps with an assumed zone', () => {
  it('reads mixed naive and offset rows, each by its own rule', async () => {
    const { bars, errors } = await readAll(fixture('mixed-naive-aware.csv'), { assumeZone: 'America/New_York' });

    expect(errors).toEqual([]);
    expect(bars.map((bar) => new Date(bar.ts).toISOString())).toEqual([
      '2025-11-03T14:30:00.000Z',
      '2025-11-03T14:31:00.000Z',
      '2025-11-03T14:32:00.000Z',
    ]);
  });

  it('reads a fall-back wall time as its earlier occurrence (EDT)', async () => {
    const { bars } = await readAll(fixture('dst-fall-back-naive.csv'), { assumeZone: 'America/New_York' });

    expect(bars.map((bar) => new Date(bar.ts).toISOString())).toEqual([
      '2025-11-02T04:30:00.000Z',
      '2025-11-02T05:30:00.000Z',
      '2025-11-02T07:30:00.000Z',
    ]);
  });

  it('refuses a spring-forward wall time that never happened', async () => {
    const error = await firstError(fixture('dst-spring-gap-naive.csv'), { assumeZone: 'America/New_York' });

    expect([error.line, error.field, error.reason]).toEqual([3, 'timestamp', 'TIMESTAMP_IN_DST_GAP']);
    expect(error.message).toContain('2025-03-09T02:00:00-05:00 to 2025-03-09T03:00:00-04:00');
  });
});

describe('reading a FIFO', () => {
  /** A FIFO in a fresh temp dir, no one writing to it. */
  async function fifo(): Promise<string> {
    const path = join(await tempDir(), 'bars.csv');
    execFileSync('mkfifo', [path]);
    return path;
  }

  it('waits for a writer that opens the FIFO after the read started, then reads what it wrote', async () => {
    const path = await fifo();
    const reading = readAll(path);
    // Written once the reader holds the FIFO (writeFile on a FIFO waits for a reader to open it).
    await writeFile(path, 'timestamp,symbol,open,high,low,close,volume\n2025-11-03T14:30:00Z,AAPL,1,1,1,1,1\n2025-11-03T14:31:00Z,AAPL,1,1,1,1,1\n');

    const { bars } = await reading;

    expect(bars.map((bar) => bar.ts)).toEqual([Date.parse('2025-11-03T14:30:00Z'), Date.parse('2025-11-03T14:31:00Z')]);
  });

  it('ends without an error when its signal aborts while no one has opened the FIFO for writing', async () => {
    const path = await fifo();
    const controller = new AbortController();
    const reading = readAll(path, { signal: controller.signal });

    controller.abort();

    await expect(reading).resolves.toEqual({ bars: [], errors: [], batches: 0 });
  });

  it('yields no batch after its signal aborts mid-file, and throws nothing', async () => {
    const controller = new AbortController();
    let batches = 0;
    for await (const batch of readBars(fixture('good.csv'), { signal: controller.signal, batchSize: 1 })) {
      batches += 1;
      expect(batch.bars).toHaveLength(1);
      controller.abort();
    }

    expect(batches).toBe(1);
  });
});

describe('line endings and encodings', () => {
  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ])('reads %s line endings, naming bad rows by their line', async (_, eol) => {
    const dir = await tempDir();
    const file = join(dir, 'eol.csv');
    const rows = ['timestamp,symbol,open,high,low,close,volume', '2025-11-03T14:30:00Z,AAPL,1,1,1,1,1', '2025-11-03T14:31:00Z,AAPL,-1,1,1,1,1', '2025-11-03T14:32:00Z,AAPL,1,1,1,1,1'];
    await writeFile(file, rows.join(eol) + eol);

    const { bars, errors } = await readAll(file, { onBadRow: 'skip' });

    expect(bars).toHaveLength(2);
    expect(errors.map((error) => [error.line, error.field, error.reason])).toEqual([[3, 'open', 'NON_POSITIVE_PRICE']]);
  });

  it('decides CR line endings even when the first CR ends a read chunk', async () => {
    const dir = await tempDir();
    const file = join(dir, 'cr-chunk.csv');
    const header = 'timestamp,symbol,open,high,low,close,volume';
    // A header padded to end exactly at the 1 MiB chunk boundary with its CR.
    const padded = `${header}${' '.repeat((1 << 20) - header.length - 1)}\r`;
    await writeFile(file, `${padded}2025-11-03T14:30:00Z,AAPL,1,1,1,1,1\r`);

    const { bars } = await readAll(file);

    expect(bars).toHaveLength(1);
  });

  it.each([
    ['UTF-16 LE', Buffer.from([0xff, 0xfe, 0x74, 0x00]), 'UNSUPPORTED_ENCODING'],
    ['UTF-16 BE', Buffer.from([0xfe, 0xff, 0x00, 0x74]), 'UNSUPPORTED_ENCODING'],
    ['a NUL', Buffer.from('timestamp,sym\0bol'), 'NOT_TEXT'],
    ['Latin-1', Buffer.from('timestamp,symbol,open,high,low,close,volume\n2025-11-03T14:30:00Z,CAF\xc9,1,1,1,1,1\n', 'latin1'), 'UNSUPPORTED_ENCODING'],
  ])('refuses a file in %s as a whole, in skip mode too', async (_, bytes, reason) => {
    const dir = await tempDir();
    const file = join(dir, 'encoded.csv');
    await writeFile(file, bytes);

    await expect(readAll(file, { onBadRow: 'skip' })).rejects.toMatchObject({ reason, field: null });
  });

  it('refuses a header with as many of two delimiters as the file\'s error, on its line, in skip mode too', async () => {
    const dir = await tempDir();
    const file = join(dir, 'tie.csv');
    await writeFile(file, '\ntimestamp;symbol;open;high,low,close,volume\n2025-11-03T14:30:00Z;AAPL;1;1,1,1,1\n');

    const error = await firstError(file, { onBadRow: 'skip' });

    expect({ code: error.code, reason: error.reason, line: error.line, field: error.field }).toEqual({ code: 'BAD_BAR_INPUT', reason: 'BAD_HEADER', line: 2, field: null });
    expect(error.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: cannot tell the delimiter: the header holds as many of two of , ; and tab; `));
  });

  it('refuses a header it cannot read in skip mode too, instead of reading the next line as the header', async () => {
    const dir = await tempDir();
    const file = join(dir, 'open-quote-header.csv');
    await writeFile(file, '"timestamp,symbol,open,high,low,close,volume\n2025-11-03T14:30:00Z,AAPL,1,1,1,1,1\n');

    await expect(readAll(file, { onBadRow: 'skip' })).rejects.toMatchObject({ line: 1, reason: 'BAD_HEADER' });
  });
});

describe('reading a .json array', () => {
  const row = (i: number): string => `[${Date.UTC(2024, 0, 1) + i * 60_000},100.5,101,100,100.25,${i}]`;

  it('reads a one-line ccxt file larger than a line may be, elements cut across read chunks, in batches', async () => {
    const dir = await tempDir();
    const file = join(dir, 'ccxt.json');
    const count = 60_000; // ~2.5 MiB on one line: three read chunks
    await writeFile(file, `[${Array.from({ length: count }, (_, i) => row(i)).join(',')}]`);

    const { bars, errors, batches } = await readAll(file, { symbol: 'BTC/USDT', batchSize: 4096 });

    expect(errors).toEqual([]);
    expect(bars).toHaveLength(count);
    expect(batches).toBeGreaterThan(1);
    expect(bars[count - 1]).toEqual({ symbol: 'BTC/USDT', ts: Date.UTC(2024, 0, 1) + (count - 1) * 60_000, open: 100.5, high: 101, low: 100, close: 100.25, volume: count - 1 });
  });

  it('tracks strings and nesting: a "]" or "," inside a string does not end an element', async () => {
    const dir = await tempDir();
    const file = join(dir, 'objects.json');
    await writeFile(file, '[{"t":"2024-01-01T00:00:00Z","o":1,"h":1,"l":1,"c":1,"v":1,"note":"a ], a \\" and a {"}]');

    const { bars, errors } = await readAll(file, { symbol: 'X', ignoreExtra: true, onBadRow: 'skip' });

    expect(errors).toEqual([]);
    expect(bars).toEqual([{ symbol: 'X', ts: Date.UTC(2024, 0, 1), open: 1, high: 1, low: 1, close: 1, volume: 1 }]);
  });

  it('names the line an element starts on', async () => {
    const dir = await tempDir();
    const file = join(dir, 'lines.json');
    await writeFile(file, `[\n  ${row(0)},\n  ${row(1).replace('100.25', '-1')}\n]\n`);

    const error = await firstError(file, { symbol: 'X' });

    expect({ line: error.line, field: error.field, reason: error.reason }).toEqual({ line: 3, field: 'close', reason: 'NON_POSITIVE_PRICE' });
  });

  it('refuses text after the array\'s closing ] once, on its line, keeping the rows before it (skip mode)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'trailing.json');
    await writeFile(file, `[${row(0)},${row(1)}]\n\n  {"more": 1} [2]\n`);

    const { bars, errors } = await readAll(file, { symbol: 'X', onBadRow: 'skip' });

    expect(bars).toHaveLength(2);
    expect(errors.map((e) => ({ code: e.code, reason: e.reason, line: e.line }))).toEqual([{ code: 'BAD_BAR_INPUT', reason: 'MALFORMED_ROW', line: 3 }]);
    expect(errors[0]?.message).toBe(`${file}:3: text after the array's closing ] (MALFORMED_ROW)`);
  });

  it('refuses an empty element, after [ or between two commas, on its line, and reads the rows around it', async () => {
    const dir = await tempDir();
    const file = join(dir, 'holes.json');
    await writeFile(file, `[,\n${row(0)},\n,\n${row(1)}]`);

    const { bars, errors } = await readAll(file, { symbol: 'X', onBadRow: 'skip' });

    expect(bars).toHaveLength(2);
    expect(errors.map((e) => ({ code: e.code, reason: e.reason, line: e.line }))).toEqual([
      { code: 'BAD_BAR_INPUT', reason: 'MALFORMED_ROW', line: 1 },
      { code: 'BAD_BAR_INPUT', reason: 'MALFORMED_ROW', line: 3 },
    ]);
    expect(errors[1]?.message).toBe(`${file}:3: an empty element (two commas, or a comma after [) (MALFORMED_ROW)`);
  });

  it('refuses ccxt rows with --adjusted as the file\'s error (BAD_HEADER, adjClose), at the first row, in skip mode too', async () => {
    const dir = await tempDir();
    const file = join(dir, 'adjusted.json');
    await writeFile(file, `[\n${row(0)},\n${row(1)}\n]`);

    const error = await firstError(file, { symbol: 'X', adjusted: true, onBadRow: 'skip' });

    expect({ code: error.code, reason: error.reason, line: error.line, field: error.field }).toEqual({ code: 'BAD_BAR_INPUT', reason: 'BAD_HEADER', line: 2, field: 'adjClose' });
    expect(error.message).toBe(`${file}:2: field "adjClose": --adjusted needs an adjusted close, which ccxt OHLCV rows do not have (BAD_HEADER)`);
  });

  it('reads ccxt times as epoch ms, or in the unit --epoch names', async () => {
    const dir = await tempDir();
    const file = join(dir, 'seconds.json');
    await writeFile(file, `[[${Date.UTC(2024, 0, 1) / 1000},1,1,1,1,1]]`);

    expect((await firstError(file, { symbol: 'X' })).reason).toBe('TIMESTAMP_EPOCH_UNIT');
    expect((await readAll(file, { symbol: 'X', epoch: 's' })).bars[0]?.ts).toBe(Date.UTC(2024, 0, 1));
  });
});
