import fc from 'fast-check';
import { z } from 'zod';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Bar } from '../../src/bars/bar.js';
import { smaCross } from '../../src/strategy/strategy.js';
import { readBars } from '../../src/bars/barReader.js';
import { ManualClock } from '../../src/common/clock.js';
import { createTradingSession } from '../../src/session/createTradingSession.js';
import { readLedger, sampleCsv } from '../support/replayFixture.js';

/**
 * Batching is a performance detail: any split of the same bars into `ingest` calls gives the
 * same orders, fills and cash. Real sessions over the bundled sample (real files, PaperBroker),
 * the trading day, marks, breach checks and rate windows all following the bars' time.
 */

let sample: Bar[];

beforeAll(async () => {
  sample = [];
  for await (const batch of readBars(sampleCsv)) sample.push(...batch.bars);
});

interface Outcome {
  ids: string[];
  fills: number;
  denied: number;
  portfolio: unknown;
  risk: unknown;
}

/** One replay of `bars`, handed over in batches of the given sizes (the last one repeats). */
async function replayInBatches(bars: readonly Bar[], sizes: readonly number[]): Promise<Outcome> {
  const stateDir = await mkdtemp(join(tmpdir(), 'aistock-batching-'));
  const session = createTradingSession({
    stateDir,
    strategy: smaCross(),
    replay: true,
    clock: new ManualClock(),
    log: () => undefined,
  });
  await session.start();
  for (let at = 0, i = 0; at < bars.length; i += 1) {
    const size = Math.max(1, sizes[Math.min(i, sizes.length - 1)] ?? 1);
    await session.ingest(bars.slice(at, at + size));
    at += size;
  }
  const summary = await session.stop();
  const ledger = await readLedger(stateDir);
  return {
    ids: ledger.orders.map((order) => order.clientOrderId),
    fills: summary.fills,
    denied: summary.orders.denied,
    portfolio: summary.portfolio,
    risk: summary.risk,
  };
}

describe('batching never changes a result', () => {
  it('gives the same orders, fills and cash for 12,000 bars as one batch, in batches of 37, and one by one', async () => {
    const bars = sample.slice(0, 12_000);
    const whole = await replayInBatches(bars, [bars.length]);
    // Several trading days in one batch: each day still has its own order count.
    expect(whole.ids.length).toBeGreaterThan(200);
    expect(await replayInBatches(bars, [37])).toEqual(whole);
    expect(await replayInBatches(bars, [1])).toEqual(whole);
  }, 120_000);

  it('gives the same result for any split of the bars into ingest calls (property)', async () => {
    const bars = sample.slice(0, 4_000);
    const reference = await replayInBatches(bars, [bars.length]);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 30 }), async (sizes) => {
        expect(await replayInBatches(bars, sizes)).toEqual(reference);
      }),
      { numRuns: 8, seed: 20261201 },
    );
  }, 120_000);
});

describe('the higher timeframes a strategy sees', () => {
  /** Every (base bar, completed bar) pair the strategy is shown, as text. */
  async function shown(bars: readonly Bar[], size: number): Promise<string[]> {
    const seen: string[] = [];
    const stateDir = await mkdtemp(join(tmpdir(), 'aistock-completed-'));
    const session = createTradingSession({
      stateDir,
      strategy: {
        id: 'watch',
        stateSchema: z.null(),
        initialState: () => null,
        onBar: (state, bar, _position, market) => {
          for (const done of market.completed) seen.push(`${bar.symbol}@${bar.ts}: ${done.timeframe} ${done.ts} c${done.close}`);
          return { state, intents: [] };
        },
      },
      replay: true,
      clock: new ManualClock(),
      log: () => undefined,
    });
    await session.start();
    for (let at = 0; at < bars.length; at += size) await session.ingest(bars.slice(at, at + size));
    await session.stop();
    return seen;
  }

  it('are the same bars at the same base bar however the bars are batched', async () => {
    const bars = sample.slice(0, 3_000);
    const whole = await shown(bars, bars.length);
    // The sample's symbols close 5-minute bars on their fifth minute, and hours on their last.
    expect(whole.filter((line) => line.includes(': 5m ')).length).toBeGreaterThan(100);
    expect(whole.some((line) => line.includes(': 1h '))).toBe(true);
    expect(await shown(bars, 7)).toEqual(whole);
    expect(await shown(bars, 1)).toEqual(whole);
  }, 120_000);
});
