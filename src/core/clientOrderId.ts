import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AistockError } from './errors.js';

/**
 * Deterministic client order ids: the same trading intent always gets the same id, so a bar
 * re-processed after a crash asks the broker about the order it may already have sent instead
 * of sending a second one.
 *
 * Shape: `<SYMBOL>-<24 hex>`, e.g. `AAPL-3f9c0a1b2c3d4e5f60718293`. The symbol prefix (up to 7
 * of its letters and digits, upper-cased) is there for people reading broker logs; the hash
 * (96 bits of SHA-256 over every input) is what makes the id unique. At most 32 characters,
 * only `[A-Za-z0-9-]`, which every mainstream broker accepts.
 *
 * Collision odds (birthday bound, n ids): p ≈ n² / 2^97. One million ids in a TTL window:
 * ~6·10⁻¹⁸; a billion ids ever: ~6·10⁻¹². A collision could only block an order (reported as a
 * duplicate), never send one twice.
 */

/** Longest id this module produces, and the longest the tracker accepts. */
export const CLIENT_ORDER_ID_MAX_LENGTH = 32;

const SYMBOL_PREFIX_LENGTH = 7;
const HASH_HEX_LENGTH = 24;
// Bumping this changes every id: only with a migration that reconciles old ids first.
const ID_SCHEME = 'aistock-coid/1';

/** A broker-safe client order id: 1–32 characters of `[A-Za-z0-9-]` (one regex: it is checked per journal line). */
export const clientOrderIdSchema = z
  .string()
  .regex(new RegExp(`^[A-Za-z0-9-]{1,${CLIENT_ORDER_ID_MAX_LENGTH}}$`), `1 to ${CLIENT_ORDER_ID_MAX_LENGTH} letters, digits or "-"`);

const decimalString = /^[+-]?\d+(\.\d+)?$/;

/** What identifies one order intent; every field changes the id. */
export const orderIntentKeySchema = z.object({
  sessionId: z.string().min(1),
  strategyId: z.string().min(1),
  symbol: z.string().min(1),
  /** The bar's open time, UTC epoch milliseconds. */
  barTime: z.number().int(),
  /** Which of the strategy's intents on this bar (0, 1, …). */
  intentIndex: z.number().int().nonnegative(),
  /** Signed decimal string; `"10"`, `"10.0"` and `"+10"` are the same quantity. */
  quantity: z.string().regex(decimalString, 'a decimal string such as "10" or "-2.5"'),
});

/** The inputs of {@link clientOrderId}. */
export type OrderIntentKey = z.infer<typeof orderIntentKeySchema>;

/** The inputs of {@link clientOrderId} failed validation. A bug in the caller: do not retry. */
export class InvalidOrderIntentError extends AistockError {
  constructor(detail: string) {
    super('INVALID_ORDER_INTENT', `cannot derive a client order id: ${detail}`);
  }
}

/** A string that is not a broker-safe client order id was given where one is required. */
export class InvalidClientOrderIdError extends AistockError {
  readonly clientOrderId: string;

  constructor(clientOrderId: string, detail: string) {
    super('INVALID_CLIENT_ORDER_ID', `${JSON.stringify(clientOrderId)} is not a client order id: ${detail}`);
    this.clientOrderId = clientOrderId;
  }
}

/** The id of one order intent; throws {@link InvalidOrderIntentError} on invalid inputs. */
export function clientOrderId(key: OrderIntentKey): string {
  const parsed = orderIntentKeySchema.safeParse(key);
  if (!parsed.success) throw new InvalidOrderIntentError(z.prettifyError(parsed.error));
  const { sessionId, strategyId, symbol, barTime, intentIndex, quantity } = parsed.data;
  // A JSON array cannot be confused across field boundaries ("a","bc" vs "ab","c").
  const canonical = JSON.stringify([ID_SCHEME, sessionId, strategyId, symbol, barTime, intentIndex, canonicalDecimal(quantity)]);
  const hash = createHash('sha256').update(canonical).digest('hex').slice(0, HASH_HEX_LENGTH);
  return `${symbolPrefix(symbol)}-${hash}`;
}

/** Throws {@link InvalidClientOrderIdError} unless `id` is broker-safe; returns it otherwise. */
export function assertClientOrderId(id: string): string {
  const parsed = clientOrderIdSchema.safeParse(id);
  if (!parsed.success) throw new InvalidClientOrderIdError(id, z.prettifyError(parsed.error));
  return parsed.data;
}

function symbolPrefix(symbol: string): string {
  const letters = symbol.toUpperCase().replace(/[^A-Z0-9]/g, '').slice(0, SYMBOL_PREFIX_LENGTH);
  // A symbol with no ASCII letters or digits still gets a readable, valid prefix.
  return letters === '' ? 'X' : letters;
}

/** `"+010.50"` → `"10.5"`, `"-0.0"` → `"0"`: equal quantities give equal ids. */
function canonicalDecimal(text: string): string {
  const negative = text.startsWith('-');
  const unsigned = text.replace(/^[+-]/, '');
  const [whole = '0', fraction = ''] = unsigned.split('.');
  const integerPart = whole.replace(/^0+(?=\d)/, '');
  const fractionPart = fraction.replace(/0+$/, '');
  const magnitude = fractionPart === '' ? integerPart : `${integerPart}.${fractionPart}`;
  return negative && magnitude !== '0' ? `-${magnitude}` : magnitude;
}
