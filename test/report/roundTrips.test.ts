import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMoney, formatMoneyExact, parseMoney, parsePrice, parseQty } from '../../src/common/money.js';
import type { Fill, Side } from '../../src/common/order.js';
import { applyFills, createPortfolio, markToMarket, valuation } from '../../src/portfolio/portfolio.js';
import { fifoRoundTrips, symbolPnl } from '../../src/report/roundTrips.js';

let nextId = 0;
function fill(symbol: string, side: Side, qty: string, price: string, commission = '0', filledAt = 1_760_000_000_000): Fill {
  nextId += 1;
  return { clientOrderId: `t-${nextId}`, symbol, side, qty, price, commission, filledAt };
}

describe('fifoRoundTrips', () => {
  it('closes the oldest lot first and leaves the newest open', () => {
    const fills = [fill('AAPL', 'buy', '10', '100', '0', 1), fill('AAPL', 'buy', '10', '110', '0', 2), fill('AAPL', 'sell', '15', '120', '0', 3)];

    const { trips, open } = fifoRoundTrips(fills);

    expect(trips.map((t) => [formatMoney(t.grossPnl), t.qty, t.entryAt])).toEqual([
      ['200.00', parseQty('10'), 1],
      ['50.00', parseQty('5'), 2],
    ]);
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ symbol: 'AAPL', direction: 'long', qty: parseQty('5'), entryPrice: parsePrice('110') });
  });

  it('a sell through zero closes the long and opens a short with the rest', () => {
    const fills = [fill('X', 'buy', '5', '10'), fill('X', 'sell', '8', '12'), fill('X', 'buy', '3', '11')];

    const { trips, open } = fifoRoundTrips(fills);

    expect(trips.map((t) => [t.direction, formatMoney(t.grossPnl)])).toEqual([
      ['long', '10.00'],
      ['short', '3.00'],
    ]);
    expect(open).toEqual([]);
  });

  it('splits a commission between the lots a fill touches, the parts adding up to it exactly', () => {
    // 1.00 over 3 + 3 + 1 units of an exit fill: 3/7 of it cannot be written in cents.
    const fills = [fill('X', 'buy', '3', '10', '0.30'), fill('X', 'buy', '3', '10', '0.30'), fill('X', 'buy', '1', '10', '0.10'), fill('X', 'sell', '7', '11', '1.00')];

    const { trips, open } = fifoRoundTrips(fills);

    expect(open).toEqual([]);
    const fees = trips.reduce((sum, t) => sum + t.fees, 0n);
    expect(formatMoneyExact(fees)).toBe('1.7');
    expect(trips.map((t) => formatMoneyExact(t.netPnl + t.fees - t.grossPnl))).toEqual(['0', '0', '0']);
  });

  it('uses the contract multiplier in the P&L', () => {
    const { trips } = fifoRoundTrips([fill('ES', 'buy', '1', '5000'), fill('ES', 'sell', '1', '5001.25')], () => 50n);
    expect(formatMoney(trips[0]?.grossPnl ?? 0n)).toBe('62.50');
  });
});

describe('symbolPnl', () => {
  it('marks the open lots at the last price and counts every fill’s fee', () => {
    const fills = [fill('A', 'buy', '2', '50', '1'), fill('A', 'sell', '1', '55', '1'), fill('B', 'sell', '1', '20', '0.5')];
    const book = fifoRoundTrips(fills);

    const rows = symbolPnl(fills, book, new Map([['A', parsePrice('60')], ['B', parsePrice('19')]]));

    expect(rows.map((r) => [r.symbol, formatMoney(r.realized), r.unrealized === null ? null : formatMoney(r.unrealized), formatMoney(r.fees), r.net === null ? null : formatMoney(r.net)])).toEqual([
      ['A', '5.00', '10.00', '2.00', '13.00'],
      ['B', '0.00', '1.00', '0.50', '0.50'],
    ]);
  });

  it('says unrealized is unknown for an open lot without a last price', () => {
    const fills = [fill('A', 'buy', '2', '50')];
    const [row] = symbolPnl(fills, fifoRoundTrips(fills), new Map());
    expect(row?.unrealized).toBeNull();
    expect(row?.net).toBeNull();
  });

  it('adds up to the portfolio’s equity minus its starting cash, whatever the fills (property)', () => {
    const symbols = ['A', 'B', 'C'];
    const fillArb = fc.record({
      symbol: fc.constantFrom(...symbols),
      side: fc.constantFrom<Side>('buy', 'sell'),
      qty: fc.integer({ min: 1, max: 40 }),
      cents: fc.integer({ min: 100, max: 50_000 }),
      commissionMills: fc.integer({ min: 0, max: 5_000 }),
    });
    fc.assert(
      fc.property(fc.array(fillArb, { minLength: 1, maxLength: 60 }), fc.array(fc.integer({ min: 100, max: 50_000 }), { minLength: 3, maxLength: 3 }), (raw, marks) => {
        const fills = raw.map((f, i) => fill(f.symbol, f.side, String(f.qty), (f.cents / 100).toFixed(2), (f.commissionMills / 1000).toFixed(3), i));
        const applied = applyFills(createPortfolio({ initialCash: '1000000' }), fills);
        expect(applied.rejected).toEqual([]);
        const lastPrices = new Map(symbols.map((symbol, i) => [symbol, parsePrice(((marks[i] ?? 100) / 100).toFixed(2))]));
        const marked = markToMarket(applied.portfolio, lastPrices);

        const rows = symbolPnl(fills, fifoRoundTrips(fills), lastPrices);

        const net = rows.reduce((sum, row) => sum + (row.net ?? 0n), 0n);
        expect(net).toBe(valuation(marked).equity - parseMoney('1000000'));
      }),
      { numRuns: 300 },
    );
  });
});
