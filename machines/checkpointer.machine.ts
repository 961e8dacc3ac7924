import { and, assign, emit, fromPromise, or, setup, stateIn } from 'xstate';
import {
  offerSnapshot,
  pendingWrites,
  retryDelayMs,
  settleWrites,
  type PendingSnapshots,
  type PendingWrite,
} from '../src/checkpointer/checkpointQueue.js';
import { describeError } from '../src/common/errors.js';
import { LIFECYCLE, lifecycleStates, type LifecycleEvent } from './lifecycle.js';

/**
 * The checkpointer (AIStock's CheckpointManager): persists the newest snapshot of each key.
 *
 * - `SAVE` coalesces: the newest snapshot per key wins, so the queue cannot fill.
 * - One write in flight (the `writer` region); a write that fails or throws is an `onError`
 *   transition to `backingOff`, and the snapshots stay pending until a write succeeds.
 * - After `degradeAfter` consecutive failures it emits `CHECKPOINT_DEGRADED`; the next
 *   success emits `CHECKPOINT_RECOVERED`.
 * - `STOP` drains: pending snapshots are written, then `shutdown`. If writing keeps failing,
 *   `drainTimeout` ends the drain and `unpersistedKeys` names what was not written.
 * - In `shutdown`, a `SAVE` is refused (`SAVE_REFUSED`), never silently dropped.
 */

export type CheckpointerEvent = LifecycleEvent | { type: 'SAVE'; key: string; snapshot: unknown };

/** What the checkpointer tells observers (`actor.on(type, …)`). */
export type CheckpointerEmitted =
  | { type: 'CHECKPOINT_DEGRADED'; consecutiveFailures: number; error: string }
  | { type: 'CHECKPOINT_RECOVERED' }
  | { type: 'SAVE_REFUSED'; key: string };

/** The checkpointer's tunables (its `input`). */
export interface CheckpointerConfig {
  /** Consecutive failed writes before `CHECKPOINT_DEGRADED` (default 3). */
  degradeAfter: number;
  /** First retry delay; doubles per failure (default 50 ms). */
  retryBaseMs: number;
  /** Longest retry delay (default 5,000 ms). */
  retryMaxMs: number;
  /** How long `STOP` may keep retrying before giving up on unwritten keys (default 10,000 ms). */
  drainTimeoutMs: number;
}

/** The checkpointer's defaults: degrade after 3 failures, retry from 50 ms to 5 s, drain for 10 s. */
export const DEFAULT_CHECKPOINTER_CONFIG: CheckpointerConfig = {
  degradeAfter: 3,
  retryBaseMs: 50,
  retryMaxMs: 5_000,
  drainTimeoutMs: 10_000,
};

/** The checkpointer's context: the pending snapshots, the write in flight, health and counters. */
export interface CheckpointerContext {
  config: CheckpointerConfig;
  pending: PendingSnapshots;
  inFlight: PendingWrite[];
  nextVersion: number;
  consecutiveFailures: number;
  degraded: boolean;
  /** Writes done, writes that failed (I/O errors and throws alike), saves refused after shutdown. */
  stats: { saves: number; written: number; failed: number; refused: number };
  lastError: string | null;
  /** Set when the drain ends: the keys whose newest snapshot never reached the disk. */
  unpersistedKeys: string[];
}

const checkpointerSetup = setup({
  types: {
    context: {} as CheckpointerContext,
    events: {} as CheckpointerEvent,
    input: {} as Partial<CheckpointerConfig> | undefined,
    emitted: {} as CheckpointerEmitted,
  },
  actors: {
    /** Persists every write in the batch; supplied by `src/checkpointer/checkpointer.ts` (or a test) with `.provide()`. */
    writeSnapshots: fromPromise<void, { writes: PendingWrite[] }>(async () => {
      throw new Error('writeSnapshots is not provided: use checkpointerMachine.provide({ actors })');
    }),
  },
  guards: {
    hasPending: ({ context }) => Object.keys(context.pending).length > 0,
    nothingPending: ({ context }) => Object.keys(context.pending).length === 0,
    isDegraded: ({ context }) => context.degraded,
    reachesDegradeThreshold: ({ context }) =>
      !context.degraded && context.consecutiveFailures + 1 >= context.config.degradeAfter,
  },
  delays: {
    retryBackoff: ({ context }) =>
      retryDelayMs(context.consecutiveFailures, context.config.retryBaseMs, context.config.retryMaxMs),
    drainTimeout: ({ context }) => context.config.drainTimeoutMs,
  },
  actions: {
    queueSnapshot: assign(({ context, event }) => {
      if (event.type !== 'SAVE') return {};
      return {
        pending: offerSnapshot(context.pending, event.key, event.snapshot, context.nextVersion),
        nextVersion: context.nextVersion + 1,
        stats: { ...context.stats, saves: context.stats.saves + 1 },
      };
    }),
    takeBatch: assign({ inFlight: ({ context }) => pendingWrites(context.pending) }),
    settleBatch: assign(({ context }) => ({
      pending: settleWrites(context.pending, context.inFlight),
      inFlight: [],
      consecutiveFailures: 0,
      stats: { ...context.stats, written: context.stats.written + 1 },
    })),
    recordFailure: assign(({ context, event }) => ({
      inFlight: [],
      consecutiveFailures: context.consecutiveFailures + 1,
      lastError: 'error' in event ? describeError(event.error) : null,
      stats: { ...context.stats, failed: context.stats.failed + 1 },
    })),
    reportDegraded: emit(({ context }) => ({
      type: 'CHECKPOINT_DEGRADED' as const,
      consecutiveFailures: context.consecutiveFailures,
      error: context.lastError ?? 'unknown',
    })),
    markDegraded: assign({ degraded: true }),
    reportRecovered: emit({ type: 'CHECKPOINT_RECOVERED' as const }),
    markRecovered: assign({ degraded: false }),
    recordUnpersisted: assign({ unpersistedKeys: ({ context }) => Object.keys(context.pending) }),
    refuseSave: emit(({ event }) => ({ type: 'SAVE_REFUSED' as const, key: event.type === 'SAVE' ? event.key : '' })),
    countRefusal: assign({ stats: ({ context }) => ({ ...context.stats, refused: context.stats.refused + 1 }) }),
  },
});

const isRunningOrDraining = or([stateIn('#checkpointer.lifecycle.running'), stateIn('#checkpointer.lifecycle.draining')]);

/** The checkpointer machine (see the module comment); supply `writeSnapshots` with `.provide()`. */
export const checkpointerMachine = checkpointerSetup.createMachine({
  id: 'checkpointer',
  context: ({ input }) => ({
    config: { ...DEFAULT_CHECKPOINTER_CONFIG, ...input },
    pending: {},
    inFlight: [],
    nextVersion: 1,
    consecutiveFailures: 0,
    degraded: false,
    stats: { saves: 0, written: 0, failed: 0, refused: 0 },
    lastError: null,
    unpersistedKeys: [],
  }),
  // Two regions: the lifecycle, and the writer, whose one in-flight write outlives the
  // running → draining step (a write is never abandoned and restarted beside itself).
  type: 'parallel',
  // Accepted until shutdown: idle queues (written once running), running and draining write.
  on: { SAVE: { actions: 'queueSnapshot' } },
  states: {
    lifecycle: {
      initial: LIFECYCLE.idle,
      states: lifecycleStates({
        // Never started, so never allowed to write: what was queued is reported, not lost silently.
        idle: { on: { STOP: { target: LIFECYCLE.shutdown, actions: 'recordUnpersisted' } } },
        running: {},
        draining: {
          // Leaves as soon as nothing is pending; the deadline ends a drain that cannot write.
          always: { guard: 'nothingPending', target: LIFECYCLE.shutdown },
          after: { drainTimeout: { target: LIFECYCLE.shutdown, actions: 'recordUnpersisted' } },
        },
        shutdown: {
          on: { SAVE: { actions: ['countRefusal', 'refuseSave'] } },
        },
      }),
    },
    writer: {
      initial: 'waiting',
      states: {
        waiting: { always: { guard: and(['hasPending', isRunningOrDraining]), target: 'writing' } },
        writing: {
          entry: 'takeBatch',
          invoke: {
            id: 'writer',
            src: 'writeSnapshots',
            input: ({ context }) => ({ writes: context.inFlight }),
            onDone: [
              { guard: 'isDegraded', target: 'waiting', actions: ['settleBatch', 'markRecovered', 'reportRecovered'] },
              { target: 'waiting', actions: 'settleBatch' },
            ],
            onError: [
              {
                guard: 'reachesDegradeThreshold',
                target: 'backingOff',
                actions: ['recordFailure', 'markDegraded', 'reportDegraded'],
              },
              { target: 'backingOff', actions: 'recordFailure' },
            ],
          },
        },
        backingOff: { after: { retryBackoff: 'waiting' } },
      },
    },
  },
});
