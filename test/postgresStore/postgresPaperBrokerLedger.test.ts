import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { PaperBroker } from '../../src/broker/paperBroker.js';
import { PostgresPaperBrokerLedger } from '../../src/postgresStore/postgresPaperBrokerLedger.js';
import { openPool } from '../../src/postgresStore/postgresClient.js';
import { LeaseWatch, tryTakeLease, type HeldLease } from '../../src/postgresStore/postgresLease.js';
import { leasedSession, useMigratedDatabase } from './postgresTestStore.js';

/**
 * The PostgreSQL ledger and the session's lease: the orders that reach the market are
 * not fenced — the failover tests read it as an outside check of the session's own fencing —
 * but the fills a bar makes (the paper market's own doing) and cancels are written only by the holder's.
 */

const database = useMigratedDatabase('broker_ledger_fence');
const T0 = Date.UTC(2025, 0, 2, 14, 30);
const clock = new ManualClock({ wallMs: T0 });
const bar = (minute: number, low: number) => ({ symbol: 'AAPL', ts: T0 + minute * 60_000, open: 100, high: 101, low, close: 100 });

/** Another process takes the session over: the old lease expired now, the next token taken. */
async function takeOver(old: HeldLease): Promise<HeldLease> {
  await database.pool().query('UPDATE aistock_leases SET expires_at = clock_timestamp() WHERE session_id = $1', [old.sessionId]);
  const taken = await tryTakeLease(database.pool(), old.sessionId, 60_000);
  if (!('token' in taken)) throw new Error('not taken over');
  return taken;
}

describe('the PaperBroker ledger in PostgreSQL, beside the lease', () => {
  it('refuses a bar\'s fill and a cancel from a holder taken over (LEASE_LOST, nothing written, the order still resting), yet takes its orders', async () => {
    const old = await leasedSession(database.pool());
    const watch = new LeaseWatch(old);
    const ledger = new PostgresPaperBrokerLedger({ pool: database.pool(), sessionId: old.sessionId, where: 'test', fence: watch });
    const stale = await PaperBroker.open({ ledger, clock });
    try {
      await stale.submit({ clientOrderId: 'L-1', symbol: 'AAPL', side: 'buy', qty: '1', type: 'limit', limitPrice: '99' });
      await stale.submit({ clientOrderId: 'L-2', symbol: 'AAPL', side: 'buy', qty: '1', type: 'limit', limitPrice: '90' });
      expect(await stale.observeBar(bar(1, 98))).toHaveLength(1); // L-1 fills while the lease is held

      await takeOver(old);
      await stale.submit({ clientOrderId: 'L-3', symbol: 'AAPL', side: 'buy', qty: '1', type: 'limit', limitPrice: '80' });
      await expect(stale.observeBar(bar(2, 85))).rejects.toMatchObject({ code: 'BROKER_LEDGER_FAILED', cause: { code: 'LEASE_LOST' } });
      expect(watch.lost?.code).toBe('LEASE_LOST');
      expect((await stale.openOrders()).map((order) => order.order.clientOrderId)).toEqual(['L-2', 'L-3']);
      // Its cancel too: the stale book's working orders may be the new holder's fills by now.
      await expect(stale.cancel('L-3')).rejects.toMatchObject({ code: 'BROKER_LEDGER_FAILED', cause: { code: 'LEASE_LOST' } });
      expect((await stale.openOrders()).map((order) => order.order.clientOrderId)).toEqual(['L-2', 'L-3']);
    } finally {
      await stale.close();
    }
    const reader = new PostgresPaperBrokerLedger({ pool: database.pool(), sessionId: old.sessionId, where: 'test' });
    const records = await reader.open();
    expect(records.orders.map((line) => line.clientOrderId)).toEqual(['L-1', 'L-2', 'L-3']);
    expect(records.fills.map((fill) => fill.clientOrderId)).toEqual(['L-1']);
    expect(records.cancels).toEqual([]);
  });

  it('rejects every append of a commit the server refuses, counting it, and refuses appends after close as a caller\'s bug', async () => {
    const pool = await openPool(database.url(), 1);
    const ledger = new PostgresPaperBrokerLedger({ pool, sessionId: 'refused', where: 'test' });
    await ledger.open();
    await pool.end(); // every statement from now on fails
    const fill = { clientOrderId: 'F-1', symbol: 'AAPL', side: 'buy' as const, qty: '1', price: '100', commission: '0', filledAt: T0 };
    const appends = [ledger.appendFill(fill, 0), ledger.appendCancel({ clientOrderId: 'F-1', cancelledAt: T0 })];
    for (const append of appends) await expect(append).rejects.toMatchObject({ code: 'POSTGRES_STORE_FAILED' });
    expect(ledger.stats()).toMatchObject({ appends: 2, commits: 0, failedCommits: 1 });
    await ledger.close();
    await expect(ledger.appendFill(fill, 0)).rejects.toMatchObject({ code: 'BROKER_LEDGER_CLOSED', retryable: false });
  });
});
