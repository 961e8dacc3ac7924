import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import type { Fill } from '../../src/common/order.js';
import type { BrokerBar, BrokerOrder } from '../../src/broker/broker.js';
import { InvalidPaperBrokerOptionsError, PaperBroker, type PaperBrokerOptions } from '../../src/broker/paperBroker.js';
import { BrokerLedgerCorruptError, type LedgerRecords, type OrderLine, type PaperBrokerLedgerStore } from '../../src/broker/paperBrokerLedger.js';

/**
 * The contract every {@link PaperBrokerLedgerStore} keeps, written once and run against each
 * store (the files in test/broker/, PostgreSQL's in test/postgresStore/): what a PaperBroker
 * reads back after a reopen, in append order; a resolved append durable (read by a store opened
 * beside it); appends made together in one commit; a duplicate client order id refused; a
 * carried fill's missing copy written again at open. The broker's rules run over each store
 * unchanged, so a paper session fails over the same whatever keeps its ledger.
 */

/** One test's ledger: `open` is a store over it as a new process would open it. */
export interface LedgerStoreFixture {
  open(): PaperBrokerLedgerStore;
  /** Durable commits `run` made: syncs of the files, statements in the database. */
  commitsDuring(run: () => Promise<unknown>): Promise<number>;
  close(): Promise<void>;
}

const T0 = Date.UTC(2025, 0, 2, 14, 30);
const MINUTE = 60_000;

const bar = (symbol: string, minute: number, price: number): BrokerBar => ({
  symbol,
  ts: T0 + minute * MINUTE,
  open: price,
  high: price + 1,
  low: price - 1,
  close: price,
});
const market = (clientOrderId: string, side: 'buy' | 'sell', qty: string, symbol = 'AAPL'): BrokerOrder => ({ clientOrderId, symbol, side, qty, type: 'market' });
const limit = (clientOrderId: string, side: 'buy' | 'sell', qty: string, limitPrice: string): BrokerOrder => ({
  clientOrderId,
  symbol: 'AAPL',
  side,
  qty,
  type: 'limit',
  limitPrice,
});

/** `uniqueClientOrderIds`: the store itself refuses a client order id it holds (as its stores say). */
export function describePaperBrokerLedgerContract(name: string, options: { uniqueClientOrderIds: boolean }, makeFixture: () => Promise<LedgerStoreFixture>): void {
  describe(`PaperBrokerLedgerStore contract: ${name}`, () => {
    let fixture: LedgerStoreFixture;
    const opened: PaperBroker[] = [];
    const clock = new ManualClock({ wallMs: T0 });

    beforeEach(async () => {
      fixture = await makeFixture();
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((broker) => broker.close()));
      await fixture.close();
    });

    /** What a new store of the ledger reads (then closed). */
    async function readBack(): Promise<LedgerRecords> {
      const store = fixture.open();
      try {
        return await store.open();
      } finally {
        await store.close();
      }
    }

    /** The positions a broker reopened on the ledger rebuilds (then closed). */
    async function positionsAfterReopen(): Promise<Record<string, string>> {
      const broker = await PaperBroker.open({ ledger: fixture.open(), clock });
      try {
        return await broker.positions();
      } finally {
        await broker.close();
      }
    }

    /** A PaperBroker on a new store of the ledger: a process opening it. */
    async function openBroker(options: Omit<PaperBrokerOptions, 'dir' | 'ledger' | 'clock'> = {}): Promise<PaperBroker> {
      const broker = await PaperBroker.open({ ledger: fixture.open(), clock, commissionPerShare: '0.01', ...options });
      opened.push(broker);
      return broker;
    }

    it('reads back, after a reopen, every order, fill and cancel in the order they were appended, and rebuilds the same book', async () => {
      const before = await openBroker({ partialFills: { parts: 2 } });
      before.observeBar(bar('AAPL', 0, 100));
      await before.submit(market('A-1', 'buy', '4'));
      await before.submit(limit('L-1', 'buy', '2', '95'));
      await before.submit(limit('L-2', 'sell', '2', '150'));
      await before.cancel('L-2');
      await before.observeBar(bar('AAPL', 1, 94));
      const book = { open: await before.openOrders(), positions: await before.positions(), a1: await before.orderByClientId('A-1') };
      await before.close();

      const records = await readBack();
      expect(records.orders.map((line) => [line.clientOrderId, line.type])).toEqual([
        ['A-1', 'market'],
        ['L-1', 'limit'],
        ['L-2', 'limit'],
      ]);
      // A-1's first part rides its order line and is copied; its second part and L-1's first fill on the next bar.
      expect(records.fills.map((fill) => [fill.clientOrderId, fill.qty, fill.filledAt])).toEqual([
        ['A-1', '2', T0],
        ['A-1', '2', T0 + MINUTE],
        ['L-1', '1', T0 + MINUTE],
      ]);
      expect(records.cancels).toEqual([{ clientOrderId: 'L-2', cancelledAt: T0 }]);

      const after = await openBroker({ partialFills: { parts: 2 } });
      expect({ open: await after.openOrders(), positions: await after.positions(), a1: await after.orderByClientId('A-1') }).toEqual(book);
      expect(after.openReport).toMatchObject({ orders: 3, fills: 3, cancels: 1, fillsRecopied: 0 });
    });

    it('makes an append durable before it resolves: a store opened beside the writer, before any close, reads it', async () => {
      const writer = await openBroker();
      writer.observeBar(bar('MSFT', 0, 410));
      const accepted = await writer.submit(market('M-1', 'sell', '3', 'MSFT'));
      expect(accepted.status).toBe('accepted');
      const beside = await readBack();
      expect(beside.orders.map((line) => line.clientOrderId)).toEqual(['M-1']);
      expect(beside.orders[0]).toMatchObject({ type: 'market', fill: { qty: '3', price: '410', commission: '0.03' } });
    });

    it('commits appends made together in one commit', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, 100));
      const commits = await fixture.commitsDuring(() => Promise.all(['B-1', 'B-2', 'B-3', 'B-4'].map((id) => broker.submit(market(id, 'buy', '1')))));
      // The four order lines (each carrying its fill) share one commit; the fills' copies follow, not waited for.
      expect(commits).toBe(1);
      expect((await readBack()).orders).toHaveLength(4);
    });

    it('refuses a second order with a client order id the ledger holds, before and after a reopen', async () => {
      const first = await openBroker();
      first.observeBar(bar('AAPL', 0, 100));
      await first.submit(market('D-1', 'buy', '1'));
      expect(await first.submit(market('D-1', 'buy', '1'))).toMatchObject({ status: 'rejected', reason: 'DUPLICATE_CLIENT_ORDER_ID' });
      await first.close();
      const reopened = await openBroker();
      reopened.observeBar(bar('AAPL', 1, 100));
      expect(await reopened.submit(market('D-1', 'sell', '1'))).toMatchObject({ status: 'rejected', reason: 'DUPLICATE_CLIENT_ORDER_ID' });
      expect((await readBack()).orders.map((line) => line.clientOrderId)).toEqual(['D-1']);
    });

    it('says whether the store itself refuses a client order id it holds, and a broker over one that does cannot accept duplicates', async () => {
      expect(fixture.open().uniqueClientOrderIds).toBe(options.uniqueClientOrderIds);
      const accepting = PaperBroker.open({ ledger: fixture.open(), clock, rejectDuplicateIds: false });
      if (options.uniqueClientOrderIds) await expect(accepting).rejects.toBeInstanceOf(InvalidPaperBrokerOptionsError);
      else opened.push(await accepting);
    });

    it('refuses a ledger given no home or two (dir and a store)', async () => {
      await expect(PaperBroker.open({ clock })).rejects.toBeInstanceOf(InvalidPaperBrokerOptionsError);
      await expect(PaperBroker.open({ clock, dir: 'broker', ledger: fixture.open() })).rejects.toBeInstanceOf(InvalidPaperBrokerOptionsError);
    });

    it.runIf(options.uniqueClientOrderIds)('refuses, in the store itself, an order line whose client order id it holds: a second broker on the same ledger (a holder taken over, still running) is told DUPLICATE_CLIENT_ORDER_ID', async () => {
      const holder = await openBroker();
      const stale = await openBroker(); // opened before the holder's order: its book does not know it
      holder.observeBar(bar('AAPL', 0, 100));
      stale.observeBar(bar('AAPL', 0, 100));
      await holder.submit(market('X-1', 'buy', '1'));
      expect(await stale.submit(market('X-1', 'buy', '1'))).toMatchObject({ status: 'rejected', reason: 'DUPLICATE_CLIENT_ORDER_ID' });
      // The market holds the holder's order: the stale broker's book takes it in, with its fill,
      // so a session asking after the refusal finds the fill instead of booking none.
      const held = await holder.orderByClientId('X-1');
      expect(held?.fills).toHaveLength(1);
      expect(await stale.orderByClientId('X-1')).toEqual(held);
      expect(await stale.positions()).toEqual({ AAPL: '1' });
      const store = fixture.open();
      await store.open();
      const line: OrderLine = { clientOrderId: 'X-1', symbol: 'AAPL', side: 'buy', qty: '1', type: 'limit', receivedAt: T0, limitPrice: '90' };
      expect(await store.appendOrder(line)).toMatchObject({ status: 'duplicate', stored: { clientOrderId: 'X-1', type: 'market', fill: { qty: '1' } } });
      // A late copy of X-1's carried fill (a holder taken over, its copy still queued when it was paused) is no second fill.
      await holder.close(); // its own copy, written behind, is in
      const [copy] = (await readBack()).fills;
      if (copy === undefined) throw new Error('X-1 filled at submit: its copy is written');
      await store.copyFill(copy);
      await store.close();
      expect(await readBack()).toMatchObject({ orders: [{ clientOrderId: 'X-1' }], fills: [copy] });
      expect(await positionsAfterReopen()).toEqual({ AAPL: '1' });
    });

    it.runIf(options.uniqueClientOrderIds)('keeps a bar\'s fill once when it is written again (an earlier commit whose answer was lost), and the broker takes the fill the store holds', async () => {
      const logged: Record<string, unknown>[] = [];
      const broker = await openBroker({ log: (entry) => logged.push(entry) });
      broker.observeBar(bar('AAPL', 0, 100));
      await broker.submit(limit('L-9', 'buy', '1', '95'));
      // The server committed this fill, and the answer never came back: the broker still has L-9 resting with no fill.
      const committed: Fill = { clientOrderId: 'L-9', symbol: 'AAPL', side: 'buy', qty: '1', price: '94.5', commission: '0.01', filledAt: T0 + MINUTE };
      const store = fixture.open();
      await store.open();
      expect(await store.appendFill(committed, 0)).toEqual({ status: 'appended' });
      await store.close();
      // The next bar reaches L-9 again: its fill 0 is already there, and the broker books that one, not a second.
      expect(await broker.observeBar(bar('AAPL', 2, 90))).toEqual([committed]);
      expect((await broker.orderByClientId('L-9'))?.fills).toEqual([committed]);
      expect(logged).toContainEqual(expect.objectContaining({ event: 'BROKER_FILL_ALREADY_RECORDED', clientOrderId: 'L-9' }));
      await broker.close();
      expect((await readBack()).fills).toEqual([committed]);
      expect(await positionsAfterReopen()).toEqual({ AAPL: '1' });
    });

    it('writes again, at open, the copy of a fill an order line carries when the copy is missing, and counts the copy that failed', async () => {
      const fill: Fill = { clientOrderId: 'C-1', symbol: 'AAPL', side: 'buy', qty: '2', price: '100', commission: '0.02', filledAt: T0 };
      const logged: Record<string, unknown>[] = [];
      const first = await openBroker({ log: (entry) => logged.push(entry) });
      first.observeBar(bar('AAPL', 0, 100));
      first.faults.failLedgerWrites('EIO', { file: 'fills' });
      expect(await first.submit(market('C-1', 'buy', '2'))).toEqual({ status: 'accepted', fills: [fill] });
      await expect.poll(() => first.fillCopies()).toEqual({ failed: 1, pending: 1 });
      expect(logged).toContainEqual(expect.objectContaining({ event: 'BROKER_FILL_COPY_FAILED', clientOrderId: 'C-1', pending: 1 }));
      await first.close();
      expect((await readBack()).fills).toEqual([]);

      const reopened = await openBroker();
      expect(reopened.openReport).toMatchObject({ fills: 0, fillsRecopied: 1 });
      expect((await reopened.orderByClientId('C-1'))?.fills).toEqual([fill]);
      expect(await reopened.positions()).toEqual({ AAPL: '2' });
      expect((await readBack()).fills).toEqual([fill]);
    });

    it('refuses to open a ledger whose fill belongs to no order, naming where that fill is', async () => {
      const store = fixture.open();
      await store.open();
      const orphan: Fill = { clientOrderId: 'O-1', symbol: 'AAPL', side: 'buy', qty: '1', price: '100', commission: '0', filledAt: T0 };
      await store.appendFill(orphan, 0);
      await store.close();
      const ledger = fixture.open();
      const refusal = await PaperBroker.open({ ledger, clock }).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(BrokerLedgerCorruptError);
      expect(refusal).toMatchObject({ reason: 'INCONSISTENT', line: 1, path: ledger.locate('fills') });
    });
  });
}
