import { createActor, fromPromise, waitFor } from 'xstate';
import { reconcilerMachine, type PositionsCheck, type Reconciliation } from '../../machines/reconciler.machine.js';
import { describeFault, sessionMachine, sessionStateOf, type SessionFault } from '../../machines/session.machine.js';
import type { Bar } from '../bars/bar.js';
import { isOwnOrder, sessionTag } from '../idempotency/clientOrderId.js';
import { AistockError, describeError } from '../common/errors.js';
import { createPortfolio, portfolioSummary, type PortfolioSummary } from '../portfolio/portfolio.js';
import type { ReconcileReport } from '../reconciler/reconcile.js';
import type { OrderRefusalCode } from './sessionPipeline.js';
import { createRiskState, tradingState, type DenyCode } from '../risk/risk.js';
import { compileRiskRules, parseRiskLimits } from '../risk/riskLimits.js';
import { smaCross, timeLimited } from '../strategy/strategy.js';
import { TIMEFRAME_MS } from '../bars/timeframe.js';
import { systemClock } from '../common/clock.js';
import { createCheckpointPolicy } from './checkpointPolicy.js';
import { createSessionEvents, observeSession, type SessionOn } from './sessionEvents.js';
import { executeOrders, feedBroker, type ExecutionDeps } from './orderExecution.js';
import { parseSessionOptions, type TradingSessionOptions } from './sessionOptions.js';
import { createSessionReconciler, type ReconcileCounts } from '../reconciler/sessionReconciler.js';
import { startSteps, type SessionParts } from './startSteps.js';
import type { Durability } from '../stateDir/durability.js';

export { SessionOptionsSchema, InvalidSessionOptionsError, type TradingSessionOptions, type SessionConfig } from './sessionOptions.js';
export { LegacyOrderIdsError } from './startSteps.js';
export type { SessionEvent, SessionEventOf, SessionEventType, SessionOn } from './sessionEvents.js';
export type { ReconcileCounts } from '../reconciler/sessionReconciler.js';

/**
 * `createTradingSession`: wires the session machine to its parts — the start steps
 * (`startSteps.ts`), the order path (`orderExecution.ts`), the reconciler
 * (`sessionReconciler.ts`), the checkpoint policy (`checkpointPolicy.ts`) — and hands out the
 * public handle.
 */

/** The session's result: DESIGN.md's Summary. Money and quantities are decimal strings. */
export interface Summary {
  bars: { accepted: number; rejected: Record<string, number>; resumedSkips: number; dropped: number };
  orders: {
    submitted: number;
    duplicatesBlocked: number;
    rejected: number;
    unknown: number;
    /** Orders the journal recorded as sent that the broker does not know: never re-sent, a difference (`aistock replay` exits 4). */
    lostByBroker: number;
    settled: number;
    refused: number;
    /** Refused orders by code (`BROKER_UNREACHABLE`, `PERSISTENCE_DEGRADED`, `JOURNAL_UNAVAILABLE`, …). */
    refusedBy: Partial<Record<OrderRefusalCode, number>>;
    denied: number;
    /** Denied intents by the code of each reason (an intent denied for two reasons counts under both). */
    deniedBy: Partial<Record<DenyCode, number>>;
  };
  fills: number;
  portfolio: PortfolioSummary;
  /** `setAside`: the checkpoint found at start was corrupt or broke an invariant, and was moved there (the session started fresh). */
  checkpoints: { written: number; failed: number; setAside: { reason: string; movedTo: string } | null };
  risk: { state: string; haltReasons: string[] };
  clockJumps: number;
  /** Broker vs portfolio positions, checked at start, on schedule (live) and at stop. */
  reconciliation: ReconcileReport[];
  /** What the checks found, counted: see {@link ReconcileCounts}. */
  reconciled: ReconcileCounts;
  /** Calls of `session.on` listeners that threw (each logged as `LISTENER_FAILED`). */
  listenerFailures: number;
  /** `none`: a research-mode run, nothing it wrote was fsynced (see `Durability`). */
  durability: Durability;
  /** Why the session faulted (null: it did not): a typed value with a closed code. */
  fault: SessionFault | null;
  /**
   * This run alone (since `start`): bars it accepted and rejected (bars skipped as already
   * processed are `resumedSkips`), orders the broker accepted (`orders.submitted`), fills booked.
   * `bars.accepted` above counts every run of the state dir; `orders` and `fills` above are this run's.
   */
  thisRun: { bars: { accepted: number; rejected: Record<string, number>; resumedSkips: number }; orders: number; fills: number };
  /** The state dir over every run, this one included: bars the data guard accepted and rejected, this session's orders the broker accepted, fills booked. */
  stateDirTotal: { bars: { accepted: number; rejected: Record<string, number> }; orders: number; fills: number };
}

/** What a run is counted from: the state dir's totals when it started. */
interface RunBase {
  accepted: number;
  rejected: Readonly<Record<string, number>>;
  orders: number;
  fills: number;
}

const FRESH_RUN: RunBase = { accepted: 0, rejected: {}, orders: 0, fills: 0 };
/** No bar decided yet, of any symbol. */
const NO_SYMBOLS: ReadonlyMap<string, number> = new Map();

/** `now − base` by reason, reasons that did not move left out. */
function countsSince(now: Readonly<Record<string, number>>, base: Readonly<Record<string, number>>): Record<string, number> {
  const since: Record<string, number> = {};
  for (const [reason, n] of Object.entries(now)) {
    const moved = n - (base[reason] ?? 0);
    if (moved > 0) since[reason] = moved;
  }
  return since;
}

/** A session that failed to start (or faulted); `cause` is the underlying error. */
export class SessionFaultedError extends AistockError {
  /** The session's fault (its code, e.g. `LEASE_LOST`, and the cause's own code), or null when unknown. */
  readonly fault: SessionFault | null;

  constructor(message: string, fault: SessionFault | null) {
    super('SESSION_FAULTED', message, { cause: fault });
    this.fault = fault;
  }
}

/** The handle of a running trading session. */
export interface TradingSession {
  /** The root actor (`systemId` `session`), for inspection and model-based tests. */
  readonly actor: ReturnType<typeof createSessionActor>['actor'];
  /** Locks the state dir, restores, reconciles; rejects with the cause (e.g. `StateDirLockedError`). */
  start(): Promise<void>;
  /** Feeds bars (one or a batch); resolves once the session has processed them. */
  ingest(bars: Bar | readonly Bar[]): Promise<void>;
  /** Drains and shuts down; the same promise every time, and it always settles. */
  stop(): Promise<Summary>;
  /** The summary as of now. */
  snapshot(): Summary;
  /** Subscribes to what the session reports as it runs (see {@link SessionEvent}); returns the unsubscribe. */
  on: SessionOn;
  /**
   * Writes the newest between-batches state a throttled save skipped, and waits until every
   * checkpoint offered is on disk: true, or false after `timeoutMs`. For a process that must
   * exit now (a second Ctrl-C) without losing more than the batch in progress.
   */
  flushCheckpoint(timeoutMs: number): Promise<boolean>;
}

const logToStderr = (entry: Record<string, unknown>): void => {
  process.stderr.write(`${JSON.stringify({ component: 'session', ...entry })}\n`);
};

function createSessionActor(options: TradingSessionOptions) {
  const config = parseSessionOptions(options);
  const clock = options.clock ?? systemClock;
  const strategy = timeLimited(options.strategy ?? smaCross(), () => clock.monoMs(), config.strategyTimeoutMs);
  const rules = compileRiskRules(parseRiskLimits(options.risk ?? {}));
  const log = options.log ?? logToStderr;
  const inspect = options.inspect ? { inspect: options.inspect } : {};
  const parts: SessionParts = { unsubscribe: [] };
  // Rate-limit windows are saved as ages on the clock they count in: market time (the newest bar)
  // in replay, this process's monotonic clock live — so a replay resumes with the same window.
  const riskClockOf = (lastTs: ReadonlyMap<string, number>): number => {
    if (!config.replay) return clock.monoMs();
    let newest = 0;
    for (const ts of lastTs.values()) newest = Math.max(newest, ts);
    return newest;
  };
  const executionDeps = (): ExecutionDeps => {
    const { broker, tracker, store } = parts;
    if (broker === undefined || tracker === undefined) throw new Error('the session has not started');
    return {
      broker,
      tracker,
      brokerTimeoutMs: config.brokerTimeoutMs,
      log,
      ...(options.timers === undefined ? {} : { timers: options.timers }),
      ...(store === undefined ? {} : { assertHeld: () => store.assertHeld() }),
    };
  };
  // The session's own orders are the broker's ids that carry its tag, whatever the journal holds.
  const tag = sessionTag(config.sessionId, strategy.id);
  const reconciler = createSessionReconciler({
    broker: () => executionDeps().broker,
    tag,
    policy: config.reconcile,
    clock,
    log,
  });
  const checkpoints = createCheckpointPolicy({
    checkpointer: () => parts.checkpointer,
    ids: { sessionId: config.sessionId, strategyId: strategy.id },
    intervalMs: config.checkpointIntervalMs,
    clock,
    riskClockOf,
  });
  const decided = () => actor.getSnapshot().context.decided;

  const machine = sessionMachine.provide({
    actors: {
      ...startSteps({
        config,
        clock,
        strategy,
        rules,
        pipelineOptions: {
          guard: { barIntervalMs: TIMEFRAME_MS[config.baseTimeframe], ...options.guard },
          bars: { zone: config.timeZone, baseTimeframe: config.baseTimeframe, timeframes: config.timeframes, historySize: config.historySize },
        },
        broker: options.broker,
        store: options.store,
        log,
        parts,
        reconciler,
        send: (event) => actor.send(event),
        parent: () => actor,
        riskClockOf,
        checkpoints,
        executionDeps,
      }),
      executeOrders: fromPromise(async ({ input }) => {
        await feedBroker(executionDeps().broker, input.marketBars).catch((error: unknown) => {
          // A feed refused because another process holds the session (a bar's fill fenced) is that loss, not the broker's failure.
          executionDeps().assertHeld?.();
          throw error;
        });
        const outcomes = await executeOrders(executionDeps(), input.orders, { refuse: input.refuse, unsettled: input.unsettled });
        return { outcomes };
      }),
      reconciler: reconcilerMachine.provide({
        actors: {
          checkPositions: fromPromise<Reconciliation, PositionsCheck>(async ({ input }) => {
            // While running, bars up to each symbol's newest are decided; a failed check is the reconciler's RECONCILE_FAILED.
            const report = await reconciler.scheduled({ ...input, decidedTo: decided()?.lastTs ?? NO_SYMBOLS });
            return reconciler.outcome(report, decided()?.lastClose ?? NO_SYMBOLS);
          }),
        },
      }),
      drainSession: fromPromise(async ({ input }) => {
        const failures: string[] = [];
        if (input.portfolio !== null && parts.broker !== undefined) {
          await reconciler.atStop({ portfolio: input.portfolio, appliedFills: input.appliedFills, decidedTo: decided()?.lastTs ?? NO_SYMBOLS });
        }
        const attempt = async (what: string, step: () => Promise<unknown>): Promise<void> => {
          try {
            await step();
          } catch (error) {
            failures.push(`${what}: ${describeError(error)}`);
          }
        };
        for (const unsubscribe of parts.unsubscribe.splice(0)) unsubscribe();
        await attempt('checkpointer', async () => {
          parts.checkpointReport = await parts.checkpointer?.stop();
        });
        await attempt('journal', async () => parts.tracker?.stop());
        await attempt('broker', async () => parts.brokerConnection?.close());
        // A research run's clean end, recorded only after a drain that lost nothing and no fault.
        if (failures.length === 0 && actor.getSnapshot().context.fault === null) {
          await attempt('durability marker', async () => parts.durabilityRun?.endCleanly());
        }
        await attempt('lock', async () => parts.lock?.release());
        if (failures.length > 0) throw new AistockError('SESSION_DRAIN_INCOMPLETE', failures.join('; '));
      }),
    },
    actions: {
      feedMarket: (_, params) => {
        const { broker } = parts;
        if (broker?.observeBar === undefined || params.bars.length === 0) return;
        feedBroker(broker, params.bars).catch((error: unknown) => log({ event: 'MARKET_FEED_FAILED', error: describeError(error) }));
      },
      saveCheckpoint: (_, { state, force }) => checkpoints.save(state, force),
    },
  });
  const actor = createActor(machine, {
    systemId: 'session',
    input: {
      strategy,
      rules,
      sessionId: config.sessionId,
      replay: config.replay,
      symbols: config.symbols,
      reconcileEveryMs: config.replay ? null : config.reconcile.intervalMs,
    },
    ...inspect,
  });
  return { actor, parts, reconciler, checkpoints, tag };
}

/** Creates a trading session over `options.stateDir`; call `start()`, then `ingest` bars. */
export function createTradingSession(options: TradingSessionOptions): TradingSession {
  const { actor, parts, reconciler, checkpoints, tag } = createSessionActor(options);
  const clock = options.clock ?? systemClock;
  const events = createSessionEvents(options.log ?? logToStderr);
  observeSession({ session: actor, checkpointer: () => parts.checkpointer?.actor }, events);
  const replay = options.replay ?? false;
  let fatal: unknown;
  actor.subscribe({ error: (error) => (fatal = error) });
  actor.start();
  let started: Promise<void> | undefined;
  let stopped: Promise<Summary> | undefined;
  /** The state dir's totals as this run started (set once started): what `thisRun` is counted from. */
  let atStart = FRESH_RUN;
  /** The batch being handed over in this tick (see `ingest`). */
  let handing: { bars: Bar[]; done: Promise<void> } | null = null;

  const summary = (): Summary => {
    const { context } = actor.getSnapshot();
    const state = sessionStateOf(context);
    const guard = state?.pipeline.guard;
    const portfolio = state?.portfolio ?? createPortfolio({ initialCash: options.initialCash ?? '100000' });
    const risk = state?.risk ?? createRiskState();
    const written = parts.checkpointReport ?? parts.checkpointer?.actor.getSnapshot().context.stats;
    const tracker = parts.tracker?.snapshot();
    const accepted = guard?.accepted ?? 0;
    const rejected = { ...(guard?.rejected ?? {}) } as Record<string, number>;
    const fills = state?.appliedFills.total ?? 0;
    return {
      bars: {
        accepted,
        rejected: { ...rejected },
        resumedSkips: context.decided?.resumedSkips ?? 0,
        dropped: context.stats.barsDropped,
      },
      orders: {
        submitted: context.stats.ordersSubmitted,
        duplicatesBlocked: context.stats.duplicatesBlocked,
        rejected: context.stats.ordersRejected,
        unknown: context.stats.ordersUnknown,
        lostByBroker: context.stats.ordersLost,
        settled: context.stats.ordersSettled,
        refused: context.stats.ordersRefused,
        refusedBy: { ...context.refusals },
        denied: context.stats.ordersDenied,
        deniedBy: { ...context.denials },
      },
      fills: context.stats.fills,
      portfolio: portfolioSummary(portfolio),
      checkpoints: { written: written?.written ?? 0, failed: written?.failed ?? 0, setAside: parts.setAside ?? null },
      risk: { state: tradingState(risk), haltReasons: risk.haltReasons.map((r) => `${r.code}: ${r.detail}`) },
      clockJumps: tracker?.stats.clockJumps ?? 0,
      reconciliation: reconciler.reports,
      reconciled: { ...reconciler.counts },
      listenerFailures: events.failures(),
      durability: options.durability ?? 'full',
      fault: context.fault,
      thisRun: {
        bars: { accepted: accepted - atStart.accepted, rejected: countsSince(rejected, atStart.rejected), resumedSkips: context.decided?.resumedSkips ?? 0 },
        orders: context.stats.ordersSubmitted,
        fills: fills - atStart.fills,
      },
      stateDirTotal: { bars: { accepted, rejected }, orders: atStart.orders + context.stats.ordersSubmitted, fills },
    };
  };

  const idle = (s: ReturnType<typeof actor.getSnapshot>): boolean =>
    (s.hasTag('awaitingBars') && s.context.batch === null && s.context.inbox.length === 0) || s.hasTag('stopped') || s.matches('faulted');
  const faultedError = (what: string, fault: SessionFault | null): SessionFaultedError =>
    new SessionFaultedError(`${what}: ${fault === null ? 'unknown' : describeFault(fault)}`, fault);

  return {
    actor,
    start: () => {
      started ??= (async () => {
        actor.send({ type: 'START' });
        const s = await waitFor(actor, (snap) => !snap.matches('idle') && !snap.matches('starting'), { timeout: Infinity });
        if (s.matches('faulted')) throw parts.startError ?? faultedError('session failed to start', s.context.fault);
        const restored = sessionStateOf(s.context);
        const ownOrders = (parts.brokerConnection?.knownClientOrderIds ?? []).filter((id) => isOwnOrder(id, tag)).length;
        atStart = {
          accepted: restored?.pipeline.guard.accepted ?? 0,
          rejected: { ...(restored?.pipeline.guard.rejected ?? {}) },
          orders: ownOrders,
          fills: restored?.appliedFills.total ?? 0,
        };
      })();
      return started;
    },
    ingest: (input) => {
      const bars = Array.isArray(input) ? (input as readonly Bar[]) : [input as Bar];
      // Bars handed over within one tick travel as one batch (one event through the tree);
      // batching never changes a result, and each caller's promise settles with that batch.
      if (handing !== null) {
        // A loop, not push(...bars): a spread of a million bars overflows the stack.
        for (const bar of bars) handing.bars.push(bar);
        return handing.done;
      }
      const handed = [...bars];
      const receivedAtMs = clock.wallMs();
      const monoMs = clock.monoMs();
      const done = (async () => {
        // Sent at the end of this tick, with every bar handed over in it.
        await Promise.resolve();
        handing = null;
        if (replay) actor.send({ type: 'BARS', bars: handed });
        else actor.send({ type: 'BARS', bars: handed, receivedAtMs, monoMs });
        const now = actor.getSnapshot();
        const s = idle(now) ? now : await waitFor(actor, idle, { timeout: Infinity });
        if (s.matches('faulted')) throw faultedError('session faulted', s.context.fault);
        // A replay can outrun the event loop; let checkpoint writes and timers run between batches.
        if (replay) await new Promise((resolve) => setImmediate(resolve));
      })();
      handing = { bars: handed, done };
      return done;
    },
    stop: () => {
      stopped ??= (async () => {
        if (fatal !== undefined) throw fatal;
        actor.send({ type: 'STOP' });
        await waitFor(actor, (s) => s.hasTag('stopped'), { timeout: Infinity });
        return summary();
      })();
      return stopped;
    },
    snapshot: summary,
    on: events.on,
    flushCheckpoint: (timeoutMs) => checkpoints.flush(timeoutMs),
  };
}
