import { once } from 'node:events';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { readReport, type ReportData } from '../../src/report/buildReport.js';
import { lockStateDir } from '../../src/stateDir/stateDirLock.js';
import { takeReportOption } from '../../src/cli/reportCommand.js';
import { completeLines, runCli, sampleSlice, startCli } from '../support/replayFixture.js';

const ROWS = 4_000;
let dir: string;
let bars: string;
let firstHalf: string;
let uninterrupted: ReportData;

/** What must not depend on how the runs were split: figures, trades, P&L. */
function figuresOf(report: ReportData) {
  return {
    account: report.account,
    totalReturn: report.totalReturn,
    maxDrawdown: report.maxDrawdown,
    maxExposure: report.maxExposure,
    fills: report.fills,
    trips: report.book.trips,
    symbols: report.symbols,
    denials: report.denials,
    barsRejected: report.barsRejected,
    lastPoint: report.curve.at(-1),
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-report-cli-'));
  bars = await sampleSlice(dir, ROWS);
  const lines = (await readFile(bars, 'utf8')).split('\n');
  firstHalf = join(dir, 'first-half.csv');
  await writeFile(firstHalf, `${lines.slice(0, ROWS / 2 + 1).join('\n')}\n`);
  const run = await runCli(['replay', bars, '--state-dir', join(dir, 'whole')]);
  expect(run.code, run.stderr).toBe(0);
  uninterrupted = await readReport(join(dir, 'whole'));
});

describe('aistock report', () => {
  it('writes one self-contained HTML file of a state dir', async () => {
    const out = join(dir, 'whole.html');

    const run = await runCli(['report', join(dir, 'whole'), '--out', out]);

    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^report: .*whole\.html \(\d+ KB\)\n$/);
    const html = await readFile(out, 'utf8');
    expect(html).toContain('TradingView Lightweight Charts');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/i);
  });

  it('covers every run of a resumed state dir, with the figures of one uninterrupted run', async () => {
    const stateDir = join(dir, 'resumed');
    expect((await runCli(['replay', firstHalf, '--state-dir', stateDir])).code).toBe(0);
    expect((await runCli(['replay', bars, '--state-dir', stateDir])).code).toBe(0);

    const report = await readReport(stateDir);

    expect(report.runs.map((run) => [run.run, run.endedAt !== null])).toEqual([
      [1, true],
      [2, true],
    ]);
    expect(figuresOf(report)).toEqual(figuresOf(uninterrupted));
    expect(report.notes).toEqual([]);
  });

  it('after a SIGKILL mid-run, the resumed run’s report has the uninterrupted run’s figures', async () => {
    const stateDir = join(dir, 'killed');
    const child = startCli(['replay', bars, '--state-dir', stateDir]);
    await vi.waitFor(async () => expect(await completeLines(join(stateDir, 'broker', 'fills.jsonl'))).toBeGreaterThanOrEqual(40), { timeout: 20_000, interval: 5 });
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect((await runCli(['replay', bars, '--state-dir', stateDir])).code).toBe(0);

    const report = await readReport(stateDir);

    expect(report.runs.map((run) => run.endedAt !== null)).toEqual([false, true]);
    expect(figuresOf(report)).toEqual(figuresOf(uninterrupted));
    expect(report.notes.join('\n')).toMatch(/did not finish/);
  });

  it('exits 3 while a session holds the state dir, and 2 for a state dir that does not exist', async () => {
    const lock = await lockStateDir(join(dir, 'whole'));
    try {
      const locked = await runCli(['report', join(dir, 'whole'), '--out', join(dir, 'locked.html')]);
      expect(locked.code).toBe(3);
      expect(locked.stderr).toMatch(/STATE_DIR_LOCKED/);
    } finally {
      await lock.release();
    }
    const missing = await runCli(['report', join(dir, 'nowhere')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such state dir/);
  });
});

describe('replay --report [FILE]', () => {
  it('takes a file only when it names an HTML file, so the bar file is never taken for it', () => {
    expect(takeReportOption(['bars.csv', '--report'])).toEqual({ rest: ['bars.csv'], reportFile: 'report.html' });
    expect(takeReportOption(['--report', 'bars.csv'])).toEqual({ rest: ['bars.csv'], reportFile: 'report.html' });
    expect(takeReportOption(['--report', 'out/r.html', 'bars.csv'])).toEqual({ rest: ['bars.csv'], reportFile: 'out/r.html' });
    expect(takeReportOption(['--report=x.txt', 'bars.csv'])).toEqual({ rest: ['bars.csv'], reportFile: 'x.txt' });
    expect(takeReportOption(['bars.csv'])).toEqual({ rest: ['bars.csv'], reportFile: null });
  });
});
