import { describe, expect, it } from 'vitest';
import type { PlannedOrder } from '../../src/session/sessionPipeline.js';
import { createIdempotencyTracker } from '../../src/idempotency/idempotencyTracker.js';
import { settleUnknown } from '../../src/session/orderExecution.js';
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
