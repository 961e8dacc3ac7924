import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { aistock } from '../support/inProcessCli.js';

/**
 * Bar files as traders have them (test/fixtures/bar-formats/): each goes through `aistock bars`
 * and `aistock replay` in-process with the flags its format needs, and every row is accepted.
 * The bars printed are checked value by value at both ends of the file.
 */

const formats = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'bar-formats');

interface Format {
  file: string;
  /** The flags this format needs, given to both commands. */
  flags: string[];
  /** bars's --timeframe (the file's own) and --tz. */
  timeframe: string;
  tz: string;
  rows: number;
  first: string;
  last: string;
}

const FORMATS: Format[] = [
  {
    file: 'yahoo-AAPL-daily.csv', // Date,Open,High,Low,Close,Adj Close,Volume; no symbol; dates alone
    flags: ['--symbol', 'AAPL', '--assume-tz', 'America/New_York'],
    timeframe: '1d',
    tz: 'America/New_York',
    rows: 41,
    first: '2024-01-02T00:00:00-05:00,AAPL,187.37,188.8,184.17,184.62,56035661',
    last: '2024-02-29T00:00:00-05:00,AAPL,201.15,206.04,200.1,204.15,51481054',
  },
  {
    file: 'epoch-seconds-SPY-1m.csv', // time,open,high,low,close,volume in epoch seconds
    flags: ['--symbol', 'SPY', '--epoch', 's'],
    timeframe: '1m',
    tz: 'UTC',
    rows: 30,
    first: '2024-03-05T14:30:00+00:00,SPY,512.3,512.37,512.12,512.26,179537',
    last: '2024-03-05T14:59:00+00:00,SPY,512.62,512.72,512.36,512.5,219005',
  },
  {
    file: 'ccxt-BTC-USDT-1h.json', // fetch_ohlcv's [[t,o,h,l,c,v],…] on one line
    flags: ['--symbol', 'BTC/USDT'],
    timeframe: '1h',
    tz: 'UTC',
    rows: 36,
    first: '2024-01-01T00:00:00+00:00,BTC/USDT,42283.58,42374.07,42093.68,42213.07,1138.64408',
    last: '2024-01-02T11:00:00+00:00,BTC/USDT,42118.75,42286.24,42001.91,42224.2,2033.01452',
  },
  {
    file: 'alpaca-AAPL-1m.jsonl', // t (RFC 3339),o,h,l,c,v,n,vw
    flags: ['--symbol', 'AAPL', '--ignore-extra'],
    timeframe: '1m',
    tz: 'UTC',
    rows: 30,
    first: '2024-01-03T14:30:00+00:00,AAPL,184.22,184.28,183.94,183.98,239949',
    last: '2024-01-03T14:59:00+00:00,AAPL,183.54,183.6,183.27,183.33,396742',
  },
  {
    file: 'polygon-AAPL-1m.jsonl', // v,vw,o,c,h,l,t (epoch ms),n
    flags: ['--symbol', 'AAPL', '--ignore-extra', '--epoch', 'ms'],
    timeframe: '1m',
    tz: 'UTC',
    rows: 30,
    first: '2024-01-03T14:30:00+00:00,AAPL,184.22,184.28,183.94,183.98,239949',
    last: '2024-01-03T14:59:00+00:00,AAPL,183.54,183.6,183.27,183.33,396742',
  },
  {
    file: 'semicolon-SAP-5m.csv', // timestamp;ticker;…, local Frankfurt times
    flags: ['--assume-tz', 'Europe/Berlin'],
    timeframe: '5m',
    tz: 'Europe/Berlin',
    rows: 24,
    first: '2024-03-05T09:00:00+01:00,SAP,171.4,171.66,171.29,171.53,10115',
    last: '2024-03-05T10:55:00+01:00,SAP,172.24,172.58,172.18,172.45,53156',
  },
  {
    file: 'tab-MSFT-NVDA-1m.tsv', // DateTime<TAB>Symbol<TAB>…, two symbols
    flags: [],
    timeframe: '1m',
    tz: 'UTC',
    rows: 30,
    first: '2024-03-05T14:30:00+00:00,MSFT,402.65,403.24,402.61,403.13,221793',
    last: '2024-03-05T14:44:00+00:00,NVDA,853.43,853.58,853.4,853.41,219334',
  },
  {
    file: 'bar-objects-F-1m.json', // a pretty-printed array of bar objects
    flags: [],
    timeframe: '1m',
    tz: 'UTC',
    rows: 12,
    first: '2024-03-05T14:30:00+00:00,F,21.4,21.42,21.34,21.36,54555',
    last: '2024-03-05T14:41:00+00:00,F,21.35,21.37,21.32,21.34,21622',
  },
];

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'aistock-bar-formats-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function bars(file: string, ...args: string[]): ReturnType<typeof aistock> {
  return aistock(['bars', join(formats, file), ...args]);
}

async function replay(file: string, ...args: string[]): Promise<{ code: number; stderr: string; accepted: number; rejected: Record<string, number> }> {
  const stateDir = await mkdtemp(join(scratch, 'state-'));
  const run = await aistock(['replay', join(formats, file), '--state-dir', stateDir, '--json', ...args]);
  const summary = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as { bars?: { accepted: number; rejected: Record<string, number> } };
  return { code: run.code, stderr: run.stderr, accepted: summary.bars?.accepted ?? -1, rejected: summary.bars?.rejected ?? {} };
}

/** The printed bars, without the header. */
function printed(stdout: string): string[] {
  const [header, ...lines] = stdout.trim().split('\n');
  expect(header).toBe('timestamp,symbol,open,high,low,close,volume');
  return lines;
}

describe('bar files as they come', () => {
  it.each(FORMATS)('aistock bars prints every bar of $file, to the exact values', async (format) => {
    const run = await bars(format.file, '--timeframe', format.timeframe, '--tz', format.tz, ...format.flags);

    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: EXIT.ok, stderr: '' });
    const lines = printed(run.stdout);
    expect(lines).toHaveLength(format.rows);
    expect([lines[0], lines.at(-1)]).toEqual([format.first, format.last]);
  });

  it.each(FORMATS)('aistock replay accepts every row of $file', async (format) => {
    const run = await replay(format.file, ...format.flags);

    expect(run).toEqual({ code: EXIT.ok, stderr: '', accepted: format.rows, rejected: {} });
  });

  it('reads a Yahoo download adjusted with --adjusted: close = Adj Close, open/high/low scaled by Adj Close / Close', async () => {
    const run = await bars('yahoo-AAPL-daily.csv', '--timeframe', '1d', '--tz', 'America/New_York', '--symbol', 'AAPL', '--assume-tz', 'America/New_York', '--adjusted');

    const lines = printed(run.stdout);
    expect(lines).toHaveLength(41);
    // 2024-01-02: Close 184.62, Adj Close 183.517634: ratio 0.99402899...
    expect(lines[0]).toBe('2024-01-02T00:00:00-05:00,AAPL,186.25121375,187.67267522,183.07032095,183.517634,56035661');
    // After the last dividend Adj Close equals Close: the raw prices.
    expect(lines.at(-1)).toBe('2024-02-29T00:00:00-05:00,AAPL,201.15,206.04,200.1,204.15,51481054');
  });

  it('puts a daily bar in the 1d bucket of its own date in --tz west of the zone of its dates', async () => {
    const run = await bars('yahoo-AAPL-daily.csv', '--timeframe', '1d', '--tz', 'UTC', '--symbol', 'AAPL', '--assume-tz', 'America/New_York');

    const lines = printed(run.stdout);
    expect(lines).toHaveLength(41);
    expect(lines[0]).toBe('2024-01-02T00:00:00+00:00,AAPL,187.37,188.8,184.17,184.62,56035661');
  });

  it('refuses a Yahoo download without --symbol or --assume-tz, naming the flag', async () => {
    const noSymbol = await bars('yahoo-AAPL-daily.csv', '--timeframe', '1d', '--assume-tz', 'America/New_York');
    const noZone = await bars('yahoo-AAPL-daily.csv', '--timeframe', '1d', '--symbol', 'AAPL');

    expect(noSymbol.code).toBe(EXIT.badInput);
    expect(noSymbol.stderr).toContain('no "symbol" column (a file of one symbol: name it with --symbol SYM)');
    expect(noZone.code).toBe(EXIT.badInput);
    expect(noZone.stderr).toContain('with --assume-tz');
  });

  it('never exits 0 when every row is rejected: Alpaca lines without --ignore-extra', async () => {
    const printedBars = await bars('alpaca-AAPL-1m.jsonl', '--timeframe', '1m', '--symbol', 'AAPL');
    const replayed = await replay('alpaca-AAPL-1m.jsonl', '--symbol', 'AAPL');

    expect(printedBars.code).toBe(EXIT.badInput);
    expect(printedBars.stderr).toContain('unknown key "n" (--ignore-extra skips it) (EXTRA_FIELD)');
    expect({ code: replayed.code, accepted: replayed.accepted, rejected: replayed.rejected }).toEqual({ code: EXIT.badInput, accepted: 0, rejected: { EXTRA_FIELD: 30 } });
  });

  it.each([
    [['--epoch', 'minutes'], '--epoch "minutes" is not one of s ms us ns'],
    [['--symbol', 'A B'], '--symbol "A B" is not a symbol'],
  ])('refuses the bad flag %j in bars and replay alike, naming it', async (flags, message) => {
    const printedBars = await bars('tab-MSFT-NVDA-1m.tsv', '--timeframe', '1m', ...flags);
    const replayed = await aistock(['replay', join(formats, 'tab-MSFT-NVDA-1m.tsv'), '--state-dir', join(scratch, 'unused'), ...flags]);

    for (const run of [printedBars, replayed]) {
      expect(run.code).toBe(EXIT.badInput);
      expect(run.stderr).toContain(message);
    }
  });
});
