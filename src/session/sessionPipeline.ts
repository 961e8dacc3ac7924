import { z } from 'zod';
import { SymbolMap, symbolMapSchema, type ReadonlySymbolMap } from '../common/keyed.js';
import type { FillCounts } from './fillCounts.js';
import type { Bar } from '../bars/bar.js';
import { BarsStateSchema, createBarsState, type BarsConfigInput, type BarsState } from '../bars/barProcessor.js';
import { clientOrderId } from '../idempotency/clientOrderId.js';
import { describeError } from '../common/errors.js';
import { createDataGuard, GuardStateSchema, type DataGuardConfigInput, type GuardState } from '../dataGuard/dataGuard.js';
import { OrderIntentSchema, type Fill, type OrderIntent } from '../common/order.js';
import { applyFills, positionsTouched, type Portfolio } from '../portfolio/portfolio.js';
import type { DenyReason, OrderCheckRequest, OrderVerdict, RiskState } from '../risk/risk.js';
import { StrategyTimeoutError, type BarMarket, type Strategy } from '../strategy/strategy.js';
import type { TimeframeBar } from '../bars/timeframe.js';
import type { BrokerErrorCode, BrokerRejectReason } from '../broker/broker.js';

/**
 * The session's own rules as plain functions (the components' rules are their machines'): which
 * bars an earlier run already processed, the strategy walking admitted bars one by one up to
 * the first bar with intents, the orders risk's verdicts approve, and what order outcomes mean
 * for the journal's counts and the portfolio's fills. The machine calls these from `assign`;
 * they do no I/O.
 */

/** The pipeline's checkpointable state. */
export interface PipelineState {
  readonly guard: GuardState;
  readonly bars: BarsState;
  readonly strategy: unknown;
  /** Newest bar time admitted per symbol (a map: it is copied once per batch, whatever the symbols). */
  readonly lastTs: ReadonlySymbolMap<number>;
  /**
   * `lastTs` as restored from a checkpoint: bars at or before it were processed by an earlier
   * run and are skipped (not judged by the guard, which would call them duplicates).
   */
  readonly resumeAfter: ReadonlySymbolMap<number>;
  /** Signed position per symbol as the strategy sees it (decimal strings, no zeros); read for every bar. */
  readonly positions: ReadonlySymbolMap<string>;
  /** Newest close per symbol, for marking the portfolio. */
  readonly lastClose: ReadonlySymbolMap<number>;
  /** Bars skipped because an earlier run had already processed them. */
  readonly resumedSkips: number;
}

/** Newest bar time or close per symbol, as a checkpoint holds it (a record), read into a map no one changes. */
const latestPerSymbolSchema = symbolMapSchema(z.number()).transform((map): ReadonlySymbolMap<number> => map);

export const PipelineSnapshotSchema = z.object({
  guard: GuardStateSchema,
  bars: BarsStateSchema,
  strategy: z.unknown(),
  lastTs: latestPerSymbolSchema,
  positions: symbolMapSchema(z.string()).transform((map): ReadonlySymbolMap<string> => map),
  lastClose: latestPerSymbolSchema,
  resumedSkips: z.number().int().nonnegative(),
});
export type PipelineSnapshot = z.infer<typeof PipelineSnapshotSchema>;

export interface PipelineOptions {
  guard?: DataGuardConfigInput;
  bars?: BarsConfigInput;
}

/** A fresh pipeline. */
export function createPipeline(strategy: Strategy, options: PipelineOptions = {}): PipelineState {
  return {
    guard: createDataGuard(options.guard),
    bars: createBarsState(options.bars),
    strategy: strategy.initialState(),
    lastTs: new SymbolMap(),
    resumeAfter: new SymbolMap(),
    positions: new SymbolMap(),
    lastClose: new SymbolMap(),
    resumedSkips: 0,
  };
}

/** The whole session state: what a checkpoint holds and a start hands over. */
export interface SessionState {
  pipeline: PipelineState;
  portfolio: Portfolio;
  risk: RiskState;
  /** How many of each order's broker fills the portfolio holds. */
  appliedFills: FillCounts;
  /** Orders whose submit ended `unknown`, by client order id, until the broker settles them. */
  unsettled: Record<string, PlannedOrder>;
}

/** The pipeline's part of a checkpoint. */
export function pipelineSnapshot(pipeline: PipelineState): PipelineSnapshot {
  const { resumeAfter: _resumeAfter, ...rest } = pipeline;
  return rest;
}

/** A pipeline restored from a checkpoint; bars up to each symbol's `lastTs` will be skipped. */
export function restorePipeline(snapshot: PipelineSnapshot, strategy: Strategy): PipelineState {
  return { ...snapshot, strategy: strategy.stateSchema.parse(snapshot.strategy), resumeAfter: snapshot.lastTs };
}

/**
 * What the session itself keeps while running: the strategy's state and view, and what it has
 * decided per symbol. The data guard's and the bars' state ({@link PipelineState}'s `guard` and
 * `bars`) live in their actors.
 */
export type DecidedState = Omit<PipelineState, 'guard' | 'bars'>;

/**
 * `decided` with `change` applied. Spelled out, not spread: the session makes one for every
 * batch (every live bar), and a spread is V8's generic copy.
 */
export function decidedWith(decided: DecidedState, change: Partial<DecidedState>): DecidedState {
  return {
    strategy: 'strategy' in change ? change.strategy : decided.strategy,
    lastTs: change.lastTs ?? decided.lastTs,
    resumeAfter: change.resumeAfter ?? decided.resumeAfter,
    positions: change.positions ?? decided.positions,
    lastClose: change.lastClose ?? decided.lastClose,
    resumedSkips: change.resumedSkips ?? decided.resumedSkips,
  };
}

/** A pipeline split into the session's part and its actors' parts. */
export function splitPipeline(pipeline: PipelineState): { decided: DecidedState; guard: GuardState; bars: BarsState } {
  const { guard, bars, ...decided } = pipeline;
  return { decided, guard, bars };
}

/** Skips bars an earlier run already processed (at or before the checkpoint's `lastTs` of their symbol), counting them. */
export function skipResumed(decided: DecidedState, bars: readonly Bar[]): { decided: DecidedState; fresh: readonly Bar[] } {
  const { resumeAfter } = decided;
  if (resumeAfter.size === 0) return { decided, fresh: bars };
  const fresh = bars.filter((bar) => !(bar.ts <= (resumeAfter.get(bar.symbol) ?? Number.NEGATIVE_INFINITY)));
  if (fresh.length === bars.length) return { decided, fresh: bars };
  return { decided: decidedWith(decided, { resumedSkips: decided.resumedSkips + (bars.length - fresh.length) }), fresh };
}

/** Notes the newest time and close per symbol of bars the guard passed (what a checkpoint covers, what marks use). */
export function recordAdmitted(decided: DecidedState, bars: readonly Bar[]): DecidedState {
  if (bars.length === 0) return decided;
  const lastTs = SymbolMap.copyOf(decided.lastTs);
  const lastClose = SymbolMap.copyOf(decided.lastClose);
  for (const bar of bars) {
    lastTs.set(bar.symbol, bar.ts);
    lastClose.set(bar.symbol, bar.close);
  }
  return decidedWith(decided, { lastTs, lastClose });
}

/** An order the strategy asked for and risk approved, with its deterministic client order id. */
export interface PlannedOrder {
  readonly clientOrderId: string;
  readonly intent: OrderIntent;
  readonly barTs: number;
  readonly price: number;
}

/** An intent risk refused. */
export interface DeniedIntent {
  readonly clientOrderId: string;
  readonly intent: OrderIntent;
  readonly reasons: readonly DenyReason[];
}

/** What the strategy is asked in: its code, and the session's identity (client order ids name both). */
export interface StrategyContext {
  readonly strategy: Strategy;
  readonly sessionId: string;
}

/** A strategy that failed on a bar: which bar, and what went wrong (its error, or why its intent is not one). */
export interface StrategyFailure {
  readonly symbol: string;
  readonly barTs: number;
  readonly detail: string;
}

/** An intent of the run's last bar, with its deterministic client order id, as risk checks it. */
export type OrderRequest = OrderCheckRequest;

/** How far the strategy walked: up to `stop`, the first bar with intents (`requests`), or the end (`bars.length`). */
export interface StrategyRun {
  readonly strategy: unknown;
  readonly stop: number;
  readonly requests: readonly OrderRequest[];
  /** The strategy threw or returned an intent that is not one, at bar `stop`: nothing there was decided. */
  readonly failure: StrategyFailure | null;
}

/** What a bar that completed no higher-timeframe bar shows the strategy: one shared object, not one per bar. */
const NOTHING_COMPLETED: BarMarket = Object.freeze({ completed: Object.freeze([]) });

function marketAt(completed: ReadonlyMap<number, readonly TimeframeBar[]>, index: number): BarMarket {
  const bars = completed.get(index);
  return bars === undefined ? NOTHING_COMPLETED : { completed: bars };
}

/** A strategy step that failed on `bar` (a function of its own: a closure made per bar costs an allocation on every bar). */
function failedOn(bar: Bar, detail: string): { ok: false; failure: StrategyFailure } {
  return { ok: false, failure: { symbol: bar.symbol, barTs: bar.ts, detail } };
}

/** The strategy's step for `bar`, its intents checked (user code: it may throw or return anything). */
function strategyStep(
  strategy: Strategy,
  state: unknown,
  bar: Bar,
  position: string,
  market: BarMarket,
): { ok: true; state: unknown; intents: OrderIntent[] } | { ok: false; failure: StrategyFailure } {
  let step;
  try {
    step = strategy.onBar(state, bar, position, market);
  } catch (error) {
    if (error instanceof StrategyTimeoutError) return failedOn(bar, error.message);
    return failedOn(bar, `${strategy.id}.onBar threw: ${describeError(error)}`);
  }
  if (typeof step !== 'object' || step === null || !Array.isArray(step.intents)) return failedOn(bar, `${strategy.id}.onBar returned no { state, intents }`);
  if (step.intents.length === 0) return { ok: true, state: step.state, intents: step.intents };
  const intents: OrderIntent[] = [];
  for (const [index, intent] of step.intents.entries()) {
    const parsed = OrderIntentSchema.safeParse(intent);
    if (!parsed.success) return failedOn(bar, `${strategy.id}.onBar returned an invalid intent #${index}: ${z.prettifyError(parsed.error)}`);
    intents.push(parsed.data);
  }
  return { ok: true, state: step.state, intents };
}

/**
 * Shows the strategy `bars` from `from`, one by one, and stops at the first bar whose step asks
 * for orders, so risk checks them and they are executed (and filled) before the next bar is
 * shown: positions a strategy sees are always the ones its earlier orders left. Nothing here
 * depends on where one `ingest` ends and the next begins.
 */
export function runStrategy(
  decided: DecidedState,
  bars: readonly Bar[],
  completed: ReadonlyMap<number, readonly TimeframeBar[]>,
  from: number,
  ctx: StrategyContext,
): StrategyRun {
  let state = decided.strategy;
  for (let index = from; index < bars.length; index += 1) {
    const bar = bars[index];
    if (bar === undefined) break;
    const step = strategyStep(ctx.strategy, state, bar, decided.positions.get(bar.symbol) ?? '0', marketAt(completed, index));
    if (!step.ok) return { strategy: state, stop: index, requests: [], failure: step.failure };
    state = step.state;
    if (step.intents.length > 0) {
      const requests = step.intents.map((intent, intentIndex) => ({
        orderId: clientOrderId({
          sessionId: ctx.sessionId,
          strategyId: ctx.strategy.id,
          symbol: intent.symbol,
          barTime: bar.ts,
          intentIndex,
          quantity: intent.qty,
        }),
        intent,
        price: intent.type === 'limit' ? intent.limitPrice : bar.close,
      }));
      return { strategy: state, stop: index, requests, failure: null };
    }
  }
  return { strategy: state, stop: bars.length, requests: [], failure: null };
}

/** Whether any of `bars[from, to)` is of a symbol the session holds (so its close moves the account). */
export function touchesHeld(decided: DecidedState, bars: readonly Bar[], from: number, to: number): boolean {
  for (let index = from; index < to; index += 1) {
    const bar = bars[index];
    if (bar !== undefined && decided.positions.has(bar.symbol)) return true;
  }
  return false;
}

/** The orders risk approved among `requests` (its `verdicts`, in order), and the intents it denied. */
export function approvedOrders(
  bar: Bar,
  requests: readonly OrderRequest[],
  verdicts: readonly OrderVerdict[],
): { orders: PlannedOrder[]; denied: DeniedIntent[] } {
  const orders: PlannedOrder[] = [];
  const denied: DeniedIntent[] = [];
  requests.forEach((request, i) => {
    const verdict = verdicts[i];
    if (verdict?.verdict === 'approve') orders.push({ clientOrderId: request.orderId, intent: request.intent, barTs: bar.ts, price: bar.close });
    else denied.push({ clientOrderId: request.orderId, intent: request.intent, reasons: verdict?.reasons ?? [] });
  });
  return { orders, denied };
}

/** The strategy's view after fills: each touched symbol's position (flat ones dropped). */
export function withPositions<T extends DecidedState>(decided: T, changed: readonly (readonly [string, string])[]): T {
  if (changed.length === 0) return decided;
  const positions = SymbolMap.copyOf(decided.positions);
  for (const [symbol, qty] of changed) {
    if (qty === '0') positions.delete(symbol);
    else positions.set(symbol, qty);
  }
  return { ...decided, positions };
}

export const PlannedOrderSchema = z.object({
  clientOrderId: z.string(),
  intent: OrderIntentSchema,
  barTs: z.number(),
  price: z.number(),
});

/**
 * Why the session did not send an order: its own refusals (the broker cannot settle earlier
 * orders, checkpoints cannot be written, the journal could not record the id) and the journal's
 * (`IdempotencyRefusal`). A closed set.
 */
export const ORDER_REFUSAL_CODES = [
  'BROKER_UNREACHABLE',
  'PERSISTENCE_DEGRADED',
  'JOURNAL_UNAVAILABLE',
  'NOT_STARTED',
  'JOURNAL_RECOVERING',
  'STOPPING',
  'SHUT_DOWN',
  'FAULTED',
] as const;
/** One of {@link ORDER_REFUSAL_CODES}. */
export type OrderRefusalCode = (typeof ORDER_REFUSAL_CODES)[number];

/** A refusal as a value: its code, what happened, and (`BROKER_UNREACHABLE`) the orders it waits for. */
export interface OrderRefusal {
  readonly code: OrderRefusalCode;
  readonly detail: string;
  readonly ids?: readonly string[];
}

/** Why the broker said no, or why its answer is not known: its code (`BrokerRejectReason`, `BrokerErrorCode`) and detail. */
export interface BrokerReason {
  readonly code: BrokerRejectReason | BrokerErrorCode | 'BROKER_ERROR';
  readonly detail: string;
}

/** What happened to one planned order. */
export type OrderOutcome =
  | { readonly kind: 'submitted'; readonly order: PlannedOrder; readonly fills: Fill[] }
  | { readonly kind: 'rejected'; readonly order: PlannedOrder; readonly reason: BrokerReason }
  | { readonly kind: 'unknown'; readonly order: PlannedOrder; readonly reason: BrokerReason | OrderRefusal }
  /** Already sent by an earlier run: `fills` are the broker's fills for it. */
  | { readonly kind: 'duplicate'; readonly order: PlannedOrder; readonly fills: Fill[] }
  | { readonly kind: 'refused'; readonly order: PlannedOrder; readonly reason: OrderRefusal }
  /** An earlier `unknown` order the broker now confirms: `fills` are its fills. */
  | { readonly kind: 'settled'; readonly order: PlannedOrder; readonly fills: Fill[] }
  /**
   * The journal recorded it as sent, and the broker does not know it (its records lost it):
   * never sent again on the journal's word, and never taken as filled — a difference to look at.
   */
  | { readonly kind: 'lost'; readonly order: PlannedOrder; readonly reason: { readonly code: 'BROKER_LOST_ORDER'; readonly detail: string } };

/** What a round of order outcomes means: ids whose rate-limit slot is now counted or freed, and the fills not applied before. */
export interface Booked {
  readonly reserved: readonly string[];
  readonly released: readonly string[];
  readonly fresh: readonly Fill[];
  /** Fill counts with the fresh fills (see {@link unappliedFills}). */
  readonly appliedFills: FillCounts;
}

/**
 * Books outcomes: an order whose id was reserved (sent, rejected, unknown, a duplicate) counts
 * against the rate limits; a refused one, never reserved, frees its slot; a settled one was counted
 * when first reserved. Every fill not applied before is for the portfolio (fills of an order
 * sent by an earlier run may already be in the restored portfolio).
 */
export function bookOutcomes(outcomes: readonly OrderOutcome[], appliedFills: FillCounts): Booked {
  const reserved: string[] = [];
  const released: string[] = [];
  const reported: Fill[] = [];
  for (const outcome of outcomes) {
    const id = outcome.order.clientOrderId;
    if (outcome.kind === 'refused') released.push(id);
    else if (outcome.kind !== 'settled') reserved.push(id);
    if (outcome.kind === 'submitted' || outcome.kind === 'duplicate' || outcome.kind === 'settled') reported.push(...outcome.fills);
  }
  const unapplied = unappliedFills(reported, appliedFills);
  return { reserved, released, fresh: unapplied.fresh, appliedFills: unapplied.appliedFills };
}

/** The start's state after fills (before the actors exist): the portfolio and the strategy's view of positions. */
export interface Applied {
  readonly pipeline: PipelineState;
  readonly portfolio: Portfolio;
  readonly risk: RiskState;
  readonly appliedFills: FillCounts;
  readonly newFills: number;
}

/** Applies fills (already known to be new) and refreshes the strategy's view of positions. */
export function applyNewFills(
  state: { pipeline: PipelineState; portfolio: Portfolio; risk: RiskState; appliedFills: FillCounts },
  fills: readonly Fill[],
): Applied {
  const { portfolio } = applyFills(state.portfolio, fills);
  const pipeline = withPositions(state.pipeline, positionsTouched(portfolio, fills));
  return { pipeline, portfolio, risk: state.risk, appliedFills: state.appliedFills, newFills: fills.length };
}

/**
 * The fills of `fills` not yet counted in `applied` (how many of each order's fills the
 * portfolio holds), with the counts that include them. Broker fills of one order keep their order.
 */
export function unappliedFills(
  fills: readonly Fill[],
  applied: FillCounts,
): { fresh: Fill[]; appliedFills: FillCounts } {
  const seen = new Map<string, number>();
  const counted = new Map<string, number>();
  const fresh = fills.filter((fill) => {
    const index = (seen.get(fill.clientOrderId) ?? 0) + 1;
    seen.set(fill.clientOrderId, index);
    if (index <= applied.get(fill.clientOrderId)) return false;
    counted.set(fill.clientOrderId, index);
    return true;
  });
  return { fresh, appliedFills: applied.with(counted) };
}
