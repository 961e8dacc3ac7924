import { assign, emit, enqueueActions, setup, type AnyActorRef } from 'xstate';
import {
  addHaltReason,
  breachHalts,
  breachReason,
  checkOrders,
  createRiskState,
  releaseHeldOrder,
  reserveOrder,
  resumeTrading,
  setReduceReason,
  settleSeries,
  startTradingDayIfDue,
  tradingState,
  updateAccount,
  type AccountView,
  type ClockReading,
  type DenyCode,
  type OrderCheckRequest,
  type OrderVerdict,
  type PortfolioAt,
  type Reason,
  type ReasonInput,
  type RiskState,
  type TradingDay,
  type TradingState,
} from '../src/risk/risk.js';
import { compileRiskRules, DEFAULT_RISK_LIMITS, type RiskLimits, type RiskRules } from '../src/risk/riskLimits.js';
import { LIFECYCLE, lifecycleStates, type LifecycleEvent } from './lifecycle.js';

/**
 * The risk engine (AIStock's RiskEngine): pre-trade checks, order-rate limits, daily-loss and
 * drawdown halts. Create it with `systemId: 'risk'`.
 *
 * `running` holds the trading states `active → reducing → halted` (reducing: only orders that
 * shrink a position without crossing zero pass; halted: only orders that close one completely):
 * - `HALT(reason)` halts from `active` or `reducing`; in `halted` it is an explicit transition
 *   that adds the reason (a code already held is not repeated) and changes nothing else.
 * - `REDUCE(reason)` restricts `active` to reduce-only orders; in `halted` it is remembered.
 * - `RESUME` is explicit: `reducing`/`halted` → `active`, dropping every reason.
 * - A breach (`ACCOUNT_UPDATED` showing daily loss or drawdown at its limit) raises `HALT`
 *   with the breach as the reason, when the kill switch is on; in `halted` that adds the
 *   reason (a breach during a halt).
 * - The daily reset (the first event stamped at or after midnight in the exchange zone)
 *   re-bases the daily loss, restarts the daily order count and drops `DAILY_LOSS_LIMIT`; if
 *   no halt reason is left, `TRADING_DAY_STARTED` leaves `halted`: the only automatic resume.
 *
 * `CHECK_ORDERS` answers with `ORDERS_CHECKED` (same `checkId`), always: outside `running`
 * every order is denied `RISK_ENGINE_STOPPED`. With rate limits on, an approved order holds a
 * slot until `ORDER_RESERVED` (counted) or `ORDER_RELEASED` (freed). Account updates and reservations are
 * taken in every lifecycle state, so the counts stay true until the process ends.
 *
 * `SETTLE` is how a session drives it, one event per run of bars: the portfolio as it stood at
 * each bar that moved it (`series`, taken in order exactly as `ACCOUNT_UPDATED`s would be, halts and
 * daily resets in their true order: `settleSeries`), then, if the run ends at a bar with
 * intents, their check at that bar's time. It answers `SETTLED` (the verdicts; none without a
 * check) to `reportTo` and to listeners, always; outside `running` the check is denied.
 */

/** What the risk engine accepts; every timed event carries both clock readings (`at`). */
export type RiskEvent =
  | LifecycleEvent
  | { type: 'CHECK_ORDERS'; checkId: string; orders: readonly OrderCheckRequest[]; at: ClockReading }
  | { type: 'ORDER_RESERVED'; orderId: string; at: ClockReading }
  | { type: 'ORDER_RELEASED'; orderId: string }
  | { type: 'ACCOUNT_UPDATED'; account: AccountView; at: ClockReading }
  | { type: 'HALT'; reason: ReasonInput; at: ClockReading }
  | { type: 'REDUCE'; reason: ReasonInput; at: ClockReading }
  | { type: 'RESUME' }
  /** A run of bars settled, then (optionally) orders checked: see the machine's comment. */
  | { type: 'SETTLE'; series: readonly PortfolioAt[]; check: SettleCheck | null }
  /** Raised by the daily reset; see the machine's comment. */
  | { type: 'TRADING_DAY_STARTED'; tradingDay: TradingDay };

/** The order check that ends a `SETTLE`: the intents of the run's last bar, at that bar's time. */
export interface SettleCheck {
  readonly checkId: string;
  readonly orders: readonly OrderCheckRequest[];
  readonly at: ClockReading;
}

/** What the risk engine tells observers (`actor.on(type, …)`). */
export type RiskEmitted =
  | { type: 'ORDERS_CHECKED'; checkId: string; verdicts: OrderVerdict[] }
  | { type: 'SETTLED'; checkId: string | null; verdicts: OrderVerdict[] }
  | { type: 'TRADING_STATE_CHANGED'; tradingState: TradingState; haltReasons: readonly Reason[]; reduceReason: Reason | null }
  | { type: 'LIMIT_BREACHED'; reason: Reason; halts: boolean }
  | { type: 'TRADING_DAY_STARTED'; tradingDay: TradingDay };

/** Counters for the Summary and for tests. */
export interface RiskStats {
  checked: number;
  approved: number;
  denied: Partial<Record<DenyCode, number>>;
  reserved: number;
  released: number;
  breaches: number;
  tradingDaysStarted: number;
}

/** The engine's context: compiled limits, the risk state (plain data, checkpointable), counters. */
export interface RiskContext {
  rules: RiskRules;
  risk: RiskState;
  stats: RiskStats;
  reportTo: AnyActorRef | null;
}

/**
 * Limits (validated with `parseRiskLimits`; the original's defaults when absent) or rules
 * already compiled from them, a restored state, and who else receives `SETTLED` (a session
 * passes its `self`).
 */
export interface RiskInput {
  limits?: RiskLimits;
  rules?: RiskRules;
  state?: RiskState;
  reportTo?: AnyActorRef;
}

/** Counts a check's verdicts into `stats`. */
function countVerdicts(stats: RiskStats, verdicts: readonly OrderVerdict[]): RiskStats {
  const counted = { ...stats, checked: stats.checked + verdicts.length, denied: { ...stats.denied } };
  for (const verdict of verdicts) {
    if (verdict.verdict === 'approve') counted.approved += 1;
    else for (const { code } of verdict.reasons) counted.denied[code] = (counted.denied[code] ?? 0) + 1;
  }
  return counted;
}

const STOPPED_REASONS = [{ code: 'RISK_ENGINE_STOPPED' as const, detail: 'the risk engine is not running: no order passes' }];

const riskSetup = setup({
  types: {
    context: {} as RiskContext,
    events: {} as RiskEvent,
    input: {} as RiskInput | undefined,
    emitted: {} as RiskEmitted,
  },
  guards: {
    isHalted: ({ context }) => tradingState(context.risk) === 'halted',
    isReducing: ({ context }) => tradingState(context.risk) === 'reducing',
    haltLiftedToReducing: ({ context }) => tradingState(context.risk) === 'reducing',
    haltLifted: ({ context }) => tradingState(context.risk) === 'active',
  },
  actions: {
    startTradingDayIfDue: enqueueActions(({ context, event, enqueue }) => {
      if (!('at' in event)) return;
      const { state, started } = startTradingDayIfDue(context.risk, context.rules, event.at.wallMs);
      if (state === context.risk) return;
      enqueue.assign({ risk: state });
      if (started === null) return;
      enqueue.assign({ stats: { ...context.stats, tradingDaysStarted: context.stats.tradingDaysStarted + 1 } });
      enqueue.raise({ type: 'TRADING_DAY_STARTED', tradingDay: started });
      enqueue.emit({ type: 'TRADING_DAY_STARTED', tradingDay: started });
    }),
    takeAccount: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'ACCOUNT_UPDATED') return;
      const { state, newBreaches } = updateAccount(context.risk, context.rules, event.account);
      enqueue.assign({ risk: state, stats: { ...context.stats, breaches: context.stats.breaches + newBreaches.length } });
      const halts = context.rules.limits.killSwitchEnabled;
      for (const code of newBreaches) enqueue.emit({ type: 'LIMIT_BREACHED', reason: breachReason(state, context.rules, code, event.at.wallMs), halts });
      // The rule (kill switch, standing breaches after a RESUME) is breachHalts'; the transition is HALT's.
      for (const reason of breachHalts(state, context.rules, event.at.wallMs)) {
        enqueue.raise({ type: 'HALT', reason: { code: reason.code, detail: reason.detail }, at: event.at });
      }
    }),
    checkOrderBatch: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'CHECK_ORDERS') return;
      const { state, verdicts } = checkOrders(context.risk, context.rules, event.orders, event.at.monoMs);
      enqueue.assign({ risk: state, stats: countVerdicts(context.stats, verdicts) });
      enqueue.emit({ type: 'ORDERS_CHECKED', checkId: event.checkId, verdicts });
    }),
    refuseChecks: emit(({ event }) => {
      const orders = event.type === 'CHECK_ORDERS' ? event.orders : [];
      return {
        type: 'ORDERS_CHECKED' as const,
        checkId: event.type === 'CHECK_ORDERS' ? event.checkId : '',
        verdicts: orders.map(() => ({ verdict: 'deny' as const, reasons: STOPPED_REASONS })),
      };
    }),
    /** The series and the check's daily reset, in data; the trading-state transitions are raised (HALT, TRADING_DAY_STARTED). */
    settleSeries: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'SETTLE') return;
      const settled = settleSeries(context.risk, context.rules, event.series, event.check?.at.wallMs ?? null);
      if (settled.state === context.risk) return;
      const { stats } = context;
      enqueue.assign({
        risk: settled.state,
        stats: { ...stats, breaches: stats.breaches + settled.breaches.length, tradingDaysStarted: stats.tradingDaysStarted + settled.daysStarted.length },
      });
      const halts = context.rules.limits.killSwitchEnabled;
      for (const reason of settled.breaches) enqueue.emit({ type: 'LIMIT_BREACHED', reason, halts });
      for (const tradingDay of settled.daysStarted) enqueue.emit({ type: 'TRADING_DAY_STARTED', tradingDay });
      const newest = settled.daysStarted.at(-1);
      if (newest !== undefined) enqueue.raise({ type: 'TRADING_DAY_STARTED', tradingDay: newest });
      // Halts still held at the end of the series (a daily reset may have dropped earlier ones).
      const at = event.check?.at ?? { wallMs: event.series.at(-1)?.at ?? 0, monoMs: 0 };
      for (const reason of settled.state.haltReasons) {
        if (!context.risk.haltReasons.some((held) => held.code === reason.code)) enqueue.raise({ type: 'HALT', reason: { code: reason.code, detail: reason.detail }, at });
      }
    }),
    answerSettle: enqueueActions(({ context, event, enqueue }, params: { running: boolean }) => {
      if (event.type !== 'SETTLE') return;
      const { check } = event;
      let verdicts: OrderVerdict[] = [];
      if (check !== null && params.running) {
        const checked = checkOrders(context.risk, context.rules, check.orders, check.at.monoMs);
        verdicts = checked.verdicts;
        enqueue.assign({ risk: checked.state, stats: countVerdicts(context.stats, verdicts) });
      } else if (check !== null) verdicts = check.orders.map(() => ({ verdict: 'deny' as const, reasons: STOPPED_REASONS }));
      const settled = { type: 'SETTLED' as const, checkId: check?.checkId ?? null, verdicts };
      enqueue.emit(settled);
      if (context.reportTo !== null) enqueue.sendTo(context.reportTo, settled);
    }),
    countReservation: assign(({ context, event }) => {
      if (event.type !== 'ORDER_RESERVED') return {};
      return {
        risk: reserveOrder(context.risk, event.orderId, event.at.monoMs),
        stats: { ...context.stats, reserved: context.stats.reserved + 1 },
      };
    }),
    releaseHold: assign(({ context, event }) => {
      if (event.type !== 'ORDER_RELEASED') return {};
      return { risk: releaseHeldOrder(context.risk, event.orderId), stats: { ...context.stats, released: context.stats.released + 1 } };
    }),
    addHaltReason: assign({
      risk: ({ context, event }) =>
        event.type === 'HALT' ? addHaltReason(context.risk, { ...event.reason, at: event.at.wallMs }) : context.risk,
    }),
    setReduceReason: assign({
      risk: ({ context, event }) =>
        event.type === 'REDUCE' ? setReduceReason(context.risk, { ...event.reason, at: event.at.wallMs }) : context.risk,
    }),
    resumeTrading: assign({ risk: ({ context }) => resumeTrading(context.risk) }),
    announceTradingState: emit(({ context }) => ({
      type: 'TRADING_STATE_CHANGED' as const,
      tradingState: tradingState(context.risk),
      haltReasons: context.risk.haltReasons,
      reduceReason: context.risk.reduceReason,
    })),
  },
});

/** `active → reducing → halted`, entered through `restoring`, which picks the state the data holds. */
const tradingStates = riskSetup.createStateConfig({
  initial: 'restoring',
  on: {
    CHECK_ORDERS: { actions: ['startTradingDayIfDue', 'checkOrderBatch'] },
    SETTLE: { actions: ['settleSeries', { type: 'answerSettle', params: { running: true } }] },
  },
  states: {
    restoring: {
      description: 'picks the trading state the data holds (a restored checkpoint, or a HALT sent before START)',
      always: [{ guard: 'isHalted', target: 'halted' }, { guard: 'isReducing', target: 'reducing' }, { target: 'active' }],
    },
    active: {
      entry: 'announceTradingState',
      on: {
        HALT: { target: 'halted', actions: 'addHaltReason' },
        REDUCE: { target: 'reducing', actions: 'setReduceReason' },
        RESUME: { description: 'already active: RESUME changes nothing' },
      },
    },
    reducing: {
      entry: 'announceTradingState',
      on: {
        HALT: { target: 'halted', actions: 'addHaltReason' },
        REDUCE: { actions: 'setReduceReason', description: 'already reducing: the newest reason replaces the old' },
        RESUME: { target: 'active', actions: 'resumeTrading' },
      },
    },
    halted: {
      entry: 'announceTradingState',
      on: {
        HALT: { actions: 'addHaltReason', description: 'already halted: adds the reason, changes nothing else' },
        REDUCE: { actions: 'setReduceReason', description: 'kept for when the halt lifts' },
        RESUME: { target: 'active', actions: 'resumeTrading' },
        TRADING_DAY_STARTED: [
          { guard: 'haltLiftedToReducing', target: 'reducing', description: 'daily reset: only day-scoped reasons were held' },
          { guard: 'haltLifted', target: 'active', description: 'daily reset: only day-scoped reasons were held' },
        ],
      },
    },
  },
});

/** The risk engine machine (`id`/`systemId` `risk`); see the comment at the top of this file. */
export const riskMachine = riskSetup.createMachine({
  id: 'risk',
  context: ({ input }) => {
    return {
      rules: input?.rules ?? compileRiskRules(input?.limits ?? DEFAULT_RISK_LIMITS),
      risk: input?.state ?? createRiskState(),
      stats: { checked: 0, approved: 0, denied: {}, reserved: 0, released: 0, breaches: 0, tradingDaysStarted: 0 },
      reportTo: input?.reportTo ?? null,
    };
  },
  initial: LIFECYCLE.idle,
  // Data is taken in every lifecycle state; `running` overrides CHECK_ORDERS, and the trading
  // states override HALT/REDUCE/RESUME with their transitions.
  on: {
    ACCOUNT_UPDATED: { actions: ['startTradingDayIfDue', 'takeAccount'] },
    ORDER_RESERVED: { actions: ['startTradingDayIfDue', 'countReservation'] },
    ORDER_RELEASED: { actions: 'releaseHold' },
    CHECK_ORDERS: { actions: 'refuseChecks' },
    SETTLE: { actions: ['settleSeries', { type: 'answerSettle', params: { running: false } }] },
    HALT: { actions: 'addHaltReason' },
    REDUCE: { actions: 'setReduceReason' },
    RESUME: { actions: 'resumeTrading' },
  },
  states: lifecycleStates({
    running: tradingStates,
    draining: {
      description: 'nothing to drain: holds settle through ORDER_RESERVED/RELEASED in any state',
      always: { target: LIFECYCLE.shutdown },
    },
  }),
});
