import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { createTradingSession } from '../../src/session/createTradingSession.js';
import { postgresStore } from '../../src/postgresStore/postgresStore.js';
import { buyOnBars, minuteBars } from '../support/sessionFixture.js';
import { startCluster, type Cluster } from './postgresCluster.js';

/** A cluster of this file's own (the run's shared one is not restarted under other files' feet). */
let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ persistent: true });
});
afterAll(async () => {
  await cluster.server.stop();
  await rm(cluster.dir, { recursive: true, force: true });
});

/** Resolves at the session's next checkpoint written, or at once when none has failed so far (`failedSoFar`). */
function checkpointWritten(session: ReturnType<typeof createTradingSession>, failedSoFar: number): Promise<void> {
  if (failedSoFar === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const off = session.on('checkpoint', (event) => {
      if (event.result !== 'written') return;
      off();
      resolve();
    });
  });
}

describe('the database restarted mid-run', () => {
  it('holds new orders while the database is down (refused, never sent), resumes once it is back, and a restart finds everything', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'aistock-pg-restart-'));
    const bars = minuteBars(10);
    const options = {
      stateDir,
      sessionId: 'restarted',
      clock: new ManualClock({ wallMs: Date.UTC(2025, 10, 3, 15), monoMs: 1_000 }),
      strategy: buyOnBars([2, 5, 8]),
      replay: true,
      log: () => undefined,
      store: postgresStore({ url: cluster.adminUrl, leaseMs: 5_000 }),
    };
    const session = createTradingSession(options);
    let failed = 0;
    session.on('checkpoint', (event) => {
      if (event.result === 'failed') failed += 1;
    });
    await session.start();
    await session.ingest(bars.slice(0, 3)); // bar 2's order is sent
    await cluster.server.stop();
    // Bar 5's order is not sent: its reservation cannot be made (JOURNAL_UNAVAILABLE), or the checkpointer's
    // failed writes have already made the session hold orders (PERSISTENCE_DEGRADED) — whichever comes first.
    await session.ingest(bars.slice(3, 6));
    const down = session.snapshot().orders;
    expect(down).toMatchObject({ submitted: 1, refused: 1 });
    expect(Object.keys(down.refusedBy)).toEqual([expect.stringMatching(/^(JOURNAL_UNAVAILABLE|PERSISTENCE_DEGRADED)$/)]);
    // While the server is down the checkpointer's writes fail too, and after three the session holds new
    // orders (PERSISTENCE_DEGRADED) until one succeeds: its retry backs off up to 5 s, so wait for it.
    const recovered = checkpointWritten(session, failed);
    await cluster.server.start();
    await recovered;
    await session.ingest(bars.slice(6)); // bar 8's order: the pool reconnects, the reservation is made, it is sent
    const summary = await session.stop();
    expect(summary.fault).toBeNull();
    expect(summary.orders).toMatchObject({ submitted: 2, refused: 1 });

    // A new process on the same session: it resumes from the checkpoint and sends nothing again.
    const resumed = createTradingSession({ ...options, store: postgresStore({ url: cluster.adminUrl }) });
    await resumed.start();
    await resumed.ingest(bars);
    const again = await resumed.stop();
    expect(again.orders.submitted).toBe(0);
    expect(again.portfolio).toEqual(summary.portfolio);
    await rm(stateDir, { recursive: true, force: true });
  });
});
