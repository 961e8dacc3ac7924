import { z } from 'zod';
import { keyed, own } from './keyed.js';
import type { Bar } from './bar.js';
import { BarsStateSchema, createBarsState, flushBars, processBars, type BarsConfigInput, type BarsState } from './barProcessor.js';
import { clientOrderId } from './clientOrderId.js';
import { describeError } from './errors.js';
import { createDataGuard, GuardStateSchema, screenBars, type DataGuardConfigInput, type GuardState } from './dataGuard.js';
import { formatQty, parsePrice } from './money.js';
import { OrderIntentSchema, type Fill, type OrderIntent } from './order.js';
import {
  applyFills,
  markToMarket,
  type Portfolio,
} from './portfolio.js';
import {
  checkOrders,
  releaseHeldOrder,
  reserveOrder,
  startTradingDayIfDue,
  takePortfolio,
  type DenyReason,
  type RiskState,
} from './risk.js';
import type { RiskRules } from './riskLimits.js';
import type { Strategy } from './strategy.js';
import type { BrokerErrorCode, BrokerRejectReason } from '../runtime/broker.js';

/**
 * The session's hot path as plain functions: a batch of bars is admitted (resume filter,
 * data guard, aggregation), then the strategy walks the admitted bars one by one and stops at
 * the first bar whose intents pass risk, so those orders are executed (and filled) before the
 * next bar is decided. The machine calls these from `assign`; they do no I/O.
 */

/** The pipeline's checkpointable state. */
export interface PipelineState {
  readonly guard: GuardState;
  readonly bars: BarsState;
  readonly strategy: unknown;
  /** Newest bar time admitted per symbol. */
  readonly lastTs: Readonly<Record<string, number>>;
  /**
   * `lastTs` as restored from a checkpoint: bars at or before it were processed by an earlier
   * run and are skipped (not judged by the guard, which would call them duplicates).
   */
  readonly resumeAfter: Readonly<Record<string, number>>;
  /** Signed position per symbol as the strategy sees it (decimal strings, no zeros). */
  readonly positions: Readonly<Record<string, string>>;
  /** Newest close per symbol, for marking the portfolio. */
  readonly lastClose: Readonly<Record<string, number>>;
  /** Bars skipped because an earlier run had already processed them. */
  readonly resumedSkips: number;
}

export const PipelineSnapshotSchema = z.object({
  guard: GuardStateSchema,
  bars: BarsStateSchema,
  strategy: z.unknown(),
  lastTs: z.record(z.string(), z.number()),
  positions: z.record(z.string(), z.string()),
  lastClose: z.record(z.string(), z.number()),
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
    lastTs: {},
    resumeAfter: {},
    positions: {},
    lastClose: {},
    resumedSkips: 0,
  };
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

/** What admitting a batch produced: the bars the strategy will see, in order. */
export interface Admitted {
  readonly pipeline: PipelineState;
  readonly bars: Bar[];
}

/**
 * Skips bars an earlier run already processed, screens the rest with the data guard
 * (`receivedAtMs` null in replay: no staleness check), and aggregates what passed.
 */
export function admitBatch(pipeline: PipelineState, bars: readonly Bar[], receivedAtMs: number | null): Admitted {
  const { resumeAfter } = pipeline;
  const fresh = bars.filter((bar) => !(bar.ts <= (own(resumeAfter, bar.symbol) ?? Number.NEGATIVE_INFINITY)));
  const screened = screenBars(pipeline.guard, fresh, receivedAtMs);
  const processed = processBars(pipeline.bars, screened.passed);
  const lastTs: Record<string, number> = { ...pipeline.lastTs };
  const lastClose: Record<string, number> = { ...pipeline.lastClose };
  for (const bar of screened.passed) {
    lastTs[bar.symbol] = bar.ts;
    lastClose[bar.symbol] = bar.close;
  }
  // Spelled out, not spread: this runs for every live bar.
  return {
    pipeline: {
      guard: screened.state,
      bars: processed.state,
      strategy: pipeline.strategy,
      lastTs,
      lastClose,
      resumeAfter,
      positions: pipeline.positions,
      resumedSkips: pipeline.resumedSkips + (bars.length - fresh.length),
    },
    bars: screened.passed,
  };
}

/** Closes every open higher-timeframe bar (end of data, or draining). */
export function flushPipeline(pipeline: PipelineState): PipelineState {
  return { ...pipeline, bars: flushBars(pipeline.bars).state };
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

export interface DecideContext {
  readonly strategy: Strategy;
  readonly rules: RiskRules;
  readonly sessionId: string;
  /** The monotonic time rate limits count in: the batch's arrival live; null in replay, where each bar's own time counts. */
  readonly monoMs: number | null;
}

/** What deciding works on: the pipeline, the portfolio (marked bar by bar) and the risk state. */
export interface DecideState {
  readonly pipeline: PipelineState;
  readonly portfolio: Portfolio;
  readonly risk: RiskState;
}

export interface Decision extends DecideState {
  readonly orders: PlannedOrder[];
  readonly denied: DeniedIntent[];
  /** Index of the next bar to decide; equals `bars.length` when the batch is done. */
  readonly next: number;
  /** The strategy threw or returned an intent that is not one: deciding stopped at that bar. */
  readonly strategyFailure: StrategyFailure | null;
}

/** A strategy that failed on a bar: which bar, and what went wrong (its error, or why its intent is not one). */
export interface StrategyFailure {
  readonly symbol: string;
  readonly barTs: number;
  readonly detail: string;
}

/** The strategy's step for `bar`, its intents checked (user code: it may throw or return anything). */
function strategyStep(
  strategy: Strategy,
  state: unknown,
  bar: Bar,
  position: string,
): { ok: true; state: unknown; intents: OrderIntent[] } | { ok: false; failure: StrategyFailure } {
  const fail = (detail: string) => ({ ok: false as const, failure: { symbol: bar.symbol, barTs: bar.ts, detail } });
  let step;
  try {
    step = strategy.onBar(state, bar, position);
  } catch (error) {
    return fail(`${strategy.id}.onBar threw: ${describeError(error)}`);
  }
  if (typeof step !== 'object' || step === null || !Array.isArray(step.intents)) return fail(`${strategy.id}.onBar returned no { state, intents }`);
  if (step.intents.length === 0) return { ok: true, state: step.state, intents: step.intents };
  const intents: OrderIntent[] = [];
  for (const [index, intent] of step.intents.entries()) {
    const parsed = OrderIntentSchema.safeParse(intent);
    if (!parsed.success) return fail(`${strategy.id}.onBar returned an invalid intent #${index}: ${z.prettifyError(parsed.error)}`);
    intents.push(parsed.data);
  }
  return { ok: true, state: step.state, intents };
}

/**
 * Runs the strategy over `bars` from `from`, bar by bar and in each bar's own time: before a
 * bar is decided, the trading day starts if it is due at the bar's time; once it is decided
 * (and its orders' fills applied, when it had any), its symbol is marked to its close and the
 * account's breaches are checked ({@link settleBar}). Stops after the first bar whose intents
 * include an approved order, so those orders are executed and filled before the next bar is
 * decided; called again with `settleFirst`, it settles that bar and goes on. Nothing depends on
 * where one `ingest` ends and the next begins. Approved orders hold a rate-limit slot until
 * their id is reserved.
 */
export function decide(state: DecideState, bars: readonly Bar[], from: number, ctx: DecideContext, settleFirst = false): Decision {
  const { pipeline } = state;
  let strategyState = pipeline.strategy;
  let riskState = state.risk;
  let portfolio = state.portfolio;
  const denied: DeniedIntent[] = [];
  const previous = bars[from - 1];
  if (settleFirst && previous !== undefined) ({ portfolio, risk: riskState } = settleBar(portfolio, riskState, ctx.rules, previous));
  for (let index = from; index < bars.length; index += 1) {
    const bar = bars[index];
    if (bar === undefined) break;
    riskState = startTradingDayIfDue(riskState, ctx.rules, bar.ts).state;
    const step = strategyStep(ctx.strategy, strategyState, bar, own(pipeline.positions, bar.symbol) ?? '0');
    if (!step.ok) {
      // Stopped at this bar, undecided: the session faults, and a resume decides it again.
      return { pipeline: { ...pipeline, strategy: strategyState }, portfolio, risk: riskState, orders: [], denied, next: index, strategyFailure: step.failure };
    }
    strategyState = step.state;
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
      const checked = checkOrders(riskState, ctx.rules, requests, ctx.monoMs ?? bar.ts);
      riskState = checked.state;
      const orders: PlannedOrder[] = [];
      requests.forEach((request, i) => {
        const verdict = checked.verdicts[i];
        if (verdict?.verdict === 'approve') {
          orders.push({ clientOrderId: request.orderId, intent: request.intent, barTs: bar.ts, price: bar.close });
        } else {
          denied.push({ clientOrderId: request.orderId, intent: request.intent, reasons: verdict?.reasons ?? [] });
        }
      });
      if (orders.length > 0) {
        return { pipeline: { ...pipeline, strategy: strategyState }, portfolio, risk: riskState, orders, denied, next: index + 1, strategyFailure: null };
      }
    }
    ({ portfolio, risk: riskState } = settleBar(portfolio, riskState, ctx.rules, bar));
  }
  return { pipeline: { ...pipeline, strategy: strategyState }, portfolio, risk: riskState, orders: [], denied, next: bars.length, strategyFailure: null };
}

/**
 * After a bar is decided: its symbol, if held, is marked to its close, and risk takes the
 * account as it now is — a new daily-loss or drawdown breach halts (kill switch on; see
 * `breachHalts`, the risk engine's own rule).
 */
export function settleBar(portfolio: Portfolio, risk: RiskState, rules: RiskRules, bar: Bar): { portfolio: Portfolio; risk: RiskState } {
  const marked = portfolio.positions.has(bar.symbol) ? markToMarket(portfolio, [[bar.symbol, parsePrice(bar.close)]]) : portfolio;
  return { portfolio: marked, risk: takePortfolio(risk, rules, marked, bar.ts) };
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
  | { readonly kind: 'settled'; readonly order: PlannedOrder; readonly fills: Fill[] };

/** Portfolio, risk and positions after a round of order outcomes. */
export interface Applied {
  readonly pipeline: PipelineState;
  readonly portfolio: Portfolio;
  readonly risk: RiskState;
  /** Fill keys (`<clientOrderId>#<n>`) now applied. */
  readonly appliedFills: Readonly<Record<string, number>>;
  readonly newFills: number;
}

/**
 * Applies outcomes: counts reservations against the rate limits, frees slots of orders that
 * were never reserved, and applies every fill not applied before (fills of an order sent by an
 * earlier run may already be in the restored portfolio).
 */
export function applyOutcomes(
  state: { pipeline: PipelineState; portfolio: Portfolio; risk: RiskState; appliedFills: Readonly<Record<string, number>> },
  outcomes: readonly OrderOutcome[],
  monoNow: number,
): Applied {
  let risk = state.risk;
  const reported: Fill[] = [];
  for (const outcome of outcomes) {
    const id = outcome.order.clientOrderId;
    // A settled order was counted when it was first reserved.
    if (outcome.kind === 'refused') risk = releaseHeldOrder(risk, id);
    else if (outcome.kind !== 'settled') risk = reserveOrder(risk, id, monoNow);
    if (outcome.kind === 'submitted' || outcome.kind === 'duplicate' || outcome.kind === 'settled') reported.push(...outcome.fills);
  }
  const { fresh, appliedFills } = unappliedFills(reported, state.appliedFills);
  if (fresh.length === 0) return { ...state, risk, appliedFills, newFills: 0 };
  return applyNewFills({ ...state, risk, appliedFills }, fresh);
}

/** Applies fills (already known to be new) and refreshes the strategy's view of positions. */
export function applyNewFills(
  state: { pipeline: PipelineState; portfolio: Portfolio; risk: RiskState; appliedFills: Readonly<Record<string, number>> },
  fills: readonly Fill[],
): Applied {
  const { portfolio } = applyFills(state.portfolio, fills);
  const positions: Record<string, string> = { ...state.pipeline.positions };
  for (const fill of fills) {
    const qty = portfolio.positions.get(fill.symbol)?.qty ?? 0n;
    if (qty === 0n) delete positions[fill.symbol];
    else positions[fill.symbol] = formatQty(qty);
  }
  return { pipeline: { ...state.pipeline, positions }, portfolio, risk: state.risk, appliedFills: state.appliedFills, newFills: fills.length };
}

/**
 * The fills of `fills` not yet counted in `applied` (how many of each order's fills the
 * portfolio holds), with the counts that include them. Broker fills of one order keep their order.
 */
export function unappliedFills(
  fills: readonly Fill[],
  applied: Readonly<Record<string, number>>,
): { fresh: Fill[]; appliedFills: Record<string, number> } {
  const appliedFills = keyed(applied);
  const seen = new Map<string, number>();
  const fresh = fills.filter((fill) => {
    const index = (seen.get(fill.clientOrderId) ?? 0) + 1;
    seen.set(fill.clientOrderId, index);
    if (index <= (own(applied, fill.clientOrderId) ?? 0)) return false;
    appliedFills[fill.clientOrderId] = index;
    return true;
  });
  return { fresh, appliedFills };
}
