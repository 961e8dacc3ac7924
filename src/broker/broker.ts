import { z } from 'zod';
import type { Bar } from '../bars/bar.js';
import { clientOrderIdSchema } from '../idempotency/clientOrderId.js';
import { AistockError } from '../common/errors.js';
import { PriceStringSchema, QtyStringSchema, SideSchema, SymbolSchema, type Fill } from '../common/order.js';

/**
 * What the session needs from a broker. {@link PaperBroker} (src/broker/paperBroker.ts) is the
 * embedded default; a live adapter implements the same interface.
 *
 * Two kinds of "no": a refused order is a value ({@link SubmitResult} with a closed reason
 * code), a failed call is a thrown {@link BrokerError} whose `code` says whether the order may
 * be in the market (`BROKER_TIMEOUT`) or certainly is not (`BROKER_DISCONNECTED`,
 * `BROKER_LEDGER_FAILED`).
 */

const orderFields = {
  clientOrderId: clientOrderIdSchema,
  symbol: SymbolSchema,
  side: SideSchema,
  qty: QtyStringSchema,
};

/**
 * An order as the broker receives it: an {@link OrderIntent} with its client order id.
 * A limit order carries its price; a market order has none.
 */
export const BrokerOrderSchema = z.discriminatedUnion('type', [
  z.object({ ...orderFields, type: z.literal('market') }),
  z.object({ ...orderFields, type: z.literal('limit'), limitPrice: PriceStringSchema }),
]);
/** An order sent to a broker (see {@link BrokerOrderSchema}). */
export type BrokerOrder = z.infer<typeof BrokerOrderSchema>;

/** Where an order stands at the broker; `filled`, `cancelled` and `rejected` are final. */
export type BrokerOrderStatus = 'open' | 'partially_filled' | 'filled' | 'cancelled' | 'rejected';

/** One order as the broker knows it, with every fill it had. */
export interface BrokerOrderState {
  readonly order: BrokerOrder;
  readonly status: BrokerOrderStatus;
  /** Sum of `fills[].qty`, a decimal string (`"0"` before the first fill). */
  readonly filledQty: string;
  readonly fills: readonly Fill[];
  /** When the broker received the order, UTC epoch ms (broker's wall clock). */
  readonly receivedAt: number;
}

/** Why a broker refused an order: a closed set. */
export const BROKER_REJECT_REASONS = [
  'DUPLICATE_CLIENT_ORDER_ID',
  'INSUFFICIENT_FUNDS',
  'NO_MARKET_PRICE',
  'INJECTED_REJECTION',
  'INVALID_ORDER',
] as const;
/** One of {@link BROKER_REJECT_REASONS}. */
export type BrokerRejectReason = (typeof BROKER_REJECT_REASONS)[number];

/**
 * The broker's answer to a submit. `accepted` means the order is in the market; `fills` are
 * the executions that happened at once (possibly none: later ones arrive through `onFill`).
 * `rejected` means the order is not in the market.
 */
export type SubmitResult =
  | { readonly status: 'accepted'; readonly fills: readonly Fill[] }
  | { readonly status: 'rejected'; readonly reason: BrokerRejectReason; readonly detail: string };

/** The broker's answer to a cancel: done, no such order, or too late (filled or cancelled). */
export type CancelResult = 'cancelled' | 'not_found' | 'already_done';

/** The part of a bar a simulated broker needs to fill orders. */
export type BrokerBar = Pick<Bar, 'symbol' | 'ts' | 'open' | 'high' | 'low' | 'close'>;

/** A broker adapter: the market as the session sees it. */
export interface Broker {
  /** Places an order. Throws {@link BrokerError} when the call itself failed. */
  submit(order: BrokerOrder): Promise<SubmitResult>;
  /** Cancels what is left of an order. */
  cancel(clientOrderId: string): Promise<CancelResult>;
  /** Orders still working (`open` or `partially_filled`), oldest first. */
  openOrders(): Promise<BrokerOrderState[]>;
  /** Symbol → signed quantity (decimal string); flat symbols are left out. */
  positions(): Promise<Record<string, string>>;
  /** The order with this client id (the latest, if the broker accepted the id twice). */
  orderByClientId(clientOrderId: string): Promise<BrokerOrderState | undefined>;
  /** Every client order id the broker holds an order for, for reconciliation. */
  knownClientOrderIds(): Promise<string[]>;
  /** Calls `listener` with each fill that happens after its submit returned; returns unsubscribe. */
  onFill(listener: (fill: Fill) => void): () => void;
  /**
   * Market data, for simulated brokers: a bar closed. Returns `undefined` (synchronously, no
   * I/O) when no resting order fills on it, else a promise of the fills, which are durable and
   * already delivered to `onFill` listeners when it resolves.
   */
  observeBar?(bar: BrokerBar): Promise<Fill[]> | undefined;
  /** Waits for writes in flight and releases files and connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Why a broker call failed:
 * - `BROKER_DISCONNECTED`: no connection; the order was NOT placed. Retryable.
 * - `BROKER_TIMEOUT`: no reply; the order MAY be in the market. Ask `orderByClientId` before
 *   sending anything else for it. Retryable.
 * - `BROKER_LEDGER_FAILED`: the broker could not record the order; it was NOT placed. Retryable.
 * - `BROKER_CLOSED`: the adapter was closed. Not retryable.
 */
export type BrokerErrorCode = 'BROKER_DISCONNECTED' | 'BROKER_TIMEOUT' | 'BROKER_LEDGER_FAILED' | 'BROKER_CLOSED';

/** A broker call that failed (see {@link BrokerErrorCode}). */
export class BrokerError extends AistockError {
  declare readonly code: BrokerErrorCode;
  /** The order the failed call was about, when there was one. */
  readonly clientOrderId: string | undefined;
  /** True only for `BROKER_TIMEOUT`: the outcome is unknown, the order may be in the market. */
  readonly orderMayBePlaced: boolean;

  constructor(code: BrokerErrorCode, message: string, options: { clientOrderId?: string; cause?: unknown } = {}) {
    super(code, message, { retryable: code !== 'BROKER_CLOSED', cause: options.cause });
    this.clientOrderId = options.clientOrderId;
    this.orderMayBePlaced = code === 'BROKER_TIMEOUT';
  }
}
