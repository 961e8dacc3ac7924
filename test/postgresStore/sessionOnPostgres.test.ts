import { access, mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PaperBroker } from '../../src/broker/paperBroker.js';
import type { Broker } from '../../src/broker/broker.js';
import { ManualClock } from '../../src/common/clock.js';
import { createTradingSession, type TradingSessionOptions } from '../../src/session/createTradingSession.js';
import { postgresStore } from '../../src/postgresStore/postgresStore.js';
import type { LeaseTimers } from '../../src/postgresStore/postgresLease.js';
import { buyOnBars, delegatingBroker, minuteBars } from '../support/sessionFixture.js';
import type { Strategy } from '../../src/strategy/strategy.js';
import { z } from 'zod';
import { adminQuery, testDatabase } from './testDatabase.js';

let db: Awaited<ReturnType<typeof testDatabase>>;
beforeAll(async () => {
  db = await testDatabase('session');
});
const made: string[] = [];
/** A state dir of its own, removed after the file's tests. */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-pg-session-'));
  made.push(dir);
  return dir;
}
afterAll(async () => {
  await db.drop();
  await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
});

const bars = minuteBars(8);
/** Timers that never fire: a holder whose renewals never run, as if its process were paused. */
const paused: LeaseTimers = { setTimeout: () => undefined, clearTimeout: () => undefined };

function options(stateDir: string, extra: Partial<TradingSessionOptions> = {}): TradingSessionOptions {
  return {
    stateDir,
    clock: new ManualClock({ wallMs: Date.UTC(2025, 10, 3, 15), monoMs: 1_000 }),
    strategy: buyOnBars([2, 4, 6]),
    replay: true,
    log: () => undefined,
    ...extra,
  };
}

/** A PaperBroker that counts the orders it is asked to submit. */
async function countingBroker(stateDir: string): Promise<{ broker: Broker; submits: () => number }> {
  const paper = await PaperBroker.open({ dir: join(stateDir, 'broker'), clock: new ManualClock({ wallMs: Date.UTC(2025, 10, 3, 15) }) });
  let submits = 0;
  const broker = delegatingBroker(paper, {
    submit: (order) => {
      submits += 1;
      return paper.submit(order);
    },
  });
  return { broker, submits: () => submits };
}

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

describe('a trading session on PostgreSQL', () => {
  it('ends where the same session on its state dir ends, keeps no journal or checkpoint file, and resumes sending nothing again', async () => {
    const fileDir = await tempDir();
    const onFiles = createTradingSession(options(fileDir));
    await onFiles.start();
    await onFiles.ingest(bars);
    const expected = await onFiles.stop();

    const pgDir = await tempDir();
    const store = postgresStore({ url: db.url });
    const onPostgres = createTradingSession(options(pgDir, { store, sessionId: 'equal' }));
    await onPostgres.start();
    await onPostgres.ingest(bars);
    const summary = await onPostgres.stop();
    expect(summary.portfolio).toEqual(expected.portfolio);
    expect(summary.orders.submitted).toBe(3);
    expect(await exists(join(pgDir, 'orders.journal'))).toBe(false);
    expect(await exists(join(pgDir, 'checkpoint.json'))).toBe(false);
    const rows = await adminQuery(
      db.url,
      "SELECT (SELECT count(*) FROM aistock_journal WHERE session_id = 'equal')::int AS ids, (SELECT count(*) FROM aistock_checkpoints WHERE session_id = 'equal')::int AS checkpoints",
    );
    expect(rows.rows).toEqual([{ ids: 3, checkpoints: 1 }]);

    const resumed = createTradingSession(options(pgDir, { store, sessionId: 'equal' }));
    await resumed.start();
    await resumed.ingest(bars);
    const again = await resumed.stop();
    expect(again.orders.submitted).toBe(0);
    expect(again.bars.resumedSkips).toBe(bars.length);
    expect(again.portfolio).toEqual(expected.portfolio);
  });

  it('refuses to start a second session with the same id, naming the holder\'s host and pid', async () => {
    const store = postgresStore({ url: db.url });
    const first = createTradingSession(options(await tempDir(), { store, sessionId: 'twice' }));
    await first.start();
    const second = createTradingSession(options(await tempDir(), { store, sessionId: 'twice' }));
    await expect(second.start()).rejects.toMatchObject({ code: 'SESSION_LEASE_HELD', holderHost: hostname(), holderPid: process.pid });
    await second.stop();
    await first.stop();
  });

  it('faults a paused holder with LEASE_LOST before any broker call once a standby has taken its lease', async () => {
    const stateDir = await tempDir();
    const { broker, submits } = await countingBroker(stateDir);
    // The holder's renewals never run (paused); its 200 ms lease expires on the server's clock.
    const holder = createTradingSession(options(stateDir, { store: postgresStore({ url: db.url, leaseMs: 200, timers: paused }), sessionId: 'fenced', broker }));
    await holder.start();
    await holder.ingest(bars.slice(0, 3)); // bar 2's order is sent
    expect(submits()).toBe(1);
    const standby = await postgresStore({ url: db.url, leaseMs: 200, standby: true }).open({
      sessionId: 'fenced',
      clock: new ManualClock({ wallMs: 0 }),
      log: () => undefined,
    });
    // The holder wakes: bar 4's order needs a reservation, which fails on the fencing token.
    await expect(holder.ingest(bars.slice(3, 5))).rejects.toMatchObject({ code: 'SESSION_FAULTED' });
    expect(submits()).toBe(1);
    expect(holder.snapshot().fault).toMatchObject({ code: 'LEASE_LOST', cause: 'LEASE_LOST' });
    await holder.stop();
    await standby.release();
  });

  it('faults LEASE_LOST as soon as a renewal finds another holder, with no order or write of its own to find it', async () => {
    // Renewals that run only when the test says: the holder "wakes" after the takeover.
    const due: (() => void)[] = [];
    const manual: LeaseTimers = { setTimeout: (fn) => due.push(fn), clearTimeout: () => undefined };
    const holder = createTradingSession(options(await tempDir(), { strategy: buyOnBars([]), store: postgresStore({ url: db.url, leaseMs: 200, timers: manual }), sessionId: 'woken' }));
    await holder.start();
    await holder.ingest(bars.slice(0, 2));
    await adminQuery(db.url, "UPDATE aistock_leases SET expires_at = clock_timestamp() WHERE session_id = 'woken'");
    const standby = await postgresStore({ url: db.url, leaseMs: 200, standby: true }).open({ sessionId: 'woken', clock: new ManualClock({ wallMs: 0 }), log: () => undefined });
    for (const renew of due.splice(0)) renew();
    await vi.waitFor(() => expect(holder.snapshot().fault).toMatchObject({ code: 'LEASE_LOST' }));
    await expect(holder.ingest(bars.slice(2, 4))).rejects.toMatchObject({ code: 'SESSION_FAULTED' });
    await holder.stop();
    await standby.release();
  });

  it("faults LEASE_LOST, too, when the first write the lease refuses is the market's fill of a resting order", async () => {
    // Bar 2 rests a limit buy that bar 3 reaches; bar 4 sends a market order.
    const strategy: Strategy<number> = {
      id: 'rest',
      stateSchema: z.number().int(),
      initialState: () => 0,
      onBar(seen, bar) {
        const n = seen + 1;
        if (n === 2) return { state: n, intents: [{ symbol: bar.symbol, side: 'buy', qty: '1', type: 'limit', limitPrice: '99.99' }] };
        if (n === 4) return { state: n, intents: [{ symbol: bar.symbol, side: 'buy', qty: '1', type: 'market' }] };
        return { state: n, intents: [] };
      },
    };
    // The session's own PaperBroker, on its ledger in PostgreSQL: its fills are fenced by the lease.
    const holder = createTradingSession(options(await tempDir(), { strategy, store: postgresStore({ url: db.url, leaseMs: 200, timers: paused }), sessionId: 'resting' }));
    await holder.start();
    await holder.ingest(bars.slice(0, 2));
    const standby = await postgresStore({ url: db.url, leaseMs: 200, standby: true }).open({
      sessionId: 'resting',
      clock: new ManualClock({ wallMs: 0 }),
      log: () => undefined,
    });
    // Bar 4's execution first shows the market bar 3, whose fill of the resting order the ledger refuses on the token.
    await expect(holder.ingest(bars.slice(2, 5))).rejects.toMatchObject({ code: 'SESSION_FAULTED' });
    expect(holder.snapshot().fault).toMatchObject({ code: 'LEASE_LOST' });
    const fills = await adminQuery(db.url, "SELECT count(*)::int AS n FROM aistock_broker_fills WHERE session_id = 'resting'");
    expect(fills.rows).toEqual([{ n: 0 }]);
    await holder.stop();
    await standby.release();
  });
});
