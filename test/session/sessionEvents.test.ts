import { describe, expect, it } from 'vitest';
import { createTradingSession, type SessionEvent } from '../../src/session/createTradingSession.js';
import { buyOnBars, minuteBars, sessionDeps } from '../support/sessionFixture.js';

/** Every event the session reports, in order. */
function recordAll(session: ReturnType<typeof createTradingSession>): SessionEvent[] {
  const seen: SessionEvent[] = [];
  for (const type of ['order', 'fill', 'denied', 'barRejected', 'riskState', 'equity', 'checkpoint', 'fault'] as const) session.on(type, (event) => seen.push(event));
  return seen;
}

const ofType = <T extends SessionEvent['type']>(events: SessionEvent[], type: T) => events.filter((event): event is Extract<SessionEvent, { type: T }> => event.type === type);

describe('what a session reports as it runs (session.on)', () => {
  it('reports the order, its fill, the halt, the denial with its reason and the checkpoints; the summary counts denials by code', async () => {
    const deps = await sessionDeps();
    // Buys 100 at 100, then the price halves: a daily-loss breach halts trading; the buy at bar 4 is denied.
    const risk = { maxDailyLossPct: 0.01, maxDrawdownPct: 0.9, perTradeRiskPct: 0.5, maxPositionFraction: 0.5, killSwitchEnabled: true };
    const session = createTradingSession({ ...deps, strategy: buyOnBars([1, 4], '100'), replay: true, risk });
    const events = recordAll(session);
    await session.start();
    const bars = minuteBars(5).map((bar, i) => (i < 2 ? bar : { ...bar, open: 50, high: 50.05, low: 49.95, close: 50 }));
    await session.ingest(bars);
    const summary = await session.stop();

    const [order, ...moreOrders] = ofType(events, 'order');
    expect(moreOrders).toEqual([]);
    expect(order).toMatchObject({ outcome: 'submitted', symbol: 'AAPL', side: 'buy', qty: '100', barTs: bars[0]?.ts, reason: null });
    expect(ofType(events, 'fill').map((event) => event.fill)).toEqual([expect.objectContaining({ clientOrderId: order?.clientOrderId, qty: '100' })]);
    expect(ofType(events, 'riskState')).toEqual([
      expect.objectContaining({ state: 'halted', haltReasons: [expect.objectContaining({ code: 'DAILY_LOSS_LIMIT' })] }),
    ]);
    const denied = ofType(events, 'denied');
    expect(denied).toEqual([expect.objectContaining({ symbol: 'AAPL', qty: '100', barTs: bars[3]?.ts, reasons: [expect.objectContaining({ code: 'TRADING_HALTED' }), expect.objectContaining({ code: 'KILL_SWITCH' })] })]);
    expect(summary.orders.deniedBy).toEqual({ TRADING_HALTED: 1, KILL_SWITCH: 1 });
    expect(ofType(events, 'checkpoint').at(-1)).toEqual({ type: 'checkpoint', result: 'written', written: summary.checkpoints.written, failed: 0 });
    expect(ofType(events, 'fault')).toEqual([]);
    // The account at each bar that moved it: 100 bought at ~100, then marked at 50.
    const equity = ofType(events, 'equity');
    expect(equity.map((point) => point.at)).toEqual([...new Set(equity.map((point) => point.at))]);
    expect(equity.at(-1)).toEqual({ type: 'equity', at: bars[4]?.ts, equity: summary.portfolio.equity, cash: summary.portfolio.cash, grossExposure: '5000.00' });
  });

  it('reports a bar the data guard rejects, with its reason', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    const events = recordAll(session);
    await session.start();
    const bars = minuteBars(3);
    const [first, second] = bars;
    if (first === undefined || second === undefined) throw new Error('no bars');
    await session.ingest([first, second, { ...second }]);
    await session.stop();

    expect(ofType(events, 'barRejected')).toEqual([{ type: 'barRejected', symbol: 'AAPL', ts: second.ts, reason: 'DUPLICATE_TIMESTAMP', detail: expect.any(String) }]);
  });

  it('reports a fault once, and a listener that throws is logged while the others still hear', async () => {
    const deps = await sessionDeps();
    const logged: Record<string, unknown>[] = [];
    const failing = { ...buyOnBars([]), onBar: () => { throw new Error('boom'); } };
    const session = createTradingSession({ ...deps, log: (entry) => logged.push(entry), strategy: failing, replay: true });
    session.on('fault', () => {
      throw new Error('listener bug');
    });
    const faults: SessionEvent[] = [];
    const unsubscribe = session.on('fault', (event) => faults.push(event));
    const ignored: SessionEvent[] = [];
    session.on('order', (event) => ignored.push(event))();
    await session.start();
    await expect(session.ingest(minuteBars(2))).rejects.toThrow(/STRATEGY_FAILED/);
    expect((await session.stop()).listenerFailures).toBe(1);
    unsubscribe();

    expect(faults).toEqual([{ type: 'fault', fault: expect.objectContaining({ code: 'STRATEGY_FAILED' }) }]);
    expect(logged).toContainEqual(expect.objectContaining({ event: 'LISTENER_FAILED', type: 'fault', error: 'listener bug' }));
    expect(ignored).toEqual([]);
  });
});
