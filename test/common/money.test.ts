import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  divRoundHalfEven,
  formatDecimal,
  formatMoney,
  fromNumber,
  InvalidDecimalError,
  MONEY_DECIMALS,
  notional,
  parseDecimal,
  parseMoney,
  parsePrice,
  parseQty,
} from '../../src/common/money.js';

describe('parseDecimal', () => {
  it('reads decimal strings exactly at the requested scale', () => {
    expect(parseDecimal('100000.00', 2)).toBe(10_000_000n);
    expect(parseDecimal('-0.5', 8)).toBe(-50_000_000n);
    expect(parseDecimal('007', 0)).toBe(7n);
    expect(parseQty('0.00000001')).toBe(1n);
    expect(parseMoney('0.0000000000000001')).toBe(1n);
  });

  it('reads long strings beyond double precision exactly', () => {
    expect(parsePrice('123456789012345678.12345678')).toBe(12345678901234567812345678n);
    expect(parseMoney('-98765432109876543210.0123456789012345')).toBe(-987654321098765432100123456789012345n);
  });

  it('accepts trailing zeros past the scale but refuses significant digits there', () => {
    expect(parseQty('1.5000000000')).toBe(150_000_000n);
    expect(() => parseQty('1.000000001')).toThrow(/more than 8 decimal places/);
  });

  it.each(['', '-', '.5', '5.', '1e3', '+1', ' 1', '1,5', '1.2.3', 'NaN', '--1', '0x10'])('refuses %j with a typed error', (text) => {
    expect(() => parseDecimal(text, 8)).toThrow(InvalidDecimalError);
    try {
      parseDecimal(text, 8);
    } catch (error) {
      expect((error as InvalidDecimalError).code).toBe('INVALID_DECIMAL');
    }
  });

  it('round-trips every scaled integer through its exact string', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: 0, max: 18 }), (value, decimals) => {
        expect(parseDecimal(formatDecimal(value, decimals), decimals)).toBe(value);
      }),
    );
  });
});

describe('fromNumber', () => {
  it('reads a number as the decimal it prints as, not its binary expansion', () => {
    expect(fromNumber(0.1, 8)).toBe(10_000_000n);
    expect(fromNumber(0.1 + 0.2, 17)).toBe(30_000_000_000_000_004n);
    expect(fromNumber(123.45, 8)).toBe(12_345_000_000n);
    expect(fromNumber(1e-7, 8)).toBe(10n);
    expect(fromNumber(1.5e21, 2)).toBe(15n * 10n ** 22n);
    expect(fromNumber(-0, 8)).toBe(0n);
  });

  it('rounds half-even past the scale', () => {
    expect(fromNumber(0.125, 2)).toBe(12n);
    expect(fromNumber(0.135, 2)).toBe(14n);
    expect(fromNumber(-0.125, 2)).toBe(-12n);
    expect(fromNumber(1.23456789012, 8)).toBe(123_456_789n);
  });

  it('refuses non-finite numbers', () => {
    expect(() => fromNumber(Number.NaN, 8)).toThrow(InvalidDecimalError);
    expect(() => fromNumber(Number.POSITIVE_INFINITY, 8)).toThrow(InvalidDecimalError);
  });

  it('agrees with the string of any double with few decimals', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }), fc.integer({ min: 0, max: 6 }), (units, decimals) => {
        const value = units / 10 ** decimals;
        expect(fromNumber(value, 8)).toBe(parseDecimal(String(value).includes('e') ? value.toFixed(decimals) : String(value), 8));
      }),
    );
  });
});

/** An independent oracle: the shortest decimal `String(value)` prints, rounded half-even at `decimals`. */
function referenceScaled(value: number, decimals: number): bigint {
  const [mantissa = '', exponentText = '0'] = String(value).split('e');
  const negative = mantissa.startsWith('-');
  const [whole = '', fraction = ''] = mantissa.replace('-', '').split('.');
  const shift = Number(exponentText) - fraction.length + decimals;
  const digits = BigInt(whole + fraction);
  if (shift >= 0) return (negative ? -1n : 1n) * digits * 10n ** BigInt(shift);
  const divisor = 10n ** BigInt(-shift);
  const quotient = digits / divisor;
  const twiceRest = (digits % divisor) * 2n;
  const rounded = twiceRest > divisor || (twiceRest === divisor && quotient % 2n === 1n) ? quotient + 1n : quotient;
  return negative ? -rounded : rounded;
}

describe('fromNumber against the decimal it prints as', () => {
  it('agrees for any finite double', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 0, max: 17 }), (value, decimals) => {
        expect(fromNumber(value, decimals)).toBe(referenceScaled(value, decimals) || 0n);
      }),
      { numRuns: 5_000 },
    );
  });

  it('agrees for prices with up to 8 decimals, up to and past the fast path limit', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 53n), max: 2n ** 53n }), fc.integer({ min: 0, max: 10 }), (units, decimals) => {
        const value = Number(units) / 10 ** decimals;
        expect(fromNumber(value, 8)).toBe(referenceScaled(value, 8) || 0n);
      }),
      { numRuns: 5_000 },
    );
  });

  it('agrees next to the fast path limit of 2^51 scaled units', () => {
    for (let offset = -3; offset <= 3; offset += 1) {
      const value = (2 ** 51 + offset) / 1e8;
      expect(fromNumber(value, 8)).toBe(referenceScaled(value, 8));
      expect(fromNumber(-value, 8)).toBe(referenceScaled(-value, 8));
    }
  });
});

describe('divRoundHalfEven', () => {
  it('rounds ties to the even neighbour for every sign', () => {
    expect([5n, 15n, 25n, -5n, -15n, -25n].map((n) => divRoundHalfEven(n, 10n))).toEqual([0n, 2n, 2n, 0n, -2n, -2n]);
    expect(divRoundHalfEven(7n, -2n)).toBe(-4n);
    expect(divRoundHalfEven(16n, 10n)).toBe(2n);
    expect(divRoundHalfEven(-14n, 10n)).toBe(-1n);
  });

  it('is never more than half a unit from the exact quotient', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n }), fc.bigInt({ min: 1n, max: 10n ** 12n }), (n, d) => {
        const q = divRoundHalfEven(n, d);
        const error = n - q * d; // exact − rounded, times d
        expect(2n * (error < 0n ? -error : error) <= d).toBe(true);
      }),
    );
  });

  it('refuses division by zero', () => {
    expect(() => divRoundHalfEven(1n, 0n)).toThrow(RangeError);
  });
});

describe('formatting', () => {
  it('formats money to the cent, half-even, as the Summary shows it', () => {
    expect(formatMoney(parseMoney('100000'))).toBe('100000.00');
    expect(formatMoney(parseMoney('0.125'))).toBe('0.12');
    expect(formatMoney(parseMoney('0.135'))).toBe('0.14');
    expect(formatMoney(parseMoney('-0.004'))).toBe('0.00');
    expect(formatMoney(parseMoney('-12.345'))).toBe('-12.34');
  });

  it('formats exactly with trailing zeros trimmed when no places are asked', () => {
    expect(formatDecimal(150_000_000n, 8)).toBe('1.5');
    expect(formatDecimal(-5n, 2)).toBe('-0.05');
    expect(formatDecimal(100n, 2)).toBe('1');
    expect(formatDecimal(0n, 16)).toBe('0');
  });

  it('pads to more places than the scale without inventing digits', () => {
    expect(formatDecimal(15n, 1, 3)).toBe('1.500');
  });
});

describe('notional', () => {
  it('is exact at money scale: quantity scale × price scale = money scale', () => {
    const value = notional(parseQty('3.33333333'), parsePrice('0.33333333'), 1n);
    expect(formatDecimal(value, MONEY_DECIMALS)).toBe('1.1111110988888889');
    expect(notional(parseQty('2'), parsePrice('4500.25'), 50n)).toBe(parseMoney('450025'));
  });
});
