import { join } from 'node:path';
import { createActor, fromPromise, waitFor, type ActorOptions, type AnyActorLogic } from 'xstate';
import { z } from 'zod';
import {
  describeFault,
  sessionMachine,
  type Reconciliation,
  type SessionContext,
  type SessionFault,
  type SessionStart,
} from '../../machines/session.machine.js';
import type { Bar } from '../core/bar.js';
import { AistockError, describeError } from '../core/errors.js';
import { createPortfolio, portfolioSummary, type PortfolioSummary } from '../core/portfolio.js';
import { accountView, addHaltReason, createRiskState, tradingState, updateAccount } from '../core/risk.js';
import { parseQty, type Qty } from '../core/money.js';
import type { Portfolio } from '../core/portfolio.js';
import { isLegacyClientOrderId, parseClientOrderId, sessionTag } from '../core/clientOrderId.js';
import {
  adoptionFills,
  netFills,
  positionDifferences,
  ReconcilePolicySchema,
  reconcileReport,
  splitOwnFills,
  type OwnOrder,
  type ReconcileReport,
} from '../core/reconcile.js';
import { compileRiskRules, parseRiskLimits, type RiskLimitsInput } from '../core/riskLimits.js';
import { applyNewFills, createPipeline, unappliedFills } from '../core/sessionPipeline.js';
import type { DataGuardConfigInput } from '../core/dataGuard.js';
import { smaCross, type Strategy } from '../core/strategy.js';
import { TimeframeSchema, TIMEFRAME_MS } from '../core/timeframe.js';
import { isKnownZone } from '../core/zoneOffsets.js';
import type { Broker } from '../runtime/broker.js';
import { createCheckpointer, type Checkpointer, type CheckpointerReport } from '../runtime/checkpointer.js';
import { fileCheckpointStore, type CheckpointStore } from '../runtime/checkpointStore.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import { createIdempotencyTracker, type IdempotencyTracker, type StartReport } from '../runtime/idempotencyTracker.js';
import { PaperBroker } from '../runtime/paperBroker.js';
import { lockStateDir, type StateDirLock } from '../runtime/stateDirLock.js';
import { executeOrders, feedBroker, settleUnknown, type DeadlineTimers, type ExecutionDeps } from './orderExecution.js';
import { CHECKPOINT_KEY, restoreSession, SessionCheckpointSchema, sessionCheckpoint, type SessionCheckpoint } from './sessionCheckpoint.js';

/** Options of {@link createTradingSession}; validated with zod (see {@link SessionOptionsSchema}). */
export const SessionOptionsSchema = z.object({
  /** Holds `checkpoint.json`, `orders.journal`, `broker/` and `lock.owner.json`. */
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
  /** What times broker-call deadlines (`brokerTimeoutMs`): Node's timers by default; xstate's `SimulatedClock` in tests. */
  timers?: DeadlineTimers;
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
  /** Broker vs portfolio positions, checked at start, on schedule (live) and at stop. */
  reconciliation: ReconcileReport[];
  /** What the checks found, counted: see {@link ReconcileCounts}. */
  reconciled: ReconcileCounts;
  /** Why the session faulted (null: it did not): a typed value with a closed code. */
  fault: SessionFault | null;
}

/** Counts over every reconciliation of the session. */
export interface ReconcileCounts {
  checks: number;
  /** Checks that could not ask the broker (logged as `RECONCILIATION_FAILED`). */
  failed: number;
  /** Symbols whose positions differed beyond what the session's own pending orders explain, over all checks. */
  differences: number;
  /** `RECON-` fills booked under the `adopt` policy. */
  adoptedFills: number;
  /** Broker fills of the session's own orders that the checkpoint had not seen, applied at start at their own price. */
  recoveredFills: number;
  /** Client order ids the broker holds that the journal had lost (emptied, deleted, damaged): added back at start. */
  journalRebuilt: number;
}

/** The state dir's orders carry ids of aistock 0.1's scheme, which name neither their bar nor their session. */
export class LegacyOrderIdsError extends AistockError {
  readonly stateDir: string;

  constructor(stateDir: string, ids: readonly string[]) {
    super(
      'LEGACY_ORDER_IDS',
      `the broker holds ${ids.length} order(s) with client order ids of aistock 0.1 (e.g. ${ids[0] ?? ''}), ` +
        `which this version cannot tell apart from other sessions' orders; resume ${stateDir} with aistock 0.1, or start a new state dir`,
    );
    this.stateDir = stateDir;
  }
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
  reconciled: ReconcileCounts;
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
  const { strategy: _s, broker: _b, clock: _c, inspect: _i, log: _l, guard: _g, timers: _t, ...plain } = options;
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
  // The session's own orders are the broker's ids that carry its tag, whatever the journal holds.
  const tag = sessionTag(config.sessionId, strategy.id);
  // The newest broker fill price per symbol: what an adopted position is booked at without a bar.
  const brokerPrices = new Map<string, number>();
  const { reconciled } = resources;

  /** What the broker holds: its positions, and the session's own orders with their fills. */
  const readBroker = async (knownIds?: readonly string[]): Promise<{ positions: Map<string, Qty>; own: OwnOrder[] }> => {
    const { broker } = executionDeps();
    const positions = new Map(Object.entries(await broker.positions()).map(([symbol, qty]) => [symbol, parseQty(qty)]));
    const own: OwnOrder[] = [];
    for (const id of knownIds ?? (await broker.knownClientOrderIds())) {
      const state = await broker.orderByClientId(id);
      if (state === undefined) continue;
      for (const fill of state.fills) brokerPrices.set(fill.symbol, Number(fill.price));
      const parts = parseClientOrderId(id);
      if (parts?.tag === tag) own.push({ clientOrderId: id, symbol: state.order.symbol, barTs: parts.barTime, fills: state.fills });
    }
    return { positions, own };
  };
  /**
   * Broker vs portfolio positions. Fills of own orders whose bar lies after `decidedTo` are
   * pending (deciding that bar again applies them); anything else is a difference.
   */
  const positionReport = (
    at: ReconcileReport['at'],
    view: { positions: Map<string, Qty>; own: readonly OwnOrder[] },
    state: { portfolio: Portfolio; appliedFills: Record<string, number>; decidedTo: Readonly<Record<string, number>> },
    /** Orders whose fills are about to be applied anyway (settled at start): pending too. */
    settling: ReadonlySet<string> = new Set(),
  ): ReconcileReport => {
    const split = splitOwnFills(view.own, state.appliedFills, state.decidedTo);
    const pending = [...split.pending, ...split.final.filter((fill) => settling.has(fill.clientOrderId))];
    const local = new Map([...state.portfolio.positions].map(([symbol, position]) => [symbol, position.qty]));
    return reconcileReport(at, positionDifferences(local, view.positions, netFills(pending)), config.reconcile);
  };
  /** Counts and logs a report: every difference is visible in the summary and the log. */
  const recordReport = (report: ReconcileReport): ReconcileReport => {
    resources.reconciliation.push(report);
    reconciled.checks += 1;
    reconciled.differences += report.differences.length;
    if (report.differences.length > 0) log({ event: 'RECONCILIATION_DIFFERENCES', ...report });
    return report;
  };
  const attemptReconcile = async (at: ReconcileReport['at'], run: () => Promise<ReconcileReport>): Promise<ReconcileReport | undefined> => {
    try {
      return recordReport(await run());
    } catch (error) {
      reconciled.failed += 1;
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
    const fills = adoptionFills(report.differences, (symbol) => (Object.hasOwn(lastClose, symbol) ? lastClose[symbol] : brokerPrices.get(symbol)), at);
    reconciled.adoptedFills += fills.length;
    return { halt: null, adoptionFills: fills };
  };
  /**
   * At start: first the broker's fills of own orders whose bar is final (the checkpoint had not
   * seen them: a resting order filled while the session was down), as the session's own; then
   * the differences, and the policy applied to the restored state.
   */
  const reconcileAtStart = async (restored: SessionStart, knownIds: readonly string[]): Promise<SessionStart> => {
    let state = restored;
    const report = await attemptReconcile('start', async () => {
      const view = await readBroker(knownIds);
      const decidedTo = state.pipeline.resumeAfter;
      // Orders settled at start have their fills applied with the settled outcome, not here.
      const settling = new Set(state.settled.map((outcome) => outcome.order.clientOrderId));
      const final = splitOwnFills(view.own, state.appliedFills, decidedTo).final.filter((fill) => !settling.has(fill.clientOrderId));
      const { fresh, appliedFills } = unappliedFills(final, state.appliedFills);
      if (fresh.length > 0) {
        const recovered = applyNewFills({ ...state, appliedFills }, fresh);
        state = { ...state, pipeline: recovered.pipeline, portfolio: recovered.portfolio, appliedFills };
        reconciled.recoveredFills += fresh.length;
        log({ event: 'OWN_FILLS_RECOVERED', fills: fresh.length, clientOrderIds: [...new Set(fresh.map((f) => f.clientOrderId))] });
      }
      return positionReport('start', view, { portfolio: state.portfolio, appliedFills: state.appliedFills, decidedTo }, settling);
    });
    const outcome = policyOutcome(report, state.pipeline.lastClose);
    if (outcome.halt !== null) return { ...state, risk: addHaltReason(state.risk, outcome.halt) };
    if (outcome.adoptionFills.length === 0) return state;
    const adopted = applyNewFills(state, outcome.adoptionFills);
    return { ...state, pipeline: adopted.pipeline, portfolio: adopted.portfolio };
  };
  /** While running and at stop: bars up to each symbol's newest are decided, so only later ones are pending. */
  const reconcileNow = async (at: 'scheduled' | 'stop', portfolio: Portfolio, appliedFills: Record<string, number>): Promise<ReconcileReport> => {
    const decidedTo = actor.getSnapshot().context.pipeline?.lastTs ?? {};
    return positionReport(at, await readBroker(), { portfolio, appliedFills, decidedTo });
  };
  const executionDeps = (): ExecutionDeps => {
    const { broker, tracker } = resources;
    if (broker === undefined || tracker === undefined) throw new Error('the session has not started');
    return { broker, tracker, brokerTimeoutMs: config.brokerTimeoutMs, log, ...(options.timers === undefined ? {} : { timers: options.timers }) };
  };
  /** A part an earlier start step made; a step that runs before it is a bug, not a state. */
  const made = <T,>(part: T | undefined, name: string): T => {
    if (part === undefined) throw new Error(`start step ran before the ${name} was made`);
    return part;
  };
  /** What one start step finds for the next. */
  const found: { checkpoint: SessionCheckpoint | null; journal: StartReport | null; knownIds: string[]; restored: SessionStart | null } = {
    checkpoint: null,
    journal: null,
    knownIds: [],
    restored: null,
  };
  /** A start step; its error is also kept, so `start()` rejects with the error itself. */
  const startStep = (run: () => Promise<void>) =>
    fromPromise<void>(async () => {
      try {
        await run();
      } catch (error) {
        resources.startError = error;
        throw error;
      }
    });

  const machine = sessionMachine.provide({
    actors: {
      lockStateDir: startStep(async () => {
        resources.lock = await lockStateDir(stateDir);
      }),
      restoreCheckpoint: startStep(async () => {
        const files = fileCheckpointStore({ dir: stateDir, clock });
        const checkpoint = await files.read(CHECKPOINT_KEY, SessionCheckpointSchema);
        if (checkpoint.status === 'corrupt') log({ event: 'CHECKPOINT_CORRUPT', reason: checkpoint.reason, movedTo: checkpoint.movedTo });
        if (checkpoint.status === 'ok' && (checkpoint.data.strategyId !== strategy.id || checkpoint.data.sessionId !== config.sessionId)) {
          throw new InvalidSessionOptionsError(
            `state dir holds session ${checkpoint.data.sessionId} / strategy ${checkpoint.data.strategyId}, not ${config.sessionId} / ${strategy.id}`,
          );
        }
        found.checkpoint = checkpoint.status === 'ok' ? checkpoint.data : null;
        // Once a checkpoint is on disk its bars are final: the journal may let go of their ids.
        const store: CheckpointStore = {
          read: (key, schema) => files.read(key, schema),
          write: async (writes) => {
            await files.write(writes);
            for (const { key, snapshot } of writes) {
              if (key === CHECKPOINT_KEY) resources.tracker?.advanceWatermark((snapshot as SessionCheckpoint).pipeline.lastTs);
            }
          },
        };
        resources.checkpointer = createCheckpointer({ store, ...inspect });
        resources.unsubscribe.push(
          resources.checkpointer.on('CHECKPOINT_DEGRADED', (e) => actor.send({ type: 'CHECKPOINT_DEGRADED', error: e.error })),
          resources.checkpointer.on('CHECKPOINT_RECOVERED', () => actor.send({ type: 'CHECKPOINT_RECOVERED' })),
        );
        // Ids of bars after the checkpoint are kept whatever the downtime; none is dropped by age.
        const watermark = found.checkpoint === null ? {} : { watermark: found.checkpoint.pipeline.lastTs };
        resources.tracker = createIdempotencyTracker({ stateDir, clock, lock: false, ...watermark, ...inspect });
        // Supervision: a dead checkpointer or tracker is a transition of the session, never a silent loss.
        const supervise = (child: string) => ({
          error: (error: unknown) => actor.send({ type: 'CHILD_FAILED', child, error: describeError(error) }),
        });
        const watched = [resources.checkpointer.actor.subscribe(supervise('checkpointer')), resources.tracker.actor.subscribe(supervise('idempotency'))];
        resources.unsubscribe.push(...watched.map((subscription) => () => subscription.unsubscribe()));
      }),
      loadJournal: startStep(async () => {
        found.journal = await made(resources.tracker, 'journal tracker').start();
      }),
      openBroker: startStep(async () => {
        const broker = options.broker ?? (await PaperBroker.open({ dir: join(stateDir, 'broker'), clock }));
        resources.broker = broker;
        resources.unsubscribe.push(broker.onFill((fill) => actor.send({ type: 'FILLS', fills: [fill] })));
        found.knownIds = await broker.knownClientOrderIds();
        const legacy = found.knownIds.filter(isLegacyClientOrderId);
        if (legacy.length > 0) throw new LegacyOrderIdsError(stateDir, legacy);
      }),
      settleOrders: startStep(async () => {
        const { tracker } = executionDeps();
        // The broker is the source of truth for what was sent: every id it holds is held here
        // (a lost or damaged journal is rebuilt from it), and ids a previous run left reserved
        // or unknown are settled against it.
        const settled = await tracker.reconcile(found.knownIds);
        const journal = found.journal;
        if (settled.status === 'reconciled' && settled.added > 0) {
          // The journal lacked orders the broker has (lost, emptied, damaged): now rebuilt from it.
          const was = journal?.journal.status === 'corrupt' ? 'corrupt' : journal?.journal.created === true ? 'missing' : 'incomplete';
          reconciled.journalRebuilt += settled.added;
          log({ event: 'JOURNAL_REBUILT', journal: was, fromBroker: settled.added });
        } else if (journal?.state === 'recovering' || settled.status === 'refused') log({ event: 'JOURNAL_RECONCILED', journal: journal?.state, settled });
        made(resources.checkpointer, 'checkpointer').start();
        if (found.checkpoint === null) {
          const portfolio = createPortfolio({ initialCash: config.initialCash });
          found.restored = {
            pipeline: createPipeline(strategy, pipelineOptions),
            portfolio,
            // Risk sees the account from the first bar on, not only after the first batch.
            risk: updateAccount(createRiskState(), rules, accountView(portfolio)).state,
            appliedFills: {},
            unsettled: {},
            settled: [],
          };
          return;
        }
        const restored = restoreSession(found.checkpoint, { strategy, rules }, riskClockOf(found.checkpoint.pipeline.lastTs));
        // Orders an earlier run could not settle: the broker decides now whether they were placed.
        const settling = await settleUnknown(executionDeps(), Object.values(restored.unsettled));
        const unsettled = Object.fromEntries(settling.stillUnknown.map((order) => [order.clientOrderId, order]));
        found.restored = { ...restored, unsettled, settled: settling.outcomes };
      }),
      reconcileAtStart: fromPromise(async () => {
        const { restored } = found;
        if (restored === null) throw new Error('reconcileAtStart ran before settleOrders');
        try {
          return await reconcileAtStart(restored, found.knownIds);
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
        // A failed check is the machine's onError (skipped until the next interval).
        const report = recordReport(await reconcileNow('scheduled', portfolio, input.appliedFills));
        return policyOutcome(report, lastCloses());
      }),
      drainSession: fromPromise(async ({ input }) => {
        const failures: string[] = [];
        if (input.portfolio !== null && resources.broker !== undefined) {
          const { portfolio } = input;
          await attemptReconcile('stop', () => reconcileNow('stop', portfolio, input.appliedFills));
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
  const resources: Resources = {
    unsubscribe: [],
    reconciliation: [],
    reconciled: { checks: 0, failed: 0, differences: 0, adoptedFills: 0, recoveredFills: 0, journalRebuilt: 0 },
  };
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
      reconciled: { ...resources.reconciled },
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
          const { fault } = s.context;
          throw resources.startError ?? new SessionFaultedError(`session failed to start: ${fault === null ? 'unknown' : describeFault(fault)}`, fault);
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
      if (s.matches('faulted')) {
        const { fault } = s.context;
        throw new SessionFaultedError(`session faulted: ${fault === null ? 'unknown' : describeFault(fault)}`, fault);
      }
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
