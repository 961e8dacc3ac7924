import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { Bar } from '../../src/bars/bar.js';
import type { Strategy } from '../../src/strategy/strategy.js';
import { ManualClock } from '../../src/common/clock.js';
import { PaperBroker } from '../../src/broker/paperBroker.js';
import type { Broker } from '../../src/broker/broker.js';

/** One bar a minute for `symbol`, from 2025-11-03 14:30 UTC (09:30 New York), prices 100, 101, … */
export function minuteBars(count: number, symbol = 'AAPL', startPrice = 100): Bar[] {
  const start = Date.UTC(2025, 10, 3, 14, 30);
  return Array.from({ length: count }, (_, i) => {
    const price = startPrice + i * 0.01;
    return { symbol, ts: start + i * 60_000, open: price, high: price + 0.05, low: price - 0.05, close: price, volume: 10_000 };
  });
}

/** A strategy that buys `qty` at the given bar numbers (1-based) and nothing else: orders on cue. */
export function buyOnBars(barNumbers: readonly number[], qty = '1'): Strategy<number> {
  return {
    id: 'cue',
    stateSchema: z.number().int(),
    initialState: () => 0,
    onBar(seen, bar) {
      const n = seen + 1;
      const intents = barNumbers.includes(n) ? [{ symbol: bar.symbol, side: 'buy' as const, qty, type: 'market' as const }] : [];
      return { state: n, intents };
    },
  };
}

/** A temp state dir, a manual clock, and a PaperBroker in `<stateDir>/broker`. */
export async function sessionDeps() {
  const stateDir = await mkdtemp(join(tmpdir(), 'aistock-session-'));
  const clock = new ManualClock({ wallMs: Date.UTC(2025, 10, 3, 15), monoMs: 1_000 });
  const broker = await PaperBroker.open({ dir: join(stateDir, 'broker'), clock });
  return { stateDir, clock, broker, log: (): void => undefined };
}

/** `paper` in every way but the methods in `overrides`: a broker with one behaviour changed (a bug, a counter). */
export function delegatingBroker(paper: PaperBroker, overrides: Partial<Broker>): Broker {
  return {
    submit: (order) => paper.submit(order),
    cancel: (id) => paper.cancel(id),
    openOrders: () => paper.openOrders(),
    positions: () => paper.positions(),
    orderByClientId: (id) => paper.orderByClientId(id),
    knownClientOrderIds: () => paper.knownClientOrderIds(),
    onFill: (listener) => paper.onFill(listener),
    observeBar: (bar) => paper.observeBar(bar),
    close: () => paper.close(),
    ...overrides,
  };
}
