/**
 * The whole session, end to end on a real disk (journal fsync, broker ledger fsync,
 * checkpoints): the hot path alone over a 1,000,000-bar 50-symbol replay (with peak RSS), live
 * ingest one bar at a time (5 symbols, and 500), and the time to resume a state dir whose journal holds 100,000 ids.
 * And XState's own floor for a live bar: the same four hops through machines that only count.
 * The bundled sample replay (orders and all) is in orderPath.bench.ts.
 * `AISTOCK_BENCH_ONLY=replay|live|wide|burst|restart|floor` runs one part.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assign, createActor, sendParent, sendTo, setup, type AnyActorRef } from 'xstate';
import { z } from 'zod';
import type { Bar } from '../src/bars/bar.js';
import type { Strategy } from '../src/strategy/strategy.js';
import { smaCross } from '../src/strategy/strategy.js';
import { systemClock } from '../src/common/clock.js';
import { createIdempotencyTracker } from '../src/idempotency/idempotencyTracker.js';
import { orderJournalPath } from '../src/idempotency/orderJournal.js';
import { PaperBroker } from '../src/broker/paperBroker.js';
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

const cents = (price: number): number => Math.round(price * 100) / 100;

/** Minute bars of `symbols` symbols in batches of 4,096, made as they are consumed (as a file reader would). */
function* syntheticBars(symbols: number, perSymbol: number, start = Date.UTC(2025, 0, 6, 14, 30)): Generator<Bar[]> {
  let batch: Bar[] = [];
  let seed = 7;
  for (let i = 0; i < perSymbol; i += 1) {
    for (let s = 0; s < symbols; s += 1) {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      // Whole cents, as a feed quotes them.
      const price = cents(100 + s + Math.sin(i / 50) * 5 + (seed / 2_147_483_648) * 0.2);
      batch.push({ symbol: `S${s}`, ts: start + i * 60_000, open: price, high: cents(price + 0.1), low: cents(price - 0.1), close: price, volume: 1_000 });
      if (batch.length === 4_096) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
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

/**
 * Live ingest, one bar per event (each `ingest` awaited), 5 symbols of recent minute bars.
 * Watching only, the figures are the steady per-event cost of a session that runs for hours:
 * after one untimed session (the JIT compiles the hot path), three sessions each warmed up on
 * 4,000 bars and then timed over 20,000; the median session is reported (this 2-core
 * machine's timings drift by a third from run to run). Trading (`sma-cross`), the latency of a bar that
 * sends an order: three durable writes (journal reserve, broker order line, broker fill line).
 */
async function liveIngest(): Promise<void> {
  const warmUp = 4_000;
  const timed = 20_000;
  const minutes = (warmUp + timed) / 5;
  // Live bars are recent: the last `minutes` minutes, so the staleness check passes them.
  const bars = [...syntheticBars(5, minutes, Date.now() - minutes * 60_000)].flat();
  const runs: { barsPerSec: number; p99: number }[] = [];
  for (let run = -1; run < 3; run += 1) {
    const { session, stateDir } = await liveSession(watchOnly);
    for (const bar of bars.slice(0, warmUp)) await session.ingest(bar);
    const latencies: number[] = [];
    const started = performance.now();
    for (const bar of bars.slice(warmUp)) {
      const t0 = performance.now();
      await session.ingest(bar);
      latencies.push(performance.now() - t0);
    }
    if (run >= 0) runs.push({ barsPerSec: timed / ((performance.now() - started) / 1_000), p99: percentile(latencies, 99) });
    await session.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
  runs.sort((a, b) => a.barsPerSec - b.barsPerSec);
  const median = runs[1];
  if (median === undefined) return;
  report(BENCH, 'liveBarsPerSec', median.barsPerSec, 'bars/s');
  report(BENCH, 'liveBarP99Ms', median.p99, 'ms');

  // Trading: bar → the order handed to the broker (after its id is reserved durably), and bar →
  // ingest done (the broker's order and fill lines durable, the fill in the portfolio).
  const stateDir = await tempDir('live-orders');
  const broker = await PaperBroker.open({ dir: join(stateDir, 'broker'), clock: systemClock });
  const submittedAt: number[] = [];
  const submit = broker.submit.bind(broker);
  broker.submit = (order) => {
    submittedAt.push(performance.now());
    return submit(order);
  };
  const { session } = await liveSession(smaCross(), { stateDir, broker });
  const toOrder: number[] = [];
  const toDone: number[] = [];
  for (const bar of bars) {
    const orders = submittedAt.length;
    const t0 = performance.now();
    await session.ingest(bar);
    const sent = submittedAt[orders];
    if (sent !== undefined) {
      toOrder.push(sent - t0);
      toDone.push(performance.now() - t0);
    }
  }
  const summary = await session.stop();
  report(BENCH, 'liveOrders', summary.orders.submitted, 'orders');
  report(BENCH, 'barToOrderP50Ms', percentile(toOrder, 50), 'ms');
  report(BENCH, 'barToOrderP99Ms', percentile(toOrder, 99), 'ms');
  report(BENCH, 'barToFilledP99Ms', percentile(toDone, 99), 'ms');
  await rm(stateDir, { recursive: true, force: true });
}

/**
 * Live ingest over 500 symbols, one awaited `ingest` per bar: a bar's cost must not grow with
 * the symbols the session holds (each step copies the per-symbol state it changes, once per
 * batch). One session, 5,000 bars of warm-up, 20,000 timed.
 */
async function liveWide(): Promise<void> {
  const warmUp = 5_000;
  const timed = 20_000;
  const minutes = (warmUp + timed) / 500;
  const bars = [...syntheticBars(500, minutes, Date.now() - minutes * 60_000)].flat();
  const { session, stateDir } = await liveSession(watchOnly);
  for (const bar of bars.slice(0, warmUp)) await session.ingest(bar);
  const started = performance.now();
  for (const bar of bars.slice(warmUp)) await session.ingest(bar);
  report(BENCH, 'liveWideBarsPerSec', timed / ((performance.now() - started) / 1_000), 'bars/s');
  await session.stop();
  await rm(stateDir, { recursive: true, force: true });
}

async function liveSession(strategy: Strategy, given?: { stateDir: string; broker: PaperBroker }) {
  const stateDir = given?.stateDir ?? (await tempDir('live'));
  const session = createTradingSession({
    stateDir,
    strategy,
    ...(given === undefined ? {} : { broker: given.broker }),
    log: quiet,
    risk: { rateLimitEnabled: false, maxOrdersPerDay: 100_000 },
    guard: { maxStalenessMs: 7 * 86_400_000 },
  });
  await session.start();
  return { session, stateDir };
}

/**
 * A burst: 1,000 live bars of 500 symbols handed to `ingest` within one tick (one call per bar,
 * none awaited until the burst is handed over), 100 bursts after 20 warm-up bursts; median of 3
 * sessions. `ingest` sends the bars handed over within one tick as one batch, so a burst is one
 * event through the tree: this is the cost of a 1,000-bar, 500-symbol batch, per bar.
 */
async function liveBurst(): Promise<void> {
  const burst = 1_000;
  const warmUp = 20;
  const timed = 100;
  const minutes = ((warmUp + timed) * burst) / 500;
  const bars = [...syntheticBars(500, minutes, Date.now() - minutes * 60_000)].flat();
  const rates: number[] = [];
  for (let run = -1; run < 3; run += 1) {
    const { session, stateDir } = await liveSession(watchOnly);
    const hand = async (from: number): Promise<void> => {
      await Promise.all(bars.slice(from, from + burst).map((bar) => session.ingest(bar)));
    };
    for (let i = 0; i < warmUp; i += 1) await hand(i * burst);
    const started = performance.now();
    for (let i = warmUp; i < warmUp + timed; i += 1) await hand(i * burst);
    if (run >= 0) rates.push((timed * burst) / ((performance.now() - started) / 1_000));
    await session.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
  rates.sort((a, b) => a - b);
  report(BENCH, 'liveBurstBarsPerSec', rates[1] ?? 0, 'bars/s');
}

/**
 * Resuming a state dir whose journal holds 100,000 live ids (sent and acknowledged within the
 * TTL), median of 5 starts: after a clean stop (which compacted the journal to one line per
 * id), and after a crash (the journal as the last write left it: a reservation and a mark per
 * id, copied back before each start). The crash case also reports the stop that follows, which
 * compacts what the crash left.
 */
async function restart(): Promise<void> {
  const stateDir = await tempDir('restart');
  const crashDir = await tempDir('restart-crash');
  const tracker = createIdempotencyTracker({ stateDir, clock: systemClock, log: quiet });
  await tracker.start();
  const ids = Array.from({ length: 100_000 }, (_, n) => `R-${n.toString(36).padStart(8, '0')}`);
  for (let i = 0; i < ids.length; i += 1_000) {
    const chunk = ids.slice(i, i + 1_000);
    await Promise.all(chunk.map((id) => tracker.reserve(id)));
    await Promise.all(chunk.map((id) => tracker.mark(id, 'submitted')));
  }
  // Every write above is durable: this copy is what a SIGKILL now would leave.
  const crashed = join(crashDir, 'crashed.journal');
  await copyFile(orderJournalPath(stateDir), crashed);
  await tracker.stop();
  const resume = async (dir: string, beforeStart: () => Promise<void>) => {
    const starts: number[] = [];
    const stops: number[] = [];
    for (let run = 0; run < 5; run += 1) {
      await beforeStart();
      const session = createTradingSession({ stateDir: dir, strategy: watchOnly, log: quiet });
      const started = performance.now();
      await session.start();
      starts.push(performance.now() - started);
      if (run === 0 && session.snapshot().fault !== null) throw new Error(String(session.snapshot().fault));
      const stopping = performance.now();
      await session.stop();
      stops.push(performance.now() - stopping);
    }
    return { startMs: percentile(starts, 50), stopMs: percentile(stops, 50) };
  };
  const clean = await resume(stateDir, async () => undefined);
  const afterCrash = await resume(crashDir, () => copyFile(crashed, orderJournalPath(crashDir)));
  report(BENCH, 'restartMs', clean.startMs, 'ms');
  report(BENCH, 'restartAfterCrashMs', afterCrash.startMs, 'ms');
  report(BENCH, 'stopAfterCrashMs', afterCrash.stopMs, 'ms');
  await rm(stateDir, { recursive: true, force: true });
  await rm(crashDir, { recursive: true, force: true });
}

/**
 * XState's own floor for a live bar: the same four hops a live bar makes (session → data guard →
 * bars → session) through machines that do nothing but count, so `liveBarsPerSec` can be read
 * against what the actor tree costs before any rule of ours runs. Median of 5 rounds of 50,000.
 */
function xstateFloor(): void {
  type Hop = { type: 'HOP'; bars: readonly unknown[] };
  const counter = { context: {} as { hops: number; next: AnyActorRef | null }, input: {} as { next: AnyActorRef | null }, events: {} as Hop };
  const last = setup({ types: counter }).createMachine({
    context: ({ input }) => ({ hops: 0, next: input.next }),
    on: { HOP: { actions: [assign(({ context }) => ({ hops: context.hops + 1 })), sendParent(({ event }) => ({ type: 'DONE', bars: event.bars }))] } },
  });
  const first = setup({ types: counter }).createMachine({
    context: ({ input }) => ({ hops: 0, next: input.next }),
    on: { HOP: { actions: [assign(({ context }) => ({ hops: context.hops + 1 })), sendTo(({ context }) => context.next ?? '', ({ event }) => event)] } },
  });
  const root = setup({
    types: { context: {} as { done: number }, events: {} as { type: 'BARS' | 'DONE'; bars: readonly unknown[] } },
    actors: { first, last },
  }).createMachine({
    context: { done: 0 },
    entry: assign(({ spawn }) => {
      spawn('first', { id: 'first', input: { next: spawn('last', { id: 'last', input: { next: null } }) } });
      return {};
    }),
    on: {
      BARS: { actions: sendTo('first', ({ event }) => ({ type: 'HOP' as const, bars: event.bars })) },
      DONE: { actions: assign(({ context }) => ({ done: context.done + 1 })) },
    },
  });
  const actor = createActor(root).start();
  const rounds: number[] = [];
  for (let round = 0; round < 6; round += 1) {
    const started = performance.now();
    for (let i = 0; i < 50_000; i += 1) actor.send({ type: 'BARS', bars: [i] });
    if (round > 0) rounds.push(((performance.now() - started) * 1_000) / 50_000);
  }
  actor.stop();
  report(BENCH, 'xstateFourHopUs', percentile(rounds, 50), 'µs');
}

const parts: Record<string, () => void | Promise<void>> = { replay: hotPathReplay, live: liveIngest, wide: liveWide, burst: liveBurst, restart, floor: xstateFloor };
const only = process.env.AISTOCK_BENCH_ONLY;
for (const [name, part] of Object.entries(parts)) if (only === undefined || only === name) await part();
