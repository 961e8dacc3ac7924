import { join } from 'node:path';
import { fromPromise, type AnyActorRef } from 'xstate';
import type { SessionEvent, SessionStart } from '../../machines/session.machine.js';
import { isLegacyClientOrderId } from '../idempotency/clientOrderId.js';
import { AistockError, describeError } from '../common/errors.js';
import { keyed } from '../common/keyed.js';
import { FillCounts } from './fillCounts.js';
import { createPortfolio } from '../portfolio/portfolio.js';
import { accountView, createRiskState, updateAccount } from '../risk/risk.js';
import type { RiskRules } from '../risk/riskLimits.js';
import { createPipeline, type PipelineOptions } from './sessionPipeline.js';
import type { Strategy } from '../strategy/strategy.js';
import type { Broker } from '../broker/broker.js';
import { openBrokerConnection, type BrokerConnection } from '../broker/brokerConnection.js';
import { createCheckpointer, type Checkpointer, type CheckpointerReport } from '../checkpointer/checkpointer.js';
import { fileCheckpointStore } from '../checkpointer/checkpointStore.js';
import type { Clock } from '../common/clock.js';
import { createIdempotencyTracker, type IdempotencyTracker, type StartReport } from '../idempotency/idempotencyTracker.js';
import { PaperBroker } from '../broker/paperBroker.js';
import { lockStateDir } from '../stateDir/stateDirLock.js';
import type { OpenSessionStore, SessionStore } from './sessionStore.js';
import type { CheckpointPolicy } from './checkpointPolicy.js';
import { diskSyncFor } from '../stateDir/durability.js';
import { beginRun, type DurabilityRun } from '../stateDir/nonDurableRun.js';
import { atomicFileWriterWith } from '../stateDir/stateFile.js';
import { settleUnknown, type ExecutionDeps } from './orderExecution.js';
import { CHECKPOINT_KEY, restoreSession, SessionCheckpointSchema, type SessionCheckpoint, type SessionState } from './sessionCheckpoint.js';
import { InvalidSessionOptionsError, type SessionConfig } from './sessionOptions.js';
import type { SessionReconciler } from '../reconciler/sessionReconciler.js';

/**
 * The session's start sequence, one actor per step of `starting` (machines/session.machine.ts):
 * lock the state dir, restore the checkpoint, load the journal, open the broker, settle what an
 * earlier run left unsettled, reconcile. Each step leaves what it found for the next in
 * `found`, and what it opened in `parts`, which the drain releases whatever step failed.
 */

/** What the session opened; the drain (or the release after a fault) closes each one there is. */
export interface SessionParts {
  /** The state dir's lock, or the store's lease: what keeps this process the session's only writer. */
  lock?: { release(): Promise<void> };
  /** The session store given in the options, opened (its lease held). */
  store?: OpenSessionStore;
  checkpointer?: Checkpointer;
  tracker?: IdempotencyTracker;
  broker?: Broker;
  /** The broker's actor, which closes it. */
  brokerConnection?: BrokerConnection;
  unsubscribe: (() => void)[];
  checkpointReport?: CheckpointerReport;
  /** The error a start step failed with, so `start()` rejects with it. */
  startError?: unknown;
  /** The checkpoint the start set aside (corrupt, or breaking an invariant), for the summary. */
  setAside?: { reason: string; movedTo: string };
  /** This run's durability over the state dir (its research-mode marker). */
  durabilityRun?: DurabilityRun;
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

/** What the start steps need. */
export interface StartStepsDeps {
  config: SessionConfig;
  clock: Clock;
  strategy: Strategy;
  rules: RiskRules;
  pipelineOptions: PipelineOptions;
  /** The user's broker; a PaperBroker in `<stateDir>/broker` without one. */
  broker: Broker | undefined;
  /** Where the journal, checkpoints and hold live instead of the state dir's files (e.g. `postgresStore`). */
  store: SessionStore | undefined;
  log: (entry: Record<string, unknown>) => void;
  parts: SessionParts;
  reconciler: SessionReconciler;
  /** Sends to the session actor (fills, checkpointer health). */
  send: (event: SessionEvent) => void;
  /** The session actor, parent of the checkpointer and the journal tracker. */
  parent: () => AnyActorRef;
  riskClockOf: (lastTs: ReadonlyMap<string, number>) => number;
  executionDeps: () => ExecutionDeps;
  /** When checkpoints are written; the checkpointer writes through its store. */
  checkpoints: CheckpointPolicy;
}

/** A part an earlier start step made; a step that runs before it is a bug, not a state. */
function made<T>(part: T | undefined, name: string): T {
  if (part === undefined) throw new Error(`start step ran before the ${name} was made`);
  return part;
}

/** The start steps, as the actors `sessionMachine.provide` takes. */
export function startSteps(deps: StartStepsDeps) {
  const { config, clock, strategy, rules, log, parts } = deps;
  const { stateDir } = config;
  const sync = diskSyncFor(config.durability);
  const found: {
    checkpoint: SessionCheckpoint | null;
    /** The checkpoint's state, restored (its invariants checked) while restoring. */
    state: SessionState | null;
    journal: StartReport | null;
    knownIds: string[];
    restored: SessionStart | null;
  } = {
    checkpoint: null,
    state: null,
    journal: null,
    knownIds: [],
    restored: null,
  };
  /** A step; its error is also kept, so `start()` rejects with the error itself. */
  const step = <T>(run: () => Promise<T>) =>
    fromPromise<T>(async () => {
      try {
        return await run();
      } catch (error) {
        parts.startError = error;
        throw error;
      }
    });

  return {
    lockStateDir: step(async () => {
      if (deps.store === undefined) parts.lock = await lockStateDir(stateDir);
      else {
        // The store's hold (a lease) takes the lock's place; releasing it closes the store.
        // Another process took the session over: the session faults at once, not at its next write.
        parts.store = await deps.store.open({ sessionId: config.sessionId, clock, log, onHoldLost: (error) => deps.send({ type: 'HOLD_LOST', error }) });
        parts.lock = parts.store;
      }
    }),
    restoreCheckpoint: step(async () => {
      // Before anything in the dir is read: a research run that did not end cleanly is refused.
      parts.durabilityRun = await beginRun(stateDir, config.durability, clock);
      const files = parts.store?.checkpoints ?? fileCheckpointStore({ dir: stateDir, clock, writer: atomicFileWriterWith(sync) });
      const checkpoint = await files.read(CHECKPOINT_KEY, SessionCheckpointSchema);
      if (checkpoint.status === 'corrupt') {
        parts.setAside = { reason: checkpoint.reason, movedTo: checkpoint.movedTo };
        log({ event: 'CHECKPOINT_CORRUPT', ...parts.setAside });
      }
      if (checkpoint.status === 'ok' && (checkpoint.data.strategyId !== strategy.id || checkpoint.data.sessionId !== config.sessionId)) {
        throw new InvalidSessionOptionsError(
          `state dir holds session ${checkpoint.data.sessionId} / strategy ${checkpoint.data.strategyId}, not ${config.sessionId} / ${strategy.id}`,
        );
      }
      if (checkpoint.status === 'ok') {
        try {
          found.state = restoreSession(checkpoint.data, { strategy, rules }, deps.riskClockOf(checkpoint.data.pipeline.lastTs));
          found.checkpoint = checkpoint.data;
        } catch (error) {
          // It parses but breaks an invariant (an edited cash, a strategy state its schema refuses):
          // set aside like any corrupt file; the session starts fresh and the broker rebuilds it.
          const movedTo = await files.setAside(CHECKPOINT_KEY);
          parts.setAside = { reason: 'INVALID_STATE', movedTo };
          log({ event: 'CHECKPOINT_INVALID', error: describeError(error), movedTo });
        }
      }
      // Children of the session: in its system and its inspector tree, supervised by its machine.
      const checkpointer = createCheckpointer({ store: deps.checkpoints.through(files, () => parts.tracker), parent: deps.parent() });
      parts.checkpointer = checkpointer;
      parts.unsubscribe.push(
        checkpointer.on('CHECKPOINT_DEGRADED', (e) => deps.send({ type: 'CHECKPOINT_DEGRADED', error: e.error })),
        checkpointer.on('CHECKPOINT_RECOVERED', () => deps.send({ type: 'CHECKPOINT_RECOVERED' })),
      );
      // Ids of bars after the checkpoint are kept whatever the downtime; none is dropped by age.
      const watermark = found.checkpoint === null ? {} : { watermark: found.checkpoint.pipeline.lastTs };
      const journal = parts.store === undefined ? {} : { journal: parts.store.journal };
      const tracker = createIdempotencyTracker({ stateDir, clock, sync, lock: false, log: (entry) => log({ component: 'idempotency', ...entry }), ...watermark, ...journal, parent: deps.parent() });
      parts.tracker = tracker;
    }),
    loadJournal: step(async () => {
      found.journal = await made(parts.tracker, 'journal tracker').start();
    }),
    openBroker: step(async () => {
      // The connection is the session's `broker` child: its opening and closing are its own states.
      const connection = await openBrokerConnection({
        open: async () => {
          if (deps.broker !== undefined) return deps.broker;
          // The store's ledger when it keeps one (PostgreSQL): then nothing of the broker is in the state dir.
          const ledger = parts.store?.paperBrokerLedger?.();
          return PaperBroker.open({ ...(ledger === undefined ? { dir: join(stateDir, 'broker') } : { ledger }), clock, log, durability: config.durability, ...config.paperBroker });
        },
        parent: deps.parent(),
      });
      const { broker } = connection;
      parts.broker = broker;
      parts.brokerConnection = connection;
      parts.unsubscribe.push(broker.onFill((fill) => deps.send({ type: 'FILLS', fills: [fill] })));
      found.knownIds = [...connection.knownClientOrderIds];
      const legacy = found.knownIds.filter(isLegacyClientOrderId);
      if (legacy.length > 0) throw new LegacyOrderIdsError(stateDir, legacy);
    }),
    settleOrders: step(async () => {
      const { tracker } = deps.executionDeps();
      // The broker is the source of truth for what was sent: every id it holds is held here
      // (a lost or damaged journal is rebuilt from it), and ids a previous run left reserved
      // or unknown are settled against it.
      const settled = await tracker.reconcile(found.knownIds);
      const journal = found.journal;
      if (settled.status === 'reconciled' && settled.added > 0) {
        // The journal lacked orders the broker has (lost, emptied, damaged): now rebuilt from it.
        const was = journal?.journal.status === 'corrupt' ? 'corrupt' : journal?.journal.created === true ? 'missing' : 'incomplete';
        deps.reconciler.counts.journalRebuilt += settled.added;
        log({ event: 'JOURNAL_REBUILT', journal: was, fromBroker: settled.added });
      } else if (journal?.state === 'recovering' || settled.status === 'refused') log({ event: 'JOURNAL_RECONCILED', journal: journal?.state, settled });
      made(parts.checkpointer, 'checkpointer').start();
      if (found.state === null) {
        const portfolio = createPortfolio({ initialCash: config.initialCash });
        found.restored = {
          pipeline: createPipeline(strategy, deps.pipelineOptions),
          portfolio,
          // Risk sees the account from the first bar on, not only after the first batch.
          risk: updateAccount(createRiskState(), rules, accountView(portfolio)).state,
          appliedFills: FillCounts.EMPTY,
          unsettled: keyed(),
          settled: [],
        };
        return;
      }
      const restored = found.state;
      // Orders an earlier run could not settle: the broker decides now whether they were placed.
      const settling = await settleUnknown(deps.executionDeps(), Object.values(restored.unsettled));
      const unsettled = keyed(Object.fromEntries(settling.stillUnknown.map((order) => [order.clientOrderId, order])));
      found.restored = { ...restored, unsettled, settled: settling.outcomes };
    }),
    reconcileAtStart: step(async () => deps.reconciler.atStart(made(found.restored ?? undefined, 'restored state'), found.knownIds)),
  };
}
