import type { SessionState } from './sessionPipeline.js';
import type { Checkpointer } from '../checkpointer/checkpointer.js';
import type { CheckpointStore } from '../checkpointer/checkpointStore.js';
import type { Clock } from '../common/clock.js';
import type { IdempotencyTracker } from '../idempotency/idempotencyTracker.js';
import { CHECKPOINT_KEY, sessionCheckpoint, type SessionCheckpoint } from './sessionCheckpoint.js';

/**
 * When the session checkpoints, and what a durable checkpoint lets go of:
 * - only between batches (mid-batch the session has admitted bars it has not decided yet, and
 *   a resume from that state would skip them; a fault mid-batch keeps the previous one), from
 *   the children's own state (the machine hands it over, read from their snapshots);
 * - at most one unforced save per `intervalMs` of monotonic time, the skipped one kept so
 *   `flush` can still write the newest state (a second Ctrl-C) — and, for a state so large that
 *   serialising it holds the main thread long (thousands of symbols' bar histories), at most
 *   {@link MAX_MAIN_THREAD_SHARE} of the time: the interval stretches to 10× the last write's
 *   synchronous part, so bars are never starved by their own checkpoints;
 * - once a checkpoint is on disk its bars are final, so the journal's watermark advances.
 */

/** Not stopped, and not dead (a dead one is the session's CHILD_FAILED, not a save to drop). */
function checkpointerTakesSaves(checkpointer: Checkpointer): boolean {
  const snapshot = checkpointer.actor.getSnapshot();
  return snapshot.status === 'active' && !snapshot.hasTag('stopped');
}

/** The share of the main thread unforced checkpoints may take (see the module comment). */
export const MAX_MAIN_THREAD_SHARE = 0.1;

/** What the policy needs: the checkpointer (once made), the session's identity, the clocks. */
export interface CheckpointPolicyDeps {
  checkpointer: () => Checkpointer | undefined;
  ids: { sessionId: string; strategyId: string };
  intervalMs: number;
  clock: Clock;
  /** The monotonic time risk windows are saved against (market time in replay). */
  riskClockOf: (lastTs: ReadonlyMap<string, number>) => number;
}

/** The session's checkpoint policy: `save` is the machine's `saveCheckpoint` action. */
export interface CheckpointPolicy {
  /** `state`: the session's state between batches, read from its children (null mid-batch: nothing to save). */
  save(state: SessionState | null, force: boolean): void;
  /** Writes the newest state a throttled save skipped, then waits until every checkpoint offered is on disk (false after `timeoutMs`). */
  flush(timeoutMs: number): Promise<boolean>;
  /**
   * `files` as the checkpointer writes through it: each session checkpoint made durable tells
   * the journal (its watermark), and the time a write holds the main thread before its first
   * await — serialising the state, which every store does there — paces the next unforced save.
   */
  through(files: CheckpointStore, tracker: () => IdempotencyTracker | undefined): CheckpointStore;
}

/** Creates the policy. */
export function createCheckpointPolicy(deps: CheckpointPolicyDeps): CheckpointPolicy {
  let lastCheckpointAt = Number.NEGATIVE_INFINITY;
  /** The synchronous part of the last write, in monotonic ms (0 on a clock that does not move by itself). */
  let lastWriteMs = 0;
  let unsaved: SessionState | null = null;
  const write = (checkpointer: Checkpointer, state: SessionState): void => {
    checkpointer.save(CHECKPOINT_KEY, sessionCheckpoint(state, deps.ids, deps.riskClockOf(state.pipeline.lastTs)));
  };
  return {
    save: (state, force) => {
      const checkpointer = deps.checkpointer();
      if (checkpointer === undefined || !checkpointerTakesSaves(checkpointer)) return;
      if (state === null) return;
      const now = deps.clock.monoMs();
      if (!force && now - lastCheckpointAt < Math.max(deps.intervalMs, lastWriteMs / MAX_MAIN_THREAD_SHARE)) {
        // Kept (a reference) so flush() can still write the newest state.
        unsaved = state;
        return;
      }
      lastCheckpointAt = now;
      unsaved = null;
      write(checkpointer, state);
    },
    flush: async (timeoutMs) => {
      const checkpointer = deps.checkpointer();
      if (checkpointer === undefined) return true;
      if (unsaved !== null && checkpointerTakesSaves(checkpointer)) write(checkpointer, unsaved);
      unsaved = null;
      return checkpointer.settled(timeoutMs);
    },
    through: (files, tracker) => ({
      read: (key, schema) => files.read(key, schema),
      setAside: (key) => files.setAside(key),
      write: async (writes) => {
        const started = deps.clock.monoMs();
        const writing = files.write(writes);
        lastWriteMs = deps.clock.monoMs() - started;
        await writing;
        for (const { key, snapshot } of writes) {
          if (key === CHECKPOINT_KEY) tracker()?.advanceWatermark((snapshot as SessionCheckpoint).pipeline.lastTs);
        }
      },
    }),
  };
}
