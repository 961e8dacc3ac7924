import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PlannedOrder } from '../../src/session/sessionPipeline.js';
import { createIdempotencyTracker } from '../../src/idempotency/idempotencyTracker.js';
import { executeOrders, settleUnknown } from '../../src/session/orderExecution.js';
import { BrokerError } from '../../src/broker/broker.js';
import { sessionDeps } from '../support/sessionFixture.js';

const order = (n: number): PlannedOrder => ({
  clientOrderId: `AAPL-unknown${n}`,
  intent: { symbol: 'AAPL', side: 'buy', qty: '1', type: 'market' },
  barTs: Date.UTC(2025, 10, 3, 14, 30),
  price: 100,
});

describe('settleUnknown', () => {
  it('stops asking at the first order the broker cannot answer for: the rest stay unknown unasked', async () => {
    const deps = await sessionDeps();
    const tracker = createIdempotencyTracker({ stateDir: deps.stateDir, clock: deps.clock, log: deps.log });
    await tracker.start();
    const asked: string[] = [];
    const lookUp = deps.broker.orderByClientId.bind(deps.broker);
    deps.broker.orderByClientId = (id) => {
      asked.push(id);
      return lookUp(id);
    };
    deps.broker.faults.disconnect();
    const unsettled = [order(1), order(2), order(3)];
    const settling = await settleUnknown({ tracker, broker: deps.broker, brokerTimeoutMs: 1_000, log: deps.log }, unsettled);
    expect(asked).toEqual(['AAPL-unknown1']);
    expect(settling).toEqual({ outcomes: [], stillUnknown: unsettled });
    // Reachable again: every one is asked, and one the broker never received settles with no fills.
    deps.broker.faults.reconnect();
    const settled = await settleUnknown({ tracker, broker: deps.broker, brokerTimeoutMs: 1_000, log: deps.log }, unsettled);
    expect(asked).toHaveLength(4);
    expect(settled.stillUnknown).toEqual([]);
    expect(settled.outcomes.map((o) => o.kind)).toEqual(['settled', 'settled', 'settled']);
    await tracker.stop();
    await deps.broker.close();
  });
});

describe('executeOrders', () => {
  const orders = [order(1), order(2), order(3)].map((o, i) => ({ ...o, clientOrderId: `AAPL-group${i}`, intent: { ...o.intent, qty: String(i + 1) } }));

  it('reserves every order of a bar in one journal commit before the first reaches the broker', async () => {
    const deps = await sessionDeps();
    const tracker = createIdempotencyTracker({ stateDir: deps.stateDir, clock: deps.clock, log: deps.log });
    await tracker.start();
    deps.broker.observeBar({ symbol: 'AAPL', ts: Date.UTC(2025, 10, 3, 14, 30), open: 100, high: 100.05, low: 99.95, close: 100 });
    const atFirstSubmit: { syncs: number; journal: string }[] = [];
    const submit = deps.broker.submit.bind(deps.broker);
    deps.broker.submit = async (brokerOrder) => {
      if (atFirstSubmit.length === 0) atFirstSubmit.push({ syncs: tracker.snapshot().stats.syncs, journal: await readFile(join(deps.stateDir, 'orders.journal'), 'utf8') });
      return submit(brokerOrder);
    };
    const before = tracker.snapshot().stats.syncs;

    const outcomes = await executeOrders({ tracker, broker: deps.broker, brokerTimeoutMs: 1_000, log: deps.log }, orders, { refuse: null, unsettled: [] });

    expect(outcomes.map((o) => o.kind)).toEqual(['submitted', 'submitted', 'submitted']);
    // One fsync held all three reservations, done before the first submit (the marks ride later commits).
    expect(atFirstSubmit[0]?.syncs).toBe(before + 1);
    for (const { clientOrderId } of orders) expect(atFirstSubmit[0]?.journal).toContain(clientOrderId);
    await tracker.stop();
    await deps.broker.close();
  });

  it('asks nothing of the broker and reserves nothing once the store says this process lost its hold', async () => {
    const deps = await sessionDeps();
    const tracker = createIdempotencyTracker({ stateDir: deps.stateDir, clock: deps.clock, log: deps.log });
    await tracker.start();
    const calls: string[] = [];
    deps.broker.submit = () => {
      calls.push('submit');
      return Promise.reject(new Error('submit must not be called'));
    };
    deps.broker.orderByClientId = () => {
      calls.push('orderByClientId');
      return Promise.reject(new Error('orderByClientId must not be called'));
    };
    const lost = Object.assign(new Error('the lease was taken over'), { code: 'LEASE_LOST' });
    const assertHeld = (): void => {
      throw lost;
    };
    const syncsBefore = tracker.snapshot().stats.syncs;

    const execution = executeOrders({ tracker, broker: deps.broker, brokerTimeoutMs: 1_000, log: deps.log, assertHeld }, orders, { refuse: null, unsettled: orders.slice(0, 1) });

    await expect(execution).rejects.toBe(lost);
    expect(calls).toEqual([]);
    expect(tracker.snapshot().stats.syncs).toBe(syncsBefore);
    await tracker.stop();
    await deps.broker.close();
  });

  it('never sends again an order the journal holds as sent and the broker does not know: it is lost, logged, and has no fills', async () => {
    const deps = await sessionDeps();
    const logged: Record<string, unknown>[] = [];
    const tracker = createIdempotencyTracker({ stateDir: deps.stateDir, clock: deps.clock, log: deps.log });
    await tracker.start();
    const [first] = orders;
    if (first === undefined) throw new Error('no order');
    await tracker.reserve(first.clientOrderId);
    await tracker.mark(first.clientOrderId, 'submitted');
    const sent: string[] = [];
    const submit = deps.broker.submit.bind(deps.broker);
    deps.broker.submit = (brokerOrder) => {
      sent.push(brokerOrder.clientOrderId);
      return submit(brokerOrder);
    };

    const outcomes = await executeOrders({ tracker, broker: deps.broker, brokerTimeoutMs: 1_000, log: (entry) => logged.push(entry) }, [first], { refuse: null, unsettled: [] });

    expect(outcomes).toEqual([{ kind: 'lost', order: first, reason: { code: 'BROKER_LOST_ORDER', detail: expect.stringContaining(first.clientOrderId) } }]);
    expect(sent).toEqual([]);
    expect(logged).toContainEqual(expect.objectContaining({ event: 'BROKER_LOST_ORDER', clientOrderId: first.clientOrderId }));
    await tracker.stop();
    await deps.broker.close();
  });

  it('refuses the rest of the bar once the broker stops answering, sending none of them', async () => {
    const deps = await sessionDeps();
    const tracker = createIdempotencyTracker({ stateDir: deps.stateDir, clock: deps.clock, log: deps.log });
    await tracker.start();
    deps.broker.observeBar({ symbol: 'AAPL', ts: Date.UTC(2025, 10, 3, 14, 30), open: 100, high: 100.05, low: 99.95, close: 100 });
    const sent: string[] = [];
    const submit = deps.broker.submit.bind(deps.broker);
    deps.broker.submit = (brokerOrder) => {
      sent.push(brokerOrder.clientOrderId);
      // The first submit loses its answer and the broker goes away.
      if (sent.length === 1) {
        deps.broker.faults.disconnect();
        return Promise.reject(new BrokerError('BROKER_DISCONNECTED', 'connection reset'));
      }
      return submit(brokerOrder);
    };

    const outcomes = await executeOrders({ tracker, broker: deps.broker, brokerTimeoutMs: 1_000, log: deps.log }, orders, { refuse: null, unsettled: [] });

    expect(outcomes.map((o) => o.kind)).toEqual(['unknown', 'refused', 'refused']);
    expect(outcomes[1]).toMatchObject({ reason: { code: 'BROKER_UNREACHABLE', ids: ['AAPL-group0'] } });
    expect(sent).toEqual(['AAPL-group0']);
    deps.broker.faults.reconnect();
    await tracker.stop();
    await deps.broker.close();
  });
});
