import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { clock, MINUTE, T0, usePaperBrokers } from '../support/paperBrokerFixture.js';
import { formatQty, parseQty } from '../../src/common/money.js';
import { FillSchema, sideSign } from '../../src/common/order.js';
import { BrokerError, type BrokerBar, type BrokerOrder } from '../../src/broker/broker.js';
import { PaperBroker } from '../../src/broker/paperBroker.js';
import { BrokerLedgerCorruptError } from '../../src/broker/paperBrokerLedger.js';
import { withChecksum } from '../../src/stateDir/lineChecksum.js';

const { dir: ledgerDir, openBroker } = usePaperBrokers();
const submitter = join(import.meta.dirname, '../fixtures/paperBrokerSubmitter.ts');

function bar(minute: number, close: number, symbol = 'AAPL'): BrokerBar {
  return { symbol, ts: T0 + minute * MINUTE, open: close, high: close, low: close, close };
}

function market(clientOrderId: string, side: 'buy' | 'sell', qty: string, symbol = 'AAPL'): BrokerOrder {
  return { clientOrderId, symbol, side, qty, type: 'market' };
}

function limit(clientOrderId: string, side: 'buy' | 'sell', qty: string, limitPrice: string): BrokerOrder {
  return { clientOrderId, symbol: 'AAPL', side, qty, type: 'limit', limitPrice };
}

/** Everything a caller can ask the broker, for before/after comparisons. */
async function view(broker: PaperBroker): Promise<unknown> {
  const ids = await broker.knownClientOrderIds();
  return {
    ids,
    positions: await broker.positions(),
    openOrders: await broker.openOrders(),
    orders: await Promise.all(ids.map((id) => broker.orderByClientId(id))),
  };
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(join(ledgerDir(), file), 'utf8')).split('\n').filter((line) => line !== '');
}

describe('the paper broker ledger across a reopen', () => {
  it('rebuilds the same orders, fills, open orders and positions', async () => {
    const options = { partialFills: { parts: 3 }, slippageBps: 2, commissionPerShare: '0.005', minCommission: '1' };
    const before = await openBroker(options);
    before.observeBar(bar(0, 100));
    before.observeBar(bar(0, 400, 'MSFT'));
    await before.submit(market('A-1', 'buy', '9'));
    await before.observeBar(bar(1, 101));
    await before.submit(market('M-1', 'sell', '1', 'MSFT'));
    await before.submit(limit('L-1', 'buy', '5', '90'));
    await before.submit(limit('L-2', 'sell', '5', '150'));
    await before.cancel('L-2');
    const expected = await view(before);
    await before.close();

    const after = await openBroker(options);
    expect(await view(after)).toEqual(expected);
    expect(after.openReport).toEqual({ tornLinesRemoved: 0, orders: 4, fills: 3, cancels: 1, filesUpgraded: 0, fillsRecopied: 0 });
    expect(expected).toMatchObject({ positions: { AAPL: '6', MSFT: '-1' } });
  });

  it('goes on filling a partly filled order with its remaining parts, never on a bar it already filled on', async () => {
    const before = await openBroker({ partialFills: { parts: 3 } });
    before.observeBar(bar(0, 100));
    await before.submit(market('P-1', 'buy', '3'));
    await before.close();

    const after = await openBroker({ partialFills: { parts: 3 } });
    expect(after.observeBar(bar(0, 100))).toBeUndefined();
    expect(await after.observeBar(bar(1, 102))).toEqual([expect.objectContaining({ qty: '1', price: '102', filledAt: T0 + MINUTE })]);
    expect(await after.observeBar(bar(2, 103))).toEqual([expect.objectContaining({ qty: '1', price: '103' })]);
    expect(await after.orderByClientId('P-1')).toMatchObject({ status: 'filled', filledQty: '3' });
  });

  it('keeps rejecting an id it received before the reopen', async () => {
    const before = await openBroker();
    before.observeBar(bar(0, 100));
    await before.submit(market('A-1', 'buy', '1'));
    await before.close();

    const after = await openBroker();
    after.observeBar(bar(1, 100));
    expect(await after.submit(market('A-1', 'buy', '1'))).toMatchObject({ status: 'rejected', reason: 'DUPLICATE_CLIENT_ORDER_ID' });
  });

  // A fill at submit is carried by its own order line, so it goes back to that order; later
  // fills.jsonl lines cannot say which same-id order they were for (first in, first out).
  it('rebuilds both same-id orders when duplicates were accepted, with exact positions, each fill at submit back on its own order', async () => {
    const before = await openBroker({ rejectDuplicateIds: false, partialFills: { parts: 2 } });
    before.observeBar(bar(0, 100));
    await before.submit(market('D-1', 'buy', '2'));
    await before.submit(market('D-1', 'buy', '4'));
    expect((await before.openOrders()).map((state) => [state.order.qty, state.filledQty])).toEqual([
      ['2', '1'],
      ['4', '2'],
    ]);
    await before.close();

    const after = await openBroker({ rejectDuplicateIds: false, partialFills: { parts: 2 } });
    expect(after.openReport).toMatchObject({ orders: 2, fills: 2 });
    expect(await after.positions()).toEqual({ AAPL: '3' });
    expect((await after.openOrders()).map((state) => [state.order.qty, state.filledQty])).toEqual([
      ['2', '1'],
      ['4', '2'],
    ]);
    expect(await after.orderByClientId('D-1')).toMatchObject({ order: { qty: '4' }, filledQty: '2' });
  });

  it('starts an empty ledger in a directory that does not exist yet', async () => {
    const broker = await openBroker();
    expect(broker.openReport).toEqual({ tornLinesRemoved: 0, orders: 0, fills: 0, cancels: 0, filesUpgraded: 0, fillsRecopied: 0 });
    expect(await view(broker)).toEqual({ ids: [], positions: {}, openOrders: [], orders: [] });
  });
});

describe('a damaged paper broker ledger', () => {
  async function writeLedger(): Promise<{ orders: string; fills: string }> {
    const broker = await openBroker();
    broker.observeBar(bar(0, 100));
    await broker.submit(market('A-1', 'buy', '2'));
    await broker.submit(market('A-2', 'sell', '1'));
    await broker.close();
    return { orders: await readFile(join(ledgerDir(), 'orders.jsonl'), 'utf8'), fills: await readFile(join(ledgerDir(), 'fills.jsonl'), 'utf8') };
  }

  it('cuts off torn last lines (SIGKILL mid-append), reports them, and appends cleanly after', async () => {
    const intact = await writeLedger();
    await appendFile(join(ledgerDir(), 'orders.jsonl'), '{"clientOrderId":"A-3","sym');
    await appendFile(join(ledgerDir(), 'fills.jsonl'), '{"clientOrderId":"A-2","symbol":"AAPL","side":"sell","qty":"1","pr');

    const broker = await openBroker();
    expect(broker.openReport).toEqual({ tornLinesRemoved: 2, orders: 2, fills: 2, cancels: 0, filesUpgraded: 0, fillsRecopied: 0 });
    expect(await readFile(join(ledgerDir(), 'orders.jsonl'), 'utf8')).toBe(intact.orders);
    expect(await readFile(join(ledgerDir(), 'fills.jsonl'), 'utf8')).toBe(intact.fills);
    expect(await broker.positions()).toEqual({ AAPL: '1' });
    broker.observeBar(bar(1, 100));
    await broker.submit(market('A-3', 'buy', '1'));
    await broker.close();

    const reopened = await openBroker();
    expect(reopened.openReport).toEqual({ tornLinesRemoved: 0, orders: 3, fills: 3, cancels: 0, filesUpgraded: 0, fillsRecopied: 0 });
    expect(await reopened.positions()).toEqual({ AAPL: '2' });
  });

  it('refuses to open with a typed error naming the file and line of a bad line in the middle, and leaves it as it was', async () => {
    const intact = await writeLedger();
    const [first = '', second = ''] = intact.orders.split('\n');
    const damaged = `${first}\nnot json\n${second}\n`;
    await writeFile(join(ledgerDir(), 'orders.jsonl'), damaged);

    const error = await PaperBroker.open({ dir: ledgerDir(), clock }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BrokerLedgerCorruptError);
    expect(error).toMatchObject({ code: 'BROKER_LEDGER_CORRUPT', reason: 'CHECKSUM_MISMATCH', path: join(ledgerDir(), 'orders.jsonl'), line: 2, retryable: false });
    expect(await readFile(join(ledgerDir(), 'orders.jsonl'), 'utf8')).toBe(damaged);
  });

  /** A ledger line as the broker writes it: the record, then its checksum. */
  const checked = (json: string): string => `${withChecksum(json)}\n`;
  const ORDER_JSON = '{"clientOrderId":"A-1","symbol":"AAPL","side":"buy","qty":"2","type":"market","receivedAt":0}';
  const ORDER = checked(ORDER_JSON);
  const fillLine = (fields: Record<string, unknown>): string =>
    checked(JSON.stringify({ clientOrderId: 'A-1', symbol: 'AAPL', side: 'buy', qty: '1', price: '100', commission: '0', filledAt: 0, ...fields }));

  it.each([
    ['a fill of an order it never received', { 'fills.jsonl': fillLine({ clientOrderId: 'X-1' }) }, 'fills.jsonl', 1, 'INCONSISTENT', 'has no order'],
    ['a fill larger than what is left of its order', { 'fills.jsonl': fillLine({}) + fillLine({ qty: '1.5' }) }, 'fills.jsonl', 2, 'INCONSISTENT', 'more than the 1 its orders have unfilled'],
    ['a fill on the other side of its order', { 'fills.jsonl': fillLine({ side: 'sell' }) }, 'fills.jsonl', 1, 'INCONSISTENT', 'sell AAPL of A-1, more than the 0'],
    ['a cancel of an order that is not working', { 'fills.jsonl': fillLine({ qty: '2' }), 'cancels.jsonl': checked('{"clientOrderId":"A-1","cancelledAt":0}') }, 'cancels.jsonl', 1, 'INCONSISTENT', 'no working order'],
    ['a line that fails the schema', { 'fills.jsonl': fillLine({ side: 'hold' }) }, 'fills.jsonl', 1, 'INVALID_LINE', 'side'],
    ['a limit order without its price', { 'orders.jsonl': checked(ORDER_JSON.replace('"market"', '"limit"')) }, 'orders.jsonl', 1, 'INVALID_LINE', 'limitPrice'],
    ['a line without its checksum among lines with one', { 'fills.jsonl': fillLine({}) + `${ORDER_JSON}\n` }, 'fills.jsonl', 2, 'CHECKSUM_MISMATCH', 'no checksum'],
    ['a format 1 line (no checksum) with a key the ledger never wrote', { 'orders.jsonl': `${ORDER_JSON.replace('}', ',"note":"x"}')}\n` }, 'orders.jsonl', 1, 'INVALID_LINE', 'unknown key "note"'],
  ])('refuses to open a ledger with %s', async (_case, files: Record<string, string>, badFile, badLine, reason, detail) => {
    await writeLedger();
    await writeFile(join(ledgerDir(), 'orders.jsonl'), ORDER);
    await writeFile(join(ledgerDir(), 'fills.jsonl'), '');
    for (const [file, contents] of Object.entries(files)) await writeFile(join(ledgerDir(), file), contents);
    const error = await PaperBroker.open({ dir: ledgerDir(), clock }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BrokerLedgerCorruptError);
    expect(error).toMatchObject({ path: join(ledgerDir(), badFile), line: badLine, reason });
    expect((error as Error).message).toContain(detail);
  });

  /** What opening the ledger as it now is gives: the error's reason, file and line, or `opened`. */
  async function openVerdict(): Promise<string> {
    try {
      const broker = await PaperBroker.open({ dir: ledgerDir(), clock });
      await broker.close();
      return 'opened';
    } catch (error) {
      if (!(error instanceof BrokerLedgerCorruptError)) throw error;
      return `${error.reason} ${error.path.slice(ledgerDir().length + 1)}:${error.line}`;
    }
  }

  it('refuses to open, naming fills.jsonl and the line, when one digit of a fill price is edited; the file stays as it was', async () => {
    const intact = await writeLedger();
    const [first = '', second = ''] = intact.fills.split('\n');
    const damaged = `${first}\n${second.replace('"price":"100"', '"price":"109"')}\n`;
    await writeFile(join(ledgerDir(), 'fills.jsonl'), damaged);

    const error = await PaperBroker.open({ dir: ledgerDir(), clock }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BrokerLedgerCorruptError);
    expect(error).toMatchObject({ code: 'BROKER_LEDGER_CORRUPT', reason: 'CHECKSUM_MISMATCH', path: join(ledgerDir(), 'fills.jsonl'), line: 2 });
    expect((error as Error).message).toMatch(/fills\.jsonl line 2: CHECKSUM_MISMATCH: CRC-32 [0-9a-f]{8} of the line's bytes, but it says [0-9a-f]{8}: .*109/);
    expect(await readFile(join(ledgerDir(), 'fills.jsonl'), 'utf8')).toBe(damaged);
  });

  // Every byte of a fill's line — its fields, the checksum's key, its hex digits, the closing
  // brace, its newline — flipped in turn, by one bit and by the high bit.
  it.each([
    ['0x01', 0x01],
    ['0x80', 0x80],
  ])('names the line CHECKSUM_MISMATCH for a flip (xor %s) of any one of its bytes', async (_name, mask) => {
    const intact = await writeLedger();
    const lineLength = intact.fills.indexOf('\n') + 1;
    const verdicts = new Set<string>();
    for (let offset = 0; offset < lineLength; offset += 1) {
      const bytes = Buffer.from(intact.fills);
      bytes[offset] = (bytes[offset] ?? 0) ^ mask;
      await writeFile(join(ledgerDir(), 'fills.jsonl'), bytes);
      verdicts.add(await openVerdict());
    }
    expect([...verdicts]).toEqual(['CHECKSUM_MISMATCH fills.jsonl:1']);
  });

  it('never opens a one-line file with a flipped byte, even one that leaves no valid checksum in the file', async () => {
    await writeLedger();
    // A resting limit order and its cancel: the cancel line, intact, opens.
    await writeFile(join(ledgerDir(), 'orders.jsonl'), checked('{"clientOrderId":"L-9","symbol":"AAPL","side":"buy","qty":"1","type":"limit","receivedAt":0,"limitPrice":"90"}'));
    await writeFile(join(ledgerDir(), 'fills.jsonl'), '');
    const single = checked('{"clientOrderId":"L-9","cancelledAt":0}');
    await writeFile(join(ledgerDir(), 'cancels.jsonl'), single);
    expect(await openVerdict()).toBe('opened');
    const verdicts = new Set<string>();
    // The newline is left out: a last line without it is a torn tail (see above).
    for (let offset = 0; offset < single.length - 1; offset += 1) {
      const bytes = Buffer.from(single);
      bytes[offset] = (bytes[offset] ?? 0) ^ 0x01;
      await writeFile(join(ledgerDir(), 'cancels.jsonl'), bytes);
      verdicts.add(await openVerdict());
    }
    // A flip in the checksum's key or quotes leaves a line with no checksum at all: then it is
    // read as format 1, which refuses a key the ledger never wrote, or a line that is not JSON.
    expect([...verdicts].sort()).toEqual(['CHECKSUM_MISMATCH cancels.jsonl:1', 'INVALID_LINE cancels.jsonl:1']);
  });
});

describe('a paper broker ledger of format 1 (before checksums)', () => {
  const ORDERS_V1 = [
    '{"clientOrderId":"A-1","symbol":"AAPL","side":"buy","qty":"2","type":"market","receivedAt":0,"pricedAt":0,"pricedClose":"100"}',
    '{"clientOrderId":"L-1","symbol":"AAPL","side":"buy","qty":"1","type":"limit","receivedAt":0,"limitPrice":"90"}',
  ];
  const FILLS_V1 = ['{"clientOrderId":"A-1","symbol":"AAPL","side":"buy","qty":"2","price":"100","commission":"0","filledAt":0}'];
  const CANCELS_V1 = ['{"clientOrderId":"L-1","cancelledAt":0}'];
  const text = (lines: readonly string[]): string => lines.map((line) => `${line}\n`).join('');

  it('is read as before and rewritten with a checksum on every line, each record byte for byte', async () => {
    await openBroker().then((broker) => broker.close()); // creates the dir
    await writeFile(join(ledgerDir(), 'orders.jsonl'), text(ORDERS_V1));
    await writeFile(join(ledgerDir(), 'fills.jsonl'), `${text(FILLS_V1)}{"clientOrderId":"A-2","sym`);
    await writeFile(join(ledgerDir(), 'cancels.jsonl'), text(CANCELS_V1));

    const broker = await openBroker();
    expect(broker.openReport).toEqual({ tornLinesRemoved: 1, orders: 2, fills: 1, cancels: 1, filesUpgraded: 3, fillsRecopied: 0 });
    expect(await broker.positions()).toEqual({ AAPL: '2' });
    expect(await broker.orderByClientId('L-1')).toMatchObject({ status: 'cancelled' });
    expect(await readFile(join(ledgerDir(), 'orders.jsonl'), 'utf8')).toBe(text(ORDERS_V1.map(withChecksum)));
    expect(await readFile(join(ledgerDir(), 'fills.jsonl'), 'utf8')).toBe(text(FILLS_V1.map(withChecksum)));
    expect(await readFile(join(ledgerDir(), 'cancels.jsonl'), 'utf8')).toBe(text(CANCELS_V1.map(withChecksum)));
    broker.observeBar(bar(1, 100));
    await broker.submit(market('A-3', 'sell', '1'));
    await broker.close();

    const reopened = await openBroker();
    expect(reopened.openReport).toEqual({ tornLinesRemoved: 0, orders: 3, fills: 2, cancels: 1, filesUpgraded: 0, fillsRecopied: 0 });
    expect(await reopened.positions()).toEqual({ AAPL: '1' });
  });

  it('is refused as before when one of its lines is bad, and left as it was', async () => {
    await openBroker().then((broker) => broker.close());
    const damaged = `${ORDERS_V1[0]}\nnot json\n`;
    await writeFile(join(ledgerDir(), 'orders.jsonl'), damaged);
    const error = await PaperBroker.open({ dir: ledgerDir(), clock }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'BROKER_LEDGER_CORRUPT', reason: 'INVALID_LINE', line: 2 });
    expect(await readFile(join(ledgerDir(), 'orders.jsonl'), 'utf8')).toBe(damaged);
  });
});

describe('a paper broker ledger that cannot be opened', () => {
  it('fails with BROKER_LEDGER_FAILED when the ledger cannot be opened at all', async () => {
    await writeFile(join(ledgerDir(), '..', 'not-a-dir'), 'a file');
    const error = await PaperBroker.open({ dir: join(ledgerDir(), '..', 'not-a-dir'), clock }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BrokerError);
    expect(error).toMatchObject({ code: 'BROKER_LEDGER_FAILED' });
  });
});

describe('a paper broker process killed with SIGKILL', () => {
  /** Runs the submitter until it has printed `acknowledged` ids, then kills it; returns the ids it printed. */
  async function submitUntilKilled(prefix: string, barTs: number, acknowledged: number): Promise<string[]> {
    const child = spawn(process.execPath, ['--import', 'tsx', submitter, ledgerDir(), prefix, String(barTs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    const ids: string[] = [];
    for await (const line of createInterface({ input: child.stdout })) {
      if (line === 'started') continue;
      ids.push(line);
      if (ids.length === acknowledged) child.kill('SIGKILL');
    }
    const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    return ids;
  }

  it('reopens after each kill with every acknowledged order and its fill in the ledger, no id twice', async () => {
    const acknowledged: string[] = [];
    for (const [round, count] of [40, 120, 75].entries()) {
      acknowledged.push(...(await submitUntilKilled(`R${round}`, round, count)));
    }

    const broker = await openBroker({ partialFills: { parts: 2 } });
    const orderIds = (await lines('orders.jsonl')).map((line) => (JSON.parse(line) as { clientOrderId: string }).clientOrderId);
    const fills = (await lines('fills.jsonl')).map((line) => FillSchema.parse(JSON.parse(line)));
    const filledIds = new Set(fills.map((fill) => fill.clientOrderId));
    expect(new Set(orderIds).size).toBe(orderIds.length);
    expect(acknowledged.filter((id) => !orderIds.includes(id))).toEqual([]);
    expect(acknowledged.filter((id) => !filledIds.has(id))).toEqual([]);

    // The broker's positions are the signed sum of the fills on disk.
    const net = fills.reduce((sum, fill) => sum + sideSign(fill.side) * parseQty(fill.qty), 0n);
    expect(await broker.positions()).toEqual(net === 0n ? {} : { AAPL: formatQty(net) });

    // Orders left resting by the kills (one part, or both if the kill came between an order's
    // line and its first fill's) finish on the next two bars: every order is then filled in full.
    await broker.observeBar(bar(10, 100));
    await broker.observeBar(bar(11, 100));
    expect(await broker.openOrders()).toEqual([]);
    const ordered = (await lines('orders.jsonl')).map((line) => JSON.parse(line) as { side: 'buy' | 'sell'; qty: string });
    const expectedNet = ordered.reduce((sum, order) => sum + sideSign(order.side) * parseQty(order.qty), 0n);
    expect(await broker.positions()).toEqual(expectedNet === 0n ? {} : { AAPL: formatQty(expectedNet) });
  });
});
