/**
 * Market data: parsing a CSV file into validated bars, aggregating 1m bars into
 * 1m, 5m, 1h and 1d at once (pure core), and the same bars through the data guard and bars
 * actors in batches. Targets (2 cores): ≥ 500,000 parsed/s, ≥ 1,000,000 aggregated/s,
 * ≥ 300,000/s through the actors. Each figure is the median of RUNS runs after one warm-up.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { createActor } from 'xstate';
import { barsMachine } from '../machines/bars.machine.js';
import { dataGuardMachine } from '../machines/dataGuard.machine.js';
import { aggregate, createAggregator } from '../src/bars/aggregator.js';
import type { Bar } from '../src/bars/bar.js';
import { formatInZone, zoneOffsets } from '../src/bars/zoneOffsets.js';
import { readBars } from '../src/bars/barReader.js';
import { percentile, report } from './report.js';

const BENCH = 'marketData';
const SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'JPM', 'SPY'];
const BARS = 1_000_000;
const FILE_ROWS = 500_000;
const BATCH = 1_000;
const RUNS = 5;
const TIMEFRAMES = ['1m', '5m', '1h', '1d'] as const;

/** 1m bars of the New York regular session (09:30–16:00 local, DST included), symbols interleaved. */
function sessionBars(count: number): Bar[] {
  const bars: Bar[] = [];
  let price = 100;
  for (let day = 0; bars.length < count; day += 1) {
    const open = DateTime.fromISO('2025-10-20T09:30', { zone: 'America/New_York' }).plus({ days: day }).toMillis();
    for (let minute = 0; minute < 390 && bars.length < count; minute += 1) {
      for (const symbol of SYMBOLS) {
        price = Math.max(1, price + ((bars.length * 7919) % 21) / 100 - 0.1);
        const volume = 1_000 + (bars.length % 500);
        bars.push({ symbol, ts: open + minute * 60_000, open: price, high: price + 0.2, low: price - 0.2, close: price + 0.05, volume });
      }
    }
  }
  return bars.slice(0, count);
}

/** Starts each run on a collected heap (bench/run.ts passes --expose-gc), so runs do not pay for each other. */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function median(samples: number[]): number {
  return percentile(samples, 50);
}

async function parsing(bars: readonly Bar[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-bench-bars-'));
  const file = join(dir, 'bars.csv');
  const table = zoneOffsets('America/New_York');
  const rows = bars.slice(0, FILE_ROWS).map((bar) => `${formatInZone(bar.ts, table)},${bar.symbol},${bar.open.toFixed(2)},${bar.high.toFixed(2)},${bar.low.toFixed(2)},${bar.close.toFixed(2)},${bar.volume}`);
  await writeFile(file, `timestamp,symbol,open,high,low,close,volume\n${rows.join('\n')}\n`);
  const rates: number[] = [];
  for (let run = 0; run <= RUNS; run += 1) {
    collectGarbage();
    const started = performance.now();
    let parsed = 0;
    for await (const batch of readBars(file, { batchSize: 4096 })) parsed += batch.bars.length;
    if (parsed !== FILE_ROWS) throw new Error(`parsed ${parsed} of ${FILE_ROWS} bars`);
    if (run > 0) rates.push(parsed / ((performance.now() - started) / 1_000));
  }
  await rm(dir, { recursive: true, force: true });
  report(BENCH, 'barsParsedPerSec', median(rates), 'bars/s');
}

function aggregating(bars: readonly Bar[]): void {
  const batches: Bar[][] = [];
  for (let i = 0; i < bars.length; i += BATCH) batches.push(bars.slice(i, i + BATCH));
  const rates: number[] = [];
  for (let run = 0; run <= RUNS; run += 1) {
    collectGarbage();
    let state = createAggregator({ zone: 'America/New_York', timeframes: [...TIMEFRAMES], baseTimeframe: '1m' });
    let closed = 0;
    const started = performance.now();
    for (const batch of batches) {
      const result = aggregate(state, batch);
      state = result.state;
      closed += result.closed.length;
    }
    if (run > 0) rates.push(bars.length / ((performance.now() - started) / 1_000));
    if (closed < bars.length) throw new Error(`only ${closed} bars closed`);
  }
  report(BENCH, 'barsAggregatedPerSec', median(rates), 'bars/s');
}

function throughActors(bars: readonly Bar[]): void {
  const batches: Bar[][] = [];
  for (let i = 0; i < bars.length; i += BATCH) batches.push(bars.slice(i, i + BATCH));
  const rates: number[] = [];
  for (let run = 0; run <= RUNS; run += 1) {
    collectGarbage();
    const guard = createActor(dataGuardMachine, { systemId: 'dataGuard', input: {} });
    const barsActor = createActor(barsMachine, { systemId: 'bars', input: { config: { timeframes: [...TIMEFRAMES] } } });
    guard.on('BARS_SCREENED', (event) => barsActor.send({ type: 'BARS', bars: event.bars }));
    guard.start().send({ type: 'START' });
    barsActor.start().send({ type: 'START' });
    const started = performance.now();
    for (const batch of batches) guard.send({ type: 'BARS', bars: batch });
    const seconds = (performance.now() - started) / 1_000;
    const accepted = guard.getSnapshot().context.guard.accepted;
    if (accepted !== bars.length || barsActor.getSnapshot().context.stats.bars !== bars.length) {
      throw new Error(`guard accepted ${accepted}, bars saw ${barsActor.getSnapshot().context.stats.bars} of ${bars.length}`);
    }
    guard.stop();
    barsActor.stop();
    if (run > 0) rates.push(bars.length / seconds);
  }
  report(BENCH, 'barsThroughActorPerSec', median(rates), 'bars/s');
}

const bars = sessionBars(BARS);
await parsing(bars);
aggregating(bars);
throughActors(bars);
