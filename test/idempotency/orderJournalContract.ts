import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { createIdempotencyTracker, type IdempotencyTracker } from '../../src/idempotency/idempotencyTracker.js';
import { JournalClosedError, type OrderJournal } from '../../src/idempotency/orderJournal.js';

/**
 * The contract every {@link OrderJournal} keeps, written once and run against each store (the
 * file journal in test/idempotency/, PostgreSQL's in test/postgresStore/): what it loads back,
 * how appends share commits, compaction, and the tracker's rules over it — TTL, clock jumps
 * within and across restarts, unknown-until-settled — which must hold identically.
 */

/** One test's store: `open` is a journal over it as a new process would open it. */
export interface JournalStore {
  open(clock: ManualClock): OrderJournal;
  /** Durable commits (syncs, transactions) made by every journal `open` returned. */
  commits(): number;
  close(): Promise<void>;
}

const TTL = 300_000;
const WALL = Date.UTC(2025, 0, 2, 14, 30);
const HOUR = 3_600_000;

export function describeOrderJournalContract(name: string, makeStore: () => Promise<JournalStore>): void {
  describe(`OrderJournal contract: ${name}`, () => {
    let store: JournalStore;
    let stateDir: string;
    const running: IdempotencyTracker[] = [];

    beforeEach(async () => {
      store = await makeStore();
      stateDir = await mkdtemp(join(tmpdir(), 'aistock-journal-contract-'));
    });
    afterEach(async () => {
      await Promise.all(running.splice(0).map((tracker) => tracker.stop()));
      await store.close();
      await rm(stateDir, { recursive: true, force: true });
    });

    /** A tracker over a new journal of the store: a process starting. */
    async function started(clock: ManualClock): Promise<IdempotencyTracker> {
      const tracker = createIdempotencyTracker({ stateDir, clock, lock: false, journal: store.open(clock), log: () => undefined });
      running.push(tracker);
      await tracker.start();
      return tracker;
    }
    const restartedClock = (previous: ManualClock, wallStepMs = 0): ManualClock => new ManualClock({ wallMs: previous.wallMs() + wallStepMs, monoMs: 0 });
    /** A first process that reserves A and records it sent; still running (stop it to "restart"). */
    async function submittedA(clock: ManualClock): Promise<IdempotencyTracker> {
      const first = await started(clock);
      await first.reserve('A');
      await first.mark('A', 'submitted');
      return first;
    }

    it('loads a new store as empty and created, and loads back every record appended, in order', async () => {
      const clock = new ManualClock({ wallMs: WALL });
      const first = store.open(clock);
      expect(await first.load()).toMatchObject({ status: 'ok', records: [], created: true });
      await first.append([{ id: 'A', state: 'reserved', at: WALL }, { clockSkewMs: 5_000, at: WALL + 1 }, { id: 'B', state: 'reserved', at: WALL + 2 }]);
      await first.append([{ id: 'A', state: 'submitted', at: WALL }]);
      await first.close();
      const load = await store.open(clock).load();
      expect(load).toMatchObject({ status: 'ok', created: false });
      // Each id's last record and every clock skew, in the order written (a file keeps older records too; the fold skips them).
      const records = load.status === 'ok' ? load.records : [];
      const lastOfEach = records.filter((record, index) => !('id' in record) || !records.slice(index + 1).some((later) => 'id' in later && later.id === record.id));
      expect(lastOfEach).toEqual([{ clockSkewMs: 5_000, at: WALL + 1 }, { id: 'B', state: 'reserved', at: WALL + 2 }, { id: 'A', state: 'submitted', at: WALL }]);
    });

    it('commits appends made in one tick together (group commit)', async () => {
      const journal = store.open(new ManualClock({ wallMs: WALL }));
      await journal.load();
      const before = store.commits();
      await Promise.all(Array.from({ length: 16 }, (_, i) => journal.append([{ id: `ID-${i}`, state: 'reserved', at: WALL }])));
      expect(store.commits() - before).toBe(1);
      await journal.close();
    });

    it('replaces everything with exactly the live records on compaction', async () => {
      const clock = new ManualClock({ wallMs: WALL });
      const journal = store.open(clock);
      await journal.load();
      await journal.append([{ id: 'GONE', state: 'submitted', at: WALL }, { clockSkewMs: 9, at: WALL }, { id: 'KEPT', state: 'reserved', at: WALL }]);
      await journal.compact([{ id: 'KEPT', state: 'unknown', at: WALL - 5 }]);
      await journal.append([{ id: 'NEW', state: 'reserved', at: WALL + 1 }]);
      await journal.close();
      expect(await store.open(clock).load()).toMatchObject({
        status: 'ok',
        records: [{ id: 'KEPT', state: 'unknown', at: WALL - 5 }, { id: 'NEW', state: 'reserved', at: WALL + 1 }],
      });
    });

    it('refuses appends after close with JOURNAL_CLOSED', async () => {
      const journal = store.open(new ManualClock({ wallMs: WALL }));
      await journal.load();
      await journal.close();
      await expect(journal.append([{ id: 'A', state: 'reserved', at: WALL }])).rejects.toBeInstanceOf(JournalClosedError);
    });

    it('keeps an id a duplicate until exactly the TTL, across a restart', async () => {
      const clock = new ManualClock({ wallMs: WALL });
      const first = await submittedA(clock);
      await first.stop();
      const later = restartedClock(clock, 1_000);
      const restarted = await started(later);
      // The wall age at load (1 s) is within the load's grace (2 × the jump tolerance): 0.
      later.advance(TTL - 1);
      expect(await restarted.reserve('A')).toMatchObject({ status: 'duplicate', state: 'submitted' });
      later.advance(1);
      expect(await restarted.reserve('A')).toEqual({ status: 'new', id: 'A' });
    });

    it('ages ids in the new wall frame after a forward jump recorded before a restart', async () => {
      const clock = new ManualClock({ wallMs: WALL });
      const first = await submittedA(clock);
      clock.jumpWall(HOUR);
      first.checkClock();
      await first.stop();
      const restarted = await started(restartedClock(clock, 10_000));
      // 10 s passed: without the journaled jump, A would look an hour old and be handed out again.
      expect(await restarted.reserve('A')).toMatchObject({ status: 'duplicate', state: 'submitted', ageMs: 8_000 });
    });

    it('keeps an id a duplicate when the clock went back across a restart (negative wall age)', async () => {
      const clock = new ManualClock({ wallMs: WALL });
      const first = await submittedA(clock);
      await first.stop();
      const restarted = await started(restartedClock(clock, -HOUR));
      expect(await restarted.reserve('A')).toEqual({ status: 'duplicate', id: 'A', state: 'submitted', ageMs: 0 });
    });

    it('holds reserved and unknown ids until the broker settles them after a restart, whatever their age', async () => {
      const clock = new ManualClock({ wallMs: WALL });
      const first = await started(clock);
      for (const id of ['SENT', 'NOT-SENT', 'MAYBE']) await first.reserve(id);
      await first.mark('MAYBE', 'unknown');
      await first.stop();
      const later = restartedClock(clock, 10 * TTL);
      const restarted = await started(later);
      expect(await restarted.reserve('NOT-SENT')).toMatchObject({ status: 'duplicate', state: 'reserved' });
      expect(await restarted.reserve('MAYBE')).toMatchObject({ status: 'duplicate', state: 'unknown' });
      expect(await restarted.reconcile(['SENT'])).toEqual({ status: 'reconciled', resumed: false, confirmed: 1, released: 2, added: 0 });
      expect(await restarted.reserve('SENT')).toMatchObject({ status: 'duplicate', state: 'submitted' });
      expect(await restarted.reserve('NOT-SENT')).toEqual({ status: 'new', id: 'NOT-SENT' });
      await restarted.stop();
      // What reconciliation released stays released for the next process too.
      const third = await started(restartedClock(later));
      expect(await third.reserve('MAYBE')).toEqual({ status: 'new', id: 'MAYBE' });
    });
  });
}
