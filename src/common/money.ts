import { AistockError } from './errors.js';

/**
 * Exact money and quantities as scaled integers (`bigint`): a value `v` at `d` decimals is the
 * integer `v · 10^d`. No binary floating point touches cash, P&L or average price.
 *
 * Scales, chosen so the hot-path arithmetic never rounds:
 * - quantity: 8 decimals (fractional shares and crypto lots);
 * - price: 8 decimals (FX pips, sub-cent crypto prices);
 * - money: 16 decimals = quantity × price, so a notional `qty × price × multiplier` is exact,
 *   and cash, cost basis and realised P&L are sums of exact notionals.
 * - ratio (risk limits such as 0.05): 8 decimals.
 *
 * The only division in portfolio math is the cost basis released by a partial close
 * (`basis × closed / open`), rounded half-even at 1e-16; a full close releases the basis
 * exactly. The average price shown to users is `basis / (qty × multiplier)` rounded half-even
 * to 1e-8. `bigint` has no overflow, so there is no range guard to trip. Its cost is speed,
 * measured in bench/portfolioRisk: the portfolio still applies over 500,000 fills/s, and the
 * hot parse path reads short strings (≤ 15 digits) through a double before one bigint step.
 *
 * Decimal strings are parsed strictly (no exponent, no rounding: digits past the scale must be
 * zeros); finite numbers (bar prices) are read from their shortest round-trip decimal form and
 * rounded half-even to the scale, so `0.1` is exactly `0.1`, not `0.1000000000000000055…`.
 */

/** Decimal places of a quantity. */
export const QTY_DECIMALS = 8;
/** Decimal places of a price (and of an average price). */
export const PRICE_DECIMALS = 8;
/** Decimal places of money: quantity × price, so notionals are exact. */
export const MONEY_DECIMALS = QTY_DECIMALS + PRICE_DECIMALS;
/** Decimal places of a ratio (risk limits, fractions of equity). */
export const RATIO_DECIMALS = 8;

/** A signed quantity, scaled by 10^8. */
export type Qty = bigint;
/** A price, scaled by 10^8. */
export type Price = bigint;
/** An amount of money, scaled by 10^16. */
export type Money = bigint;
/** A dimensionless ratio, scaled by 10^8 (`0.05` is `5_000_000n`). */
export type Ratio = bigint;

const POWERS_OF_TEN: readonly bigint[] = Array.from({ length: 64 }, (_, exponent) => 10n ** BigInt(exponent));

/** `10^exponent` as a bigint (cached for the exponents aistock uses). */
export function pow10(exponent: number): bigint {
  return POWERS_OF_TEN[exponent] ?? 10n ** BigInt(exponent);
}

/** The ratio 1.0 (`limit × equity / ONE_RATIO` is a limit in money). */
export const ONE_RATIO: Ratio = pow10(RATIO_DECIMALS);

/** A string or number that is not a decimal aistock can hold exactly. */
export class InvalidDecimalError extends AistockError {
  readonly input: string;

  constructor(input: string, problem: string) {
    super('INVALID_DECIMAL', `${JSON.stringify(input)} is not a valid decimal: ${problem}`);
    this.input = input;
  }
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;
const NON_ZERO_DIGIT = /[1-9]/;

/**
 * Parses a decimal string (`"100000.00"`, `"-0.5"`) into an integer scaled by `10^decimals`.
 * Exact: throws {@link InvalidDecimalError} for anything else, including significant digits
 * past the scale (trailing zeros past it are fine).
 */
export function parseDecimal(text: string, decimals: number): bigint {
  // Up to 15 digits fit a double exactly: read them in one pass, convert to bigint once.
  if (text.length <= 16) {
    const scaled = parseShortDecimal(text, decimals);
    if (scaled !== undefined) return scaled;
  }
  const match = DECIMAL.exec(text);
  if (match === null) throw new InvalidDecimalError(text, 'expected digits with an optional sign and fraction, like "-12.50"');
  const [, sign, whole = '0', fraction = ''] = match;
  let digits = fraction;
  if (digits.length > decimals) {
    if (NON_ZERO_DIGIT.test(digits.slice(decimals))) {
      throw new InvalidDecimalError(text, `more than ${decimals} decimal places`);
    }
    digits = digits.slice(0, decimals);
  }
  const scaled = BigInt(whole + digits.padEnd(decimals, '0'));
  return sign === '-' ? -scaled : scaled;
}

/** The fast path of {@link parseDecimal}; `undefined` sends anything unusual to the exact path. */
function parseShortDecimal(text: string, decimals: number): bigint | undefined {
  const negative = text.charCodeAt(0) === 45; // '-'
  let digits = 0;
  let digitCount = 0;
  let fractionDigits = -1;
  for (let i = negative ? 1 : 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      // '.': only one, and only after a digit.
      if (fractionDigits >= 0 || digitCount === 0) return undefined;
      fractionDigits = 0;
    } else if (code >= 48 && code <= 57) {
      digits = digits * 10 + (code - 48);
      digitCount += 1;
      if (fractionDigits >= 0) fractionDigits += 1;
    } else {
      return undefined;
    }
  }
  if (digitCount === 0 || fractionDigits === 0 || fractionDigits > decimals) return undefined;
  const scaled = BigInt(digits) * pow10(decimals - Math.max(0, fractionDigits));
  return negative ? -scaled : scaled;
}

/**
 * Reads a finite number at `10^decimals` scale, rounding half-even. The number is taken at its
 * shortest round-trip decimal form (`String(n)`), which is what a user or a CSV file wrote.
 */
export function fromNumber(value: number, decimals: number): bigint {
  if (!Number.isFinite(value)) throw new InvalidDecimalError(String(value), 'not a finite number');
  if (Number.isSafeInteger(value)) return BigInt(value) * pow10(decimals);
  const exact = exactScaled(value, decimals);
  if (exact !== undefined) return BigInt(exact);
  // String(n) is "[-]digits[.digits][e±exp]"; split it into an integer mantissa and a power of ten.
  const text = String(value);
  const [mantissa = '', exponentText = '0'] = text.split('e');
  const negative = mantissa.startsWith('-');
  const [whole = '', fraction = ''] = (negative ? mantissa.slice(1) : mantissa).split('.');
  const digits = BigInt(whole + fraction);
  const exponent = Number(exponentText) - fraction.length + decimals;
  const scaled = exponent >= 0 ? digits * pow10(exponent) : divRoundHalfEven(digits, pow10(-exponent));
  return negative ? -scaled : scaled;
}

const NUMBER_POWERS_OF_TEN: readonly number[] = Array.from({ length: 16 }, (_, exponent) => 10 ** exponent);
/** Below 2^51 the product `value · 10^d` lands within 0.5 of the integer it stands for. */
const EXACT_PRODUCT_LIMIT = 2 ** 51;

/**
 * The fast path of {@link fromNumber} (a bar price such as `101.25`): `value · 10^decimals` as a
 * safe integer when the number is exactly a decimal with at most `decimals` places, else
 * undefined. The division check is exact (IEEE division rounds correctly), and below 2^51 no
 * two such decimals share a double, so the result equals the string path's.
 */
function exactScaled(value: number, decimals: number): number | undefined {
  const scale = NUMBER_POWERS_OF_TEN[decimals];
  if (scale === undefined) return undefined;
  const scaled = Math.round(value * scale);
  if (Math.abs(scaled) >= EXACT_PRODUCT_LIMIT || scaled / scale !== value) return undefined;
  return scaled;
}

/** Parses a decimal string, or reads a finite number, at `10^decimals` scale. */
function toScaled(value: string | number, decimals: number): bigint {
  return typeof value === 'number' ? fromNumber(value, decimals) : parseDecimal(value, decimals);
}

/** Parses a quantity (`"10"`, `"0.5"`). */
export function parseQty(value: string | number): Qty {
  return toScaled(value, QTY_DECIMALS);
}

/** Parses a price (`"123.45"`, or a bar's close as a number). */
export function parsePrice(value: string | number): Price {
  return toScaled(value, PRICE_DECIMALS);
}

/** Parses an amount of money (`"100000.00"`, `"0.005"`). */
export function parseMoney(value: string | number): Money {
  return toScaled(value, MONEY_DECIMALS);
}

/** Parses a ratio (`0.05`). */
export function parseRatio(value: string | number): Ratio {
  return toScaled(value, RATIO_DECIMALS);
}

/**
 * `numerator / denominator` rounded half-even (banker's rounding), for any signs.
 * Half-even keeps rounding unbiased over millions of operations.
 */
export function divRoundHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator === 0n) throw new RangeError('divRoundHalfEven: division by zero');
  const negative = numerator < 0n !== denominator < 0n;
  const n = numerator < 0n ? -numerator : numerator;
  const d = denominator < 0n ? -denominator : denominator;
  let quotient = n / d;
  const twiceRemainder = (n - quotient * d) * 2n;
  if (twiceRemainder > d || (twiceRemainder === d && (quotient & 1n) === 1n)) quotient += 1n;
  return negative ? -quotient : quotient;
}

/** `|value|`. */
export function abs(value: bigint): bigint {
  return value < 0n ? -value : value;
}

/** The smaller of two values. */
export function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** The larger of two values. */
export function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** The money value of `qty` units at `price` for a contract of `multiplier` (exact). */
export function notional(qty: Qty, price: Price, multiplier: bigint): Money {
  return multiplier === 1n ? qty * price : qty * price * multiplier;
}

/**
 * Formats a scaled integer as a decimal string. Without `places` the string is exact, with
 * trailing zeros trimmed (`"0.5"`, `"100000"`); with `places` it is rounded half-even to
 * exactly that many decimals (`"100000.00"`).
 */
export function formatDecimal(value: bigint, decimals: number, places?: number): string {
  if (places !== undefined && places < decimals) {
    return formatDecimal(divRoundHalfEven(value, pow10(decimals - places)), places, places);
  }
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  let fraction = digits.slice(digits.length - decimals);
  if (places === undefined) fraction = fraction.replace(/0+$/, '');
  else fraction = fraction.padEnd(places, '0');
  const text = fraction === '' ? whole : `${whole}.${fraction}`;
  return negative && /[1-9]/.test(text) ? `-${text}` : text;
}

/** Money to the cent, half-even: `"100000.00"` (the Summary's format). */
export function formatMoney(value: Money): string {
  return formatDecimal(value, MONEY_DECIMALS, 2);
}

/** Money exactly, trailing zeros trimmed (snapshots). */
export function formatMoneyExact(value: Money): string {
  return formatDecimal(value, MONEY_DECIMALS);
}

/** A quantity exactly, trailing zeros trimmed: `"10"`, `"-0.5"`. */
export function formatQty(value: Qty): string {
  return formatDecimal(value, QTY_DECIMALS);
}

/** A price exactly, trailing zeros trimmed: `"123.45"`. */
export function formatPrice(value: Price): string {
  return formatDecimal(value, PRICE_DECIMALS);
}

/** A ratio as a percentage for messages: `"20.00%"` (display only). */
export function formatPercent(value: Ratio): string {
  return `${formatDecimal(value * 100n, RATIO_DECIMALS, 2)}%`;
}

/** `part / whole` as a {@link Ratio}, rounded half-even (`whole` must not be zero). */
export function ratioOf(part: bigint, whole: bigint): Ratio {
  return divRoundHalfEven(part * ONE_RATIO, whole);
}
