import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clock, MINUTE, T0, usePaperBrokers } from '../support/paperBrokerFixture.js';
import { formatMoney, formatPrice, formatQty, parseMoney, parsePrice, parseQty } from '../../src/common/money.js';
import type { Fill } from '../../src/common/order.js';
import { BrokerError, type BrokerBar, type BrokerOrder } from '../../src/broker/broker.js';
import { InvalidPaperBrokerOptionsError, PaperBroker } from '../../src/broker/paperBroker.js';
import { commissionFor, parseBps, splitQty, takerPrice } from '../../src/broker/paperExecution.js';
import { countSyncs } from '../../src/testing/syncCounter.js';
import { withChecksum } from '../../src/stateDir/lineChecksum.js';

const { dir: ledgerDir, openBroker } = usePaperBrokers();
const RECEIVED_AT = clock.wallMs();

function bar(symbol: string, minute: number, prices: { open?: number; high?: number; low?: number; close: number }): BrokerBar {
  const { close, open = close, high = Math.max(open, close), low = Math.min(open, close) } = prices;
  return { symbol, ts: T0 + minute * MINUTE, open, high, low, close };
}

function market(clientOrderId: string, side: 'buy' | 'sell', qty: string, symbol = 'AAPL'): BrokerOrder {
  return { clientOrderId, symbol, side, qty, type: 'market' };
}

function limit(clientOrderId: string, side: 'buy' | 'sell', qty: string, limitPrice: string, symbol = 'AAPL'): BrokerOrder {
  return { clientOrderId, symbol, side, qty, type: 'limit', limitPrice };
}

/** A ledger file's records, without the checksum each line ends with. */
async function ledgerLines(file: string): Promise<unknown[]> {
  const text = await readFile(join(ledgerDir(), file), 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const { crc32: _checksum, ...record } = JSON.parse(line) as Record<string, unknown>;
      return record;
    });
}

/** A fake sleep that records each wait and holds it until the test releases it. */
function heldSleep(): { sleep: (ms: number) => Promise<void>; waits: number[]; releaseAll: () => void } {
  const waits: number[] = [];
  const releases: Array<() => void> = [];
  return {
    waits,
    sleep: (ms) => {
      waits.push(ms);
      return new Promise<void>((resolve) => releases.push(resolve));
    },
    releaseAll: () => {
      for (const release of releases.splice(0)) release();
    },
  };
}

describe('paper execution arithmetic', () => {
  it('moves the price against the taker by the slippage, to the 0.0001 tick', () => {
    expect(formatPrice(takerPrice(parsePrice('100'), 'buy', parseBps(5)))).toBe('100.05');
    expect(formatPrice(takerPrice(parsePrice('100'), 'sell', parseBps(5)))).toBe('99.95');
    // 187.43 × 1.0003 = 187.486229 → 187.4862
    expect(formatPrice(takerPrice(parsePrice('187.43'), 'buy', parseBps(3)))).toBe('187.4862');
    // fractional basis points: 50 × (1 − 0.000025) = 49.99875 → half-even → 49.9988
    expect(formatPrice(takerPrice(parsePrice('50'), 'sell', parseBps(0.25)))).toBe('49.9988');
  });

  it('rounds half to even on the tick and never prices below one tick', () => {
    expect(formatPrice(takerPrice(parsePrice('1.00005'), 'buy', 0n))).toBe('1');
    expect(formatPrice(takerPrice(parsePrice('1.00015'), 'buy', 0n))).toBe('1.0002');
    expect(formatPrice(takerPrice(parsePrice('0.00001'), 'sell', parseBps(10)))).toBe('0.0001');
  });

  it('charges qty × rate, but never less than the minimum, exactly', () => {
    expect(formatMoney(commissionFor(parseQty('10'), parsePrice('0.005'), parseMoney('1')))).toBe('1.00');
    expect(formatMoney(commissionFor(parseQty('1000'), parsePrice('0.005'), parseMoney('1')))).toBe('5.00');
    expect(commissionFor(parseQty('3'), parsePrice('0.0035'), 0n)).toBe(parseMoney('0.0105'));
  });

  it.each([
    ['10', 3, ['4', '3', '3']],
    ['100', 3, ['34', '33', '33']],
    ['0.5', 2, ['0.3', '0.2']],
    ['2', 3, ['1', '1']],
    ['7', 1, ['7']],
    ['1.25', 2, ['0.63', '0.62']],
  ])('splits %s into at most %i parts in its own unit', (qty, parts, expected) => {
    const split = splitQty(qty, parts);
    expect(split.map(formatQty)).toEqual(expected);
    expect(split.reduce((sum, part) => sum + part, 0n)).toBe(parseQty(qty));
  });
});

describe('the paper broker', () => {
  describe('market orders', () => {
    it('fills at submit at the last close plus slippage, charging the commission, to the cent', async () => {
      const broker = await openBroker({ slippageBps: 5, commissionPerShare: '0.005', minCommission: '1' });
      broker.observeBar(bar('AAPL', 0, { close: 187.43 }));
      const buy = await broker.submit(market('B-1', 'buy', '1000'));
      broker.observeBar(bar('AAPL', 1, { close: 188 }));
      const sell = await broker.submit(market('S-1', 'sell', '10'));
      expect(buy).toEqual({
        status: 'accepted',
        // 187.43 × 1.0005 = 187.523715 → 187.5237; 1000 × 0.005 = 5
        fills: [{ clientOrderId: 'B-1', symbol: 'AAPL', side: 'buy', qty: '1000', price: '187.5237', commission: '5', filledAt: T0 }],
      });
      expect(sell).toEqual({
        status: 'accepted',
        // 188 × 0.9995 = 187.906; 10 × 0.005 = 0.05 < 1
        fills: [{ clientOrderId: 'S-1', symbol: 'AAPL', side: 'sell', qty: '10', price: '187.906', commission: '1', filledAt: T0 + MINUTE }],
      });
      expect(await broker.positions()).toEqual({ AAPL: '990' });
    });

    it('writes one orders.jsonl line per order (a market order\'s carrying its fill) and the fill in fills.jsonl, in the DESIGN.md format (plus the pricing bar), each with its checksum', async () => {
      const broker = await openBroker({ commissionPerShare: '0.01' });
      broker.observeBar(bar('MSFT', 0, { close: 410.25 }));
      await broker.submit(market('M-1', 'buy', '2.5', 'MSFT'));
      await broker.submit(limit('M-2', 'sell', '1', '420', 'MSFT'));
      await broker.close();
      expect(await readFile(join(ledgerDir(), 'orders.jsonl'), 'utf8')).toBe(
        `${withChecksum(`{"clientOrderId":"M-1","symbol":"MSFT","side":"buy","qty":"2.5","type":"market","receivedAt":${RECEIVED_AT},"pricedAt":${T0},"pricedClose":"410.25","fill":{"qty":"2.5","price":"410.25","commission":"0.025"}}`)}\n` +
          `${withChecksum(`{"clientOrderId":"M-2","symbol":"MSFT","side":"sell","qty":"1","type":"limit","receivedAt":${RECEIVED_AT},"limitPrice":"420"}`)}\n`,
      );
      expect(await readFile(join(ledgerDir(), 'fills.jsonl'), 'utf8')).toBe(
        `${withChecksum(`{"clientOrderId":"M-1","symbol":"MSFT","side":"buy","qty":"2.5","price":"410.25","commission":"0.025","filledAt":${T0}}`)}\n`,
      );
    });

    it('makes a market order and its fill durable with one fdatasync, and orders submitted in one tick share it', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('MSFT', 0, { close: 410.25 }));
      const counter = await countSyncs();
      try {
        await broker.submit(market('M-1', 'buy', '2', 'MSFT'));
        expect(counter.syncs()).toBe(1);
        const three = await Promise.all(['M-2', 'M-3', 'M-4'].map((id) => broker.submit(market(id, 'sell', '1', 'MSFT'))));
        expect(three.map((result) => result.status)).toEqual(['accepted', 'accepted', 'accepted']);
        expect(counter.syncs()).toBe(2);
        // The fills.jsonl copies, written behind, are synced once at close.
        await broker.close();
        expect(counter.syncs()).toBe(3);
      } finally {
        counter.restore();
      }
      expect(await ledgerLines('fills.jsonl')).toHaveLength(4);
    });

    it('writes on reopen the fills.jsonl line of a fill its order line carries, when a crash or a failed write left it out', async () => {
      const fill = { clientOrderId: 'M-1', symbol: 'MSFT', side: 'buy', qty: '2', price: '410.25', commission: '0', filledAt: T0 };
      const first = await openBroker();
      first.observeBar(bar('MSFT', 0, { close: 410.25 }));
      first.faults.failLedgerWrites('EIO', { file: 'fills' });
      expect(await first.submit(market('M-1', 'buy', '2', 'MSFT'))).toEqual({ status: 'accepted', fills: [fill] });
      await first.close();
      expect(await ledgerLines('fills.jsonl')).toEqual([]);
      const reopened = await openBroker();
      expect((await reopened.orderByClientId('M-1'))?.fills).toEqual([fill]);
      expect(await reopened.positions()).toEqual({ MSFT: '2' });
      expect(await ledgerLines('fills.jsonl')).toEqual([fill]);
    });

    it('completes, on reopen, a market fill of a ledger written before order lines carried their fill, at the price the order was given', async () => {
      await mkdir(ledgerDir(), { recursive: true });
      await writeFile(
        join(ledgerDir(), 'orders.jsonl'),
        `${withChecksum(`{"clientOrderId":"M-1","symbol":"MSFT","side":"buy","qty":"2","type":"market","receivedAt":${RECEIVED_AT},"pricedAt":${T0},"pricedClose":"410.25"}`)}\n`,
      );
      const reopened = await openBroker({ commissionPerShare: '0.01' });
      const fill = { clientOrderId: 'M-1', symbol: 'MSFT', side: 'buy', qty: '2', price: '410.25', commission: '0.02', filledAt: T0 };
      expect((await reopened.orderByClientId('M-1'))?.fills).toEqual([fill]);
      expect(await reopened.positions()).toEqual({ MSFT: '2' });
      expect(await ledgerLines('fills.jsonl')).toEqual([fill]);
    });

    it('rejects a market order for a symbol it has seen no bar of, and records nothing', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('MSFT', 0, { close: 410 }));
      const result = await broker.submit(market('A-1', 'buy', '1', 'AAPL'));
      expect(result).toMatchObject({ status: 'rejected', reason: 'NO_MARKET_PRICE' });
      expect(await ledgerLines('orders.jsonl')).toEqual([]);
      expect(await broker.orderByClientId('A-1')).toBeUndefined();
    });

    it('rejects an order that is not valid as INVALID_ORDER', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      const zeroQty = await broker.submit(market('Z-1', 'buy', '0'));
      const badId = await broker.submit(market('has space', 'buy', '1'));
      expect(zeroQty).toMatchObject({ status: 'rejected', reason: 'INVALID_ORDER' });
      expect(badId).toMatchObject({ status: 'rejected', reason: 'INVALID_ORDER' });
      expect(await ledgerLines('orders.jsonl')).toEqual([]);
    });

    it('keeps signed positions and drops a symbol once it is flat', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      broker.observeBar(bar('MSFT', 0, { close: 400 }));
      await broker.submit(market('A-1', 'buy', '5'));
      await broker.submit(market('A-2', 'sell', '5'));
      await broker.submit(market('M-1', 'sell', '3', 'MSFT'));
      expect(await broker.positions()).toEqual({ MSFT: '-3' });
    });
  });

  describe('partial fills', () => {
    it('fills the first part at submit and one part per later bar at its open, telling onFill listeners', async () => {
      const broker = await openBroker({ partialFills: { parts: 3 }, slippageBps: 10 });
      const heard: Fill[] = [];
      broker.onFill((fill) => heard.push(fill));
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      const submitted = await broker.submit(market('P-1', 'buy', '10'));
      const second = await broker.observeBar(bar('AAPL', 1, { open: 101, close: 102 }));
      const otherSymbol = broker.observeBar(bar('MSFT', 2, { close: 400 }));
      const third = await broker.observeBar(bar('AAPL', 2, { open: 103, close: 103 }));
      const afterDone = broker.observeBar(bar('AAPL', 3, { close: 104 }));

      expect(submitted).toMatchObject({ status: 'accepted', fills: [{ qty: '4', price: '100.1', filledAt: T0 }] });
      expect(second).toEqual([expect.objectContaining({ qty: '3', price: '101.101', filledAt: T0 + MINUTE })]);
      expect(third).toEqual([expect.objectContaining({ qty: '3', price: '103.103', filledAt: T0 + 2 * MINUTE })]);
      expect(otherSymbol).toBeUndefined();
      expect(afterDone).toBeUndefined();
      expect(heard).toEqual([...(second ?? []), ...(third ?? [])]);
      expect(await broker.orderByClientId('P-1')).toMatchObject({ status: 'filled', filledQty: '10' });
      expect(await ledgerLines('fills.jsonl')).toHaveLength(3);
    });

    it('reports a partly filled order as open until its last part', async () => {
      const broker = await openBroker({ partialFills: { parts: 2 } });
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      await broker.submit(market('P-1', 'sell', '3'));
      expect(await broker.openOrders()).toEqual([
        expect.objectContaining({ status: 'partially_filled', filledQty: '2', receivedAt: RECEIVED_AT }),
      ]);
      expect(await broker.positions()).toEqual({ AAPL: '-2' });
    });

    it('does not fill a resting order again on a bar it already filled on (a replayed bar)', async () => {
      const broker = await openBroker({ partialFills: { parts: 2 } });
      broker.observeBar(bar('AAPL', 5, { close: 100 }));
      await broker.submit(market('P-1', 'buy', '2'));
      const sameBar = broker.observeBar(bar('AAPL', 5, { close: 100 }));
      const olderBar = broker.observeBar(bar('AAPL', 4, { close: 100 }));
      expect(sameBar).toBeUndefined();
      expect(olderBar).toBeUndefined();
      expect(await broker.positions()).toEqual({ AAPL: '1' });
    });

    it('stops delivering fills to a listener once it unsubscribes', async () => {
      const broker = await openBroker({ partialFills: { parts: 3 } });
      const heard: Fill[] = [];
      const unsubscribe = broker.onFill((fill) => heard.push(fill));
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      await broker.submit(market('P-1', 'buy', '3'));
      await broker.observeBar(bar('AAPL', 1, { close: 100 }));
      unsubscribe();
      await broker.observeBar(bar('AAPL', 2, { close: 100 }));
      expect(heard).toHaveLength(1);
    });

    it('delivers every fill to every listener even when one throws, then rejects with that error', async () => {
      const broker = await openBroker({ partialFills: { parts: 2 } });
      const heard: Fill[] = [];
      broker.onFill(() => {
        throw new Error('listener bug');
      });
      broker.onFill((fill) => heard.push(fill));
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      await broker.submit(market('P-1', 'buy', '2'));
      await expect(broker.observeBar(bar('AAPL', 1, { close: 100 }))).rejects.toThrow('listener bug');
      expect(heard).toHaveLength(1);
      expect(await broker.positions()).toEqual({ AAPL: '2' });
    });
  });

  describe('limit orders', () => {
    it('rests, then fills at the limit price on a later bar that trades through it', async () => {
      const broker = await openBroker({ slippageBps: 50 });
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      const submitted = await broker.submit(limit('L-1', 'buy', '5', '99.5'));
      const touches = broker.observeBar(bar('AAPL', 1, { open: 100, low: 99.5, close: 100 }));
      const through = await broker.observeBar(bar('AAPL', 2, { open: 100, low: 99.4, close: 99.8 }));
      expect(submitted).toEqual({ status: 'accepted', fills: [] });
      expect(touches).toBeUndefined();
      expect(through).toEqual([{ clientOrderId: 'L-1', symbol: 'AAPL', side: 'buy', qty: '5', price: '99.5', commission: '0', filledAt: T0 + 2 * MINUTE }]);
    });

    it('fills a sell limit when a bar trades above it', async () => {
      const broker = await openBroker();
      await broker.submit(limit('L-1', 'sell', '1', '101'));
      expect(broker.observeBar(bar('AAPL', 1, { open: 100, high: 101, close: 100 }))).toBeUndefined();
      expect(await broker.observeBar(bar('AAPL', 2, { open: 100, high: 101.01, close: 100 }))).toMatchObject([{ price: '101' }]);
    });

    it('needs no market price to accept a limit order, and does not fill it on the bar it arrived on', async () => {
      const broker = await openBroker();
      expect(await broker.submit(limit('L-1', 'buy', '1', '200'))).toEqual({ status: 'accepted', fills: [] });
      expect(await broker.observeBar(bar('AAPL', 0, { close: 100 }))).toMatchObject([{ clientOrderId: 'L-1', price: '200' }]);
      await broker.submit(limit('L-2', 'buy', '1', '200'));
      expect(broker.observeBar(bar('AAPL', 0, { close: 100 }))).toBeUndefined();
      expect(await broker.observeBar(bar('AAPL', 1, { close: 100 }))).toMatchObject([{ clientOrderId: 'L-2' }]);
    });
  });

  describe('cancel', () => {
    it('cancels a working order, which then never fills, and records the cancel', async () => {
      const broker = await openBroker();
      await broker.submit(limit('L-1', 'buy', '1', '99'));
      expect(await broker.cancel('L-1')).toBe('cancelled');
      expect(broker.observeBar(bar('AAPL', 1, { open: 100, low: 90, close: 95 }))).toBeUndefined();
      expect(await broker.orderByClientId('L-1')).toMatchObject({ status: 'cancelled', filledQty: '0' });
      expect(await broker.openOrders()).toEqual([]);
      expect(await ledgerLines('cancels.jsonl')).toEqual([{ clientOrderId: 'L-1', cancelledAt: RECEIVED_AT }]);
    });

    it('answers already_done for a filled or cancelled order and not_found for an unknown id', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      await broker.submit(market('M-1', 'buy', '1'));
      await broker.submit(limit('L-1', 'buy', '1', '99'));
      await broker.cancel('L-1');
      expect(await broker.cancel('M-1')).toBe('already_done');
      expect(await broker.cancel('L-1')).toBe('already_done');
      expect(await broker.cancel('NOPE-1')).toBe('not_found');
      expect(await ledgerLines('cancels.jsonl')).toHaveLength(1);
    });

    it('waits for a fill being written, then answers for what is left', async () => {
      const broker = await openBroker({ partialFills: { parts: 2 } });
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      await broker.submit(market('P-1', 'buy', '2'));
      const lastPart = broker.observeBar(bar('AAPL', 1, { close: 100 }));
      const cancel = broker.cancel('P-1');
      expect(await lastPart).toHaveLength(1);
      expect(await cancel).toBe('already_done');
    });
  });

  describe('duplicate client order ids', () => {
    it('rejects a second order with a known id by default, and records only the first', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      await broker.submit(market('D-1', 'buy', '1'));
      const again = await broker.submit(market('D-1', 'buy', '1'));
      expect(again).toMatchObject({ status: 'rejected', reason: 'DUPLICATE_CLIENT_ORDER_ID' });
      expect(await ledgerLines('orders.jsonl')).toHaveLength(1);
      expect(await broker.positions()).toEqual({ AAPL: '1' });
    });

    it('rejects the second of two concurrent submits with the same id', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      const results = await Promise.all([broker.submit(market('D-1', 'buy', '1')), broker.submit(market('D-1', 'buy', '1'))]);
      expect(results.map((result) => result.status)).toEqual(['accepted', 'rejected']);
      expect(await ledgerLines('orders.jsonl')).toHaveLength(1);
    });

    it('accepts it again as a new order with rejectDuplicateIds off (so only the journal stops duplicates)', async () => {
      const broker = await openBroker({ rejectDuplicateIds: false });
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      await broker.submit(market('D-1', 'buy', '1'));
      const again = await broker.submit(market('D-1', 'buy', '1'));
      expect(again).toMatchObject({ status: 'accepted', fills: [{ clientOrderId: 'D-1', qty: '1' }] });
      expect(await ledgerLines('orders.jsonl')).toHaveLength(2);
      expect(await broker.positions()).toEqual({ AAPL: '2' });
      expect(await broker.knownClientOrderIds()).toEqual(['D-1']);
    });
  });

  describe('fault injection', () => {
    it('waits out the latency through the injected sleep before serving a call', async () => {
      const held = heldSleep();
      const broker = await openBroker({ latencyMs: 25, sleep: held.sleep });
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      let settled = false;
      const submit = broker.submit(market('A-1', 'buy', '1')).finally(() => (settled = true));
      await Promise.resolve();
      expect(held.waits).toEqual([25]);
      expect(settled).toBe(false);
      held.releaseAll();
      expect(await submit).toMatchObject({ status: 'accepted' });
      broker.faults.latencyMs = 0;
      expect(await broker.positions()).toEqual({ AAPL: '1' });
      expect(held.waits).toEqual([25]);
    });

    it('rejects the next n submits with the injected reason, then accepts again', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      broker.faults.rejectNext(2, 'INSUFFICIENT_FUNDS');
      const first = await broker.submit(market('A-1', 'buy', '1'));
      const second = await broker.submit(market('A-2', 'buy', '1'));
      const third = await broker.submit(market('A-3', 'buy', '1'));
      expect([first, second].map((result) => result.status === 'rejected' && result.reason)).toEqual(['INSUFFICIENT_FUNDS', 'INSUFFICIENT_FUNDS']);
      expect(third.status).toBe('accepted');
      expect(await broker.knownClientOrderIds()).toEqual(['A-3']);
    });

    it('rejects with INJECTED_REJECTION by default', async () => {
      const broker = await openBroker();
      broker.faults.rejectNext();
      expect(await broker.submit(limit('L-1', 'buy', '1', '1'))).toMatchObject({ status: 'rejected', reason: 'INJECTED_REJECTION' });
    });

    it('on a lost ack places and fills the order, records it, then throws BROKER_TIMEOUT', async () => {
      const broker = await openBroker();
      const heard: Fill[] = [];
      broker.onFill((fill) => heard.push(fill));
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      broker.faults.loseNextAck();
      const error = await broker.submit(market('A-1', 'buy', '3')).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BrokerError);
      expect(error).toMatchObject({ code: 'BROKER_TIMEOUT', retryable: true, orderMayBePlaced: true, clientOrderId: 'A-1' });
      expect(await broker.orderByClientId('A-1')).toMatchObject({ status: 'filled', filledQty: '3' });
      expect(await ledgerLines('orders.jsonl')).toHaveLength(1);
      expect(await ledgerLines('fills.jsonl')).toHaveLength(1);
      expect(heard).toEqual([]);
      expect(await broker.submit(market('A-2', 'buy', '1'))).toMatchObject({ status: 'accepted' });
    });

    it('while disconnected fails every call with BROKER_DISCONNECTED and places nothing', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      await broker.submit(market('A-1', 'buy', '1'));
      broker.faults.disconnect();
      const calls = [
        broker.submit(market('A-2', 'buy', '1')),
        broker.cancel('A-1'),
        broker.openOrders(),
        broker.positions(),
        broker.orderByClientId('A-1'),
        broker.knownClientOrderIds(),
      ];
      const errors = await Promise.all(calls.map((call) => (call as Promise<unknown>).catch((caught: unknown) => caught)));
      for (const error of errors) expect(error).toMatchObject({ code: 'BROKER_DISCONNECTED', retryable: true, orderMayBePlaced: false });
      expect(await ledgerLines('orders.jsonl')).toHaveLength(1);
      broker.faults.reconnect();
      expect(await broker.submit(market('A-2', 'buy', '1'))).toMatchObject({ status: 'accepted' });
    });

    it('keeps the market moving while disconnected: bars still fill resting orders', async () => {
      const broker = await openBroker();
      await broker.submit(limit('L-1', 'buy', '1', '99'));
      broker.faults.disconnect();
      const fills = await broker.observeBar(bar('AAPL', 1, { open: 100, low: 98, close: 99 }));
      expect(fills).toHaveLength(1);
    });

    it('when the ledger cannot be written throws BROKER_LEDGER_FAILED and places nothing; the id stays free', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      broker.faults.failLedgerWrites('ENOSPC');
      const error = await broker.submit(market('A-1', 'buy', '1')).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'BROKER_LEDGER_FAILED', orderMayBePlaced: false, clientOrderId: 'A-1' });
      expect(String((error as Error).cause)).toContain('ENOSPC');
      expect(await broker.orderByClientId('A-1')).toBeUndefined();
      expect(await broker.positions()).toEqual({});
      broker.faults.healLedger();
      expect(await broker.submit(market('A-1', 'buy', '1'))).toMatchObject({ status: 'accepted' });
      expect(await ledgerLines('orders.jsonl')).toHaveLength(1);
    });

    it('when only the fills.jsonl line cannot be written, still fills the market order at submit (its order line carries the fill) and writes the line with the next fill', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      broker.faults.failLedgerWrites('EIO', { times: 1, file: 'fills' });
      const submitted = await broker.submit(market('A-1', 'buy', '2'));
      expect(submitted).toEqual({ status: 'accepted', fills: [expect.objectContaining({ clientOrderId: 'A-1', qty: '2', price: '100' })] });
      expect(await broker.openOrders()).toEqual([]);
      expect(await broker.positions()).toEqual({ AAPL: '2' });
      await broker.submit(market('A-2', 'sell', '1'));
      await broker.close();
      expect((await ledgerLines('fills.jsonl')).map((fill) => (fill as Fill).clientOrderId)).toEqual(['A-1', 'A-2']);
    });

    it('when a later fill cannot be written, rejects observeBar and keeps the order resting for the next bar', async () => {
      const broker = await openBroker({ partialFills: { parts: 2 } });
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      await broker.submit(market('P-1', 'buy', '2'));
      broker.faults.failLedgerWrites('EIO', { times: 1 });
      await expect(broker.observeBar(bar('AAPL', 1, { close: 100 }))).rejects.toMatchObject({ code: 'BROKER_LEDGER_FAILED' });
      expect(await broker.positions()).toEqual({ AAPL: '1' });
      expect(await broker.observeBar(bar('AAPL', 2, { close: 100 }))).toHaveLength(1);
      expect(await ledgerLines('fills.jsonl')).toHaveLength(2);
    });

    it('fails a cancel it cannot record with BROKER_LEDGER_FAILED and leaves the order working', async () => {
      const broker = await openBroker();
      await broker.submit(limit('L-1', 'buy', '1', '99'));
      broker.faults.failLedgerWrites('EIO', { file: 'cancels' });
      await expect(broker.cancel('L-1')).rejects.toMatchObject({ code: 'BROKER_LEDGER_FAILED' });
      expect(await broker.openOrders()).toHaveLength(1);
    });
  });

  describe('open and close', () => {
    it('refuses options it cannot use with a typed error', async () => {
      await expect(PaperBroker.open({ dir: ledgerDir(), clock, slippageBps: -1 })).rejects.toBeInstanceOf(InvalidPaperBrokerOptionsError);
      await expect(PaperBroker.open({ dir: ledgerDir(), clock, commissionPerShare: '1e-3' })).rejects.toBeInstanceOf(InvalidPaperBrokerOptionsError);
    });

    it('lets a submit already being served finish before closing, and returns the same promise twice', async () => {
      const broker = await openBroker();
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      let settled = false;
      const submit = broker.submit(market('A-1', 'buy', '1')).finally(() => (settled = true));
      const closing = broker.close();
      expect(broker.close()).toBe(closing);
      await closing;
      expect(settled).toBe(true);
      expect(await submit).toMatchObject({ status: 'accepted' });
      expect(await ledgerLines('fills.jsonl')).toHaveLength(1);
    });

    it('refuses calls once closing, even one still waiting out its latency, and ignores bars', async () => {
      const held = heldSleep();
      const broker = await openBroker({ latencyMs: 1, sleep: held.sleep });
      broker.observeBar(bar('AAPL', 0, { close: 100 }));
      const submit = broker.submit(market('A-1', 'buy', '1'));
      const closing = broker.close();
      held.releaseAll();
      await closing;
      await expect(submit).rejects.toMatchObject({ code: 'BROKER_CLOSED', retryable: false });
      await expect(broker.positions()).rejects.toMatchObject({ code: 'BROKER_CLOSED' });
      expect(broker.observeBar(bar('AAPL', 1, { close: 100 }))).toBeUndefined();
      expect(await ledgerLines('orders.jsonl')).toEqual([]);
    });
  });
});
