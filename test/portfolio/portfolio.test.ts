import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMoney, formatMoneyExact, parseMoney, parsePrice, parseQty, type Money } from '../../src/common/money.js';
import type { Fill, Side } from '../../src/common/order.js';
import {
  applyFills,
  averagePrice,
  createPortfolio,
  deposit,
  InvalidPortfolioError,
  markToMarket,
  parseMarkPrices,
  portfolioInvariantViolations,
  portfolioSnapshot,
  portfolioSummary,
  restorePortfolio,
  valuation,
  withdraw,
  type Portfolio,
} from '../../src/portfolio/portfolio.js';

let nextId = 0;
function fill(symbol: string, side: Side, qty: string, price: string, commission = '0', filledAt = 1_735_830_000_000): Fill {
  nextId += 1;
  return { clientOrderId: `t-${nextId}`, symbol, side, qty, price, commission, filledAt };
}

function applyAll(portfolio: Portfolio, fills: readonly Fill[]): Portfolio {
  const result = applyFills(portfolio, fills);
  expect(result.rejected).toEqual([]);
  return result.portfolio;
}

const money = (text: string): Money => parseMoney(text);

describe('portfolio fills', () => {
  it('opens a long position: cash pays notional and commission', () => {
    const p = applyAll(createPortfolio({ initialCash: '100000' }), [fill('AAPL', 'buy', '10', '150.25', '1.00')]);
    expect(p.cash).toBe(money('98496.50'));
    expect(p.positions.get('AAPL')?.qty).toBe(parseQty('10'));
    expect(p.commissions).toBe(money('1'));
    expect(p.realizedPnl).toBe(0n);
  });

  it('adds to a position at the quantity-weighted average price', () => {
    const p = applyAll(createPortfolio({ initialCash: '100000' }), [fill('AAPL', 'buy', '10', '100'), fill('AAPL', 'buy', '30', '120')]);
    const position = p.positions.get('AAPL');
    expect(position && averagePrice(position)).toBe(parsePrice('115'));
  });

  it('keeps the average price to 1e-8, half-even, while the cost basis stays exact', () => {
    const p = applyAll(createPortfolio({ initialCash: '1000' }), [fill('X', 'buy', '1', '1'), fill('X', 'buy', '2', '1.00000001')]);
    const position = p.positions.get('X');
    // (1 + 2.00000002) / 3 = 1.00000000666…: rounded to 1.00000001
    expect(position && averagePrice(position)).toBe(parsePrice('1.00000001'));
    expect(position?.costBasis).toBe(money('3.00000002'));
  });

  it('realises P&L on a reduction against the average price and keeps the average', () => {
    const p = applyAll(createPortfolio({ initialCash: '100000' }), [
      fill('AAPL', 'buy', '10', '100'),
      fill('AAPL', 'buy', '10', '110'),
      fill('AAPL', 'sell', '5', '120', '0.50'),
    ]);
    expect(p.realizedPnl).toBe(money('75')); // 5 × (120 − 105)
    const position = p.positions.get('AAPL');
    expect(position?.qty).toBe(parseQty('15'));
    expect(position && averagePrice(position)).toBe(parsePrice('105'));
    expect(p.cash).toBe(money('98499.50')); // 100000 − 1000 − 1100 + 600 − 0.50
  });

  it('closes a position: it leaves the map and its whole basis is released exactly', () => {
    const p = applyAll(createPortfolio({ initialCash: '1000' }), [
      fill('X', 'buy', '3', '10'),
      fill('X', 'sell', '1', '11'),
      fill('X', 'sell', '2', '9'),
    ]);
    expect(p.positions.has('X')).toBe(false);
    expect(p.openCostBasis).toBe(0n);
    expect(p.realizedPnl).toBe(money('-1')); // 1 × 1 + 2 × (−1)
    expect(p.cash).toBe(money('999'));
  });

  it('flips long to short: closes at the fill price, then opens the remainder there', () => {
    const p = applyAll(createPortfolio({ initialCash: '10000' }), [fill('X', 'buy', '10', '50'), fill('X', 'sell', '15', '60')]);
    expect(p.realizedPnl).toBe(money('100'));
    const position = p.positions.get('X');
    expect(position?.qty).toBe(parseQty('-5'));
    expect(position && averagePrice(position)).toBe(parsePrice('60'));
    expect(position?.costBasis).toBe(money('-300'));
  });

  it('handles shorts: selling opens, buying back below the entry realises a gain', () => {
    const p = applyAll(createPortfolio({ initialCash: '10000' }), [fill('X', 'sell', '4', '25'), fill('X', 'buy', '4', '20', '2')]);
    expect(p.realizedPnl).toBe(money('20'));
    expect(p.cash).toBe(money('10018'));
    expect(p.positions.size).toBe(0);
  });

  it('applies the contract multiplier to cash, basis, P&L and value', () => {
    const start = createPortfolio({ initialCash: '100000', contractMultipliers: { ES: 50 } });
    const p = applyAll(start, [fill('ES', 'buy', '2', '4500.25'), fill('ES', 'sell', '1', '4510.25')]);
    expect(p.realizedPnl).toBe(money('500'));
    expect(p.cash).toBe(money('100000') - money('450025') + money('225512.5'));
    const position = p.positions.get('ES');
    expect(position && averagePrice(position)).toBe(parsePrice('4500.25'));
    expect(valuation(p).grossExposure).toBe(money('225512.5'));
  });

  it('rejects a malformed fill with its reason and still applies the rest of the batch', () => {
    const bad = { ...fill('X', 'buy', '1', '10'), qty: '1e3' };
    const negative = { ...fill('X', 'buy', '1', '10'), price: '-1' };
    const result = applyFills(createPortfolio({ initialCash: '1000' }), [bad, fill('X', 'buy', '2', '10'), negative]);
    expect(result.rejected.map((r) => [r.code, r.fill])).toEqual([
      ['INVALID_FILL', bad],
      ['INVALID_FILL', negative],
    ]);
    expect(result.rejected[0]?.detail).toMatch(/1e3/);
    expect(result.portfolio.positions.get('X')?.qty).toBe(parseQty('2'));
    expect(result.portfolio.fillCount).toBe(1);
  });

  it('returns the same portfolio when nothing in the batch applies', () => {
    const start = createPortfolio({ initialCash: '1000' });
    expect(applyFills(start, []).portfolio).toBe(start);
  });
});

describe('portfolio valuation', () => {
  it('marks to market: equity, unrealised P&L, gross and net exposure', () => {
    let p = applyAll(createPortfolio({ initialCash: '100000' }), [fill('L', 'buy', '100', '50'), fill('S', 'sell', '50', '40')]);
    p = markToMarket(p, parseMarkPrices({ L: 55, S: 42 }).prices);
    const v = valuation(p);
    expect(v.cash).toBe(money('97000'));
    expect(v.netExposure).toBe(money('3400')); // 5500 − 2100
    expect(v.grossExposure).toBe(money('7600'));
    expect(v.equity).toBe(money('100400'));
    expect(v.unrealizedPnl).toBe(money('400')); // +500 long, −100 short
  });

  it('values a position at its last fill price until a mark arrives', () => {
    const p = applyAll(createPortfolio({ initialCash: '1000' }), [fill('X', 'buy', '1', '10'), fill('X', 'buy', '1', '12')]);
    expect(valuation(p).equity).toBe(money('1002'));
  });

  it('keeps the last price of symbols that are not held', () => {
    const p = markToMarket(createPortfolio({ initialCash: '1000' }), parseMarkPrices({ IDLE: '3.5' }).prices);
    expect(p.lastPrices.get('IDLE')).toBe(parsePrice('3.5'));
    expect(valuation(p).equity).toBe(money('1000'));
  });

  it('rejects marks that are not prices, keeping the good ones', () => {
    const parsed = parseMarkPrices({ A: 10, B: -1, C: Number.NaN, 'bad symbol': 1, D: '1.5x' });
    expect(parsed.prices).toEqual([['A', parsePrice('10')]]);
    expect(parsed.rejected.map((r) => r.symbol)).toEqual(['B', 'C', 'bad symbol', 'D']);
  });

  it('summarises as DESIGN.md\'s Summary: decimal strings, money to the cent', () => {
    let p = applyAll(createPortfolio({ initialCash: '100000' }), [fill('AAPL', 'buy', '3', '100.005'), fill('MSFT', 'buy', '0.5', '400')]);
    p = markToMarket(p, parseMarkPrices({ AAPL: 101 }).prices);
    expect(portfolioSummary(p)).toEqual({
      initialCash: '100000.00',
      cash: '99499.98', // 100000 − 300.015 − 200 = 99499.985 → half-even to …98
      equity: '100002.98', // 99499.985 + 303 + 200 = 100002.985 → half-even to …98
      realizedPnl: '0.00',
      positions: { AAPL: { qty: '3', avgPrice: '100.005' }, MSFT: { qty: '0.5', avgPrice: '400' } },
    });
  });
});

describe('portfolio cash movements', () => {
  it('deposits and withdraws cash, tracking net deposits', () => {
    const start = createPortfolio({ initialCash: '1000' });
    const after = deposit(start, money('500'));
    expect(after.outcome).toBe('applied');
    if (after.outcome !== 'applied') return;
    const out = withdraw(after.portfolio, money('200'));
    if (out.outcome !== 'applied') throw new Error('withdrawal refused');
    expect(out.portfolio.cash).toBe(money('1300'));
    expect(out.portfolio.netDeposits).toBe(money('300'));
    expect(portfolioInvariantViolations(out.portfolio)).toEqual([]);
  });

  it('refuses a withdrawal larger than the cash, and non-positive amounts', () => {
    const start = createPortfolio({ initialCash: '100' });
    expect(withdraw(start, money('100.01'))).toEqual({
      outcome: 'refused',
      refusal: { code: 'INSUFFICIENT_CASH', detail: 'withdrawal 100.01 > cash 100.00' },
    });
    expect(deposit(start, 0n)).toMatchObject({ outcome: 'refused', refusal: { code: 'INVALID_AMOUNT' } });
    expect(withdraw(start, -1n)).toMatchObject({ outcome: 'refused', refusal: { code: 'INVALID_AMOUNT' } });
  });
});

describe('portfolio immutability and bounds', () => {
  it('never changes a portfolio a reader already holds', () => {
    const before = applyAll(createPortfolio({ initialCash: '1000' }), [fill('X', 'buy', '1', '10')]);
    const frozen = JSON.stringify(portfolioSnapshot(before));
    applyAll(before, [fill('X', 'sell', '1', '11'), fill('Y', 'buy', '2', '5')]);
    markToMarket(before, [['X', parsePrice('99')]]);
    expect(JSON.stringify(portfolioSnapshot(before))).toBe(frozen);
    expect(Object.isFrozen(before)).toBe(true);
    expect(Object.isFrozen(before.positions.get('X'))).toBe(true);
  });

  it('logs each fill as received with its effect, unaffected by later changes to the caller\'s object', () => {
    const sent = fill('X', 'buy', '2', '10.50', '1');
    const p = applyAll(createPortfolio({ initialCash: '1000' }), [sent]);
    (sent as { qty: string }).qty = '999';
    expect(p.tradeLog).toEqual([{ fill: { ...sent, qty: '2' }, realizedPnl: 0n, cashAfter: money('978') }]);
  });

  it('keeps only the newest fills in the trade log', () => {
    const fills = Array.from({ length: 7 }, (_, i) => fill('X', 'buy', '1', String(10 + i)));
    let p = createPortfolio({ initialCash: '1000', tradeLogLimit: 3 });
    p = applyAll(p, fills.slice(0, 2));
    p = applyAll(p, fills.slice(2, 4));
    expect(p.tradeLog.map((t) => t.fill.clientOrderId)).toEqual(fills.slice(1, 4).map((f) => f.clientOrderId));
    p = applyAll(p, fills.slice(4));
    expect(p.tradeLog.map((t) => t.fill.clientOrderId)).toEqual(fills.slice(4).map((f) => f.clientOrderId));
    expect(p.fillCount).toBe(7);
  });

  it('rejects bad options, naming every bad field', () => {
    try {
      createPortfolio({ initialCash: 'lots', tradeLogLimit: -1, contractMultipliers: { ES: 0 } });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidPortfolioError);
      expect((error as InvalidPortfolioError).issues.map((i) => i.field).sort()).toEqual(['contractMultipliers.ES', 'initialCash', 'tradeLogLimit']);
    }
    expect(() => createPortfolio({ initialCash: '-5' })).toThrow(/initialCash: must not be negative/);
  });
});

// ---- Property tests against an independent ledger --------------------------------------------

/**
 * The reference: exact rationals (numerator/denominator bigints at money scale) for the cost
 * basis and realised P&L, so no rounding at all, and a plain running sum for cash.
 */
class RationalLedger {
  cash: bigint;
  realized = { n: 0n, d: 1n };
  readonly open = new Map<string, { qty: bigint; basis: { n: bigint; d: bigint } }>();

  constructor(initialCash: bigint) {
    this.cash = initialCash;
  }

  apply(f: Fill): void {
    const signed = f.side === 'buy' ? parseQty(f.qty) : -parseQty(f.qty);
    const price = parsePrice(f.price);
    this.cash -= signed * price + parseMoney(f.commission);
    const lot = this.open.get(f.symbol) ?? { qty: 0n, basis: { n: 0n, d: 1n } };
    let { qty, basis } = lot;
    let remaining = signed;
    if (qty !== 0n && qty > 0n !== signed > 0n) {
      const openAbs = qty < 0n ? -qty : qty;
      const sizeAbs = signed < 0n ? -signed : signed;
      const closed = sizeAbs < openAbs ? sizeAbs : openAbs;
      const released = reduce({ n: basis.n * closed, d: basis.d * openAbs });
      const proceeds = (qty > 0n ? closed : -closed) * price;
      this.realized = add(this.realized, { n: proceeds * released.d - released.n, d: released.d });
      basis = reduce({ n: basis.n * released.d - released.n * basis.d, d: basis.d * released.d });
      qty += qty > 0n ? -closed : closed;
      remaining = signed > 0n ? signed - closed : signed + closed;
    }
    if (remaining !== 0n) {
      basis = add(basis, { n: remaining * price, d: 1n });
      qty += remaining;
    }
    if (qty === 0n) this.open.delete(f.symbol);
    else this.open.set(f.symbol, { qty, basis });
  }
}

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

function reduce(r: { n: bigint; d: bigint }): { n: bigint; d: bigint } {
  const g = gcd(r.n, r.d);
  return g === 0n || g === 1n ? r : { n: r.n / g, d: r.d / g };
}

function add(a: { n: bigint; d: bigint }, b: { n: bigint; d: bigint }): { n: bigint; d: bigint } {
  return reduce({ n: a.n * b.d + b.n * a.d, d: a.d * b.d });
}

const fillArbitrary = fc
  .record({
    symbol: fc.constantFrom('AAA', 'BBB', 'CCC'),
    side: fc.constantFrom<Side>('buy', 'sell'),
    qtyUnits: fc.integer({ min: 1, max: 50_000 }),
    qtyDecimals: fc.integer({ min: 0, max: 8 }),
    priceUnits: fc.integer({ min: 1, max: 50_000_000 }),
    priceDecimals: fc.integer({ min: 0, max: 8 }),
    commissionCents: fc.integer({ min: 0, max: 500 }),
  })
  .map(({ symbol, side, qtyUnits, qtyDecimals, priceUnits, priceDecimals, commissionCents }) =>
    fill(symbol, side, decimal(qtyUnits, qtyDecimals), decimal(priceUnits, priceDecimals), decimal(commissionCents, 2)),
  );

function decimal(units: number, decimals: number): string {
  const digits = String(units).padStart(decimals + 1, '0');
  return decimals === 0 ? digits : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}

describe('portfolio properties', () => {
  it('matches an exact rational ledger: cash and quantities exactly, realised P&L within the documented rounding', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fillArbitrary, { maxLength: 8 }), { maxLength: 30 }), (batches) => {
        const ledger = new RationalLedger(money('1000000'));
        let p = createPortfolio({ initialCash: '1000000' });
        let releases = 0n;
        for (const batch of batches) {
          for (const f of batch) {
            const before = ledger.open.get(f.symbol)?.qty ?? 0n;
            if (before !== 0n && before > 0n !== (f.side === 'buy')) releases += 1n;
            ledger.apply(f);
          }
          p = applyAll(p, batch);
          expect(p.cash).toBe(ledger.cash);
          expect([...p.positions].map(([s, pos]) => [s, pos.qty]).sort()).toEqual([...ledger.open].map(([s, lot]) => [s, lot.qty]).sort());
          // Each partial release rounds by at most half a unit of 1e-16; a full close rounds nothing.
          const error = p.realizedPnl * ledger.realized.d - ledger.realized.n;
          expect(2n * (error < 0n ? -error : error) <= releases * ledger.realized.d).toBe(true);
          expect(portfolioInvariantViolations(p)).toEqual([]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('restores from a snapshot to the same portfolio, which then gives the same answers', () => {
    const markArbitrary = fc.dictionary(fc.constantFrom('AAA', 'BBB', 'CCC', 'DDD'), fc.integer({ min: 1, max: 10_000_000 }).map((c) => c / 100));
    fc.assert(
      fc.property(
        fc.array(fillArbitrary, { maxLength: 40 }),
        markArbitrary,
        fc.array(fillArbitrary, { maxLength: 20 }),
        (history, marks, future) => {
          let p = createPortfolio({ initialCash: '500000', contractMultipliers: { BBB: 10 }, tradeLogLimit: 16 });
          p = markToMarket(applyAll(p, history), parseMarkPrices(marks).prices);
          const snapshot = portfolioSnapshot(p);
          const restored = restorePortfolio(JSON.parse(JSON.stringify(snapshot)));
          expect(restored).toEqual(p);
          expect(portfolioSnapshot(restored)).toEqual(snapshot);
          const a = applyAll(p, future);
          const b = applyAll(restored, future);
          expect(portfolioSnapshot(b)).toEqual(portfolioSnapshot(a));
          expect(portfolioSummary(b)).toEqual(portfolioSummary(a));
          expect(valuation(b)).toEqual(valuation(a));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses a snapshot whose numbers do not add up, or whose fields are bad', () => {
    const p = applyAll(createPortfolio({ initialCash: '1000' }), [fill('X', 'buy', '2', '10')]);
    const good = portfolioSnapshot(p);
    expect(() => restorePortfolio({ ...good, cash: formatMoneyExact(p.cash + 1n) })).toThrow(/cash \+ cost basis/);
    try {
      restorePortfolio({ ...good, cash: 12, positions: [{ ...good.positions[0], qty: 'ten' }] });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidPortfolioError);
      expect((error as InvalidPortfolioError).issues.map((i) => i.field).sort()).toEqual(['cash', 'positions.0.qty']);
    }
    expect(() => restorePortfolio({ ...good, lastPrices: {} })).toThrow(/X: no last price/);
  });
});

describe('a million random fills', () => {
  it('equal an independent integer-cents ledger to the cent, and realise exactly once flat', () => {
    // Seeded xorshift so a failure reproduces; integer cents fit a double exactly here.
    let seed = 0x2545f491;
    const random = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const symbols = Array.from({ length: 50 }, (_, i) => `SYM${i}`);
    const initialCents = 1_000_000_000;
    let cashCents = initialCents;
    let commissionCents = 0;
    const qty = new Map<string, number>();
    let p = createPortfolio({ initialCash: '10000000' });
    const batchSize = 10_000;
    const total = 1_000_000;
    for (let done = 0; done < total; done += batchSize) {
      const batch: Fill[] = [];
      for (let i = 0; i < batchSize; i += 1) {
        const symbol = symbols[random(symbols.length)] ?? 'SYM0';
        const side: Side = random(2) === 0 ? 'buy' : 'sell';
        const units = 1 + random(100);
        const priceCents = 1_000 + random(99_000);
        const feeCents = random(100);
        batch.push({
          clientOrderId: `m-${done + i}`,
          symbol,
          side,
          qty: String(units),
          price: decimal(priceCents, 2),
          commission: decimal(feeCents, 2),
          filledAt: done + i,
        });
        const signed = side === 'buy' ? units : -units;
        cashCents -= signed * priceCents + feeCents;
        commissionCents += feeCents;
        qty.set(symbol, (qty.get(symbol) ?? 0) + signed);
      }
      p = applyAll(p, batch);
      expect(formatMoney(p.cash)).toBe(decimal(cashCents, 2));
    }
    expect(p.fillCount).toBe(total);
    for (const [symbol, units] of qty) expect(p.positions.get(symbol)?.qty ?? 0n).toBe(BigInt(units) * 10n ** 8n);

    // Flatten everything at 100.00: every basis is released, so realised P&L must be exactly
    // the net cash flow of all trades, whatever the partial releases rounded on the way.
    const flatten = [...qty].filter(([, units]) => units !== 0).map(([symbol, units], i) => {
      cashCents -= -units * 10_000;
      return fill(symbol, units > 0 ? 'sell' : 'buy', String(Math.abs(units)), '100.00', '0', total + i);
    });
    p = applyAll(p, flatten);
    expect(p.positions.size).toBe(0);
    expect(p.cash).toBe(BigInt(cashCents) * 10n ** 14n);
    expect(p.realizedPnl).toBe(BigInt(cashCents - initialCents + commissionCents) * 10n ** 14n);
  });
});
