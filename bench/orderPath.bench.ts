/**
 * The order path on a real disk: what an order costs with full durability (journal reserve,
 * broker order line carrying its fill, checkpoints), what research mode (`durability: 'none'`)
 * saves, and the disk's own floor — one ~100-byte append + fdatasync — measured in the same run,
 * so each figure can be read against it. One session each: run the bench 3 times and report the
 * range (this 2-core machine is shared: a single run can be a third off).
 * `AISTOCK_BENCH_ONLY=sample|heavy` runs one part.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { Bar } from '../src/bars/bar.js';
import type { Strategy } from '../src/strategy/strategy.js';
import { smaCross } from '../src/strategy/strategy.js';
import { readBars } from '../src/bars/barReader.js';
import { packageRoot } from '../src/common/packageRoot.js';
import { createTradingSession, type Summary } from '../src/session/createTradingSession.js';
import type { Durability } from '../src/stateDir/durability.js';
import { countSyncs } from '../src/testing/syncCounter.js';
import { percentile, report } from './report.js';

const BENCH = 'orderPath';
const quiet = (): void => undefined;
const tempDir = (name: string) => mkdtemp(join(tmpdir(), `aistock-bench-${name}-`));

/** Median of 500 appends of a 100-byte line, each followed by fdatasync, to a file in the temp dir. */
async function diskAppend(): Promise<void> {
  const dir = await tempDir('disk');
  const file = await open(join(dir, 'append.jsonl'), 'a');
  const line = Buffer.from(`${JSON.stringify({ clientOrderId: 'AAPL-m5ffaj40-b64b40b001fc58', state: 'reserved', at: Date.now(), pad: 'x'.repeat(12) })}\n`);
  const samples: number[] = [];
  for (let i = 0; i < 550; i += 1) {
    const started = performance.now();
    await file.write(line);
    await file.datasync();
    if (i >= 50) samples.push(performance.now() - started);
  }
  await file.close();
  await rm(dir, { recursive: true, force: true });
  report(BENCH, 'diskAppendFsyncMs', percentile(samples, 50), 'ms');
  report(BENCH, 'diskAppendFsyncP90Ms', percentile(samples, 90), 'ms');
}

/** One session over `batches`, timed from start to stop, with the syncs it made counted. */
async function timedSession(
  batches: readonly (readonly Bar[])[],
  strategy: Strategy,
  durability: Durability,
  extra: { risk?: Record<string, unknown> } = {},
): Promise<{ summary: Summary; seconds: number; syncs: number }> {
  const stateDir = await tempDir(`order-${durability}`);
  const session = createTradingSession({ stateDir, strategy, replay: true, durability, log: quiet, ...extra });
  const counter = await countSyncs();
  const started = performance.now();
  try {
    await session.start();
    for (const bars of batches) await session.ingest(bars);
    const summary = await session.stop();
    return { summary, seconds: (performance.now() - started) / 1_000, syncs: counter.syncs() };
  } finally {
    counter.restore();
    await rm(stateDir, { recursive: true, force: true });
  }
}

/** The bundled sample (39,000 bars, sma-cross) with full durability, then in research mode. */
async function sampleReplay(): Promise<void> {
  const batches: Bar[][] = [];
  for await (const batch of readBars(join(packageRoot(), 'data/sample-bars.csv'))) batches.push(batch.bars);
  const durable = await timedSession(batches, smaCross(), 'full');
  report(BENCH, 'sampleReplayBarsPerSec', durable.summary.bars.accepted / durable.seconds, 'bars/s');
  report(BENCH, 'sampleReplayOrders', durable.summary.orders.submitted, 'orders');
  report(BENCH, 'sampleReplayMsPerOrder', (durable.seconds * 1_000) / Math.max(1, durable.summary.orders.submitted), 'ms');
  const research = await timedSession(batches, smaCross(), 'none');
  report(BENCH, 'researchReplayBarsPerSec', research.summary.bars.accepted / research.seconds, 'bars/s');
  report(BENCH, 'sampleReplaySyncs', durable.syncs, 'syncs');
  report(BENCH, 'researchReplaySyncs', research.syncs, 'syncs');
}

/**
 * Order-heavy: 50 symbols × 4,000 minutes = 200,000 bars, an order on 5 % of them (each symbol
 * every 20th bar, the symbols staggered, buy and sell in turn so positions stay small; the rate
 * limits off and the position limit at 100 % so none is denied), full durability. `ordersPerFsync`: orders per durable write (fsync, fdatasync, or an O_DSYNC write).
 */
async function orderHeavy(): Promise<void> {
  const symbols = 50;
  const minutes = 4_000;
  const start = Date.UTC(2025, 0, 6, 14, 30);
  const bars: Bar[] = [];
  for (let i = 0; i < minutes; i += 1) {
    for (let s = 0; s < symbols; s += 1) {
      const price = Math.round((100 + s + Math.sin(i / 40) * 3) * 100) / 100;
      bars.push({ symbol: `S${s}`, ts: start + i * 60_000, open: price, high: price + 0.05, low: price - 0.05, close: price, volume: 1_000 });
    }
  }
  const batches: Bar[][] = [];
  for (let i = 0; i < bars.length; i += 4_096) batches.push(bars.slice(i, i + 4_096));
  const trader: Strategy<number> = {
    id: 'every-20th',
    stateSchema: z.number().int(),
    initialState: () => 0,
    onBar: (seen, bar) => {
      const n = seen + 1;
      const symbolIndex = Number(bar.symbol.slice(1));
      // The bar time staggers the symbols: each trades every 20th minute, 50 ÷ 20 of them a minute.
      const minute = Math.round((bar.ts - start) / 60_000);
      if ((minute + symbolIndex) % 20 !== 0) return { state: n, intents: [] };
      const side = Math.floor((minute + symbolIndex) / 20) % 2 === 0 ? ('buy' as const) : ('sell' as const);
      return { state: n, intents: [{ symbol: bar.symbol, side, qty: '1', type: 'market' as const }] };
    },
  };
  const risk = { rateLimitEnabled: false, maxOrdersPerDay: 1_000_000, maxPositionFraction: 1 };
  const run = await timedSession(batches, trader, 'full', { risk });
  const orders = run.summary.orders.submitted;
  report(BENCH, 'orderHeavyBars', run.summary.bars.accepted, 'bars');
  report(BENCH, 'orderHeavyOrders', orders, 'orders');
  report(BENCH, 'durableOrdersPerSec', orders / run.seconds, 'orders/s');
  report(BENCH, 'orderHeavyBarsPerSec', run.summary.bars.accepted / run.seconds, 'bars/s');
  report(BENCH, 'ordersPerFsync', orders / Math.max(1, run.syncs), 'orders');
}

const only = process.env.AISTOCK_BENCH_ONLY;
await diskAppend();
if (only === undefined || only === 'sample') await sampleReplay();
if (only === undefined || only === 'heavy') await orderHeavy();
await diskAppend();
