import { z } from 'zod';
import { MONEY_DECIMALS, PRICE_DECIMALS, QTY_DECIMALS } from './money.js';

/**
 * The trading vocabulary shared by the strategy, risk, session, broker and portfolio, as zod
 * schemas for the boundaries and `z.infer` types for the code. Quantities and money cross
 * boundaries as decimal strings (the broker ledger's format, DESIGN.md), never as floats.
 */

function unsignedDecimal(decimals: number): RegExp {
  return new RegExp(`^\\d+(\\.\\d{1,${decimals}})?$`);
}

const HAS_NON_ZERO_DIGIT = /[1-9]/;

/** A signed decimal string with at most 16 decimals (money): `"100000.00"`, `"-12.5"`. */
export const MoneyStringSchema = z.string().regex(new RegExp(`^-?\\d+(\\.\\d{1,${MONEY_DECIMALS}})?$`), {
  message: `expected a decimal string with at most ${MONEY_DECIMALS} decimals, like "100000.00"`,
});

/** A quantity: a decimal string greater than zero with at most 8 decimals (`"10"`, `"0.5"`). */
export const QtyStringSchema = z
  .string()
  .regex(unsignedDecimal(QTY_DECIMALS), { message: `expected a decimal string with at most ${QTY_DECIMALS} decimals, like "10"` })
  .refine((text) => HAS_NON_ZERO_DIGIT.test(text), { message: 'quantity must be greater than zero' });

/** A price: a decimal string greater than zero with at most 8 decimals (`"123.45"`). */
export const PriceStringSchema = z
  .string()
  .regex(unsignedDecimal(PRICE_DECIMALS), { message: `expected a decimal string with at most ${PRICE_DECIMALS} decimals, like "123.45"` })
  .refine((text) => HAS_NON_ZERO_DIGIT.test(text), { message: 'price must be greater than zero' });

/** A commission: a decimal string, zero or more, with at most 16 decimals (`"0.005"`). */
export const CommissionStringSchema = z.string().regex(unsignedDecimal(MONEY_DECIMALS), {
  message: `expected a non-negative decimal string with at most ${MONEY_DECIMALS} decimals, like "1.00"`,
});

/** What a symbol looks like: `AAPL`, `BRK.B`, `BTC/USD`, `ES=F` (1–32 characters, no spaces). */
export const SYMBOL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/=^-]{0,31}$/;

/** An instrument symbol (see {@link SYMBOL_PATTERN}). */
export const SymbolSchema = z.string().regex(SYMBOL_PATTERN, {
  message: 'expected a symbol of 1-32 letters, digits or . _ : / = ^ - starting with a letter or digit',
});

/** Order side, in ccxt's words. */
export const SideSchema = z.enum(['buy', 'sell']);
/** `'buy'` or `'sell'`. */
export type Side = z.infer<typeof SideSchema>;

const intentFields = {
  symbol: SymbolSchema,
  side: SideSchema,
  qty: QtyStringSchema,
  /** Why the strategy wants this order, for logs (`"sma cross up"`). */
  reason: z.string().max(200).optional(),
};

/**
 * What a strategy asks for: a market order, or a limit order with its price. Risk checks it,
 * the idempotency tracker reserves its client order id, the broker executes it.
 */
export const OrderIntentSchema = z.discriminatedUnion('type', [
  z.object({ ...intentFields, type: z.literal('market') }),
  z.object({ ...intentFields, type: z.literal('limit'), limitPrice: PriceStringSchema }),
]);
/** An order a strategy wants placed (see {@link OrderIntentSchema}). */
export type OrderIntent = z.infer<typeof OrderIntentSchema>;

/**
 * One execution, as the broker reports it and the PaperBroker writes it to
 * `broker/fills.jsonl`. `qty` is unsigned (the side says which way); `filledAt` is UTC epoch ms.
 */
export const FillSchema = z.object({
  clientOrderId: z.string().min(1).max(128),
  symbol: SymbolSchema,
  side: SideSchema,
  qty: QtyStringSchema,
  price: PriceStringSchema,
  commission: CommissionStringSchema,
  filledAt: z.number().int().nonnegative(),
});
/** One execution of (part of) an order (see {@link FillSchema}). */
export type Fill = z.infer<typeof FillSchema>;

/** `+1` for a buy, `-1` for a sell: the sign a fill gives to a position's quantity. */
export function sideSign(side: Side): 1n | -1n {
  return side === 'buy' ? 1n : -1n;
}
