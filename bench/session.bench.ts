/**
 * The whole session, end to end on a real disk (journal fsync, broker ledger fsync,
 * checkpoints): the bundled sample replay (orders and all), the hot path alone over a
 * 1,000,000-bar 50-symbol replay (with peak RSS), live ingest one bar at a time, and the time
 * to resume a state dir whose journal holds 100,000 ids.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { Bar } from '../src/core/bar.js';
import type { Strategy } from '../src/core/strategy.js';
import { smaCross } from '../src/core/strategy.js';
import { readBars } from '../src/runtime/barReader.js';
import { systemClock } from '../src/runtime/clock.js';
import { createIdempotencyTracker } from '../src/runtime/idempotencyTracker.js';
import { createTradingSession } from '../src/session/createTradingSession.js';
import { percentile, report } from './report.js';

const BENCH = 'session';
const quiet = (): void => undefined;
const tempDir = (name: string) => mkdtemp(join(tmpdir(), `aistock-bench-${name}-`));

/** A strategy that watches every bar and never trades: the hot path without order I/O. */
const watchOnly: Strategy<number> = {
  id: 'watch',
  stateSchema: z.number(),
  initialState: () => 0,
  onBar: (seen) => ({ state: seen + 1, intents: [] }),
};

/** Minute bars of `symbols` symbols in batches of 4,096, made as they are consumed (as a file reader would). */
function* syntheticBars(symbols: number, perSymbol: number, start = Date.UTC(2025, 0, 6, 14, 30)): Generator<Bar[]> {
  let batch: Bar[] = [];
  let seed = 7;
  for (let i = 0; i < perSymbol; i += 1) {
    for (let s = 0; s < symbols; s += 1) {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      const price = 100 + s + Math.sin(i / 50) * 5 + (seed / 2_147_483_648) * 0.2;
      batch.push({ symbol: `S${s}`, ts: start + i * 60_000, open: price, high: price + 0.1, low: price - 0.1, close: price, volume: 1_000 });
      if (batch.length === 4_096) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
}

async function sampleReplay(): Promise<void> {
  const stateDir = await tempDir('sample');
  const batches: Bar[][] = [];
  for await (const batch of readBars(join(import.meta.dirname, '../data/sample-bars.csv'))) batches.push(batch.bars);
  const session = createTradingSession({ stateDir, strategy: smaCross(), replay: true, log: quiet });
  const started = performance.now();
  await session.start();
  for (const bars of batches) await session.ingest(bars);
  const summary = await session.stop();
  const seconds = (performance.now() - started) / 1_000;
  report(BENCH, 'sampleReplayBarsPerSec', summary.bars.accepted / seconds, 'bars/s');
  report(BENCH, 'sampleReplayOrders', summary.orders.submitted, 'orders');
  report(BENCH, 'sampleReplayMsPerOrder', (seconds * 1_000) / Math.max(1, summary.orders.submitted), 'ms');
  await rm(stateDir, { recursive: true, force: true });
}

async function hotPathReplay(): Promise<void> {
  const stateDir = await tempDir('hot');
  const batches = syntheticBars(50, 20_000);
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  const session = createTradingSession({ stateDir, strategy: watchOnly, replay: true, log: quiet });
  const started = performance.now();
  await session.start();
  for (const bars of batches) await session.ingest(bars);
  const summary = await session.stop();
  const seconds = (performance.now() - started) / 1_000;
  clearInterval(sampler);
  report(BENCH, 'replayBarsPerSec', summary.bars.accepted / seconds, 'bars/s');
  report(BENCH, 'replayCheckpointWrites', summary.checkpoints.written, 'writes');
  report(BENCH, 'peakRssMb', peakRss / 1_048_576, 'MB');
  await rm(stateDir, { recursive: true, force: true });
}

/** Live ingest, one bar per event: with `strategy` watching only (the per-event cost) or trading. */
async function liveIngest(strategy: Strategy, label: string): Promise<void> {
  const stateDir = await tempDir('live');
  // Live bars are recent: the last 4,000 minutes, so the staleness check passes them.
  const minutes = 4_000;
  const bars = [...syntheticBars(5, minutes, Date.now() - minutes * 60_000)].flat();
  const session = createTradingSession({
    stateDir,
    strategy,
    log: quiet,
    risk: { rateLimitEnabled: false, maxOrdersPerDay: 100_000 },
    guard: { maxStalenessMs: 7 * 86_400_000 },
  });
  await session.start();
  const latencies: number[] = [];
  const orderLatencies: number[] = [];
  const started = performance.now();
  for (const bar of bars) {
    // The context counter, not snapshot(): a Summary formats the whole portfolio.
    const before = session.actor.getSnapshot().context.stats.ordersSubmitted;
    const t0 = performance.now();
    await session.ingest(bar);
    const ms = performance.now() - t0;
    (session.actor.getSnapshot().context.stats.ordersSubmitted > before ? orderLatencies : latencies).push(ms);
  }
  const seconds = (performance.now() - started) / 1_000;
  const summary = await session.stop();
  report(BENCH, `liveBarsPerSec${label}`, bars.length / seconds, 'bars/s');
  report(BENCH, `barToDecisionP99Ms${label}`, percentile(latencies, 99), 'ms');
  if (summary.orders.submitted > 0) {
    report(BENCH, `liveOrders${label}`, summary.orders.submitted, 'orders');
    report(BENCH, `barToOrderP50Ms${label}`, percentile(orderLatencies, 50), 'ms');
    report(BENCH, `barToOrderP99Ms${label}`, percentile(orderLatencies, 99), 'ms');
  }
  await rm(stateDir, { recursive: true, force: true });
}

async function restart(): Promise<void> {
  const stateDir = await tempDir('restart');
  const tracker = createIdempotencyTracker({ stateDir, clock: systemClock, log: quiet });
  await tracker.start();
  // 100,000 orders sent and acknowledged within the TTL: all live on restart.
  const ids = Array.from({ length: 100_000 }, (_, n) => `R-${n.toString(36).padStart(8, '0')}`);
  for (let i = 0; i < ids.length; i += 1_000) {
    const chunk = ids.slice(i, i + 1_000);
    await Promise.all(chunk.map((id) => tracker.reserve(id)));
    await Promise.all(chunk.map((id) => tracker.mark(id, 'submitted')));
  }
  await tracker.stop();
  const runs: number[] = [];
  for (let run = 0; run < 5; run += 1) {
    const session = createTradingSession({ stateDir, strategy: watchOnly, log: quiet });
    const started = performance.now();
    await session.start();
    runs.push(performance.now() - started);
    if (run === 0 && session.snapshot().fault !== null) throw new Error(String(session.snapshot().fault));
    await session.stop();
  }
  report(BENCH, 'restartMs', percentile(runs, 50), 'ms');
  await rm(stateDir, { recursive: true, force: true });
}

await sampleReplay();
await hotPathReplay();
await liveIngest(watchOnly, '');
await liveIngest(smaCross(), 'Trading');
await restart();
