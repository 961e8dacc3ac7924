import { join } from 'node:path';
import { createActor, fromPromise, waitFor, type ActorOptions, type AnyActorLogic } from 'xstate';
import { z } from 'zod';
import { sessionMachine, type Reconciliation, type SessionContext, type SessionStart } from '../../machines/session.machine.js';
import type { Bar } from '../core/bar.js';
import { AistockError, describeError } from '../core/errors.js';
import { createPortfolio, portfolioSummary, type PortfolioSummary } from '../core/portfolio.js';
import { accountView, addHaltReason, createRiskState, tradingState, updateAccount } from '../core/risk.js';
import { parseQty } from '../core/money.js';
import type { Fill } from '../core/order.js';
import type { Portfolio } from '../core/portfolio.js';
import {
  adoptionFills,
  netFills,
  positionDifferences,
  ReconcilePolicySchema,
  reconcileReport,
  type ReconcileReport,
} from '../core/reconcile.js';
import { compileRiskRules, parseRiskLimits, type RiskLimitsInput } from '../core/riskLimits.js';
import { applyNewFills, createPipeline } from '../core/sessionPipeline.js';
import type { DataGuardConfigInput } from '../core/dataGuard.js';
import { smaCross, type Strategy } from '../core/strategy.js';
import { TimeframeSchema, TIMEFRAME_MS } from '../core/timeframe.js';
import { isKnownZone } from '../core/zoneOffsets.js';
import type { Broker } from '../runtime/broker.js';
import { createCheckpointer, type Checkpointer, type CheckpointerReport } from '../runtime/checkpointer.js';
import { fileCheckpointStore } from '../runtime/checkpointStore.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import { createIdempotencyTracker, type IdempotencyTracker } from '../runtime/idempotencyTracker.js';
import { PaperBroker } from '../runtime/paperBroker.js';
import { lockStateDir, type StateDirLock } from '../runtime/stateDirLock.js';
import { executeOrders, feedBroker, settleUnknown, type ExecutionDeps } from './orderExecution.js';
import { CHECKPOINT_KEY, restoreSession, SessionCheckpointSchema, sessionCheckpoint } from './sessionCheckpoint.js';

/** Options of {@link createTradingSession}; validated with zod (see {@link SessionOptionsSchema}). */
export const SessionOptionsSchema = z.object({
  /** Holds `checkpoint.json`, `orders.journal`, `broker/` and `lock`. */
  stateDir: z.string().min(1),
  /** Part of every client order id: keep it stable across restarts of one session. */
  sessionId: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default('aistock'),
  /** Only these symbols are traded; bars of others are dropped (default: every symbol). */
  symbols: z.array(z.string().min(1)).nullable().default(null),
  /** The zone buckets follow (IANA). */
  timeZone: z.string().refine(isKnownZone, 'unknown IANA time zone').default('America/New_York'),
  baseTimeframe: TimeframeSchema.default('1m'),
  timeframes: z.array(TimeframeSchema).min(1).default(['1m', '5m', '1h', '1d']),
  initialCash: z.union([z.string(), z.number()]).default('100000'),
  /** Risk limits (AIStock's names and defaults). */
  risk: z.record(z.string(), z.unknown()).default({}),
  idempotency: z.object({ ttlMs: z.number().int().positive().default(300_000) }).default({ ttlMs: 300_000 }),
  /** Replay: time follows the bars (rate limits, trading day); no staleness check. */
  replay: z.boolean().default(false),
  /** Longest wait for one broker call before its outcome counts as unknown. */
  brokerTimeoutMs: z.number().int().positive().default(5_000),
  /** Least time between two checkpoints while running (draining always writes one). */
  checkpointIntervalMs: z.number().int().nonnegative().default(250),
  /** Bars of history kept per symbol and timeframe (part of every checkpoint). */
  historySize: z.number().int().positive().default(60),
  /** Broker vs portfolio positions at start and stop: book the broker's (`adopt`) or halt above `tolerance`. */
  reconcile: ReconcilePolicySchema.default({ policy: 'adopt', tolerance: 0.1, intervalMs: 60_000 }),
});

/** Options of {@link createTradingSession}: the zod-checked settings plus the live parts (strategy, broker, clock, inspector, log). */
export interface TradingSessionOptions extends Partial<Omit<z.input<typeof SessionOptionsSchema>, 'stateDir' | 'risk'>> {
  stateDir: string;
  risk?: RiskLimitsInput;
  /** Data-guard thresholds (staleness, extreme range, low volume; see `DataGuardConfigSchema`). */
  guard?: DataGuardConfigInput;
  /** The strategy (default `smaCross()`). */
  strategy?: Strategy;
  /** The broker (default a `PaperBroker` in `<stateDir>/broker`). The session closes it on stop. */
  broker?: Broker;
  clock?: Clock;
  /** An XState inspector (e.g. `@statelyai/inspect`), passed to every actor of the session. */
  inspect?: ActorOptions<AnyActorLogic>['inspect'];
  /** Structured log lines (default: JSON on stderr). */
  log?: (entry: Record<string, unknown>) => void;
}

/** The session's result: DESIGN.md's Summary. Money and quantities are decimal strings. */
export interface Summary {
  bars: { accepted: number; rejected: Record<string, number>; resumedSkips: number; dropped: number };
  orders: {
    submitted: number;
    duplicatesBlocked: number;
    rejected: number;
    unknown: number;
    settled: number;
    refused: number;
    denied: number;
  };
  fills: number;
  portfolio: PortfolioSummary;
  checkpoints: { written: number; failed: number };
  risk: { state: string; haltReasons: string[] };
  clockJumps: number;
  /** Broker vs portfolio positions, checked at start and at stop. */
  reconciliation: ReconcileReport[];
  fault: string | null;
}

/** The session was given options it cannot run with. */
export class InvalidSessionOptionsError extends AistockError {
  constructor(detail: string) {
    super('INVALID_SESSION_OPTIONS', `invalid session options: ${detail}`);
  }
}

/** A session that failed to start (or faulted); `cause` is the underlying error. */
export class SessionFaultedError extends AistockError {
  constructor(message: string, cause: unknown) {
    super('SESSION_FAULTED', message, { cause });
  }
}

/** The handle of a running trading session. */
export interface TradingSession {
  /** The root actor (`systemId` `session`), for inspection and model-based tests. */
  readonly actor: ReturnType<typeof createSessionActor>;
  /** Locks the state dir, restores, reconciles; rejects with the cause (e.g. `StateDirLockedError`). */
  start(): Promise<void>;
  /** Feeds bars (one or a batch); resolves once the session has processed them. */
  ingest(bars: Bar | readonly Bar[]): Promise<void>;
  /** Drains and shuts down; the same promise every time, and it always settles. */
  stop(): Promise<Summary>;
  /** The summary as of now. */
  snapshot(): Summary;
  /**
   * Writes the newest between-batches state a throttled save skipped, and waits until every
   * checkpoint offered is on disk: true, or false after `timeoutMs`. For a process that must
   * exit now (a second Ctrl-C) without losing more than the batch in progress.
   */
  flushCheckpoint(timeoutMs: number): Promise<boolean>;
}

interface Resources {
  lock?: StateDirLock;
  checkpointer?: Checkpointer;
  tracker?: IdempotencyTracker;
  broker?: Broker;
  unsubscribe: (() => void)[];
  checkpointReport?: CheckpointerReport;
  startError?: unknown;
  reconciliation: ReconcileReport[];
  flushCheckpoint?: (timeoutMs: number) => Promise<boolean>;
}

/** Not stopped, and not dead (a dead one is the session's CHILD_FAILED, not a save to drop). */
const checkpointerTakesSaves = (checkpointer: Checkpointer): boolean => {
  const snapshot = checkpointer.actor.getSnapshot();
  return snapshot.status === 'active' && !snapshot.hasTag('stopped');
};

const logToStderr = (entry: Record<string, unknown>): void => {
  process.stderr.write(`${JSON.stringify({ component: 'session', ...entry })}\n`);
};

function createSessionActor(options: TradingSessionOptions, resources: Resources) {
  const { strategy: _s, broker: _b, clock: _c, inspect: _i, log: _l, guard: _g, ...plain } = options;
  const parsed = SessionOptionsSchema.safeParse(plain);
  if (!parsed.success) throw new InvalidSessionOptionsError(z.prettifyError(parsed.error));
  const config = parsed.data;
  if (!config.timeframes.every((tf) => TIMEFRAME_MS[tf] % TIMEFRAME_MS[config.baseTimeframe] === 0)) {
    throw new InvalidSessionOptionsError(`every timeframe must be a multiple of the base ${config.baseTimeframe}`);
  }
  const clock = options.clock ?? systemClock;
  const strategy = options.strategy ?? smaCross();
  const rules = compileRiskRules(parseRiskLimits(options.risk ?? {}));
  const log = options.log ?? logToStderr;
  const stateDir = config.stateDir;
  const pipelineOptions = {
    guard: { barIntervalMs: TIMEFRAME_MS[config.baseTimeframe], ...options.guard },
    bars: { zone: config.timeZone, baseTimeframe: config.baseTimeframe, timeframes: config.timeframes, historySize: config.historySize },
  };
  const inspect = options.inspect ? { inspect: options.inspect } : {};
  let lastCheckpointAt = Number.NEGATIVE_INFINITY;
  // Rate-limit windows are saved as ages on the clock they count in: market time (the newest bar)
  // in replay, this process's monotonic clock live — so a replay resumes with the same window.
  const riskClockOf = (lastTs: Readonly<Record<string, number>>): number =>
    config.replay ? Math.max(0, ...Object.values(lastTs)) : clock.monoMs();
  let ownIds = new Set<string>();
  // The newest broker fill price per symbol: what an adopted position is booked at without a bar.
  const brokerPrices = new Map<string, number>();

  /** Broker vs portfolio positions, allowing for broker fills not yet applied; `knownIds` if the caller just asked for them. */
  const positionReport = async (
    at: ReconcileReport['at'],
    portfolio: Portfolio,
    appliedFills: Record<string, number>,
    knownIds?: readonly string[],
  ): Promise<ReconcileReport> => {
    const { broker } = executionDeps();
    const brokerPositions = new Map(Object.entries(await broker.positions()).map(([symbol, qty]) => [symbol, parseQty(qty)]));
    // Fills of our own orders not applied yet will be, when those orders are re-decided.
    const pendingFills: Fill[] = [];
    for (const id of knownIds ?? (await broker.knownClientOrderIds())) {
      const state = await broker.orderByClientId(id);
      if (state === undefined) continue;
      for (const fill of state.fills) brokerPrices.set(fill.symbol, Number(fill.price));
      if (ownIds.has(id)) pendingFills.push(...state.fills.slice(appliedFills[id] ?? 0));
    }
    const local = new Map([...portfolio.positions].map(([symbol, position]) => [symbol, position.qty]));
    return reconcileReport(at, positionDifferences(local, brokerPositions, netFills(pendingFills)), config.reconcile);
  };
  const attemptReconcile = async (at: ReconcileReport['at'], run: () => Promise<ReconcileReport>): Promise<ReconcileReport | undefined> => {
    try {
      const report = await run();
      resources.reconciliation.push(report);
      if (report.differences.length > 0) log({ event: 'RECONCILIATION_DIFFERENCES', ...report });
      return report;
    } catch (error) {
      log({ event: 'RECONCILIATION_FAILED', at, error: describeError(error) });
      return undefined;
    }
  };
  /** What the policy makes of a report: a halt reason (`halt`), or fills booking the broker's positions (`adopt`). */
  const policyOutcome = (report: ReconcileReport | undefined, lastClose: Readonly<Record<string, number>>): Reconciliation => {
    if (report === undefined || report.differences.length === 0) return { halt: null, adoptionFills: [] };
    const at = clock.wallMs();
    if (report.halt) {
      const detail = report.differences.map((d) => `${d.symbol} local ${d.local} broker ${d.broker}`).join('; ');
      return { halt: { code: 'RECONCILIATION_MISMATCH', detail, at }, adoptionFills: [] };
    }
    if (config.reconcile.policy !== 'adopt') return { halt: null, adoptionFills: [] };
    return { halt: null, adoptionFills: adoptionFills(report.differences, (symbol) => lastClose[symbol] ?? brokerPrices.get(symbol), at) };
  };
  /** At start: report differences and apply the policy to the restored state. */
  const reconcileAtStart = async (state: SessionStart, knownIds: readonly string[]): Promise<SessionStart> => {
    const report = await attemptReconcile('start', () => positionReport('start', state.portfolio, state.appliedFills, knownIds));
    const outcome = policyOutcome(report, state.pipeline.lastClose);
    if (outcome.halt !== null) return { ...state, risk: addHaltReason(state.risk, outcome.halt) };
    if (outcome.adoptionFills.length === 0) return state;
    const adopted = applyNewFills(state, outcome.adoptionFills);
    return { ...state, pipeline: adopted.pipeline, portfolio: adopted.portfolio };
  };
  const executionDeps = (): ExecutionDeps => {
    const { broker, tracker } = resources;
    if (broker === undefined || tracker === undefined) throw new Error('the session has not started');
    return { broker, tracker, brokerTimeoutMs: config.brokerTimeoutMs, log };
  };

  const machine = sessionMachine.provide({
    actors: {
      startSession: fromPromise(async () => {
        try {
          resources.lock = await lockStateDir(stateDir);
          const store = fileCheckpointStore({ dir: stateDir, clock });
          const checkpoint = await store.read(CHECKPOINT_KEY, SessionCheckpointSchema);
          if (checkpoint.status === 'corrupt') log({ event: 'CHECKPOINT_CORRUPT', reason: checkpoint.reason, movedTo: checkpoint.movedTo });
          resources.checkpointer = createCheckpointer({ store, ...inspect });
          resources.unsubscribe.push(
            resources.checkpointer.on('CHECKPOINT_DEGRADED', (e) => actor.send({ type: 'CHECKPOINT_DEGRADED', error: e.error })),
            resources.checkpointer.on('CHECKPOINT_RECOVERED', () => actor.send({ type: 'CHECKPOINT_RECOVERED' })),
          );
          resources.tracker = createIdempotencyTracker({ stateDir, clock, ttlMs: config.idempotency.ttlMs, lock: false, ...inspect });
          // Supervision: a dead checkpointer or tracker is a transition of the session, never a silent loss.
          const supervise = (child: string) => ({
            error: (error: unknown) => actor.send({ type: 'CHILD_FAILED', child, error: describeError(error) }),
          });
          const watched = [resources.checkpointer.actor.subscribe(supervise('checkpointer')), resources.tracker.actor.subscribe(supervise('idempotency'))];
          resources.unsubscribe.push(...watched.map((subscription) => () => subscription.unsubscribe()));
          const journal = await resources.tracker.start();
          resources.broker = options.broker ?? (await PaperBroker.open({ dir: join(stateDir, 'broker'), clock }));
          resources.unsubscribe.push(resources.broker.onFill((fill) => actor.send({ type: 'FILLS', fills: [fill] })));
          const knownIds = await resources.broker.knownClientOrderIds();
          // Ours: the journal wrote them ahead of sending. Asked before `reconcile` adopts every broker id.
          const tracker = resources.tracker;
          ownIds = new Set(knownIds.filter((id) => tracker.check(id).status === 'held'));
          // Settle ids a previous run left reserved or unknown against what the broker holds.
          const settled = await resources.tracker.reconcile(knownIds);
          if (journal.state === 'recovering' || settled.status === 'refused') log({ event: 'JOURNAL_RECONCILED', journal: journal.state, settled });
          resources.checkpointer.start();
          if (checkpoint.status === 'ok') {
            if (checkpoint.data.strategyId !== strategy.id || checkpoint.data.sessionId !== config.sessionId) {
              throw new InvalidSessionOptionsError(
                `state dir holds session ${checkpoint.data.sessionId} / strategy ${checkpoint.data.strategyId}, not ${config.sessionId} / ${strategy.id}`,
              );
            }
            const restored = restoreSession(checkpoint.data, { strategy, rules }, riskClockOf(checkpoint.data.pipeline.lastTs));
            // Orders an earlier run could not settle: the broker decides now whether they were placed.
            const settling = await settleUnknown(executionDeps(), Object.values(restored.unsettled));
            const unsettled = Object.fromEntries(settling.stillUnknown.map((order) => [order.clientOrderId, order]));
            return reconcileAtStart({ ...restored, unsettled, settled: settling.outcomes }, knownIds);
          }
          const portfolio = createPortfolio({ initialCash: config.initialCash });
          return reconcileAtStart({
            pipeline: createPipeline(strategy, pipelineOptions),
            portfolio,
            // Risk sees the account from the first bar on, not only after the first batch.
            risk: updateAccount(createRiskState(), rules, accountView(portfolio)).state,
            appliedFills: {},
            unsettled: {},
            settled: [],
          }, knownIds);
        } catch (error) {
          resources.startError = error;
          throw error;
        }
      }),
      executeOrders: fromPromise(async ({ input }) => {
        await feedBroker(executionDeps().broker, input.marketBars);
        const outcomes = await executeOrders(executionDeps(), input.orders, { refuse: input.refuse, unsettled: input.unsettled });
        return { outcomes };
      }),
      reconcilePositions: fromPromise(async ({ input }) => {
        const { portfolio } = input;
        if (portfolio === null) return { halt: null, adoptionFills: [] };
        const report = await positionReport('scheduled', portfolio, input.appliedFills);
        resources.reconciliation.push(report);
        if (report.differences.length > 0) log({ event: 'RECONCILIATION_DIFFERENCES', ...report });
        return policyOutcome(report, lastCloses());
      }),
      drainSession: fromPromise(async ({ input }) => {
        const failures: string[] = [];
        if (input.portfolio !== null && resources.broker !== undefined) {
          const { portfolio } = input;
          await attemptReconcile('stop', () => positionReport('stop', portfolio, input.appliedFills));
        }
        const attempt = async (what: string, step: () => Promise<unknown>): Promise<void> => {
          try {
            await step();
          } catch (error) {
            failures.push(`${what}: ${describeError(error)}`);
          }
        };
        for (const unsubscribe of resources.unsubscribe.splice(0)) unsubscribe();
        await attempt('checkpointer', async () => {
          resources.checkpointReport = await resources.checkpointer?.stop();
        });
        await attempt('journal', async () => resources.tracker?.stop());
        await attempt('broker', async () => resources.broker?.close());
        await attempt('lock', async () => resources.lock?.release());
        if (failures.length > 0) throw new AistockError('SESSION_DRAIN_INCOMPLETE', failures.join('; '));
      }),
    },
    actions: {
      feedMarket: (_, params) => {
        const { broker } = resources;
        if (broker?.observeBar === undefined || params.bars.length === 0) return;
        feedBroker(broker, params.bars).catch((error: unknown) => log({ event: 'MARKET_FEED_FAILED', error: describeError(error) }));
      },
      saveCheckpoint: (_, { context, force }) => {
        if (resources.checkpointer === undefined || !checkpointerTakesSaves(resources.checkpointer)) return;
        // Only between batches: mid-batch, the pipeline has admitted bars it has not decided yet,
        // and a resume from that state would skip them. (A fault mid-batch keeps the previous one.)
        if (context.batch !== null) return;
        const now = clock.monoMs();
        if (!force && now - lastCheckpointAt < config.checkpointIntervalMs) {
          // Kept (a reference) so flushCheckpoint() can still write the newest state.
          unsaved = context;
          return;
        }
        lastCheckpointAt = now;
        unsaved = null;
        writeCheckpoint(resources.checkpointer, context);
      },
    },
  });
  let unsaved: SessionContext | null = null;
  const writeCheckpoint = (checkpointer: Checkpointer, context: SessionContext): void => {
    const { pipeline, portfolio } = context;
    if (pipeline === null || portfolio === null) return;
    const snapshot = sessionCheckpoint(
      { pipeline, portfolio, risk: context.risk, appliedFills: context.appliedFills, unsettled: context.unsettled },
      { sessionId: config.sessionId, strategyId: strategy.id },
      riskClockOf(pipeline.lastTs),
    );
    checkpointer.save(CHECKPOINT_KEY, snapshot);
  };
  resources.flushCheckpoint = async (timeoutMs) => {
    const { checkpointer } = resources;
    if (checkpointer === undefined) return true;
    if (unsaved !== null && checkpointerTakesSaves(checkpointer)) writeCheckpoint(checkpointer, unsaved);
    unsaved = null;
    return checkpointer.settled(timeoutMs);
  };
  const lastCloses = (): Readonly<Record<string, number>> => actor.getSnapshot().context.pipeline?.lastClose ?? {};
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
  return actor;
}

/** Creates a trading session over `options.stateDir`; call `start()`, then `ingest` bars. */
export function createTradingSession(options: TradingSessionOptions): TradingSession {
  const resources: Resources = { unsubscribe: [], reconciliation: [] };
  const actor = createSessionActor(options, resources);
  const clock = options.clock ?? systemClock;
  const replay = options.replay ?? false;
  let fatal: unknown;
  actor.subscribe({ error: (error) => (fatal = error) });
  actor.start();
  let started: Promise<void> | undefined;
  let stopped: Promise<Summary> | undefined;

  const summary = (): Summary => {
    const { context } = actor.getSnapshot();
    const guard = context.pipeline?.guard;
    const portfolio = context.portfolio ?? createPortfolio({ initialCash: options.initialCash ?? '100000' });
    const checkpoints = resources.checkpointReport ?? resources.checkpointer?.actor.getSnapshot().context.stats;
    const tracker = resources.tracker?.snapshot();
    return {
      bars: {
        accepted: guard?.accepted ?? 0,
        rejected: { ...(guard?.rejected ?? {}) } as Record<string, number>,
        resumedSkips: context.pipeline?.resumedSkips ?? 0,
        dropped: context.stats.barsDropped,
      },
      orders: {
        submitted: context.stats.ordersSubmitted,
        duplicatesBlocked: context.stats.duplicatesBlocked,
        rejected: context.stats.ordersRejected,
        unknown: context.stats.ordersUnknown,
        settled: context.stats.ordersSettled,
        refused: context.stats.ordersRefused,
        denied: context.stats.ordersDenied,
      },
      fills: context.stats.fills,
      portfolio: portfolioSummary(portfolio),
      checkpoints: { written: checkpoints?.written ?? 0, failed: checkpoints?.failed ?? 0 },
      risk: { state: tradingState(context.risk), haltReasons: context.risk.haltReasons.map((r) => `${r.code}: ${r.detail}`) },
      clockJumps: tracker?.stats.clockJumps ?? 0,
      reconciliation: resources.reconciliation,
      fault: context.fault,
    };
  };

  const idle = (s: ReturnType<typeof actor.getSnapshot>): boolean =>
    (s.hasTag('awaitingBars') && s.context.inbox.length === 0) || s.hasTag('stopped') || s.matches('faulted');

  return {
    actor,
    start: () => {
      started ??= (async () => {
        actor.send({ type: 'START' });
        const s = await waitFor(actor, (snap) => !snap.matches('idle') && !snap.matches('starting'), { timeout: Infinity });
        if (s.matches('faulted')) {
          throw resources.startError ?? new SessionFaultedError(`session failed to start: ${s.context.fault ?? 'unknown'}`, s.context.fault);
        }
      })();
      return started;
    },
    ingest: async (input) => {
      const bars = Array.isArray(input) ? (input as readonly Bar[]) : [input as Bar];
      if (replay) actor.send({ type: 'BARS', bars });
      else actor.send({ type: 'BARS', bars, receivedAtMs: clock.wallMs(), monoMs: clock.monoMs() });
      const now = actor.getSnapshot();
      const s = idle(now) ? now : await waitFor(actor, idle, { timeout: Infinity });
      if (s.matches('faulted')) throw new SessionFaultedError(`session faulted: ${s.context.fault ?? 'unknown'}`, s.context.fault);
      // A replay can outrun the event loop; let checkpoint writes and timers run between batches.
      if (replay) await new Promise((resolve) => setImmediate(resolve));
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
    flushCheckpoint: (timeoutMs) => resources.flushCheckpoint?.(timeoutMs) ?? Promise.resolve(true),
  };
}
