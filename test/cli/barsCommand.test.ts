import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runBarsCommand } from '../../src/cli/barsCommand.js';
import { EXIT } from '../../src/cli/io.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixture = (name: string) => join(root, 'test', 'fixtures', 'bars', name);

const tempDirs: string[] = [];

/** A fresh temp dir, removed after the file's tests. */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-bars-cmd-'));
  tempDirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function bars(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runBarsCommand(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  return { code, stdout, stderr };
}

/** A CSV of 1m bars, one per minute from `fromIso` for `minutes` minutes, volume 1 each. */
async function minuteFile(fromIso: string, minutes: number): Promise<string> {
  const dir = await tempDir();
  const file = join(dir, 'minutes.csv');
  const start = Date.parse(fromIso);
  const rows = Array.from({ length: minutes }, (_, i) => `${new Date(start + i * 60_000).toISOString()},ES,10,11,9,10,1`);
  await writeFile(file, `timestamp,symbol,open,high,low,close,volume\n${rows.join('\n')}\n`);
  return file;
}

describe('aistock bars', () => {
  it('prints the aggregated bars as CSV with offsets in --tz', async () => {
    const { code, stdout, stderr } = await bars(fixture('good.csv'), '--timeframe', '5m', '--tz', 'America/New_York');

    expect({ code, stderr }).toEqual({ code: EXIT.ok, stderr: '' });
    expect(stdout).toBe(
      [
        'timestamp,symbol,open,high,low,close,volume',
        '2025-11-03T09:30:00-05:00,AAPL,261.85,262.3,261.84,262.1,448415',
        '2025-11-03T09:30:00-05:00,MSFT,521.65,521.7,521.1,521.19,102009',
        '',
      ].join('\n'),
    );
  });

  it('prints UTC (+00:00) by default', async () => {
    const { stdout } = await bars(fixture('good.csv'), '--timeframe', '1h');

    expect(stdout.split('\n')[1]).toBe('2025-11-03T14:00:00+00:00,AAPL,261.85,262.3,261.84,262.1,448415');
  });

  it('splits the repeated fall-back hour of 2025-11-02 into two 1h bars', async () => {
    const file = await minuteFile('2025-11-02T04:00:00Z', 4 * 60);

    const { code, stdout } = await bars(file, '--timeframe', '1h', '--tz', 'America/New_York');

    expect(code).toBe(EXIT.ok);
    expect(stdout.trim().split('\n').slice(1)).toEqual([
      '2025-11-02T00:00:00-04:00,ES,10,11,9,10,60',
      '2025-11-02T01:00:00-04:00,ES,10,11,9,10,60',
      '2025-11-02T01:00:00-05:00,ES,10,11,9,10,60',
      '2025-11-02T02:00:00-05:00,ES,10,11,9,10,60',
    ]);
  });

  it('makes 2025-03-09 a 23-hour 1d bar in America/New_York', async () => {
    const file = await minuteFile('2025-03-09T05:00:00Z', 23 * 60);

    const { stdout } = await bars(file, '--timeframe', '1d', '--tz', 'America/New_York');

    expect(stdout.trim().split('\n').slice(1)).toEqual(['2025-03-09T00:00:00-05:00,ES,10,11,9,10,1380']);
  });

  it('aligns to Australia/Lord_Howe, whose clocks jump 30 minutes', async () => {
    const file = await minuteFile('2025-10-04T15:00:00Z', 60);

    const { stdout } = await bars(file, '--timeframe', '1h', '--tz', 'Australia/Lord_Howe');

    expect(stdout.trim().split('\n').slice(1)).toEqual([
      '2025-10-05T01:00:00+10:30,ES,10,11,9,10,30',
      '2025-10-05T02:30:00+11:00,ES,10,11,9,10,30',
    ]);
  });

  it('reads naive timestamps in --assume-tz, a fall-back wall time as its earlier occurrence', async () => {
    const { code, stdout } = await bars(fixture('dst-fall-back-naive.csv'), '--timeframe', '1h', '--tz', 'UTC', '--assume-tz', 'America/New_York');

    expect(code).toBe(EXIT.ok);
    expect(stdout.trim().split('\n').slice(1).map((line) => line.split(',')[0])).toEqual([
      '2025-11-02T04:00:00+00:00',
      '2025-11-02T05:00:00+00:00',
      '2025-11-02T07:00:00+00:00',
    ]);
  });

  it('exits 2 on a spring-forward wall time under --assume-tz, naming file, line and field', async () => {
    const { code, stderr } = await bars(fixture('dst-spring-gap-naive.csv'), '--timeframe', '1h', '--assume-tz', 'America/New_York');

    expect(code).toBe(EXIT.badInput);
    expect(stderr).toContain(`${fixture('dst-spring-gap-naive.csv')}:3: field "timestamp"`);
    expect(stderr).toContain('TIMESTAMP_IN_DST_GAP');
  });

  it.each([
    ['naive.csv', 2, 'timestamp', 'TIMESTAMP_NAIVE'],
    ['negative.csv', 3, 'open', 'NON_POSITIVE_PRICE'],
    ['nan.csv', 2, 'close', 'NOT_A_NUMBER'],
    ['extra-columns.csv', 2, 'column 8', 'EXTRA_FIELD'],
  ])('exits 2 on %s, naming line %i and field %s', async (name, line, field, reason) => {
    const { code, stderr } = await bars(fixture(name), '--timeframe', '5m');

    expect(code).toBe(EXIT.badInput);
    expect(stderr).toContain(`${fixture(name)}:${line}: field "${field}"`);
    expect(stderr).toContain(reason);
  });

  it('exits 2 for a missing file', async () => {
    const { code, stderr } = await bars(fixture('absent.csv'), '--timeframe', '5m');

    expect(code).toBe(EXIT.badInput);
    expect(stderr).toContain('absent.csv');
  });

  it.each([
    [['--timeframe', '5m'], 'missing <file>'],
    [[fixture('good.csv')], 'missing --timeframe'],
    [[fixture('good.csv'), '--timeframe', '7m'], '--timeframe "7m"'],
    [[fixture('good.csv'), '--timeframe', '5m', '--tz', 'Mars/Base'], '--tz "Mars/Base"'],
    [[fixture('good.csv'), '--timeframe', '5m', '--assume-tz', 'EST5'], '--assume-tz "EST5"'],
    [[fixture('good.csv'), '--timeframe', '5m', '--frobnicate'], 'frobnicate'],
  ])('exits 2 for bad options %j', async (argv, message) => {
    const { code, stderr } = await bars(...argv);

    expect(code).toBe(EXIT.badInput);
    expect(stderr).toContain(message);
    expect(stderr).toContain('usage: aistock bars');
  });

  it('leaves out duplicated and out-of-order bars, and says how many on stderr', async () => {
    const dir = await tempDir();
    const file = join(dir, 'messy.csv');
    await writeFile(
      file,
      [
        'timestamp,symbol,open,high,low,close,volume',
        '2025-11-03T14:30:00Z,AAPL,10,11,9,10,1',
        '2025-11-03T14:31:00Z,AAPL,10,11,9,10,1',
        '2025-11-03T14:31:00Z,AAPL,10,11,9,10,1',
        '2025-11-03T14:29:00Z,AAPL,10,11,9,10,1',
        '',
      ].join('\n'),
    );

    const { code, stdout, stderr } = await bars(file, '--timeframe', '5m');

    expect(code).toBe(EXIT.ok);
    expect(stdout.trim().split('\n').slice(1)).toEqual(['2025-11-03T14:30:00+00:00,AAPL,10,11,9,10,2']);
    expect(stderr).toBe('aistock bars: left out 2 bar(s): DUPLICATE_TIMESTAMP 1, OUT_OF_ORDER 1\n');
  });

  it('aggregates the bundled sample data into 1d bars across the 2025-11-02 DST change', async () => {
    const { code, stdout } = await bars(join(root, 'data', 'sample-bars.csv'), '--timeframe', '1d', '--tz', 'America/New_York');

    const rows = stdout.trim().split('\n').slice(1);
    expect(code).toBe(EXIT.ok);
    expect(rows).toHaveLength(5 * 20);
    expect(rows.filter((row) => row.startsWith('2025-10-31T00:00:00-04:00'))).toHaveLength(5);
    expect(rows.filter((row) => row.startsWith('2025-11-03T00:00:00-05:00'))).toHaveLength(5);
  });

  const mainWired = existsSync(join(root, 'src', 'cli', 'main.ts')) && readFileSync(join(root, 'src', 'cli', 'main.ts'), 'utf8').includes('runBarsCommand');

  it.skipIf(!mainWired)('runs as `node bin/aistock.js bars` with the same output and exit codes', async () => {
    const run = promisify(execFile);
    const bin = join(root, 'bin', 'aistock.js');

    const ok = await run(process.execPath, [bin, 'bars', fixture('good.csv'), '--timeframe', '5m', '--tz', 'America/New_York']);
    const bad = await run(process.execPath, [bin, 'bars', fixture('negative.csv'), '--timeframe', '5m']).catch((error: { code: number; stderr: string }) => error);

    expect(ok.stdout).toBe((await bars(fixture('good.csv'), '--timeframe', '5m', '--tz', 'America/New_York')).stdout);
    expect('code' in bad ? bad.code : 0).toBe(EXIT.badInput);
    expect(bad.stderr).toContain(`${fixture('negative.csv')}:3: field "open"`);
  });
});
