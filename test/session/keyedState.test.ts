import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Bar } from '../../src/bars/bar.js';
import { SYMBOL_PATTERN } from '../../src/common/order.js';
import { createTradingSession } from '../../src/session/createTradingSession.js';
import { buyOnBars, minuteBars, sessionDeps } from '../support/sessionFixture.js';

/**
 * Keyed state cannot collide with JavaScript: symbols named like `Object.prototype` members
 * travel the whole pipeline — guard, aggregation, strategy, risk, orders, fills, checkpoint,
 * resume — as ordinary symbols.
 */

const prototypeNames = Object.getOwnPropertyNames(Object.prototype).filter((name) => SYMBOL_PATTERN.test(name));
const oddSymbols = ['BRK.B', 'ES=F', 'BTC/USD', 'X', 'a'.repeat(32)];

/** Bars for `symbols`, one a minute each, interleaved in time. */
function barsOf(symbols: readonly string[], minutes: number): Bar[] {
  const perSymbol = symbols.map((symbol, i) => minuteBars(minutes, symbol, 100 + i));
  return Array.from({ length: minutes }, (_, minute) => perSymbol.map((bars) => bars[minute])).flat().filter((bar): bar is Bar => bar !== undefined);
}

describe('symbols named like Object.prototype members', () => {
  it('are ordinary symbols in every part of a session, across a resume (property)', async () => {
    expect(prototypeNames).toEqual(expect.arrayContaining(['toString', 'constructor', 'hasOwnProperty', 'valueOf']));
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.constantFrom(...prototypeNames, ...oddSymbols), { minLength: 1, maxLength: 4 }), async (symbols) => {
        const deps = await sessionDeps();
        const bars = barsOf(symbols, 6);
        // The 2nd bar the strategy sees buys: one order, whatever that bar's symbol.
        const first = createTradingSession({ ...deps, strategy: buyOnBars([2]), replay: true });
        await first.start();
        await first.ingest(bars.slice(0, bars.length / 2));
        const before = await first.stop();
        expect(before.bars.accepted).toBe(bars.length / 2);
        expect(before.orders.submitted).toBe(1);

        // The checkpoint holds these keys; the resume reads them back as ordinary keys.
        const again = createTradingSession({ stateDir: deps.stateDir, clock: deps.clock, log: deps.log, strategy: buyOnBars([2]), replay: true });
        await again.start();
        await again.ingest(bars);
        const summary = await again.stop();
        // Counts are the state dir's totals: the first run's half, then this run's.
        expect(summary.bars).toMatchObject({ accepted: bars.length, resumedSkips: bars.length / 2 });
        expect(summary.orders.submitted).toBe(0);
        expect(Object.keys(summary.portfolio.positions)).toHaveLength(1);
        expect(summary.fault).toBeNull();
      }),
      { numRuns: 12, seed: 1301 },
    );
  }, 60_000);
});
