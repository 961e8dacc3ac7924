import type { CheckpointStore } from '../checkpointer/checkpointStore.js';
import type { Clock } from '../common/clock.js';
import type { OrderJournal } from '../idempotency/orderJournal.js';

/**
 * Where a session keeps its durable state in place of its state dir's files: the idempotency
 * journal, the checkpoints, and the single-writer hold (the state-dir lock's place). Without
 * one, a session uses `<stateDir>/orders.journal`, `<stateDir>/checkpoint.json` and the dir's
 * lock; `postgresStore({ url })` keeps them in PostgreSQL, for many sessions on many hosts.
 */
export interface SessionStore {
  /** What and where it is, for messages (no password). */
  readonly description: string;
  /**
   * Takes the session's hold (throws, naming the holder, when another process has it) and
   * opens the journal and checkpoints of `sessionId`, fenced by that hold.
   */
  open(options: { sessionId: string; clock: Clock; log: (entry: Record<string, unknown>) => void }): Promise<OpenSessionStore>;
}

/** A store opened for one session, its hold taken. */
export interface OpenSessionStore {
  /** The journal, not loaded yet (the tracker loads it). */
  readonly journal: OrderJournal;
  readonly checkpoints: CheckpointStore;
  /**
   * Throws once this process is known to have lost its hold (another process took the session
   * over): the session calls it before every round of broker calls, and faults with the error.
   */
  assertHeld(): void;
  /** Gives up the hold and closes the connections; idempotent. Call after closing the journal. */
  release(): Promise<void>;
}
