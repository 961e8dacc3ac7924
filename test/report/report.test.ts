import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readBars } from '../../src/bars/barReader.js';
import { createTradingSession, type Summary } from '../../src/session/createTradingSession.js';
import { startReportRecorder } from '../../src/report/reportRecorder.js';
import { writeReport } from '../../src/report/writeReport.js';
import { launchChromium, pageProblems, skipWithoutChromium } from '../support/chromium.js';
import { runCli, sampleSlice } from '../support/replayFixture.js';

/** The report in a real browser (see test/support/chromium.ts). */
const skip = skipWithoutChromium('test/report/report.test.ts');

const ROWS = 8_000;
let dir: string;
let bars: string;
let browser: Browser;

/** `amount / whole` at 1e-8, half-even, from decimal strings to the cent: the test's own arithmetic. */
function ratioText(amount: string, whole: string): string {
  const cents = (text: string): bigint => BigInt(text.replace('.', ''));
  const n = cents(amount) * 100_000_000n;
  const d = cents(whole);
  const negative = n < 0n;
  const abs = negative ? -n : n;
  let q = abs / d;
  const r2 = (abs - q * d) * 2n;
  if (r2 > d || (r2 === d && q % 2n === 1n)) q += 1n;
  const digits = q.toString().padStart(9, '0');
  const text = `${digits.slice(0, -8)}.${digits.slice(-8)}`.replace(/\.?0+$/, '');
  return `${negative && q !== 0n ? '-' : ''}${text === '' ? '0' : text}`;
}

const centsOf = (text: string): bigint => BigInt(text.replace('.', ''));

/** Opens the report offline: any request that is not the file itself fails the test. */
async function openReport(file: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = pageProblems(page, (url) => url.startsWith('file:') || url.startsWith('data:'));
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('body[data-charts-ready], body[data-charts-error]');
  return { page, problems };
}

/** Per chart: how many canvas pixels are painted in a colour (not white, not the light grid). */
async function paintedPixels(page: Page): Promise<Record<string, number>> {
  return page.evaluate(`(() => {
    const result = {};
    for (const el of document.querySelectorAll('[data-chart]')) {
      let painted = 0;
      for (const canvas of el.querySelectorAll('canvas')) {
        if (canvas.width === 0 || canvas.height === 0) continue;
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && Math.min(data[i], data[i + 1], data[i + 2]) < 200) painted += 1;
      }
      result[el.dataset.chart] = painted;
    }
    return result;
  })()`);
}

async function figure(page: Page, key: string): Promise<string | null> {
  return page.getAttribute(`[data-figure="${key}"]`, 'data-value');
}

async function rowCounts(page: Page, selector: string, attribute: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const row of await page.locator(selector).all()) counts[(await row.getAttribute(attribute)) ?? ''] = Number(await row.getAttribute('data-count'));
  return counts;
}

/** Checks the page against a summary: the charts drew, and its figures are the summary's. */
async function expectReportShows(page: Page, summary: Summary): Promise<void> {
  await vi.waitFor(async () => {
    const painted = await paintedPixels(page);
    expect(Object.keys(painted).sort()).toEqual(['drawdown', 'equity', 'exposure', 'risk']);
    for (const [chart, n] of Object.entries(painted)) expect(n, `${chart} chart pixels`).toBeGreaterThan(1_000);
  });
  expect(await page.getAttribute('body', 'data-charts-ready')).toBe('drawn');
  const { equity, initialCash } = summary.portfolio;
  expect(await figure(page, 'equity')).toBe(equity);
  expect(await figure(page, 'initial-cash')).toBe(initialCash);
  expect(await figure(page, 'return')).toBe(ratioText((centsOf(equity) - centsOf(initialCash)).toString().replace(/(\d\d)$/, '.$1'), initialCash));
  expect(Number(await figure(page, 'fills'))).toBe(summary.fills);
  expect(Number(await figure(page, 'denied'))).toBe(summary.orders.denied);
  expect(await rowCounts(page, '#denials-by-reason tbody tr', 'data-reason')).toEqual({ ...summary.orders.deniedBy });
  expect(await rowCounts(page, '#bars-rejected tbody tr', 'data-rejected-reason')).toEqual({ ...summary.bars.rejected });
  // The trade list has a row per round trip; the symbols' net P&L adds up to the account's gain.
  expect(await page.locator('#round-trips tbody tr').count()).toBe(Number(await figure(page, 'round-trips')));
  const net = await page.getAttribute('[data-symbol-total]', 'data-net');
  expect(centsOf(net ?? '')).toBe(centsOf(equity) - centsOf(initialCash));
}

describe.skipIf(skip)('the HTML report in headless Chromium', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aistock-report-'));
    const slice = await sampleSlice(dir, ROWS);
    // A duplicate bar (the data guard refuses it) and two rows the reader refuses, mid-file.
    const lines = (await readFile(slice, 'utf8')).split('\n');
    const at = lines[4_000] ?? '';
    const [ts = '', symbol = ''] = at.split(',');
    lines.splice(4_001, 0, at, `${ts},${symbol},abc,1,1,1,1`, `${ts},${symbol},1`);
    bars = join(dir, 'bars.csv');
    await writeFile(bars, lines.join('\n'));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('replay --report writes a page that opens offline, draws its charts and shows the summary’s figures', async () => {
    const stateDir = join(dir, 'cli');
    const out = join(dir, 'cli-report.html');

    const run = await runCli(['replay', bars, '--state-dir', stateDir, '--json', '--report', out]);

    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`report: ${out}`);
    const printed = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as Summary & { performance: { return: string; maxDrawdown: { ratio: string } | null } };
    expect(Object.keys(printed.bars.rejected).length).toBeGreaterThanOrEqual(2);
    const { page, problems } = await openReport(out);
    await expectReportShows(page, printed);
    expect(await figure(page, 'return')).toBe(printed.performance.return);
    expect(await figure(page, 'max-drawdown')).toBe(printed.performance.maxDrawdown?.ratio ?? '0');
    expect(await page.locator('#risk-intervals tbody tr').count()).toBe(1);
    expect(problems).toEqual([]);
  });

  it('shows denials by reason and the risk state’s halted intervals of a session with tight limits', async () => {
    const stateDir = join(dir, 'tight');
    const session = createTradingSession({ stateDir, replay: true, log: () => undefined, risk: { maxOrdersPerDay: 30, maxDailyLossPct: 0.00008, maxDrawdownPct: 0.5 } });
    const halts: number[] = [];
    session.on('riskState', (event) => {
      if (event.state === 'halted') halts.push(event.haltReasons.at(-1)?.at ?? 0);
    });
    await session.start();
    const recorder = await startReportRecorder({ stateDir, session, file: bars });
    const inputRejected: Record<string, number> = {};
    for await (const batch of readBars(bars, { assumeZone: null, onBadRow: 'skip' })) {
      for (const error of batch.errors) inputRejected[error.reason] = (inputRejected[error.reason] ?? 0) + 1;
      await session.ingest(batch.bars);
    }
    const summary = await session.stop();
    await recorder.finish({ summary, inputRejected });
    for (const [reason, n] of Object.entries(inputRejected)) summary.bars.rejected[reason] = (summary.bars.rejected[reason] ?? 0) + n;
    const out = join(dir, 'tight-report.html');

    await writeReport(stateDir, out);

    expect(summary.orders.denied).toBeGreaterThan(0);
    expect(Object.keys(summary.orders.deniedBy).length).toBeGreaterThanOrEqual(2);
    expect(halts.length).toBeGreaterThan(0);
    const { page, problems } = await openReport(out);
    await expectReportShows(page, summary);
    const halted = await page.locator('#risk-intervals tbody tr[data-state="halted"]').all();
    expect(await Promise.all(halted.map((row) => row.getAttribute('data-from')))).toEqual(halts.map(String));
    expect(problems).toEqual([]);
  });
});
