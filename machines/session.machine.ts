import { assign, emit, enqueueActions, fromPromise, setup, type ActorRefFrom, type NonReducibleUnknown } from 'xstate';
import type { Bar } from '../src/bars/bar.js';
import { NONE_COMPLETED, type BarsState } from '../src/bars/barProcessor.js';
import type { TimeframeBar } from '../src/bars/timeframe.js';
import type { GuardState } from '../src/dataGuard/dataGuard.js';
import type { Fill } from '../src/common/order.js';
import { keyed } from '../src/common/keyed.js';
import { FillCounts } from '../src/session/fillCounts.js';
import type { Portfolio } from '../src/portfolio/portfolio.js';
import type { DenyCode } from '../src/risk/risk.js';
import type { RiskRules } from '../src/risk/riskLimits.js';
import {
  approvedOrders,
  bookOutcomes,
  decidedWith,
  recordAdmitted,
  runStrategy,
  skipResumed,
  splitPipeline,
  touchesHeld,
  unappliedFills,
  withPositions,
  type DecidedState,
  type DeniedIntent,
  type OrderOutcome,
  type OrderRefusal,
  type OrderRefusalCode,
  type OrderRequest,
  type PlannedOrder,
  type SessionState,
} from '../src/session/sessionPipeline.js';
import type { Strategy } from '../src/strategy/strategy.js';
import { barsMachine, type BarsEmitted } from './bars.machine.js';
import { dataGuardMachine, type DataGuardEvent } from './dataGuard.machine.js';
import { LIFECYCLE, lifecycleStatesWithFault, type LifecycleEvent } from './lifecycle.js';
import { portfolioMachine, type PortfolioEmitted, type PortfolioEvent } from './portfolio.machine.js';
import { reconcilerMachine, type ReconcilerEmitted, type ReconcilerEvent, type Reconciliation } from './reconciler.machine.js';
import { riskMachine, type RiskEmitted, type RiskEvent } from './risk.machine.js';

export type { Reconciliation } from './reconciler.machine.js';

/**
 * The trading session (AIStock's TradingCoordinator): `idle → starting → running → draining →
 * shutdown`, plus `faulted`. It composes the components; it does not hold their state or their rules.
 *
 * - `starting` is the start sequence, one substate per step — `locking` (the state dir),
 *   `restoring` (the checkpoint), `loadingJournal`, `openingBroker`, `settling` (ids and orders
 *   an earlier run left unsettled, against the broker) and `reconciling` (positions) — so a
 *   failure names its step in the fault, the log and the inspector. Bars sent earlier wait in
 *   the inbox. A `STOP` while starting is kept and honoured once started, so a start in flight
 *   is never abandoned holding the lock.
 * - Started, it spawns its components as children — `dataGuard`, `bars`, `risk`, `portfolio`,
 *   each the exported machine, from the restored state; the runtime makes the `checkpointer`,
 *   the `idempotency` tracker and the `broker` connection (they do I/O) its children too. It supervises them all through
 *   XState's own error events: a child that dies faults the session, naming it.
 * - `running` takes one batch at a time. In `ready`, the bars an earlier run did not process go
 *   to the data guard, which feeds the bars actor, which answers (`BARS_AGGREGATED`); the
 *   strategy then walks the admitted bars up to the first bar with intents, and the run of bars is
 *   settled (`settling`): the portfolio marks it bar by bar and answers with the account
 *   readings (`BARS_MARKED`), which risk takes in order with the intents' check (`SETTLE` →
 *   `SETTLED`). Approved orders go to `executing` (reserve the id durably, submit, collect
 *   fills), their fills to the portfolio (`applying`, answered `FILLS_APPLIED`), and deciding goes
 *   on. A run that touches nothing held and asks for nothing is not sent to the portfolio or
 *   risk at all. Each step is one event per run of bars, so batching never changes a result, and
 *   a batch decided to its end is closed and checkpointed from the children's own state.
 * - A `STOP` while a batch is in flight (`executing` waits for the broker calls, each with its
 *   own deadline) is kept until it is back in `ready`; bars not yet processed are dropped and
 *   counted: a resumed run processes them, since they are after the checkpoint.
 * - `draining` saves the final checkpoint and runs `drainSession` (reconcile one last time,
 *   stop the checkpointer and the journal, close the broker, release the lock), which always
 *   ends in `shutdown`, where the children are stopped.
 * - `faulted` (start failed, the strategy or an execution failed, a child died) releases
 *   resources the same way. A child that dies while starting faults the session once the
 *   start completes, never beside it.
 */

export type SessionEvent =
  | LifecycleEvent
  /** `receivedAtMs`/`monoMs`: when a live batch arrived (staleness, rate limits); none in replay. */
  | { type: 'BARS'; bars: readonly Bar[]; receivedAtMs?: number; monoMs?: number }
  /** Fills the broker reported later (partial fills, resting orders). */
  | { type: 'FILLS'; fills: readonly Fill[] }
  | { type: 'CHECKPOINT_DEGRADED'; error: string }
  /** The store's hold on the session (its lease) is another process's now: nothing more may be sent. */
  | { type: 'HOLD_LOST'; error: unknown }
  | { type: 'CHECKPOINT_RECOVERED' }
  /** The children's answers (see their machines). */
  | Extract<BarsEmitted, { type: 'BARS_AGGREGATED' }>
  | Extract<PortfolioEmitted, { type: 'BARS_MARKED' | 'FILLS_APPLIED' }>
  | Extract<RiskEmitted, { type: 'SETTLED' }>
  | ReconcilerEmitted;

/** What the session tells observers (`actor.on(type, …)`). */
export type SessionEmitted =
  | { type: 'ORDER_OUTCOMES'; outcomes: OrderOutcome[] }
  /** Intents risk denied, each with every reason, at their bar. */
  | { type: 'ORDERS_DENIED'; barTs: number; denied: readonly DeniedIntent[] }
  /** Fills handed to the portfolio, none of them booked before. */
  | { type: 'FILLS_BOOKED'; fills: readonly Fill[] };

/**
 * What the start sequence hands over (`reconcileAtStart`'s output): the restored (or fresh)
 * state of every component, from which the children are spawned. Fills of orders sent after the
 * checkpoint are not applied here: re-deciding the same bars yields the same client order ids,
 * and their fills are applied at that point, in the original order.
 */
export interface SessionStart extends SessionState {
  /** Earlier `unknown` orders the broker settled at start. */
  settled: OrderOutcome[];
}

/** What `executeOrders` did, in order. */
export interface Execution {
  outcomes: OrderOutcome[];
}

/** The session machine's input: the strategy, the compiled risk rules and the session's identity. */
export interface SessionInput {
  strategy: Strategy;
  rules: RiskRules;
  sessionId: string;
  /** Replay: rate limits and the trading day follow the bars' time, and there is no staleness. */
  replay: boolean;
  /** Only these symbols are traded; bars of others are dropped and counted (null: all). */
  symbols: readonly string[] | null;
  /** Live: reconcile with the broker when this much monotonic time passed since the last time (null: never). */
  reconcileEveryMs: number | null;
}

/** The session's children: the components that hold state, each running its exported machine. */
export interface SessionChildren {
  readonly dataGuard: ActorRefFrom<typeof dataGuardMachine>;
  readonly bars: ActorRefFrom<typeof barsMachine>;
  readonly portfolio: ActorRefFrom<typeof portfolioMachine>;
  readonly risk: ActorRefFrom<typeof riskMachine>;
  readonly reconciler: ActorRefFrom<typeof reconcilerMachine>;
}

/** The `systemId`s (and ids) of the children the session spawns. */
export const SESSION_CHILDREN = ['dataGuard', 'bars', 'portfolio', 'risk', 'reconciler'] as const;
/** The children the runtime creates with I/O (`parent`: the session), in its system under these `systemId`s. */
export const RUNTIME_CHILDREN = ['checkpointer', 'idempotency', 'broker'] as const;
type ChildId = (typeof SESSION_CHILDREN)[number] | (typeof RUNTIME_CHILDREN)[number];

interface Batch {
  /** The admitted bars (empty until the bars actor answers). */
  readonly bars: readonly Bar[];
  /** The monotonic time of a live batch's arrival; null in replay, where bar time is used. */
  readonly monoMs: number | null;
  /** Next bar to show the strategy. */
  readonly next: number;
  /** First bar not yet settled (marked, and its account taken by risk). */
  readonly settleFrom: number;
  /** Bars already shown to the broker (the market), so its fills use the right prices. */
  readonly fed: number;
  /** The higher-timeframe bars each admitted bar completed, by its index (the bars actor's answer). */
  readonly completed: ReadonlyMap<number, readonly TimeframeBar[]>;
}

/** `batch` with `change` applied; spelled out, not spread (see `decidedWith`). */
function batchWith(batch: Batch, change: Partial<Omit<Batch, 'monoMs'>>): Batch {
  return {
    bars: change.bars ?? batch.bars,
    monoMs: batch.monoMs,
    next: change.next ?? batch.next,
    settleFrom: change.settleFrom ?? batch.settleFrom,
    fed: change.fed ?? batch.fed,
    completed: change.completed ?? batch.completed,
  };
}

/** The check a settle ends with: the intents of the run's last bar. */
interface PendingCheck {
  readonly bar: Bar;
  readonly requests: readonly OrderRequest[];
}

/** The session's context: its own decisions, its children, the inbox, the batch in progress, counters. */
export interface SessionContext extends SessionInput {
  /** The monotonic time of the newest live batch, and of the last reconciliation. */
  lastMonoMs: number | null;
  lastReconciledMonoMs: number | null;
  decided: DecidedState | null;
  children: SessionChildren | null;
  appliedFills: FillCounts;
  /** Orders whose submit ended `unknown`, by client order id, until the broker settles them. */
  unsettled: Record<string, PlannedOrder>;
  inbox: { bars: readonly Bar[]; receivedAtMs: number | null; monoMs: number | null }[];
  batch: Batch | null;
  /** A settle sent to the portfolio and risk, and the check it ends with (null: none). */
  settling: { check: PendingCheck | null } | null;
  planned: PlannedOrder[];
  /** Fills reached the portfolio since risk last took its account: the next run is settled. */
  accountMoved: boolean;
  /** The bars of the batch just closed that the market has not seen yet: `feedMarket`'s input. */
  marketFeed: readonly Bar[];
  stopRequested: boolean;
  persistenceDegraded: string | null;
  /** Orders refused, by refusal code. */
  refusals: Partial<Record<OrderRefusalCode, number>>;
  /** Intents risk denied, by the code of each reason (an intent denied for two reasons counts under both). */
  denials: Partial<Record<DenyCode, number>>;
  fault: SessionFault | null;
  stats: SessionStats;
}

/** The whole session state now, read from the children's snapshots and the session's own part: null before they exist. */
export function sessionStateOf(context: SessionContext): SessionState | null {
  const { children, decided } = context;
  if (children === null || decided === null) return null;
  const guard: GuardState = children.dataGuard.getSnapshot().context.guard;
  const bars: BarsState = children.bars.getSnapshot().context.state;
  // Spelled out, not spread: this runs after every batch (every live bar), and a spread is V8's generic copy.
  const { strategy, lastTs, resumeAfter, positions, lastClose, resumedSkips } = decided;
  return {
    pipeline: { guard, bars, strategy, lastTs, resumeAfter, positions, lastClose, resumedSkips },
    portfolio: children.portfolio.getSnapshot().context.portfolio,
    risk: children.risk.getSnapshot().context.risk,
    appliedFills: context.appliedFills,
    unsettled: context.unsettled,
  };
}

/** The steps of the start sequence, in order (the substates of `starting`). */
export const START_STEPS = ['locking', 'restoring', 'loadingJournal', 'openingBroker', 'settling', 'reconciling'] as const;
/** One of {@link START_STEPS}. */
export type StartStep = (typeof START_STEPS)[number];

/**
 * Why a session faulted, by what failed: a closed set. `LEASE_LOST`: another process took the
 * session over (its store's lease); this one sent nothing more.
 */
export type SessionFaultCode = 'START_FAILED' | 'STRATEGY_FAILED' | 'EXECUTION_FAILED' | 'LEASE_LOST' | 'CHILD_FAILED' | 'DRAIN_FAILED' | 'RELEASE_FAILED';

/** A session's fault as a value: the code, the child that died (`CHILD_FAILED`), the error's own code, what happened. */
export interface SessionFault {
  readonly code: SessionFaultCode;
  /** The start step that failed (`START_FAILED`). */
  readonly step?: StartStep;
  /** The bar the strategy failed on (`STRATEGY_FAILED`). */
  readonly bar?: { readonly symbol: string; readonly ts: number };
  readonly child?: string;
  /** The `code` of the error behind it (e.g. `STATE_DIR_LOCKED`), when it had one. */
  readonly cause?: string;
  readonly detail: string;
}

/** One line for logs and error messages (never parsed back: the fault itself is the value). */
export function describeFault(fault: SessionFault): string {
  const where = fault.step ?? fault.child ?? (fault.bar === undefined ? undefined : `${fault.bar.symbol} ${new Date(fault.bar.ts).toISOString()}`);
  return `${fault.code}${where === undefined ? '' : ` (${where})`}: ${fault.detail}`;
}

/** What the session counted. */
export interface SessionStats {
  readonly batches: number;
  readonly barsReceived: number;
  readonly barsDropped: number;
  readonly ordersSubmitted: number;
  readonly duplicatesBlocked: number;
  readonly ordersRejected: number;
  readonly ordersUnknown: number;
  /** Orders the journal recorded as sent that the broker does not know (see `OrderOutcome` `lost`). */
  readonly ordersLost: number;
  readonly ordersSettled: number;
  readonly ordersRefused: number;
  readonly ordersDenied: number;
  readonly fills: number;
}

const NO_STATS: SessionStats = {
  batches: 0,
  barsReceived: 0,
  barsDropped: 0,
  ordersSubmitted: 0,
  duplicatesBlocked: 0,
  ordersRejected: 0,
  ordersUnknown: 0,
  ordersLost: 0,
  ordersSettled: 0,
  ordersRefused: 0,
  ordersDenied: 0,
  fills: 0,
};

/**
 * `stats` plus `add`. Spelled out, not spread: a spread of objects built in many places is a
 * slow generic copy in V8, and this runs for every bar.
 */
function counted(stats: SessionStats, add: Partial<SessionStats>): SessionStats {
  return {
    batches: stats.batches + (add.batches ?? 0),
    barsReceived: stats.barsReceived + (add.barsReceived ?? 0),
    barsDropped: stats.barsDropped + (add.barsDropped ?? 0),
    ordersSubmitted: stats.ordersSubmitted + (add.ordersSubmitted ?? 0),
    duplicatesBlocked: stats.duplicatesBlocked + (add.duplicatesBlocked ?? 0),
    ordersRejected: stats.ordersRejected + (add.ordersRejected ?? 0),
    ordersUnknown: stats.ordersUnknown + (add.ordersUnknown ?? 0),
    ordersLost: stats.ordersLost + (add.ordersLost ?? 0),
    ordersSettled: stats.ordersSettled + (add.ordersSettled ?? 0),
    ordersRefused: stats.ordersRefused + (add.ordersRefused ?? 0),
    ordersDenied: stats.ordersDenied + (add.ordersDenied ?? 0),
    fills: stats.fills + (add.fills ?? 0),
  };
}

/** The fault an error event makes: its message as the detail, its own code (if any) as the cause. */
function faultOf(code: SessionFaultCode, error: unknown, step?: StartStep): SessionFault {
  const detail = error instanceof Error ? error.message : String(error);
  const cause = (error as { code?: unknown } | null)?.code;
  return { code, ...(step === undefined ? {} : { step }), ...(typeof cause === 'string' ? { cause } : {}), detail };
}

/** An I/O actor the runtime supplies with `.provide()`; until then it fails, saying so. */
function provided<TOutput, TInput = NonReducibleUnknown>(name: string) {
  return fromPromise<TOutput, TInput>(async () => {
    throw new Error(`${name} is not provided: use sessionMachine.provide({ actors })`);
  });
}

const sessionSetup = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
    emitted: {} as SessionEmitted,
  },
  actors: {
    // The components, spawned as children once the start sequence hands over their state.
    dataGuard: dataGuardMachine,
    bars: barsMachine,
    portfolio: portfolioMachine,
    risk: riskMachine,
    /** The reconciler; its check (the broker, the report) is supplied by the runtime with `.provide()`. */
    reconciler: reconcilerMachine,
    // The start sequence, one actor per step, supplied by the runtime (which carries what one
    // step finds to the next); only the last one hands the restored state to the machine.
    /** Takes the state-dir lock. */
    lockStateDir: provided<void>('lockStateDir'),
    /** Reads the checkpoint (a corrupt one is set aside) and creates the checkpointer. */
    restoreCheckpoint: provided<void>('restoreCheckpoint'),
    /** Loads the idempotency journal. */
    loadJournal: provided<void>('loadJournal'),
    /** Opens the broker and asks it for every client order id it holds. */
    openBroker: provided<void>('openBroker'),
    /** Settles the journal's unsettled ids and the checkpoint's unknown orders against the broker. */
    settleOrders: provided<void>('settleOrders'),
    /** Broker vs restored positions; hands over the state to run with. */
    reconcileAtStart: provided<SessionStart>('reconcileAtStart'),
    /** Reserve (fsync), submit, mark, collect fills. */
    executeOrders: provided<Execution, { orders: PlannedOrder[]; marketBars: Bar[]; refuse: OrderRefusal | null; unsettled: PlannedOrder[] }>(
      'executeOrders',
    ),
    /** Reconcile one last time, stop the checkpointer and the journal, close the broker, release the lock. */
    drainSession: provided<void, { portfolio: Portfolio | null; appliedFills: FillCounts }>('drainSession'),
  },
  actions: {
    /** Shows bars to the broker (a simulated market needs every price); supplied by the runtime. */
    feedMarket: (_, _params: { bars: readonly Bar[] }) => undefined,
    /**
     * Hands the session's state (null mid-batch: nothing is saved then) to the checkpointer;
     * supplied by the runtime, which may skip an unforced save made soon after the previous one
     * (the journal and the broker hold the truth; a checkpoint only shortens the replay after a crash).
     */
    saveCheckpoint: (_, _params: { state: SessionState | null; force: boolean }) => undefined,
    enqueue: assign(({ context, event }) => (event.type === 'BARS' ? enqueued(context, event) : {})),
    dropBars: assign(({ context, event }) => {
      if (event.type !== 'BARS') return {};
      return { stats: counted(context.stats, { barsDropped: event.bars.length }) };
    }),
    dropUnprocessed: assign(({ context }) => {
      const queued = context.inbox.reduce((n, item) => n + item.bars.length, 0);
      const unfinished = context.batch === null ? 0 : context.batch.bars.length - context.batch.next;
      return {
        inbox: [],
        batch: null,
        stats: counted(context.stats, { barsDropped: queued + unfinished }),
      };
    }),
    /** Spawns the children from the start's state, starts them, and hands the portfolio the fills of orders settled at start. */
    spawnChildren: enqueueActions(({ context, event, enqueue }) => {
      const start = (event as unknown as { output: SessionStart }).output;
      const { decided, guard, bars } = splitPipeline(start.pipeline);
      enqueue.assign(({ spawn, self }) => {
        const risk = spawn('risk', { id: 'risk', systemId: 'risk', input: { rules: context.rules, state: start.risk, reportTo: self } });
        const portfolio = spawn('portfolio', { id: 'portfolio', systemId: 'portfolio', input: { portfolio: start.portfolio, reportTo: self } });
        const barsActor = spawn('bars', { id: 'bars', systemId: 'bars', input: { restore: bars, reportTo: self } });
        const dataGuard = spawn('dataGuard', { id: 'dataGuard', systemId: 'dataGuard', input: { restore: guard, reportTo: barsActor } });
        const reconciler = spawn('reconciler', { id: 'reconciler', systemId: 'reconciler', input: { reportTo: self } });
        return {
          children: { dataGuard, bars: barsActor, portfolio, risk, reconciler },
          decided,
          appliedFills: start.appliedFills,
          unsettled: start.unsettled,
        };
      });
      for (const id of SESSION_CHILDREN) enqueue.sendTo(id, { type: 'START' });
    }),
    /** Orders an earlier run left unknown, now settled by the broker: booked like any outcome. */
    bookSettledAtStart: enqueueActions(({ context, event, enqueue }) => {
      const start = (event as unknown as { output: SessionStart }).output;
      bookInto(context, enqueue, start.settled, { wallMs: 0, monoMs: 0 });
    }),
    /** Bars arriving in `ready` (the inbox is empty there): admitted at once. */
    admitArrived: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'BARS') return;
      const { item, stats } = received(context, event);
      admit(context, enqueue, item, stats);
    }),
    admitQueued: enqueueActions(({ context, enqueue }) => {
      const [item, ...rest] = context.inbox;
      enqueue.assign({ inbox: rest });
      admit(context, enqueue, item ?? null, context.stats);
    }),
    /** The batch screened and aggregated: its bars recorded as admitted and its first run decided, in one assign. */
    decideAdmitted: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'BARS_AGGREGATED' || context.batch === null || context.decided === null) return decideRun(context, enqueue);
      decideRun(context, enqueue, batchWith(context.batch, { bars: event.bars, completed: event.completed }), recordAdmitted(context.decided, event.bars));
    }),
    decideRun: enqueueActions(({ context, enqueue }) => decideRun(context, enqueue)),
    settleWithRisk: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'BARS_MARKED' || context.settling === null || context.batch === null) return;
      const pending = context.settling.check;
      const check =
        pending === null
          ? null
          : {
              checkId: pending.requests[0]?.orderId ?? '',
              orders: pending.requests,
              // Live, rate limits count in the process's monotonic time; in replay, in market time.
              at: { wallMs: pending.bar.ts, monoMs: context.batch.monoMs ?? pending.bar.ts },
            };
      enqueue.sendTo('risk', { type: 'SETTLE', series: event.series, check });
      enqueue.assign({ accountMoved: false });
    }),
    takeVerdicts: enqueueActions(({ context, event, enqueue }) => {
      const pending = context.settling?.check ?? null;
      if (event.type !== 'SETTLED' || pending === null) return enqueue.assign({ settling: null });
      const { orders, denied } = approvedOrders(pending.bar, pending.requests, event.verdicts);
      if (denied.length === 0) return enqueue.assign({ settling: null, planned: orders });
      const denials = { ...context.denials };
      for (const { reasons } of denied) for (const { code } of reasons) denials[code] = (denials[code] ?? 0) + 1;
      enqueue.assign({ settling: null, planned: orders, denials, stats: counted(context.stats, { ordersDenied: denied.length }) });
      enqueue.emit({ type: 'ORDERS_DENIED', barTs: pending.bar.ts, denied });
    }),
    applyExecution: enqueueActions(({ context, event, enqueue }) => {
      const { outcomes } = (event as unknown as { output: Execution }).output;
      const { batch } = context;
      if (batch === null) return;
      const barTs = context.planned[0]?.barTs ?? 0;
      bookInto(context, enqueue, outcomes, { wallMs: barTs, monoMs: batch.monoMs ?? barTs });
      enqueue.assign({ planned: [], batch: batchWith(batch, { fed: batch.next }) });
    }),
    reportOutcomes: emit(({ event }) => ({
      type: 'ORDER_OUTCOMES' as const,
      outcomes: (event as unknown as { output: Execution }).output.outcomes,
    })),
    takePositions: assign(({ context, event }) => {
      if (event.type !== 'FILLS_APPLIED' || context.decided === null) return {};
      return { decided: withPositions(context.decided, event.positions) };
    }),
    applyLateFills: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'FILLS') return;
      sendFills(context, enqueue, event.fills, false);
    }),
    /** An execution that crashed may have sent any of its orders: the broker must settle them all. */
    holdPlannedAsUnsettled: assign(({ context }) => ({
      unsettled: keyed({ ...context.unsettled, ...Object.fromEntries(context.planned.map((order) => [order.clientOrderId, order])) }),
      planned: [],
    })),
    requestStop: assign({ stopRequested: true }),
    askReconciler: enqueueActions(({ context, enqueue }) => {
      const portfolio = context.children?.portfolio.getSnapshot().context.portfolio;
      if (portfolio === undefined) return;
      enqueue.sendTo('reconciler', { type: 'CHECK', portfolio, appliedFills: context.appliedFills });
    }),
    applyReconciliation: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'RECONCILED') return;
      const { halt, adoptionFills } = event.reconciliation;
      if (halt !== null) {
        enqueue.sendTo('risk', { type: 'HALT', reason: { code: halt.code, detail: halt.detail }, at: { wallMs: halt.at, monoMs: context.lastMonoMs ?? 0 } });
      }
      enqueue.assign({ lastReconciledMonoMs: context.lastMonoMs });
      sendFills(context, enqueue, adoptionFills, true);
    }),
    skipReconciliation: assign(({ context }) => ({ lastReconciledMonoMs: context.lastMonoMs })),
    stopChildren: enqueueActions(({ context, enqueue }) => {
      const { children } = context;
      if (children === null) return;
      // A child that died is not sent anything: it cannot answer.
      for (const id of SESSION_CHILDREN) if (children[id].getSnapshot().status === 'active') enqueue.sendTo(id, { type: 'STOP' });
    }),
    markDegraded: assign(({ event }) => ({ persistenceDegraded: event.type === 'CHECKPOINT_DEGRADED' ? event.error : null })),
    markRecovered: assign({ persistenceDegraded: null }),
    recordFault: assign(({ event }, params: { code: SessionFaultCode; step?: StartStep }) => ({
      fault: faultOf(params.code, (event as { error?: unknown }).error, params.step),
    })),
    /** The hold lost while starting or stopping: the fault, unless an earlier one is the cause. */
    noteHoldLost: assign(({ context, event }) => ({ fault: context.fault ?? faultOf('LEASE_LOST', (event as { error?: unknown }).error) })),
    /** A later failure (of the cleanup that follows a fault) is noted only if nothing was before. */
    noteFault: assign(({ context, event }) => ({ fault: context.fault ?? faultOf('RELEASE_FAILED', (event as { error?: unknown }).error) })),
    /** A child died (XState's own error event): the fault names it; the first failure is the cause, later ones consequences. */
    recordChildError: assign(({ context, event }, params: { child: string }) => ({
      fault: context.fault ?? { ...faultOf('CHILD_FAILED', (event as { error?: unknown }).error), child: params.child },
    })),
  },
  guards: {
    hasInbox: ({ context }) => context.batch === null && context.inbox.length > 0,
    stopRequestedAtRest: ({ context }) => context.batch === null && context.stopRequested,
    ordersApproved: ({ event }) => event.type === 'SETTLED' && event.verdicts.some((verdict) => verdict.verdict === 'approve'),
    settleSent: ({ context }) => context.settling !== null,
    inBatch: ({ context }) => context.batch !== null,
    stopRequested: ({ context }) => context.stopRequested,
    childFailed: ({ context }) => context.fault !== null,
    strategyFailed: ({ context }) => context.fault?.code === 'STRATEGY_FAILED',
    /** The execution failed because the store's lease is another process's now (a `LEASE_LOST` error). */
    leaseLost: ({ event }) => (event as { error?: { code?: unknown } }).error?.code === 'LEASE_LOST',
    reconcileDue: ({ context }) =>
      context.batch === null &&
      context.reconcileEveryMs !== null &&
      context.lastMonoMs !== null &&
      context.lastReconciledMonoMs !== null &&
      context.lastMonoMs - context.lastReconciledMonoMs >= context.reconcileEveryMs,
  },
});

type InboxItem = SessionContext['inbox'][number];
type BarsEvent = Extract<SessionEvent, { type: 'BARS' }>;
/** What the helpers below do through an `enqueueActions`' `enqueue`: update the context, message a child, raise an answer, report a fact. */
interface Enqueue {
  assign(update: Partial<SessionContext>): void;
  sendTo(child: (typeof SESSION_CHILDREN)[number], event: DataGuardEvent | PortfolioEvent | RiskEvent | ReconcilerEvent): void;
  raise(event: SessionEvent): void;
  emit(event: SessionEmitted): void;
}

/** A BARS event's bars the session trades (others are dropped and counted), as an inbox item. */
function received(context: SessionContext, event: BarsEvent): { item: InboxItem | null; stats: SessionContext['stats'] } {
  const { symbols } = context;
  const bars = symbols === null ? event.bars : event.bars.filter((bar) => symbols.includes(bar.symbol));
  const stats = counted(context.stats, { barsReceived: event.bars.length, barsDropped: event.bars.length - bars.length });
  const item = bars.length === 0 ? null : { bars, receivedAtMs: event.receivedAtMs ?? null, monoMs: event.monoMs ?? null };
  return { item, stats };
}

function enqueued(context: SessionContext, event: BarsEvent): Partial<SessionContext> {
  const { item, stats } = received(context, event);
  return { inbox: item === null ? context.inbox : [...context.inbox, item], stats };
}

/**
 * Opens `item` as the batch in progress: the bars an earlier run did not process go to the
 * data guard (which feeds the bars actor, which answers `BARS_AGGREGATED`); with none, the
 * answer is raised at once, so every batch takes the same path.
 */
function admit(context: SessionContext, enqueue: Enqueue, item: InboxItem | null, stats: SessionStats): void {
  if (item === null || context.decided === null) {
    enqueue.assign({ stats });
    enqueue.raise({ type: 'BARS_AGGREGATED', bars: [], closed: [], ready: [], completed: NONE_COMPLETED });
    return;
  }
  const live = !context.replay;
  const { decided, fresh } = skipResumed(context.decided, item.bars);
  enqueue.assign({
    decided,
    batch: { bars: [], monoMs: live ? item.monoMs : null, next: 0, settleFrom: 0, fed: 0, completed: NONE_COMPLETED },
    stats: counted(stats, { batches: 1 }),
    lastMonoMs: live ? item.monoMs : context.lastMonoMs,
    lastReconciledMonoMs: context.lastReconciledMonoMs ?? (live ? item.monoMs : null),
  });
  if (fresh.length === 0) enqueue.raise({ type: 'BARS_AGGREGATED', bars: [], closed: [], ready: [], completed: NONE_COMPLETED });
  // Staleness is judged against arrival on the wall clock, live only.
  else enqueue.sendTo('dataGuard', live && item.receivedAtMs !== null ? { type: 'BARS', bars: fresh, receivedAtMs: item.receivedAtMs } : { type: 'BARS', bars: fresh });
}

/**
 * One run of the batch: the strategy walks from `next` to the first bar with intents (or the
 * end). The run's bars are settled — marked by the portfolio, their account readings and the
 * intents' check taken by risk — unless the run touches nothing held, moved no account and asks
 * for nothing. A batch decided and settled to its end is closed (`marketFeed`: its bars not yet
 * shown to the market). `batch` and `decided` are the context's unless the caller has newer ones
 * (so a step that changes them and decides costs one assign).
 */
function decideRun(context: SessionContext, enqueue: Enqueue, batch = context.batch, decided = context.decided): void {
  if (batch === null || decided === null) {
    enqueue.assign({ marketFeed: [] });
    return;
  }
  const run = runStrategy(decided, batch.bars, batch.completed, batch.next, { strategy: context.strategy, sessionId: context.sessionId });
  const strategyNow = decidedWith(decided, { strategy: run.strategy });
  if (run.failure !== null) {
    // User code failed: nothing more is decided; the batch stays open, so no checkpoint covers it.
    const { failure } = run;
    const fault: SessionFault = { code: 'STRATEGY_FAILED', bar: { symbol: failure.symbol, ts: failure.barTs }, detail: failure.detail };
    enqueue.assign({ decided: strategyNow, batch: batchWith(batch, { next: run.stop }), fault, marketFeed: [] });
    return;
  }
  const bar = batch.bars[run.stop];
  const check = bar === undefined || run.requests.length === 0 ? null : { bar, requests: run.requests };
  if (check === null && !context.accountMoved && !touchesHeld(decided, batch.bars, batch.settleFrom, run.stop)) {
    enqueue.assign({ decided: strategyNow, batch: null, marketFeed: batch.fed === 0 ? batch.bars : batch.bars.slice(batch.fed) });
    return;
  }
  // The check's bar is marked in the next run, after its orders' fills: as a bar decided alone would be.
  const marks = batch.bars.slice(batch.settleFrom, run.stop);
  enqueue.sendTo('portfolio', check === null ? { type: 'MARK_BARS', bars: marks } : { type: 'MARK_BARS', bars: marks, until: check.bar.ts });
  enqueue.assign({
    decided: strategyNow,
    batch: batchWith(batch, { next: check === null ? run.stop : run.stop + 1, settleFrom: run.stop }),
    settling: { check },
    marketFeed: [],
  });
}

/** Order outcomes booked: counters, unsettled ids, the rate-limit slots (to risk), the fills (to the portfolio). */
function bookInto(context: SessionContext, enqueue: Enqueue, outcomes: readonly OrderOutcome[], at: { wallMs: number; monoMs: number }): void {
  const booked = bookOutcomes(outcomes, context.appliedFills);
  for (const orderId of booked.reserved) enqueue.sendTo('risk', { type: 'ORDER_RESERVED', orderId, at });
  for (const orderId of booked.released) enqueue.sendTo('risk', { type: 'ORDER_RELEASED', orderId });
  const unsettled = keyed(context.unsettled);
  for (const outcome of outcomes) {
    if (outcome.kind === 'unknown') unsettled[outcome.order.clientOrderId] = outcome.order;
    if (outcome.kind === 'settled') delete unsettled[outcome.order.clientOrderId];
  }
  const count = (kind: OrderOutcome['kind']): number => outcomes.filter((o) => o.kind === kind).length;
  let refusals = context.refusals;
  for (const outcome of outcomes) {
    if (outcome.kind === 'refused') refusals = { ...refusals, [outcome.reason.code]: (refusals[outcome.reason.code] ?? 0) + 1 };
  }
  enqueue.assign({
    refusals,
    unsettled,
    appliedFills: booked.appliedFills,
    accountMoved: context.accountMoved || booked.fresh.length > 0,
    stats: counted(context.stats, {
      ordersSubmitted: count('submitted'),
      duplicatesBlocked: count('duplicate'),
      ordersRejected: count('rejected'),
      ordersUnknown: count('unknown'),
      ordersLost: count('lost'),
      ordersSettled: count('settled'),
      ordersRefused: count('refused'),
      fills: booked.fresh.length,
    }),
  });
  // Always sent, even empty: its answer (FILLS_APPLIED) comes after risk took the slots above.
  enqueue.sendTo('portfolio', { type: 'FILLS', fills: booked.fresh });
  if (booked.fresh.length > 0) enqueue.emit({ type: 'FILLS_BOOKED', fills: booked.fresh });
}

/**
 * Fills from outside an execution (late partial fills, adopted positions), those not applied
 * before, to the portfolio. `always`: sent even when none is new (a state waits for the answer).
 */
function sendFills(context: SessionContext, enqueue: Enqueue, fills: readonly Fill[], always: boolean): void {
  if (context.children === null) return;
  const { fresh, appliedFills } = unappliedFills(fills, context.appliedFills);
  if (fresh.length === 0 && !always) return;
  enqueue.assign({ appliedFills, accountMoved: context.accountMoved || fresh.length > 0, stats: counted(context.stats, { fills: fresh.length }) });
  enqueue.sendTo('portfolio', { type: 'FILLS', fills: fresh });
  if (fresh.length > 0) enqueue.emit({ type: 'FILLS_BOOKED', fills: fresh });
}

/** Nothing is sent while the session cannot persist what it sends. */
function persistenceRefusal(context: SessionContext): OrderRefusal | null {
  return context.persistenceDegraded === null ? null : { code: 'PERSISTENCE_DEGRADED', detail: context.persistenceDegraded };
}

/** After a step that may have closed a batch: show its bars to the market, save a checkpoint (between batches only). */
const showAndSave = [
  { type: 'feedMarket', params: ({ context }: { context: SessionContext }) => ({ bars: context.marketFeed }) },
  { type: 'saveCheckpoint', params: ({ context }: { context: SessionContext }) => ({ state: savable(context), force: false }) },
] as const;

/**
 * The state to checkpoint: only between batches (mid-batch, admitted bars are not all decided),
 * and never once taken over (the writes are fenced, and the state is the new holder's now).
 */
function savable(context: SessionContext): SessionState | null {
  return context.batch === null && context.fault?.code !== 'LEASE_LOST' ? sessionStateOf(context) : null;
}

const saveFinal = { type: 'saveCheckpoint', params: ({ context }: { context: SessionContext }) => ({ state: savable(context), force: true }) } as const;

/** A spawned child's error event faults the session, naming the child (XState's own supervision). */
function supervised<const Child extends ChildId>(child: Child) {
  return {
    target: `#session.${LIFECYCLE.faulted}`,
    actions: [{ type: 'recordChildError', params: { child } }, 'holdPlannedAsUnsettled'],
  } as const;
}

/** While starting or stopping, a child's death is recorded: the start completes (or the stop goes on) before the fault acts. */
const childDeathsRecorded = Object.fromEntries(
  [...SESSION_CHILDREN, ...RUNTIME_CHILDREN].map((child) => [`xstate.error.actor.${child}`, { actions: { type: 'recordChildError', params: { child } } }]),
) as { [Child in ChildId as `xstate.error.actor.${Child}`]: { actions: { type: 'recordChildError'; params: { child: Child } } } };

/** Outside `running`, a child's death and the hold's loss are recorded the same way: the start completes (then faults), the stop goes on. */
const lossesRecorded = { ...childDeathsRecorded, HOLD_LOST: { actions: 'noteHoldLost' } } as const;

/** A step of the start sequence: its actor runs, then the next step; its failure faults the session, naming the step. */
function startStep<const Src extends 'lockStateDir' | 'restoreCheckpoint' | 'loadJournal' | 'openBroker' | 'settleOrders'>(
  id: string,
  src: Src,
  step: StartStep,
  next: StartStep,
) {
  return {
    invoke: {
      id,
      src,
      onDone: next,
      onError: { target: `#session.${LIFECYCLE.faulted}`, actions: { type: 'recordFault', params: { code: 'START_FAILED', step } } },
    },
  } as const;
}

/** States a batch passes through between two answers of the children: a STOP waits for `ready`. */
const inFlight = { on: { STOP: { actions: 'requestStop' } } } as const;

const portfolioInput = ({ context }: { context: SessionContext }) => ({
  portfolio: context.children?.portfolio.getSnapshot().context.portfolio ?? null,
  appliedFills: context.appliedFills,
});

/** The session machine (see the module comment); its I/O actors are supplied by `createTradingSession`. */
export const sessionMachine = sessionSetup.createMachine({
  id: 'session',
  context: ({ input }) => ({
    ...input,
    lastMonoMs: null,
    lastReconciledMonoMs: null,
    decided: null,
    children: null,
    appliedFills: FillCounts.EMPTY,
    unsettled: keyed(),
    inbox: [],
    batch: null,
    settling: null,
    planned: [],
    accountMoved: false,
    marketFeed: [],
    stopRequested: false,
    persistenceDegraded: null,
    refusals: {},
    denials: {},
    fault: null,
    stats: NO_STATS,
  }),
  initial: LIFECYCLE.idle,
  on: {
    CHECKPOINT_DEGRADED: { actions: 'markDegraded' },
    CHECKPOINT_RECOVERED: { actions: 'markRecovered' },
  },
  states: {
    ...lifecycleStatesWithFault({
      idle: {
        on: {
          START: 'starting',
          // Bars ingested before start wait in the inbox.
          BARS: { actions: 'enqueue' },
        },
      },
      running: {
        // First the fills of orders settled at start reach the portfolio.
        initial: 'applying',
        on: {
          BARS: { actions: 'enqueue' },
          FILLS: { actions: 'applyLateFills' },
          FILLS_APPLIED: { actions: 'takePositions' },
          STOP: { target: LIFECYCLE.draining, actions: 'dropUnprocessed' },
          // Taken over: whatever is in flight is the new holder's to settle.
          HOLD_LOST: {
            target: `#session.${LIFECYCLE.faulted}`,
            actions: [{ type: 'recordFault', params: { code: 'LEASE_LOST' } }, 'holdPlannedAsUnsettled'],
          },
          // No session runs on without its journal, its checkpoints or any component: halt, keep what is known.
          'xstate.error.actor.checkpointer': supervised('checkpointer'),
          'xstate.error.actor.idempotency': supervised('idempotency'),
          'xstate.error.actor.broker': supervised('broker'),
          'xstate.error.actor.dataGuard': supervised('dataGuard'),
          'xstate.error.actor.bars': supervised('bars'),
          'xstate.error.actor.portfolio': supervised('portfolio'),
          'xstate.error.actor.risk': supervised('risk'),
          'xstate.error.actor.reconciler': supervised('reconciler'),
        },
        states: {
          ready: {
            // At rest here (no batch) the session has processed every bar it was given. A batch's
            // admission and every run that needs neither the portfolio nor risk happen here, in
            // one step per answer: the common live bar costs no state change at all.
            tags: 'awaitingBars',
            on: {
              BARS: { actions: 'admitArrived' },
              BARS_AGGREGATED: { actions: ['decideAdmitted', ...showAndSave] },
            },
            always: [
              // The strategy threw or returned a bad intent: the session faults; nothing more is decided.
              { guard: 'strategyFailed', target: `#session.${LIFECYCLE.faulted}` },
              { guard: 'settleSent', target: 'settling' },
              // The rest only between batches.
              { guard: 'stopRequestedAtRest', target: `#session.${LIFECYCLE.draining}`, actions: 'dropUnprocessed' },
              // On the live feed's own clock: a quiet market is not reconciled.
              { guard: 'reconcileDue', target: 'reconciling' },
              { guard: 'hasInbox', actions: 'admitQueued' },
            ],
          },
          settling: {
            on: {
              ...inFlight.on,
              BARS_MARKED: { actions: 'settleWithRisk' },
              SETTLED: [
                { guard: 'ordersApproved', target: 'executing', actions: 'takeVerdicts' },
                { target: 'ready', actions: ['takeVerdicts', 'decideRun', ...showAndSave] },
              ],
            },
          },
          executing: {
            ...inFlight,
            invoke: {
              id: 'executor',
              src: 'executeOrders',
              input: ({ context }: { context: SessionContext }) => ({
                orders: context.planned,
                marketBars: context.batch?.bars.slice(context.batch.fed, context.batch.next) ?? [],
                refuse: persistenceRefusal(context),
                unsettled: Object.values(context.unsettled),
              }),
              onDone: { target: 'applying', actions: ['applyExecution', 'reportOutcomes'] },
              onError: [
                // Fenced: a standby took the session over; whatever was planned is the new holder's to settle.
                {
                  guard: 'leaseLost',
                  target: `#session.${LIFECYCLE.faulted}`,
                  actions: [{ type: 'recordFault', params: { code: 'LEASE_LOST' } }, 'holdPlannedAsUnsettled'],
                },
                {
                  target: `#session.${LIFECYCLE.faulted}`,
                  actions: [{ type: 'recordFault', params: { code: 'EXECUTION_FAILED' } }, 'holdPlannedAsUnsettled'],
                },
              ],
            },
          },
          applying: {
            ...inFlight,
            on: {
              ...inFlight.on,
              FILLS_APPLIED: [
                { guard: 'inBatch', target: 'ready', actions: ['takePositions', 'decideRun', ...showAndSave] },
                // Fills of orders settled at start, or of a reconciliation: no batch to go on with.
                { target: 'ready', actions: 'takePositions' },
              ],
            },
          },
          reconciling: {
            entry: 'askReconciler',
            on: {
              RECONCILED: { target: 'applying', actions: 'applyReconciliation' },
              // A broker that cannot answer now is asked again at the next interval.
              RECONCILE_FAILED: { target: 'ready', actions: 'skipReconciliation' },
            },
          },
        },
      },
      draining: {
        entry: saveFinal,
        on: { BARS: { actions: 'dropBars' }, ...lossesRecorded },
        invoke: {
          id: 'drainer',
          src: 'drainSession',
          input: portfolioInput,
          onDone: LIFECYCLE.shutdown,
          onError: { target: LIFECYCLE.shutdown, actions: { type: 'recordFault', params: { code: 'DRAIN_FAILED' } } },
        },
      },
      shutdown: {
        entry: 'stopChildren',
        on: { BARS: { actions: 'dropBars' }, ...lossesRecorded },
      },
      faulted: {
        // Keep what is known (unsettled orders above all) before the resources go.
        entry: [saveFinal, 'stopChildren'],
        on: {
          BARS: { actions: 'dropBars' },
          ...lossesRecorded,
          // Not straight to shutdown: stop() must not return while the cleanup still holds the lock.
          STOP: { actions: 'requestStop' },
        },
        initial: 'releasing',
        states: {
          releasing: {
            invoke: {
              id: 'cleanup',
              src: 'drainSession',
              input: portfolioInput,
              onDone: 'released',
              onError: { target: 'released', actions: 'noteFault' },
            },
          },
          released: {
            always: { guard: 'stopRequested', target: `#session.${LIFECYCLE.shutdown}` },
            on: { STOP: `#session.${LIFECYCLE.shutdown}` },
          },
        },
      },
    }),
    starting: {
      on: {
        BARS: { actions: 'enqueue' },
        STOP: { actions: 'requestStop' },
        // Kept until the start completes: faulting now would clean up beside a start still opening files.
        ...lossesRecorded,
      },
      initial: 'locking',
      states: {
        locking: startStep('locker', 'lockStateDir', 'locking', 'restoring'),
        restoring: startStep('restorer', 'restoreCheckpoint', 'restoring', 'loadingJournal'),
        loadingJournal: startStep('journalLoader', 'loadJournal', 'loadingJournal', 'openingBroker'),
        openingBroker: startStep('brokerOpener', 'openBroker', 'openingBroker', 'settling'),
        settling: startStep('settler', 'settleOrders', 'settling', 'reconciling'),
        reconciling: {
          invoke: {
            id: 'starter',
            src: 'reconcileAtStart',
            onDone: [
              { guard: 'childFailed', target: `#session.${LIFECYCLE.faulted}` },
              { target: `#session.${LIFECYCLE.running}`, actions: ['spawnChildren', 'bookSettledAtStart'] },
            ],
            onError: { target: `#session.${LIFECYCLE.faulted}`, actions: { type: 'recordFault', params: { code: 'START_FAILED', step: 'reconciling' } } },
          },
        },
      },
    },
  },
});
