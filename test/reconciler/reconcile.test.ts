import { FillCounts } from '../../src/session/fillCounts.js';
import { describe, expect, it } from 'vitest';
import { parseQty } from '../../src/common/money.js';
import { adoptionFills, netFills, positionDifferences, reconcileReport, splitOwnFills, type OwnOrder } from '../../src/reconciler/reconcile.js';
import type { Fill } from '../../src/common/order.js';

const qty = (entries: Record<string, string>) => new Map(Object.entries(entries).map(([s, q]) => [s, parseQty(q)]));

describe('position reconciliation', () => {
  it('reports nothing when the broker equals the portfolio plus the fills still to apply', () => {
    const pending = netFills([{ clientOrderId: 'A-1', symbol: 'AAPL', side: 'buy', qty: '5', price: '100', commission: '0', filledAt: 1 }]);
    expect(positionDifferences(qty({ AAPL: '10' }), qty({ AAPL: '15' }), pending)).toEqual([]);
  });

  it('reports what no known fill explains, per symbol, with its fraction', () => {
    const differences = positionDifferences(qty({ AAPL: '10', MSFT: '3' }), qty({ AAPL: '9', NVDA: '-2' }), new Map());
    expect(differences).toEqual([
      { symbol: 'AAPL', local: '10', broker: '9', pending: '0', unexplained: '-1', fraction: 0.1 },
      { symbol: 'MSFT', local: '3', broker: '0', pending: '0', unexplained: '-3', fraction: 1 },
      { symbol: 'NVDA', local: '0', broker: '-2', pending: '0', unexplained: '-2', fraction: 1 },
    ]);
  });

  it('halts only under the halt policy and above the tolerance', () => {
    const small = positionDifferences(qty({ AAPL: '100' }), qty({ AAPL: '95' }), new Map());
    expect(reconcileReport('start', small, { policy: 'halt', tolerance: 0.1 }).halt).toBe(false);
    const large = positionDifferences(qty({ AAPL: '100' }), qty({ AAPL: '80' }), new Map());
    expect(reconcileReport('start', large, { policy: 'halt', tolerance: 0.1 }).halt).toBe(true);
    expect(reconcileReport('start', large, { policy: 'adopt', tolerance: 0.1 }).halt).toBe(false);
  });

  it('adopts the broker position with one fill per symbol at the newest close', () => {
    const differences = positionDifferences(qty({ AAPL: '10' }), qty({ AAPL: '7', JPM: '2' }), new Map());
    const fills = adoptionFills(differences, (symbol) => ({ AAPL: 101.25, JPM: 300.1 })[symbol], 1_000);
    expect(fills).toEqual([
      { clientOrderId: 'RECON-AAPL-1000', symbol: 'AAPL', side: 'sell', qty: '3', price: '101.25', commission: '0', filledAt: 1_000 },
      { clientOrderId: 'RECON-JPM-1000', symbol: 'JPM', side: 'buy', qty: '2', price: '300.1', commission: '0', filledAt: 1_000 },
    ]);
  });

  it('cannot adopt a symbol without a known price, and says so by leaving it out', () => {
    const differences = positionDifferences(new Map(), qty({ XYZ: '1' }), new Map());
    expect(adoptionFills(differences, () => undefined, 1)).toEqual([]);
  });

  describe('the broker fills of the session\'s own orders', () => {
    const fill = (clientOrderId: string, qty: string): Fill => ({ clientOrderId, symbol: 'AAPL', side: 'buy', qty, price: '100', commission: '0', filledAt: 1 });
    const order = (clientOrderId: string, barTs: number, fills: Fill[]): OwnOrder => ({ clientOrderId, symbol: 'AAPL', barTs, fills });

    it('are final when their bar is decided (applied now), pending when it lies after (applied when decided again)', () => {
      const own = [order('OLD', 100, [fill('OLD', '1')]), order('NEW', 200, [fill('NEW', '2')])];
      expect(splitOwnFills(own, FillCounts.EMPTY, new Map([['AAPL', 150]]))).toEqual({ final: [fill('OLD', '1')], pending: [fill('NEW', '2')] });
      expect(splitOwnFills(own, FillCounts.EMPTY, new Map([['AAPL', 200]])).pending).toEqual([]);
    });

    it('leave out the fills the portfolio already holds, counted per order', () => {
      const own = [order('PART', 100, [fill('PART', '1'), fill('PART', '2')])];
      expect(splitOwnFills(own, FillCounts.of({ PART: 1 }), new Map([['AAPL', 100]]))).toEqual({ final: [fill('PART', '2')], pending: [] });
      expect(splitOwnFills(own, FillCounts.of({ PART: 2 }), new Map([['AAPL', 100]]))).toEqual({ final: [], pending: [] });
    });

    it('are all pending for a symbol no checkpoint has decided, even one named like an Object member', () => {
      const own = [{ ...order('X', 100, [fill('X', '1')]), symbol: 'constructor' }];
      expect(splitOwnFills(own, FillCounts.EMPTY, new Map()).pending).toHaveLength(1);
      expect(splitOwnFills(own, FillCounts.EMPTY, new Map([['AAPL', 500]])).pending).toHaveLength(1);
    });
  });
});
