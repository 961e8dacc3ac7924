import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AistockError } from '../common/errors.js';

/**
 * Deterministic client order ids: the same trading intent always gets the same id, so a bar
 * re-processed after a crash asks the broker about the order it may already have sent instead
 * of sending a second one.
 *
 * Shape: `<SYMBOL>-<bar time>-<session tag><hash>`, e.g. `AAPL-m5dh3e80-3f9c0a1b2c3d4e`:
 * - up to 6 letters and digits of the symbol, upper-cased, for people reading broker logs;
 * - the bar's open time in base 36 (epoch ms; `N` before it when negative), so the id says which
 *   bar decided it: a restart knows, from the broker's ids alone, whether that bar will be
 *   decided again (after the checkpoint's watermark) or is final;
 * - 6 hex of the session tag (SHA-256 of session id and strategy id): the session's own orders
 *   are the broker's ids carrying its tag, whatever its journal holds;
 * - 8 hex (32 bits) of SHA-256 over every input. Ids that share symbol prefix, bar time and tag
 *   differ only by intent index, quantity or symbol beyond the prefix — a handful per bar — so
 *   32 bits make a collision (which could only block an order, never send one twice) ~10⁻⁹.
 * At most 32 characters, only `[A-Za-z0-9-]`, which every mainstream broker accepts.
 */

/** Longest id this module produces, and the longest the tracker accepts. */
export const CLIENT_ORDER_ID_MAX_LENGTH = 32;

const SYMBOL_PREFIX_LENGTH = 6;
const TAG_HEX_LENGTH = 6;
const HASH_HEX_LENGTH = 8;
/** Bar times the id can carry: |ms| below 36⁹ (years −1248 to 5188). */
const BAR_TIME_LIMIT = 36 ** 9;
// Bumping this changes every id: only with a migration that reconciles old ids first.
const ID_SCHEME = 'aistock-coid/2';

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
  barTime: z.number().int().refine((ms) => Math.abs(ms) < BAR_TIME_LIMIT, 'a bar time between the years -1248 and 5188'),
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
  return `${symbolPrefix(symbol)}-${encodeBarTime(barTime)}-${sessionTag(sessionId, strategyId)}${hash}`;
}

/** The tag every client order id of one session and strategy carries (6 hex). */
export function sessionTag(sessionId: string, strategyId: string): string {
  return createHash('sha256').update(JSON.stringify([ID_SCHEME, sessionId, strategyId])).digest('hex').slice(0, TAG_HEX_LENGTH);
}

/** What an id of this scheme says about itself. */
export interface ClientOrderIdParts {
  readonly symbolPrefix: string;
  readonly barTime: number;
  readonly tag: string;
}

const ID_PATTERN = new RegExp(`^([A-Z0-9]{1,${SYMBOL_PREFIX_LENGTH}})-(N?)([0-9a-z]{1,9})-([0-9a-f]{${TAG_HEX_LENGTH}})[0-9a-f]{${HASH_HEX_LENGTH}}$`);

/** The parts of an id {@link clientOrderId} made, or `null` for any other id (another system's, or a user's own). */
export function parseClientOrderId(id: string): ClientOrderIdParts | null {
  const match = ID_PATTERN.exec(id);
  if (match === null) return null;
  const [, prefix = '', negative, time = '', tag = ''] = match;
  const magnitude = Number.parseInt(time, 36);
  return { symbolPrefix: prefix, barTime: negative === 'N' ? -magnitude : magnitude, tag };
}

/** Whether `id` is one of the orders of the session and strategy `tag` names (see `sessionTag`). */
export function isOwnOrder(id: string, tag: string): boolean {
  return parseClientOrderId(id)?.tag === tag;
}

/**
 * An id of the first scheme (`AAPL-<24 hex>`, aistock 0.1): it names neither bar nor session,
 * so a state dir holding such ids cannot be resumed safely by this version.
 */
export function isLegacyClientOrderId(id: string): boolean {
  return /^[A-Z0-9]{1,7}-[0-9a-f]{24}$/.test(id);
}

/** The readable symbol prefix of the ids of `symbol` (ids of several symbols may share one). */
export function symbolPrefix(symbol: string): string {
  const letters = symbol.toUpperCase().replace(/[^A-Z0-9]/g, '').slice(0, SYMBOL_PREFIX_LENGTH);
  // A symbol with no ASCII letters or digits still gets a readable, valid prefix.
  return letters === '' ? 'X' : letters;
}

function encodeBarTime(ms: number): string {
  return ms < 0 ? `N${(-ms).toString(36)}` : ms.toString(36);
}

/** Throws {@link InvalidClientOrderIdError} unless `id` is broker-safe; returns it otherwise. */
export function assertClientOrderId(id: string): string {
  const parsed = clientOrderIdSchema.safeParse(id);
  if (!parsed.success) throw new InvalidClientOrderIdError(id, z.prettifyError(parsed.error));
  return parsed.data;
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
