/**
 * Order-rate counting on the monotonic clock (a wall-clock jump cannot reset it).
 *
 * An order counts when its client order id is reserved (`recordOrder`), not when the broker
 * answers: the original counted after a successful submit and so forgot orders whose submit
 * failed. Between the risk check and the reservation the order is *held*: a hold counts like a
 * reserved order, so concurrent checks cannot all pass before any is reserved. A reservation
 * turns its hold into a count stamped at the reservation time; a release (the reservation was
 * refused: duplicate id, failed write) drops the hold. A hold never settled expires with the
 * one-minute window, so a lost answer cannot block the limit for good.
 */

/** Length of the per-minute window on the monotonic clock. */
export const RATE_WINDOW_MS = 60_000;

/** Reserved and held orders, as plain data. */
export interface OrderRateState {
  /** Monotonic ms of reservations within the last window. */
  readonly reserved: readonly number[];
  /** Approved, not yet reserved or released: order id → monotonic ms of the approval. */
  readonly held: ReadonlyMap<string, number>;
  /** Reservations since the trading day started. */
  readonly reservedToday: number;
}

/** No orders yet. */
export const NO_ORDERS: OrderRateState = Object.freeze({ reserved: Object.freeze([]), held: new Map(), reservedToday: 0 });

function liveHolds(state: OrderRateState, nowMono: number): number {
  let live = 0;
  for (const heldAt of state.held.values()) if (heldAt > nowMono - RATE_WINDOW_MS) live += 1;
  return live;
}

/** Orders that count against the per-minute limit at `nowMono`: reserved in the window, plus live holds. */
export function ordersInLastMinute(state: OrderRateState, nowMono: number): number {
  let count = 0;
  for (const at of state.reserved) if (at > nowMono - RATE_WINDOW_MS) count += 1;
  return count + liveHolds(state, nowMono);
}

/** Orders that count against the per-day limit at `nowMono`: reserved today, plus live holds. */
export function ordersToday(state: OrderRateState, nowMono: number): number {
  return state.reservedToday + liveHolds(state, nowMono);
}

function pruned(state: OrderRateState, nowMono: number, held: Map<string, number>, reserved: readonly number[]): OrderRateState {
  const cutoff = nowMono - RATE_WINDOW_MS;
  for (const [orderId, heldAt] of held) if (heldAt <= cutoff) held.delete(orderId);
  return Object.freeze({
    reserved: Object.freeze(reserved.filter((at) => at > cutoff)),
    held,
    reservedToday: state.reservedToday,
  });
}

/** Holds a slot for an approved order until it is reserved or released. */
export function holdOrder(state: OrderRateState, orderId: string, nowMono: number): OrderRateState {
  const held = new Map(state.held);
  held.set(orderId, nowMono);
  return pruned(state, nowMono, held, state.reserved);
}

/** Counts a reserved order (its hold, if any, becomes the count). */
export function recordOrder(state: OrderRateState, orderId: string, nowMono: number): OrderRateState {
  const held = new Map(state.held);
  held.delete(orderId);
  return pruned({ ...state, reservedToday: state.reservedToday + 1 }, nowMono, held, [...state.reserved, nowMono]);
}

/** Drops the hold of an order whose reservation was refused: it never reached the broker. */
export function releaseOrder(state: OrderRateState, orderId: string): OrderRateState {
  if (!state.held.has(orderId)) return state;
  const held = new Map(state.held);
  held.delete(orderId);
  return Object.freeze({ ...state, held });
}

/** A new trading day: the daily count restarts; the minute window and holds carry on. */
export function startDayCount(state: OrderRateState): OrderRateState {
  return Object.freeze({ ...state, reservedToday: 0 });
}

/** The counts for a checkpoint: ages, because monotonic times mean nothing in another process. */
export interface OrderRateSnapshot {
  reservedAgesMs: number[];
  reservedToday: number;
}

/** Snapshot at `nowMono`. Holds are not kept: a restarted session re-checks what it had not reserved. */
export function orderRateSnapshot(state: OrderRateState, nowMono: number): OrderRateSnapshot {
  return {
    reservedAgesMs: state.reserved.filter((at) => at > nowMono - RATE_WINDOW_MS).map((at) => Math.max(0, nowMono - at)),
    reservedToday: state.reservedToday,
  };
}

/**
 * Restores counts at `nowMono` of a new process. The time between save and restore is not
 * known on any monotonic clock, so it is taken as zero: the restored window is never shorter
 * than the one saved, and a restart cannot admit more orders than the limit.
 */
export function restoreOrderRate(snapshot: OrderRateSnapshot, nowMono: number): OrderRateState {
  return Object.freeze({
    reserved: Object.freeze(snapshot.reservedAgesMs.map((age) => nowMono - age)),
    held: new Map(),
    reservedToday: snapshot.reservedToday,
  });
}
