import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { createActor, type ActorRefFrom } from 'xstate';
import { afterEach, describe, expect, it } from 'vitest';
import { portfolioMachine } from '../../machines/portfolio.machine.js';
import { riskMachine, type RiskEmitted } from '../../machines/risk.machine.js';
import { formatMoney, parseQty } from '../../src/common/money.js';
import type { Fill } from '../../src/common/order.js';
import { createPortfolio, portfolioInvariantViolations, portfolioSnapshot, valuation, type Portfolio } from '../../src/portfolio/portfolio.js';
import { accountView, readClock, type OrderVerdict } from '../../src/risk/risk.js';
import { parseRiskLimits } from '../../src/risk/riskLimits.js';
import { ManualClock } from '../../src/common/clock.js';

const SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOG', 'META', 'TSLA', 'JPM'];

// A producer in its own thread: seeded random fills, posted in batches as fast as it can.
const PRODUCER = `
const { parentPort, workerData } = require('node:worker_threads');
const { id, batches, batchSize, symbols } = workerData;
let seed = id * 7919 + 17;
const random = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
for (let b = 0; b < batches; b += 1) {
  const fills = [];
  for (let i = 0; i < batchSize; i += 1) {
    const cents = 5000 + random(10000);
    fills.push({
      clientOrderId: 'w' + id + '-' + b + '-' + i,
      symbol: symbols[random(symbols.length)],
      side: random(2) === 0 ? 'buy' : 'sell',
      qty: String(1 + random(20)),
      price: (cents / 100).toFixed(2),
      commission: '0.25',
      filledAt: 1735830000000 + b,
    });
  }
  parentPort.postMessage(fills);
}
parentPort.postMessage('done');
`;

const tempDirs: string[] = [];
afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** What must hold for any portfolio a reader can see. */
function expectConsistent(portfolio: Portfolio): void {
  expect(portfolioInvariantViolations(portfolio)).toEqual([]);
  const value = valuation(portfolio);
  expect(value.equity).toBe(value.cash + value.netExposure);
  expect(value.unrealizedPnl).toBe(portfolio.marketValue - portfolio.openCostBasis);
}

describe('portfolio under concurrent producers and readers', () => {
  it('every snapshot a reader takes is consistent, held snapshots never change, and the end equals the ledger', async () => {
    const producers = 4;
    const batches = 60;
    const batchSize = 150;
    const actor = createActor(portfolioMachine, { input: { portfolio: createPortfolio({ initialCash: '10000000' }) }, systemId: 'portfolio' });
    let published = 0;
    actor.subscribe((snapshot) => {
      published += 1;
      expectConsistent(snapshot.context.portfolio);
    });
    actor.start();
    actor.send({ type: 'START' });

    // The independent ledger: integer cents and units, summed as fills arrive (order does not matter).
    let cashCents = 1_000_000_000;
    const units = new Map<string, number>();
    let received = 0;
    let done = 0;
    const workers = Array.from({ length: producers }, (_, id) => new Worker(PRODUCER, { eval: true, workerData: { id, batches, batchSize, symbols: SYMBOLS } }));
    const finished = Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            worker.on('error', reject);
            worker.on('message', (message: Fill[] | 'done') => {
              if (message === 'done') {
                done += 1;
                resolve();
                return;
              }
              for (const f of message) {
                const signed = (f.side === 'buy' ? 1 : -1) * Number(f.qty);
                cashCents -= signed * Math.round(Number(f.price) * 100) + 25;
                units.set(f.symbol, (units.get(f.symbol) ?? 0) + signed);
              }
              received += message.length;
              actor.send({ type: 'FILLS', fills: message });
            });
          }),
      ),
    );

    // Readers and a pricer interleave with the producers' messages until all are done.
    const held: Array<{ portfolio: Portfolio; frozen: string }> = [];
    let reads = 0;
    const reader = async (id: number): Promise<void> => {
      while (done < producers) {
        const { portfolio } = actor.getSnapshot().context;
        expectConsistent(portfolio);
        reads += 1;
        if ((reads + id) % 40 === 0) held.push({ portfolio, frozen: JSON.stringify(portfolioSnapshot(portfolio)) });
        await nextTurn();
      }
    };
    const pricer = async (): Promise<void> => {
      for (let tick = 0; done < producers; tick += 1) {
        actor.send({ type: 'MARK', prices: Object.fromEntries(SYMBOLS.map((symbol, i) => [symbol, 50 + ((tick * 7 + i * 13) % 100)])) });
        await nextTurn();
      }
    };
    await Promise.all([finished, reader(0), reader(1), reader(2), pricer()]);
    await Promise.all(workers.map((worker) => worker.terminate()));

    const { portfolio } = actor.getSnapshot().context;
    expect(received).toBe(producers * batches * batchSize);
    expect(portfolio.fillCount).toBe(received);
    expect(formatMoney(portfolio.cash)).toBe((cashCents / 100).toFixed(2));
    for (const symbol of SYMBOLS) expect(portfolio.positions.get(symbol)?.qty ?? 0n).toBe(parseQty(String(units.get(symbol) ?? 0)));
    expect(reads).toBeGreaterThan(10);
    expect(published).toBeGreaterThan(producers * batches);
    for (const snapshot of held) expect(JSON.stringify(portfolioSnapshot(snapshot.portfolio))).toBe(snapshot.frozen);
  });
});

type RiskActor = ActorRefFrom<typeof riskMachine>;

/** Asks the engine about one order and waits for its answer (`ORDERS_CHECKED` with our checkId). */
function checkOne(actor: RiskActor, clock: ManualClock, orderId: string): Promise<OrderVerdict> {
  return new Promise((resolve) => {
    const subscription = actor.on('ORDERS_CHECKED', (event: Extract<RiskEmitted, { type: 'ORDERS_CHECKED' }>) => {
      if (event.checkId !== orderId) return;
      subscription.unsubscribe();
      resolve(event.verdicts[0] ?? { verdict: 'deny', reasons: [] });
    });
    const intent = { symbol: 'AAPL', side: 'buy', qty: '1', type: 'market' } as const;
    actor.send({ type: 'CHECK_ORDERS', checkId: orderId, orders: [{ orderId, intent, price: 100 }], at: readClock(clock) });
  });
}

function startedRiskEngine(clock: ManualClock): RiskActor {
  const actor = createActor(riskMachine, { input: { limits: parseRiskLimits({ maxOrdersPerMinute: 10, maxOrdersPerDay: 1_000 }) }, systemId: 'risk' });
  actor.start();
  const account = accountView(createPortfolio({ initialCash: '1000000' }));
  actor.send({ type: 'ACCOUNT_UPDATED', account, at: readClock(clock) });
  actor.send({ type: 'START' });
  return actor;
}

/**
 * One order's life in the session: check, then reserve its id durably (a real append to a
 * journal file), then tell the engine. `failReservation` makes the write fail for that id.
 */
async function submit(actor: RiskActor, clock: ManualClock, journal: string, orderId: string, failReservation = false): Promise<'reserved' | 'denied' | 'released'> {
  for (let i = orderId.length % 3; i > 0; i -= 1) await nextTurn();
  const verdict = await checkOne(actor, clock, orderId);
  if (verdict.verdict === 'deny') return 'denied';
  try {
    await appendFile(failReservation ? join(journal, 'missing-dir', 'x') : journal, `${orderId}\n`);
  } catch {
    actor.send({ type: 'ORDER_RELEASED', orderId });
    return 'released';
  }
  actor.send({ type: 'ORDER_RESERVED', orderId, at: readClock(clock) });
  return 'reserved';
}

describe('risk engine under concurrent orders', () => {
  it('100 concurrent orders against 10 per minute: exactly 10 are admitted and reserved', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-stress-risk-'));
    tempDirs.push(dir);
    const journal = join(dir, 'orders.journal');
    const clock = new ManualClock();
    const actor = startedRiskEngine(clock);

    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => submit(actor, clock, journal, `order-${i}`)));
    expect(outcomes.filter((o) => o === 'reserved')).toHaveLength(10);
    expect(outcomes.filter((o) => o === 'denied')).toHaveLength(90);
    expect((await readFile(journal, 'utf8')).trim().split('\n')).toHaveLength(10);
    expect(actor.getSnapshot().context.stats).toMatchObject({ checked: 100, approved: 10, reserved: 10, denied: { RATE_LIMIT_MINUTE: 90 } });

    // A wall-clock jump cannot reset the window: it is counted on the monotonic clock.
    clock.jumpWall(3_600_000);
    const afterJump = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(actor, clock, journal, `jump-${i}`)));
    expect(afterJump.filter((o) => o === 'reserved')).toHaveLength(0);

    // A minute of monotonic time later, the next 10 pass.
    clock.advance(60_000);
    const nextMinute = await Promise.all(Array.from({ length: 100 }, (_, i) => submit(actor, clock, journal, `later-${i}`)));
    expect(nextMinute.filter((o) => o === 'reserved')).toHaveLength(10);
  });

  it('an order whose reservation fails gives its slot back; reservations still total exactly 10', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-stress-risk-'));
    tempDirs.push(dir);
    const journal = join(dir, 'orders.journal');
    const clock = new ManualClock();
    const actor = startedRiskEngine(clock);

    const failing = new Set(['first-1', 'first-4', 'first-7']);
    const first = await Promise.all(Array.from({ length: 10 }, (_, i) => submit(actor, clock, journal, `first-${i}`, failing.has(`first-${i}`))));
    expect(first.filter((o) => o === 'released')).toHaveLength(3);
    const second = await Promise.all(Array.from({ length: 50 }, (_, i) => submit(actor, clock, journal, `second-${i}`)));
    expect(second.filter((o) => o === 'reserved')).toHaveLength(3);
    expect((await readFile(journal, 'utf8')).trim().split('\n')).toHaveLength(10);
    expect(actor.getSnapshot().context.risk.orderRate.held.size).toBe(0);
  });

  it('50 concurrent HALTs end in one halt with every distinct reason once', async () => {
    const clock = new ManualClock();
    const actor = startedRiskEngine(clock);
    const states: string[] = [];
    actor.on('TRADING_STATE_CHANGED', (event: Extract<RiskEmitted, { type: 'TRADING_STATE_CHANGED' }>) => states.push(event.tradingState));
    const codes = ['OPERATOR', 'RECONCILIATION_MISMATCH', 'BROKER_DISCONNECTED', 'DATA_STALE', 'OPERATOR'];
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        for (let turn = i % 4; turn > 0; turn -= 1) await nextTurn();
        actor.send({ type: 'HALT', reason: { code: codes[i % codes.length] ?? 'OPERATOR', detail: `caller ${i}` }, at: readClock(clock) });
        if (i % 7 === 0) await checkOne(actor, clock, `while-halting-${i}`);
      }),
    );
    const { value, context } = actor.getSnapshot();
    expect(value).toEqual({ running: 'halted' });
    expect(context.risk.haltReasons.map((r) => r.code).sort()).toEqual([...new Set(codes)].sort());
    expect(states).toEqual(['halted']);
  });
});
