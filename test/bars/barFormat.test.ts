import { describe, expect, it } from 'vitest';
import { adjustPrices, fieldOfName, resolveNames, sniffDelimiter, type NameRules } from '../../src/bars/barFormat.js';

const STRICT: NameRules = { symbolGiven: false, adjusted: false, ignoreExtra: false };

describe('column and key names', () => {
  it.each([
    ['Date', 'timestamp'],
    [' DateTime ', 'timestamp'],
    ['date_time', 'timestamp'],
    ['TIME', 'timestamp'],
    ['t', 'timestamp'],
    ['Ticker', 'symbol'],
    ['sym', 'symbol'],
    ['o', 'open'],
    ['Vol', 'volume'],
    ['Adj Close', 'adjClose'],
    ['adj_close', 'adjClose'],
    ['Adjusted Close', 'adjClose'],
  ])('reads %j as the %s', (name, field) => {
    expect(fieldOfName(name)).toBe(field);
  });

  it.each(['T', 'O', 'V', 'S', 'n', 'vw', 'when', 'adj', '__proto__', 'toString', ''])('knows no field named %j (one-letter names only in lower case)', (name) => {
    expect(fieldOfName(name)).toBeNull();
  });
});

describe('resolving a header', () => {
  it('finds every field in any order, and the adjusted close when there is one', () => {
    expect(resolveNames(['Date', 'Open', 'High', 'Low', 'Close', 'Adj Close', 'Volume', 'Ticker'], STRICT, 'column')).toEqual({
      timestamp: 0, open: 1, high: 2, low: 3, close: 4, adjClose: 5, volume: 6, symbol: 7,
    });
  });

  it('refuses two names of one field as ambiguous, naming both as written', () => {
    expect(resolveNames(['Date', 'Time', 'symbol', 'o', 'h', 'l', 'c', 'v'], STRICT, 'column')).toEqual({
      reason: 'AMBIGUOUS_HEADER',
      name: 'Time',
      detail: 'columns "Date" and "Time" both name the timestamp: keep one',
    });
  });

  it('refuses the same name twice as a repeated column, not an ambiguity', () => {
    expect(resolveNames(['timestamp', 'symbol', 'open', 'high', 'low', 'close', 'Close', 'volume'], STRICT, 'column')).toMatchObject({ reason: 'BAD_HEADER', name: 'Close' });
  });

  it('needs a symbol column unless --symbol gives it, and says so', () => {
    const names = ['time', 'open', 'high', 'low', 'close', 'volume'];
    expect(resolveNames(names, STRICT, 'column')).toEqual({ reason: 'BAD_HEADER', name: 'symbol', detail: 'no "symbol" column (a file of one symbol: name it with --symbol SYM)' });
    expect(resolveNames(names, { ...STRICT, symbolGiven: true }, 'column')).toMatchObject({ timestamp: 0, symbol: -1, volume: 5 });
  });

  it('refuses an unknown column, or skips it with --ignore-extra; an unknown JSON key is EXTRA_FIELD', () => {
    const names = ['t', 'o', 'h', 'l', 'c', 'v', 'n', 'vw'];
    const rules = { ...STRICT, symbolGiven: true };
    expect(resolveNames(names, rules, 'column')).toMatchObject({ reason: 'BAD_HEADER', name: 'n' });
    expect(resolveNames(names, rules, 'key')).toMatchObject({ reason: 'EXTRA_FIELD', name: 'n' });
    expect(resolveNames(names, { ...rules, ignoreExtra: true }, 'key')).toMatchObject({ timestamp: 0, volume: 5 });
  });

  it('needs an adjusted close with --adjusted', () => {
    expect(resolveNames(['timestamp', 'symbol', 'open', 'high', 'low', 'close', 'volume'], { ...STRICT, adjusted: true }, 'column')).toMatchObject({ reason: 'BAD_HEADER', name: 'adjClose' });
  });

  it('refuses an unnamed column by its position', () => {
    expect(resolveNames(['timestamp', '', 'symbol'], STRICT, 'column')).toMatchObject({ reason: 'BAD_HEADER', name: 'column 2' });
  });
});

describe('the delimiter, from the header line', () => {
  it.each([
    ['timestamp,symbol,open,high,low,close,volume', ','],
    ['Datum;Symbol;Open;High;Low;Close;Volume', ';'],
    ['date\tsymbol\topen\thigh\tlow\tclose\tvolume', '\t'],
    ['"a;b",c,d', ','],
    ['timestamp', ','],
  ])('of %j is %j', (header, delimiter) => {
    expect(sniffDelimiter(header)).toBe(delimiter);
  });

  it('is not told by a header with as many of two delimiters', () => {
    expect(sniffDelimiter('timestamp,symbol;open')).toBeNull();
  });
});

describe('adjusted prices', () => {
  it('scale open, high and low by Adj Close / Close, rounded to 12 significant digits, and take Adj Close as the close', () => {
    expect(adjustPrices(187.37, 188.8, 184.17, 184.62, 183.517634)).toEqual([186.25121375, 187.67267522, 183.07032095, 183.517634]);
  });

  it('leave no binary noise: 100.01 × 99.08 / 100.01 is 99.07999999999998 in doubles, the bar gets 99.08', () => {
    expect(adjustPrices(100.01, 100.5, 99.5, 100.01, 99.08)).toEqual([99.08, 99.5654434557, 98.5747425257, 99.08]);
  });

  it('are the raw prices when Adj Close equals Close', () => {
    expect(adjustPrices(201.15, 206.04, 200.1, 204.15, 204.15)).toEqual([201.15, 206.04, 200.1, 204.15]);
  });
});
