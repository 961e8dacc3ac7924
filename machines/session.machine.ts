import { assign, emit, fromPromise, setup, type NonReducibleUnknown } from 'xstate';
import type { Bar } from '../src/core/bar.js';
import type { Fill } from '../src/core/order.js';
import { keyed } from '../src/core/keyed.js';
import type { Portfolio } from '../src/core/portfolio.js';
import { addHaltReason, createRiskState, type RiskState } from '../src/core/risk.js';
import type { RiskRules } from '../src/core/riskLimits.js';
import {
  admitBatch,
  applyNewFills,
  applyOutcomes,
  decide,
  unappliedFills,
  type OrderOutcome,
  type OrderRefusal,
  type OrderRefusalCode,
  type PipelineState,
  type PlannedOrder,
} from '../src/core/sessionPipeline.js';
import type { Strategy } from '../src/core/strategy.js';
import { LIFECYCLE, lifecycleStatesWithFault, type LifecycleEvent } from './lifecycle.js';

/**
 * The trading session (AIStock's TradingCoordinator): `idle → starting → running → draining →
 * shutdown`, plus `faulted`.
 *
 * - `starting` is the start sequence, one substate per step — `locking` (the state dir),
 *   `restoring` (the checkpoint), `loadingJournal`, `openingBroker`, `settling` (ids and orders
 *   an earlier run left unsettled, against the broker) and `reconciling` (positions) — so a
 *   failure names its step in the fault, the log and the inspector. Only then are bars processed. Bars sent earlier wait in the inbox. A `STOP` while starting is kept and
 *   honoured once started, so a start in flight is never abandoned holding the lock.
 * - `running` takes one batch at a time, in `ready`: the batch is admitted (guard + aggregation)
 *   and decided (strategy + risk, bar by bar) until a bar yields approved orders, which go to
 *   `executing` (`executeOrders`: reserve the id durably, submit, mark, fills); back in `ready` the
 *   rest of the batch is decided the same way. Each bar is settled in its own time as it is
 *   decided (trading day, mark, breaches), so batching never changes a result. A batch decided to
 *   its end is closed at once and a checkpoint saved. So a bar that asks for no order costs one
 *   step of the machine, and `ready` at rest never holds a batch.
 * - A `STOP` during `executing` waits for the orders in flight (each broker call has its own
 *   deadline), then drains; elsewhere it drains at once. Bars not yet processed are dropped and
 *   counted: a resumed run processes them, since they are after the checkpoint.
 * - `draining` saves the final checkpoint and runs `drainSession` (stop the checkpointer and the
 *   journal, close the broker, release the lock), which always ends in `shutdown`.
 * - `faulted` (start failed, execution threw, or a child the session depends on — checkpointer,
 *   idempotency tracker — died: `CHILD_FAILED`) releases resources the same way. A child that dies
 *   while starting faults the session once the start completes, never beside it.
 */

export type SessionEvent =
  | LifecycleEvent
  /** `receivedAtMs`/`monoMs`: when a live batch arrived (staleness, rate limits); none in replay. */
  | { type: 'BARS'; bars: readonly Bar[]; receivedAtMs?: number; monoMs?: number }
  /** Fills the broker reported later (partial fills, resting orders). */
  | { type: 'FILLS'; fills: readonly Fill[] }
  | { type: 'CHECKPOINT_DEGRADED'; error: string }
  | { type: 'CHECKPOINT_RECOVERED' }
  /** An actor the session depends on (the checkpointer, the idempotency tracker) died. */
  | { type: 'CHILD_FAILED'; child: string; error: string };

/** What the session tells observers (`actor.on(type, …)`). */
export type SessionEmitted = { type: 'ORDER_OUTCOMES'; outcomes: OrderOutcome[] };

/**
 * What the start sequence hands over (`reconcileAtStart`'s output): the restored (or fresh) state of every component. Fills of
 * orders sent after the checkpoint are not applied here: re-deciding the same bars yields the
 * same client order ids, and their fills are applied at that point, in the original order.
 */
export interface SessionStart {
  pipeline: PipelineState;
  portfolio: Portfolio;
  risk: RiskState;
  appliedFills: Record<string, number>;
  /** Orders whose submit ended `unknown` and that the broker could not settle yet. */
  unsettled: Record<string, PlannedOrder>;
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

/** What a scheduled reconciliation found, and the fills that book the broker's positions (`adopt`). */
export interface Reconciliation {
  halt: { code: string; detail: string; at: number } | null;
  adoptionFills: Fill[];
}

interface Batch {
  readonly bars: Bar[];
  /** The monotonic time of a live batch's arrival; null in replay, where bar time is used. */
  readonly monoMs: number | null;
  /** Next bar to decide. */
  readonly next: number;
  /** Bars already shown to the broker (the market), so its fills use the right prices. */
  readonly fed: number;
}

/** The session's context: the pipeline, portfolio and risk state, the inbox, the batch in progress, counters. */
export interface SessionContext extends SessionInput {
  /** The monotonic time of the newest live batch, and of the last reconciliation. */
  lastMonoMs: number | null;
  lastReconciledMonoMs: number | null;
  pipeline: PipelineState | null;
  portfolio: Portfolio | null;
  risk: RiskState;
  appliedFills: Record<string, number>;
  /** Orders whose submit ended `unknown`, by client order id, until the broker settles them. */
  unsettled: Record<string, PlannedOrder>;
  inbox: { bars: readonly Bar[]; receivedAtMs: number | null; monoMs: number | null }[];
  batch: Batch | null;
  planned: PlannedOrder[];
  /** The bars of the batch just closed that the market has not seen yet: `feedMarket`'s input. */
  marketFeed: readonly Bar[];
  stopRequested: boolean;
  persistenceDegraded: string | null;
  /** Orders refused, by refusal code. */
  refusals: Partial<Record<OrderRefusalCode, number>>;
  fault: SessionFault | null;
  stats: SessionStats;
}

/** The steps of the start sequence, in order (the substates of `starting`). */
export const START_STEPS = ['locking', 'restoring', 'loadingJournal', 'openingBroker', 'settling', 'reconciling'] as const;
/** One of {@link START_STEPS}. */
export type StartStep = (typeof START_STEPS)[number];

/** Why a session faulted, by what failed: a closed set. */
export type SessionFaultCode = 'START_FAILED' | 'STRATEGY_FAILED' | 'EXECUTION_FAILED' | 'CHILD_FAILED' | 'DRAIN_FAILED' | 'RELEASE_FAILED';

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
    /** Broker vs portfolio positions while running. */
    reconcilePositions: provided<Reconciliation, { portfolio: Portfolio | null; appliedFills: Record<string, number> }>('reconcilePositions'),
    /** Reconcile one last time, stop the checkpointer and the journal, close the broker, release the lock. */
    drainSession: provided<void, { portfolio: Portfolio | null; appliedFills: Record<string, number> }>('drainSession'),
  },
  actions: {
    /** Shows bars to the broker (a simulated market needs every price); supplied by the runtime. */
    feedMarket: (_, _params: { bars: readonly Bar[] }) => undefined,
    /**
     * Hands the domain state to the checkpointer; supplied by the runtime, which may skip an
     * unforced save made soon after the previous one (the journal and the broker hold the truth;
     * a checkpoint only shortens the replay after a crash).
     */
    saveCheckpoint: (_, _params: { context: SessionContext; force: boolean }) => undefined,
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
    restore: assign(({ context, event }) => {
      const start = (event as unknown as { output: SessionStart }).output;
      const restored = { ...context, ...start };
      return { ...start, ...applyOutcomesToContext(restored, start.settled, 0) };
    }),
    /** Bars arriving in `ready` (the inbox is empty there): taken at once, in this one step. */
    takeBars: assign(({ context, event }) => (event.type === 'BARS' ? takeArrived(context, event) : {})),
    takeQueuedBatch: assign(({ context }) => takeQueued(context)),
    applyExecution: assign(({ context, event }) => {
      const { outcomes } = (event as unknown as { output: Execution }).output;
      if (context.batch === null) return {};
      const monoNow = context.batch.monoMs ?? context.planned[0]?.barTs ?? 0;
      return {
        ...applyOutcomesToContext(context, outcomes, monoNow),
        planned: [],
        batch: { ...context.batch, fed: context.batch.next },
      };
    }),
    reportOutcomes: emit(({ event }) => ({
      type: 'ORDER_OUTCOMES' as const,
      outcomes: (event as unknown as { output: Execution }).output.outcomes,
    })),
    decideRest: assign(({ context }) => {
      const { batch, pipeline } = context;
      // Only ever after an execution: the bar whose orders were executed is settled first.
      return batch === null || pipeline === null ? { marketFeed: [] } : decideAndClose(context, batch, pipeline, context.stats, true);
    }),
    applyLateFills: assign(({ context, event }) => {
      if (event.type !== 'FILLS' || context.pipeline === null || context.portfolio === null) return {};
      return applyFillsToContext(context, event.fills);
    }),
    /** An execution that crashed may have sent any of its orders: the broker must settle them all. */
    holdPlannedAsUnsettled: assign(({ context }) => ({
      unsettled: keyed({ ...context.unsettled, ...Object.fromEntries(context.planned.map((order) => [order.clientOrderId, order])) }),
      planned: [],
    })),
    requestStop: assign({ stopRequested: true }),
    applyReconciliation: assign(({ context, event }) => {
      const { halt, adoptionFills } = (event as unknown as { output: Reconciliation }).output;
      const risk = halt === null ? context.risk : addHaltReason(context.risk, halt);
      return { ...applyFillsToContext({ ...context, risk }, adoptionFills), risk, lastReconciledMonoMs: context.lastMonoMs };
    }),
    skipReconciliation: assign(({ context }) => ({ lastReconciledMonoMs: context.lastMonoMs })),
    markDegraded: assign(({ event }) => ({ persistenceDegraded: event.type === 'CHECKPOINT_DEGRADED' ? event.error : null })),
    markRecovered: assign({ persistenceDegraded: null }),
    recordFault: assign(({ event }, params: { code: SessionFaultCode; step?: StartStep }) => ({
      fault: faultOf(params.code, (event as { error?: unknown }).error, params.step),
    })),
    /** A later failure (of the cleanup that follows a fault) is noted only if nothing was before. */
    noteFault: assign(({ context, event }) => ({ fault: context.fault ?? faultOf('RELEASE_FAILED', (event as { error?: unknown }).error) })),
    /** The first failure is the cause; later ones (of the stop that follows) are consequences. */
    recordChildFailure: assign(({ context, event }) => {
      if (event.type !== 'CHILD_FAILED') return {};
      return { fault: context.fault ?? { code: 'CHILD_FAILED', child: event.child, detail: event.error } };
    }),
  },
  guards: {
    hasInbox: ({ context }) => context.inbox.length > 0,
    hasPlannedOrders: ({ context }) => context.planned.length > 0,
    stopRequested: ({ context }) => context.stopRequested,
    childFailed: ({ context }) => context.fault !== null,
    strategyFailed: ({ context }) => context.fault?.code === 'STRATEGY_FAILED',
    reconcileDue: ({ context }) =>
      context.reconcileEveryMs !== null &&
      context.lastMonoMs !== null &&
      context.lastReconciledMonoMs !== null &&
      context.lastMonoMs - context.lastReconciledMonoMs >= context.reconcileEveryMs,
  },
});

type InboxItem = SessionContext['inbox'][number];
type BarsEvent = Extract<SessionEvent, { type: 'BARS' }>;

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

/** Bars arriving in `ready`, where the inbox is empty: taken as the batch at once. */
function takeArrived(context: SessionContext, event: BarsEvent): Partial<SessionContext> {
  const { item, stats } = received(context, event);
  return item === null ? { stats, marketFeed: [] } : takeBatch(context, item, context.inbox, stats);
}

function takeQueued(context: SessionContext): Partial<SessionContext> {
  const [item, ...rest] = context.inbox;
  return item === undefined ? { marketFeed: [] } : takeBatch(context, item, rest, context.stats);
}

/** Admits `item` (guard + aggregation) as the batch in progress and decides it (see {@link decideAndClose}). */
function takeBatch(context: SessionContext, item: InboxItem, inbox: SessionContext['inbox'], stats: SessionContext['stats']): Partial<SessionContext> {
  if (context.pipeline === null) return { inbox, stats, marketFeed: [] };
  const live = !context.replay;
  const admitted = admitBatch(context.pipeline, item.bars, live ? item.receivedAtMs : null);
  const batch = { bars: admitted.bars, monoMs: live ? item.monoMs : null, next: 0, fed: 0 };
  const taken = decideAndClose(context, batch, admitted.pipeline, counted(stats, { batches: 1 }), false);
  // Completed in place, not spread (a fresh object of ours): this runs for every bar.
  taken.inbox = inbox;
  taken.lastMonoMs = live ? item.monoMs : context.lastMonoMs;
  taken.lastReconciledMonoMs = context.lastReconciledMonoMs ?? (live ? item.monoMs : null);
  return taken;
}

/**
 * Decides `batch` from its next bar up to the first bar with approved orders (`planned`); each
 * bar decided is also settled in its own time (trading day, mark, breaches), so a result never
 * depends on how bars were batched. `settleFirst`: the bar before `next` had orders, now
 * executed, and is settled first. A batch decided to its end is cleared, and its bars not yet
 * shown to the market are put in `marketFeed` for `feedMarket`.
 */
function decideAndClose(
  context: SessionContext,
  batch: Batch,
  pipeline: PipelineState,
  stats: SessionContext['stats'],
  settleFirst: boolean,
): Partial<SessionContext> {
  if (context.portfolio === null) return { pipeline, batch: null, marketFeed: [], stats };
  const decision = decide({ pipeline, portfolio: context.portfolio, risk: context.risk }, batch.bars, batch.next, {
    strategy: context.strategy,
    rules: context.rules,
    sessionId: context.sessionId,
    // Live, rate limits count in the process's monotonic time; in replay (null), in market time.
    monoMs: batch.monoMs,
  }, settleFirst);
  const statsNow = decision.denied.length === 0 ? stats : counted(stats, { ordersDenied: decision.denied.length });
  const failed = decision.strategyFailure;
  if (failed !== null) {
    // User code failed: nothing more is decided; the batch stays open, so no checkpoint covers it.
    const fault: SessionFault = { code: 'STRATEGY_FAILED', bar: { symbol: failed.symbol, ts: failed.barTs }, detail: failed.detail };
    return { pipeline: decision.pipeline, risk: decision.risk, planned: [], batch: { ...batch, next: decision.next }, marketFeed: [], stats: statsNow, fault };
  }
  const done = decision.orders.length === 0 && decision.next >= batch.bars.length;
  return {
    pipeline: decision.pipeline,
    portfolio: decision.portfolio,
    risk: decision.risk,
    planned: decision.orders,
    batch: done ? null : { ...batch, next: decision.next },
    marketFeed: !done ? [] : batch.fed === 0 ? batch.bars : batch.bars.slice(batch.fed),
    stats: statsNow,
  };
}

/** Applies order outcomes: fills, rate-limit counts, the unsettled set, and the counters. */
function applyOutcomesToContext(context: SessionContext, outcomes: readonly OrderOutcome[], monoNow: number): Partial<SessionContext> {
  if (context.pipeline === null || context.portfolio === null || outcomes.length === 0) return {};
  const applied = applyOutcomes(
    { pipeline: context.pipeline, portfolio: context.portfolio, risk: context.risk, appliedFills: context.appliedFills },
    outcomes,
    monoNow,
  );
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
  return {
    refusals,
    pipeline: applied.pipeline,
    portfolio: applied.portfolio,
    risk: applied.risk,
    appliedFills: applied.appliedFills,
    unsettled,
    stats: counted(context.stats, {
      ordersSubmitted: count('submitted'),
      duplicatesBlocked: count('duplicate'),
      ordersRejected: count('rejected'),
      ordersUnknown: count('unknown'),
      ordersSettled: count('settled'),
      ordersRefused: count('refused'),
      fills: applied.newFills,
    }),
  };
}

/** Applies fills that arrived outside an execution (late partial fills), skipping any already applied. */
function applyFillsToContext(context: SessionContext, fills: readonly Fill[]): Partial<SessionContext> {
  if (context.pipeline === null || context.portfolio === null) return {};
  const { fresh, appliedFills } = unappliedFills(fills, context.appliedFills);
  if (fresh.length === 0) return {};
  const applied = applyNewFills(
    { pipeline: context.pipeline, portfolio: context.portfolio, risk: context.risk, appliedFills },
    fresh,
  );
  return {
    pipeline: applied.pipeline,
    portfolio: applied.portfolio,
    appliedFills,
    stats: counted(context.stats, { fills: applied.newFills }),
  };
}

/** Nothing is sent while the session cannot persist what it sends. */
function persistenceRefusal(context: SessionContext): OrderRefusal | null {
  return context.persistenceDegraded === null ? null : { code: 'PERSISTENCE_DEGRADED', detail: context.persistenceDegraded };
}

/** After a step that may have closed a batch: show its bars to the market, save a checkpoint (between batches only). */
const showAndSave = [
  { type: 'feedMarket', params: ({ context }: { context: SessionContext }) => ({ bars: context.marketFeed }) },
  { type: 'saveCheckpoint', params: ({ context }: { context: SessionContext }) => ({ context, force: false }) },
] as const;

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

/** The session machine (see the module comment); its I/O actors are supplied by `createTradingSession`. */
export const sessionMachine = sessionSetup.createMachine({
  id: 'session',
  context: ({ input }) => ({
    ...input,
    lastMonoMs: null,
    lastReconciledMonoMs: null,
    pipeline: null,
    portfolio: null,
    risk: createRiskState(),
    appliedFills: keyed(),
    unsettled: keyed(),
    inbox: [],
    batch: null,
    planned: [],
    marketFeed: [],
    stopRequested: false,
    persistenceDegraded: null,
    refusals: {},
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
        initial: 'ready',
        on: {
          BARS: { actions: 'enqueue' },
          FILLS: { actions: 'applyLateFills' },
          STOP: { target: LIFECYCLE.draining, actions: 'dropUnprocessed' },
          // No session runs on without its journal or its checkpoints: halt, keep what is known.
          CHILD_FAILED: { target: LIFECYCLE.faulted, actions: ['recordChildFailure', 'holdPlannedAsUnsettled'] },
        },
        states: {
          ready: {
            // At rest here the session has processed every bar it was given.
            tags: 'awaitingBars',
            on: {
              // The common live case in one step: a bar arrives and is admitted, decided and closed.
              BARS: { actions: ['takeBars', ...showAndSave] },
            },
            always: [
              // The strategy threw or returned a bad intent: the session faults; nothing more is decided.
              { guard: 'strategyFailed', target: `#session.${LIFECYCLE.faulted}` },
              { guard: 'hasPlannedOrders', target: 'executing' },
              { guard: 'stopRequested', target: `#session.${LIFECYCLE.draining}`, actions: 'dropUnprocessed' },
              // Between batches, on the live feed's own clock: a quiet market is not reconciled.
              { guard: 'reconcileDue', target: 'reconciling' },
              { guard: 'hasInbox', actions: ['takeQueuedBatch', ...showAndSave] },
            ],
          },
          reconciling: {
            invoke: {
              id: 'reconciler',
              src: 'reconcilePositions',
              input: ({ context }: { context: SessionContext }) => ({ portfolio: context.portfolio, appliedFills: context.appliedFills }),
              onDone: { target: 'ready', actions: 'applyReconciliation' },
              // A broker that cannot answer now is asked again at the next interval.
              onError: { target: 'ready', actions: 'skipReconciliation' },
            },
          },
          executing: {
            on: { STOP: { actions: 'requestStop' } },
            invoke: {
              id: 'executor',
              src: 'executeOrders',
              input: ({ context }: { context: SessionContext }) => ({
                orders: context.planned,
                marketBars: context.batch?.bars.slice(context.batch.fed, context.batch.next) ?? [],
                refuse: persistenceRefusal(context),
                unsettled: Object.values(context.unsettled),
              }),
              onDone: {
                target: 'ready',
                actions: ['applyExecution', 'reportOutcomes', 'decideRest', ...showAndSave],
              },
              onError: {
                target: `#session.${LIFECYCLE.faulted}`,
                actions: [{ type: 'recordFault', params: { code: 'EXECUTION_FAILED' } }, 'holdPlannedAsUnsettled'],
              },
            },
          },
        },
      },
      draining: {
        entry: { type: 'saveCheckpoint', params: ({ context }: { context: SessionContext }) => ({ context, force: true }) },
        on: { BARS: { actions: 'dropBars' }, CHILD_FAILED: { actions: 'recordChildFailure' } },
        invoke: {
          id: 'drainer',
          src: 'drainSession',
          input: ({ context }: { context: SessionContext }) => ({ portfolio: context.portfolio, appliedFills: context.appliedFills }),
          onDone: LIFECYCLE.shutdown,
          onError: { target: LIFECYCLE.shutdown, actions: { type: 'recordFault', params: { code: 'DRAIN_FAILED' } } },
        },
      },
      shutdown: {
        on: { BARS: { actions: 'dropBars' }, CHILD_FAILED: { actions: 'recordChildFailure' } },
      },
      faulted: {
        // Keep what is known (unsettled orders above all) before the resources go.
        entry: { type: 'saveCheckpoint', params: ({ context }: { context: SessionContext }) => ({ context, force: true }) },
        on: {
          BARS: { actions: 'dropBars' },
          CHILD_FAILED: { actions: 'recordChildFailure' },
          // Not straight to shutdown: stop() must not return while the cleanup still holds the lock.
          STOP: { actions: 'requestStop' },
        },
        initial: 'releasing',
        states: {
          releasing: {
            invoke: {
              id: 'cleanup',
              src: 'drainSession',
              input: ({ context }: { context: SessionContext }) => ({ portfolio: context.portfolio, appliedFills: context.appliedFills }),
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
        CHILD_FAILED: { actions: 'recordChildFailure' },
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
              { target: `#session.${LIFECYCLE.running}`, actions: 'restore' },
            ],
            onError: { target: `#session.${LIFECYCLE.faulted}`, actions: { type: 'recordFault', params: { code: 'START_FAILED', step: 'reconciling' } } },
          },
        },
      },
    },
  },
});
