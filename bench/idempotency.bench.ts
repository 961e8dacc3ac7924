/**
 * Idempotency: durable reservations with group commit (8 concurrent callers, each awaiting its
 * reserve), in-memory duplicate checks, and start-up with 100,000 live ids. Targets (2 cores):
 * ≥ 20,000 reservations/s, ≥ 2,000,000 checks/s, load < 200 ms.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkReservation, restoreTable, type JournalRecord } from '../src/idempotency/idempotency.js';
import { systemClock } from '../src/common/clock.js';
import { createIdempotencyTracker } from '../src/idempotency/idempotencyTracker.js';
import { FileOrderJournal, ORDER_JOURNAL_SCHEMA_VERSION, orderJournalPath } from '../src/idempotency/orderJournal.js';
import { withChecksum } from '../src/stateDir/lineChecksum.js';
import { percentile, report } from './report.js';

const BENCH = 'idempotency';
const CALLERS = 8;
const RESERVATIONS_PER_CALLER = 6_000;
const LIVE_IDS = 100_000;
const CHECKS = 5_000_000;
const LOAD_RUNS = 7;

const idFor = (prefix: string, n: number): string => `${prefix}-${n.toString(36).padStart(8, '0')}`;

/** Durable reservations by 8 callers, each awaiting `perStep` reserves at a time. */
async function reservations(perStep: number): Promise<{ perSec: number; perSync: number; latencies: number[] }> {
  const stateDir = await mkdtemp(join(tmpdir(), 'aistock-bench-idem-'));
  const tracker = createIdempotencyTracker({ stateDir, clock: systemClock });
  await tracker.start();
  const latencies: number[] = [];
  const caller = async (index: number): Promise<void> => {
    for (let i = 0; i < RESERVATIONS_PER_CALLER; i += perStep) {
      const started = performance.now();
      const ids = Array.from({ length: perStep }, (_, k) => idFor(`C${index}`, i + k));
      const results = await Promise.all(ids.map((id) => tracker.reserve(id)));
      if (results.some((result) => result.status !== 'new')) throw new Error(`expected new: ${JSON.stringify(results)}`);
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, (_, index) => caller(index)));
  const seconds = (performance.now() - started) / 1_000;
  const { stats } = await tracker.stop();
  await rm(stateDir, { recursive: true, force: true });
  return { perSec: (CALLERS * RESERVATIONS_PER_CALLER) / seconds, perSync: stats.reserved / stats.syncs, latencies };
}

/** The floor under every durable reservation: one journal append of 8 records, alone, in ms. */
async function durableAppendMs(): Promise<number> {
  const stateDir = await mkdtemp(join(tmpdir(), 'aistock-bench-idem-append-'));
  const journal = new FileOrderJournal({ path: orderJournalPath(stateDir), clock: systemClock });
  await journal.load();
  const samples: number[] = [];
  for (let n = 0; n < 1_000; n += 1) {
    const records = Array.from({ length: CALLERS }, (_, k) => ({ id: idFor('F', n * CALLERS + k), state: 'reserved' as const, at: Date.now() }));
    const started = performance.now();
    await journal.append(records);
    samples.push(performance.now() - started);
  }
  await journal.close();
  await rm(stateDir, { recursive: true, force: true });
  return percentile(samples, 50);
}

async function durableReservations(): Promise<void> {
  // With 8 callers each awaiting its reserve, throughput cannot pass 8 per durable write.
  const floorMs = await durableAppendMs();
  report(BENCH, 'durableAppendP50', floorMs, 'ms');
  report(BENCH, 'reservationsPerSecCeiling', CALLERS / (floorMs / 1_000), 'reservations/s');
  const single = await reservations(1);
  report(BENCH, 'reservationsPerSec', single.perSec, 'reservations/s');
  report(BENCH, 'reservationsPerFsync', single.perSync, 'reservations');
  report(BENCH, 'reserveLatencyP50', percentile(single.latencies, 50), 'ms');
  report(BENCH, 'reserveLatencyP99', percentile(single.latencies, 99), 'ms');
  // The same 8 callers with 8 intents each per step (64 in flight): what group commit gives
  // when more than 8 reservations wait on one sync.
  const burst = await reservations(8);
  report(BENCH, 'reservationsPerSec64InFlight', burst.perSec, 'reservations/s');
  report(BENCH, 'reservationsPerFsync64InFlight', burst.perSync, 'reservations');
}

function checks(): void {
  const now = { wallMs: Date.UTC(2025, 0, 2, 14, 30), monoMs: 1_000 };
  const records: JournalRecord[] = Array.from({ length: LIVE_IDS }, (_, n) => ({ id: idFor('L', n), state: 'submitted', at: now.wallMs }));
  const { table } = restoreTable(records, now, { ttlMs: 300_000, graceMs: 2_000 });
  // Half the probes hit a live id, half miss.
  const probes = Array.from({ length: 1 << 16 }, (_, n) => (n % 2 === 0 ? idFor('L', (n * 7919) % LIVE_IDS) : idFor('M', n)));
  let held = 0;
  const started = performance.now();
  for (let i = 0; i < CHECKS; i += 1) {
    if (checkReservation(table, probes[i & 0xffff] ?? '', now.monoMs, 300_000).status === 'held') held += 1;
  }
  const seconds = (performance.now() - started) / 1_000;
  if (held !== CHECKS / 2) throw new Error(`expected ${CHECKS / 2} held, got ${held}`);
  report(BENCH, 'checksPerSec', CHECKS / seconds, 'checks/s');
}

async function load(): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'aistock-bench-idem-load-'));
  const at = Date.now();
  // The journal's own format (schema version 2: a CRC-32 on every line), so no run pays an upgrade.
  let text = `${withChecksum(JSON.stringify({ journal: 'aistock/orders', schemaVersion: ORDER_JOURNAL_SCHEMA_VERSION, createdAt: at }))}\n`;
  for (let n = 0; n < LIVE_IDS; n += 1) text += `${withChecksum(JSON.stringify({ id: idFor('AAPL-L', n), state: 'submitted', at }))}\n`;
  await writeFile(orderJournalPath(stateDir), text);
  const runs: number[] = [];
  for (let run = 0; run < LOAD_RUNS; run += 1) {
    const tracker = createIdempotencyTracker({ stateDir, clock: systemClock });
    const started = performance.now();
    const { journal } = await tracker.start();
    runs.push(performance.now() - started);
    if (journal.status !== 'loaded' || journal.liveIds !== LIVE_IDS) throw new Error(`loaded ${JSON.stringify(journal)}`);
    await tracker.stop();
  }
  await rm(stateDir, { recursive: true, force: true });
  report(BENCH, 'loadMsPer100k', percentile(runs, 50), 'ms');
  report(BENCH, 'loadMsPer100kFirstRun', runs[0] ?? Number.NaN, 'ms');
}

await durableReservations();
checks();
await load();
