import type { CheckpointStore } from '../checkpointer/checkpointStore.js';
import type { Clock } from '../common/clock.js';
import type { OrderJournal } from '../idempotency/orderJournal.js';
import type { PaperBrokerLedgerStore } from '../broker/paperBrokerLedger.js';

/**
 * Where a session keeps its durable state in place of its state dir's files: the idempotency
 * journal, the checkpoints, the single-writer hold (the state-dir lock's place), and the default
 * PaperBroker's ledger. Without one, a session uses `<stateDir>/orders.journal`,
 * `<stateDir>/checkpoint.json`, the dir's lock and `<stateDir>/broker/`; `postgresStore({ url })`
 * keeps them in PostgreSQL, for many sessions on many hosts.
 */
export interface SessionStore {
  /** What and where it is, for messages (no password). */
  readonly description: string;
  /**
   * Takes the session's hold (throws, naming the holder, when another process has it) and
   * opens the journal and checkpoints of `sessionId`, fenced by that hold.
   */
  open(options: {
    sessionId: string;
    clock: Clock;
    log: (entry: Record<string, unknown>) => void;
    /** Called once, as soon as this process is known to have lost its hold (a renewal or a fenced write found another holder). */
    onHoldLost?: (error: Error) => void;
  }): Promise<OpenSessionStore>;
}

/** A store opened for one session, its hold taken. */
export interface OpenSessionStore {
  /** The journal, not loaded yet (the tracker loads it). */
  readonly journal: OrderJournal;
  readonly checkpoints: CheckpointStore;
  /**
   * The default PaperBroker's ledger, kept by the store (under the session id) instead of in
   * `<stateDir>/broker`; made when the session opens its PaperBroker, which closes it. Absent:
   * the PaperBroker keeps its files in the state dir.
   */
  paperBrokerLedger?(): PaperBrokerLedgerStore;
  /**
   * Throws once this process is known to have lost its hold (another process took the session
   * over): the session calls it before every round of broker calls, and faults with the error.
   */
  assertHeld(): void;
  /** Gives up the hold and closes the connections; idempotent. Call after closing the journal. */
  release(): Promise<void>;
}
