import type { Bar } from '../bars/bar.js';
import { AistockError, describeError } from '../common/errors.js';
import type { IdempotencyRefusal, ReserveResult } from '../../machines/idempotency.machine.js';
import type { OrderOutcome, OrderRefusal, OrderRefusalCode, PlannedOrder } from './sessionPipeline.js';
import { BrokerError, type Broker, type BrokerOrder, type BrokerOrderState } from '../broker/broker.js';
import type { IdempotencyTracker } from '../idempotency/idempotencyTracker.js';

/**
 * Sends planned orders to the broker exactly once: write ahead (the id is fsynced as
 * `reserved` before the broker sees it), submit, then record the answer. An id the journal
 * already holds is never sent again unless the broker says it never arrived.
 */

/** Where broker-call deadlines are timed: Node's timers, or xstate's `SimulatedClock` in tests. */
export interface DeadlineTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

/** Node's own timers. */
export const realTimers: DeadlineTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as Parameters<typeof clearTimeout>[0]),
};

export interface ExecutionDeps {
  tracker: IdempotencyTracker;
  broker: Broker;
  /** Longest wait for one broker call; past it the outcome is `unknown`. */
  brokerTimeoutMs: number;
  /** What times that wait (default {@link realTimers}). */
  timers?: DeadlineTimers;
  log: (entry: Record<string, unknown>) => void;
  /** Throws once this process may no longer act for the session (its store's lease was taken over); checked before any broker call. */
  assertHeld?: () => void;
}

/** A broker adapter threw something that is not a {@link BrokerError}: a bug in the adapter, not a state of the broker. */
export class BrokerAdapterError extends AistockError {
  readonly clientOrderId: string;

  constructor(clientOrderId: string, cause: unknown) {
    super('BROKER_ADAPTER_FAILED', `the broker adapter failed submitting ${clientOrderId} with an error that is not a BrokerError: ${describeError(cause)}`, {
      cause,
    });
    this.clientOrderId = clientOrderId;
  }
}

/** Thrown by {@link withDeadline} when a broker call takes too long: it may have happened. */
function timeoutError(what: string, ms: number, clientOrderId?: string): BrokerError {
  return new BrokerError('BROKER_TIMEOUT', `${what} did not answer within ${ms} ms`, { clientOrderId });
}

async function withDeadline<T>(timers: DeadlineTimers, call: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: unknown;
  const deadline = new Promise<never>((_, reject) => {
    timer = timers.setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([call, deadline]);
  } finally {
    timers.clearTimeout(timer);
  }
}

function toBrokerOrder(order: PlannedOrder): BrokerOrder {
  const { intent } = order;
  const base = { clientOrderId: order.clientOrderId, symbol: intent.symbol, side: intent.side, qty: intent.qty };
  return intent.type === 'limit' ? { ...base, type: 'limit', limitPrice: intent.limitPrice } : { ...base, type: 'market' };
}

/** Shows bars to a simulated broker, in order, waiting for any fills they cause. */
export async function feedBroker(broker: Broker, bars: readonly Bar[]): Promise<void> {
  if (broker.observeBar === undefined) return;
  for (const bar of bars) {
    const fills = broker.observeBar(bar);
    if (fills !== undefined) await fills;
  }
}

/**
 * Asks the broker about orders whose submit ended `unknown`. Found: `settled` with its fills.
 * Not found: it never reached the market, and stays unsettled only while the broker is
 * unreachable. Returns the outcomes and the orders still unsettled. The first order the broker
 * cannot answer for ends the round: the rest are not asked (each would wait out the deadline).
 */
export async function settleUnknown(
  deps: ExecutionDeps,
  unsettled: readonly PlannedOrder[],
): Promise<{ outcomes: OrderOutcome[]; stillUnknown: PlannedOrder[] }> {
  const outcomes: OrderOutcome[] = [];
  const stillUnknown: PlannedOrder[] = [];
  for (const order of unsettled) {
    const known = stillUnknown.length > 0 ? 'unreachable' : await lookUp(deps, order.clientOrderId);
    if (known === 'unreachable') stillUnknown.push(order);
    else if (known !== undefined) {
      record(deps, order.clientOrderId, 'submitted');
      outcomes.push({ kind: 'settled', order, fills: [...known.fills] });
    } else outcomes.push({ kind: 'settled', order, fills: [] });
  }
  return { outcomes, stillUnknown };
}

/**
 * Executes `orders` in order; never throws for a broker or journal failure (it becomes an
 * outcome). Earlier `unknown` orders are settled first: while the broker cannot answer for one
 * of them it is unreachable, and no new order is sent — each is refused with the reason — until
 * it answers again (the next batch with orders asks again).
 */
export async function executeOrders(
  deps: ExecutionDeps,
  orders: readonly PlannedOrder[],
  options: { refuse: OrderRefusal | null; unsettled: readonly PlannedOrder[] },
): Promise<OrderOutcome[]> {
  deps.assertHeld?.();
  const settling = await settleUnknown(deps, options.unsettled);
  const refusal = options.refuse ?? unreachableReason(settling.stillUnknown);
  if (refusal !== null) return [...settling.outcomes, ...orders.map((order): OrderOutcome => ({ kind: 'refused', order, reason: refusal }))];
  // Every order of the bar is reserved in one tick, so one journal commit holds them all (group
  // commit) before the first reaches the broker; each is then sent in order. All awaited at once:
  // a lost lease fails every one of them, and the session faults before any is sent.
  const reserved = await Promise.all(orders.map(async (order) => ({ order, reservation: await reserve(deps, order) })));
  const outcomes: OrderOutcome[] = [...settling.outcomes];
  let unreachable: OrderRefusal | null = null;
  for (const { order, reservation } of reserved) {
    // Refused after its reservation (the broker stopped answering mid-bar): an id reserved and
    // never sent, which a restart settles by asking the broker — as after a crash before the send.
    const outcome: OrderOutcome = unreachable === null ? await executeOne(deps, order, reservation) : { kind: 'refused', order, reason: unreachable };
    outcomes.push(outcome);
    // The broker stopped answering mid-bar: the rest waits for it, as the next batch will.
    if (outcome.kind === 'unknown') unreachable = unreachableReason([order]);
  }
  return outcomes;
}

function unreachableReason(unknown: readonly PlannedOrder[]): OrderRefusal | null {
  if (unknown.length === 0) return null;
  const ids = unknown.map((order) => order.clientOrderId);
  return { code: 'BROKER_UNREACHABLE', detail: `no new order until the broker settles ${ids.join(', ')}`, ids };
}

// Every refusal of the journal is one of the session's refusal codes (checked by the compiler).
const journalRefusal = (code: IdempotencyRefusal): OrderRefusalCode => code;

/** The journal's answer for `order`'s id, or the refusal when the journal cannot give one. */
async function reserve(deps: ExecutionDeps, order: PlannedOrder): Promise<ReserveResult | OrderRefusal> {
  try {
    return await deps.tracker.reserve(order.clientOrderId);
  } catch (error) {
    // Another process holds the session now: this one must send nothing more, and faults.
    if (error instanceof AistockError && error.code === 'LEASE_LOST') throw error;
    // Not durably reserved, so not sent: the write-ahead rule holds even when the disk fails.
    return { code: 'JOURNAL_UNAVAILABLE', detail: describeError(error) };
  }
}

async function executeOne(deps: ExecutionDeps, order: PlannedOrder, reservation: ReserveResult | OrderRefusal): Promise<OrderOutcome> {
  const id = order.clientOrderId;
  if (!('status' in reservation)) return { kind: 'refused', order, reason: reservation };
  if (reservation.status === 'refused') {
    return { kind: 'refused', order, reason: { code: journalRefusal(reservation.reason), detail: reservation.detail } };
  }
  if (reservation.status === 'duplicate') {
    if (reservation.state === 'rejected') return { kind: 'duplicate', order, fills: [] };
    // Sent (or maybe sent) by an earlier run: the broker says whether it arrived.
    const known = await lookUp(deps, id);
    if (known === 'unreachable') {
      return { kind: 'unknown', order, reason: { code: 'BROKER_UNREACHABLE', detail: 'cannot settle an earlier send', ids: [id] } };
    }
    if (known !== undefined) {
      if (reservation.state !== 'submitted') record(deps, id, 'submitted');
      return { kind: 'duplicate', order, fills: [...known.fills] };
    }
    if (reservation.state === 'submitted') {
      const detail = `the journal recorded ${id} as sent, and the broker does not know it`;
      deps.log({ event: 'BROKER_LOST_ORDER', clientOrderId: id, detail });
      return { kind: 'lost', order, reason: { code: 'BROKER_LOST_ORDER', detail } };
    }
    // Reserved or unknown, and the broker never saw it: sending it now is its first send.
  }
  return submit(deps, order);
}

async function submit(deps: ExecutionDeps, order: PlannedOrder): Promise<OrderOutcome> {
  const id = order.clientOrderId;
  let result;
  try {
    result = await withDeadline(deps.timers ?? realTimers, deps.broker.submit(toBrokerOrder(order)), deps.brokerTimeoutMs, () =>
      timeoutError(`submit ${id}`, deps.brokerTimeoutMs, id),
    );
  } catch (error) {
    if (!(error instanceof BrokerError)) {
      // Not a failure the Broker contract names: an adapter bug, and the order may be in the
      // market. Recorded as unknown (a restart asks the broker), then the session faults.
      record(deps, id, 'unknown');
      throw new BrokerAdapterError(id, error);
    }
    return settleFailedSubmit(deps, order, error);
  }
  if (result.status === 'accepted') {
    record(deps, id, 'submitted');
    return { kind: 'submitted', order, fills: [...result.fills] };
  }
  if (result.reason === 'DUPLICATE_CLIENT_ORDER_ID') {
    // The broker has it already (our journal lost track, e.g. an expired id): take its fills.
    const known = await lookUp(deps, id);
    record(deps, id, 'submitted');
    return { kind: 'duplicate', order, fills: known === undefined || known === 'unreachable' ? [] : [...known.fills] };
  }
  record(deps, id, 'rejected');
  return { kind: 'rejected', order, reason: { code: result.reason, detail: result.detail } };
}

/** A submit that threw: not placed (disconnected) or maybe placed (timeout, lost ack). Ask. */
async function settleFailedSubmit(deps: ExecutionDeps, order: PlannedOrder, error: unknown): Promise<OrderOutcome> {
  const id = order.clientOrderId;
  deps.log({ event: 'SUBMIT_FAILED', clientOrderId: id, error: describeError(error) });
  const known = await lookUp(deps, id);
  if (known !== undefined && known !== 'unreachable') {
    record(deps, id, 'submitted');
    return { kind: 'submitted', order, fills: [...known.fills] };
  }
  record(deps, id, 'unknown');
  const code = error instanceof BrokerError ? error.code : 'BROKER_ERROR';
  return { kind: 'unknown', order, reason: { code, detail: error instanceof Error ? error.message : String(error) } };
}

async function lookUp(deps: ExecutionDeps, id: string): Promise<BrokerOrderState | undefined | 'unreachable'> {
  try {
    return await withDeadline(deps.timers ?? realTimers, deps.broker.orderByClientId(id), deps.brokerTimeoutMs, () =>
      timeoutError(`orderByClientId ${id}`, deps.brokerTimeoutMs, id),
    );
  } catch (error) {
    deps.log({ event: 'LOOKUP_FAILED', clientOrderId: id, error: describeError(error) });
    return 'unreachable';
  }
}

/**
 * Records the broker's answer without waiting for its fsync: it rides the next group commit
 * (the next reservation's, or the drain's: `markLater`). Until it is durable the id is `reserved` on disk,
 * which a restart settles by asking the broker — so a lost mark sends nothing twice and loses
 * nothing, and the order path pays one journal fsync, not two.
 */
function record(deps: ExecutionDeps, id: string, state: 'submitted' | 'rejected' | 'unknown'): void {
  deps.tracker.markLater(id, state).then(
    (result) => {
      if (result.status === 'refused') deps.log({ event: 'MARK_REFUSED', clientOrderId: id, state, reason: result.reason });
    },
    (error: unknown) => deps.log({ event: 'MARK_FAILED', clientOrderId: id, state, error: describeError(error) }),
  );
}
