import { mkdir } from 'node:fs/promises';
import { createActor, fromPromise, waitFor, type ActorOptions, type AnyActorLogic, type AnyActorRef } from 'xstate';
import {
  idempotencyMachine,
  type IdempotencyAnswer,
  type IdempotencyEmitted,
  type IdempotencyStats,
  type LoadReport,
  type MarkResult,
  type ReconcileResult,
  type ReserveResult,
} from '../../machines/idempotency.machine.js';
import { assertClientOrderId, clientOrderIdSchema } from './clientOrderId.js';
import { AistockError, describeError } from '../common/errors.js';
import {
  checkReservation,
  observeClock,
  watermarkOf,
  DEFAULT_JUMP_TOLERANCE_MS,
  DEFAULT_TTL_MS,
  type ClockJump,
  type ClockReading,
  type ClockWatch,
  type OrderOutcome,
  type ReservationCheck,
} from './idempotency.js';
import { systemClock, type Clock } from '../common/clock.js';
import type { DiskSync } from '../stateDir/durability.js';
import { FileOrderJournal, JournalReadError, orderJournalPath, type OrderJournal } from './orderJournal.js';
import { lockStateDir, type StateDirLock } from '../stateDir/stateDirLock.js';

/**
 * The handle the session (or a user) calls to keep orders exactly-once: `reserve` an id before
 * the broker sees it, `mark` what the broker said, `reconcile` with the broker after a restart.
 * It owns the idempotency actor, supplies its journal I/O, reads the clock (and turns clock
 * jumps into `CLOCK_JUMPED`), and batches calls made in one tick into one event.
 */

/** How to create a tracker; only `stateDir` is required. */
export interface IdempotencyTrackerOptions {
  /** Holds `orders.journal` (and the lock, unless `lock: false`). */
  stateDir: string;
  clock?: Clock;
  /** How long an id that names no bar is kept (default 300,000 ms); a session's ids follow the watermark instead. */
  ttlMs?: number;
  /**
   * The newest durable checkpoint's bar time per symbol: bars at or before it are never decided
   * again, so ids of those bars need not be kept (default: none, keep every id).
   */
  watermark?: Readonly<Record<string, number>> | ReadonlyMap<string, number>;
  /** Default 1,000 ms. */
  jumpToleranceMs?: number;
  /** Default 10,000 lines. */
  compactMinLines?: number;
  /** Another store in place of `orders.journal` (a shared store, or a test's). */
  journal?: OrderJournal;
  /** The syncs of `orders.journal` (default every one; `NO_SYNC` in research mode). */
  sync?: DiskSync;
  /** Take the state-dir lock (default). Pass `false` when the caller already holds it. */
  lock?: boolean;
  /** Where clock jumps and journal events are logged (default: JSON lines on stderr). */
  log?: (entry: IdempotencyLogEntry) => void;
  /** An XState inspector (e.g. from `@statelyai/inspect`). */
  inspect?: ActorOptions<AnyActorLogic>['inspect'];
  /**
   * The actor this one is a child of (a session): it joins that actor's system under `systemId`
   * `idempotency`, and its death reaches the parent as XState's `xstate.error.actor.idempotency`.
   */
  parent?: AnyActorRef;
}

/** One log line: what happened, with its numbers. */
export type IdempotencyLogEntry =
  | ({ event: 'CLOCK_JUMPED'; count: number } & ClockJump)
  | { event: 'JOURNAL_TORN_TAIL'; offset: number; bytes: number; preview: string }
  | { event: 'JOURNAL_CORRUPT'; reason: string; detail: string; line: number; movedTo: string }
  | { event: 'JOURNAL_WRITE_FAILED'; records: number; error: string }
  | { event: 'JOURNAL_COMPACTED'; linesBefore: number; liveIds: number }
  | { event: 'JOURNAL_COMPACTION_FAILED'; error: string };

/** What `start` found: `recovering` means `reserve` is refused until `reconcile`. */
export interface StartReport {
  readonly state: 'running' | 'recovering';
  readonly journal: LoadReport;
}

/** The lifecycle state the tracker is in. */
export type TrackerState = 'idle' | 'loading' | 'recovering' | 'running' | 'draining' | 'shutdown' | 'faulted';

/** A plain, immutable view of the tracker. */
export interface IdempotencySnapshot {
  readonly state: TrackerState;
  readonly liveIds: number;
  readonly journalLines: number;
  /** Records taken but not yet on disk. */
  readonly unwrittenRecords: number;
  readonly stats: Readonly<IdempotencyStats>;
  readonly journal: LoadReport | null;
}

/** What `stop` resolves to. `unwrittenRecords` is 0 unless the final writes failed. */
export type IdempotencyReport = IdempotencySnapshot;

/** Why the tracker itself (not the journal) refused to go on. */
export class IdempotencyTrackerError extends AistockError {
  constructor(code: 'IDEMPOTENCY_STOPPED' | 'IDEMPOTENCY_ACTOR_FAILED', message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/** The idempotency tracker's handle. */
export interface IdempotencyTracker {
  /** The idempotency actor (`systemId` `idempotency`), for inspection and tests. */
  readonly actor: ReturnType<typeof createIdempotencyActor>;
  /**
   * Takes the lock (unless `lock: false`) and loads the journal. Throws `StateDirLockedError`
   * if another process holds the dir, or the journal's I/O error (the tracker is then
   * `faulted`: call `stop()` to release the lock). The same promise every time.
   */
  start(): Promise<StartReport>;
  /**
   * Reserves `id` before its order is sent. `new` resolves only once the reservation is
   * fsynced; `duplicate` (with the id's state and age) and `refused` resolve at once. Rejects
   * with `InvalidClientOrderIdError`, or `JournalWriteError` (then the id was not reserved).
   */
  reserve(id: string): Promise<ReserveResult>;
  /** Records the broker's answer for `id`; resolves once durable. */
  mark(id: string, state: OrderOutcome): Promise<MarkResult>;
  /**
   * {@link mark}, written with the next reservation's journal commit (or by `stop`, or before
   * the next `mark`) instead of a commit of its own: for an answer nothing waits on. Until then
   * the id is `reserved` on disk, which a restart settles by asking the broker.
   */
  markLater(id: string, state: OrderOutcome): Promise<MarkResult>;
  /**
   * Settles `unknown` ids (and `reserved` ones left by a previous process) against every
   * client order id the broker knows; in `recovering`, this is what resumes `running`.
   */
  reconcile(knownBrokerIds: Iterable<string>): Promise<ReconcileResult>;
  /** The in-memory duplicate check, without reserving. */
  check(id: string): ReservationCheck;
  /**
   * A checkpoint holding `lastTs` (newest bar time per symbol) is durable: ids of bars at or
   * before it may be let go (at the next compaction). Call it only once the checkpoint is on disk.
   */
  advanceWatermark(lastTs: Readonly<Record<string, number>> | ReadonlyMap<string, number>): void;
  /** Reads the clock now; a jump beyond the tolerance is sent as `CLOCK_JUMPED` and returned. */
  checkClock(): ClockJump | null;
  snapshot(): IdempotencySnapshot;
  /** Writes what is pending, closes the journal, releases the lock. The same promise every time. */
  stop(): Promise<IdempotencyReport>;
}

/** The journal load the actor started, kept so `stop` can wait for it and `start` can rethrow its error. */
interface LoadWatch {
  inFlight?: Promise<unknown>;
  failure?: unknown;
}

function createIdempotencyActor(journal: OrderJournal, options: IdempotencyTrackerOptions, loads: LoadWatch) {
  const machine = idempotencyMachine.provide({
    actors: {
      loadJournal: fromPromise(() => {
        const load = journal.load();
        // Settles to nothing: holding the load's result here would keep every record alive.
        loads.inFlight = load.then(
          () => undefined,
          (error: unknown) => {
            loads.failure = error;
          },
        );
        return load;
      }),
      appendRecords: fromPromise(({ input }) => journal.append(input.records)),
      compactJournal: fromPromise(({ input }) => journal.compact(input.records)),
    },
  });
  return createActor(machine, {
    systemId: 'idempotency',
    ...(options.parent ? { parent: options.parent, id: 'idempotency' } : {}),
    input: {
      ttlMs: options.ttlMs ?? DEFAULT_TTL_MS,
      jumpToleranceMs: options.jumpToleranceMs ?? DEFAULT_JUMP_TOLERANCE_MS,
      ...(options.compactMinLines === undefined ? {} : { compactMinLines: options.compactMinLines }),
      ...(options.watermark === undefined ? {} : { watermark: watermarkOf(options.watermark) }),
    },
    ...(options.inspect ? { inspect: options.inspect } : {}),
  });
}

type Waiter =
  | { kind: 'reserve'; resolve: (result: ReserveResult) => void; reject: (error: unknown) => void }
  | { kind: 'mark'; resolve: (result: MarkResult) => void; reject: (error: unknown) => void }
  | { kind: 'reconcile'; resolve: (result: ReconcileResult) => void; reject: (error: unknown) => void };

type BufferedCommand = { kind: 'reserve'; ticket: number; id: string } | { kind: 'mark'; ticket: number; id: string; state: OrderOutcome };

const writeJsonLine = (entry: IdempotencyLogEntry): void => {
  process.stderr.write(`${JSON.stringify({ component: 'idempotency', ...entry })}\n`);
};

/** Creates the tracker in `idle`; `start()` loads the journal. */
export function createIdempotencyTracker(options: IdempotencyTrackerOptions): IdempotencyTracker {
  const clock = options.clock ?? systemClock;
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const toleranceMs = options.jumpToleranceMs ?? DEFAULT_JUMP_TOLERANCE_MS;
  const log = options.log ?? writeJsonLine;
  const journalPath = orderJournalPath(options.stateDir);
  const journal = options.journal ?? new FileOrderJournal({ path: journalPath, clock, ...(options.sync === undefined ? {} : { sync: options.sync }) });
  const loads: LoadWatch = {};
  const actor = createIdempotencyActor(journal, options, loads);
  const waiters = new Map<number, Waiter>();
  let nextTicket = 1;
  let buffered: BufferedCommand[] = [];
  /** `markLater` calls, oldest first, waiting for a reservation's commit to ride. */
  const deferred: { kind: 'mark'; ticket: number; id: string; state: OrderOutcome }[] = [];
  let flushScheduled = false;
  let watch: ClockWatch | undefined;
  let lock: StateDirLock | undefined;
  let started: Promise<StartReport> | undefined;
  let stopped: Promise<IdempotencyReport> | undefined;

  // Set when the actor died: every later command fails with it at once instead of waiting for an
  // answer that cannot come, and stop() releases the files without waiting for a shutdown.
  let failure: IdempotencyTrackerError | undefined;
  const failAll = (error: unknown): void => {
    for (const waiter of waiters.values()) waiter.reject(error);
    waiters.clear();
    deferred.length = 0;
  };
  /** Deferred marks join the buffered commands, ahead of anything called after them. */
  const undefer = (): void => {
    for (const mark of deferred.splice(0)) buffered.push(mark);
  };
  // An unobserved actor error would crash the process: fail every caller instead.
  actor.subscribe({
    error: (error) => {
      failure = new IdempotencyTrackerError('IDEMPOTENCY_ACTOR_FAILED', `idempotency actor failed: ${describeError(error)}`, error);
      failAll(failure);
    },
  });
  actor.on('ANSWERED', ({ answers }) => {
    for (const answer of answers) settle(answer);
  });
  actor.on('BATCH_FAILED', ({ tickets, error }) => {
    log({ event: 'JOURNAL_WRITE_FAILED', records: tickets.length, error: describeError(error) });
    for (const ticket of tickets) {
      waiters.get(ticket)?.reject(error);
      waiters.delete(ticket);
    }
  });
  actor.on('CLOCK_JUMPED', ({ jump, count }) => log({ event: 'CLOCK_JUMPED', count, ...jump }));
  actor.on('JOURNAL_COMPACTED', ({ linesBefore, liveIds }) => log({ event: 'JOURNAL_COMPACTED', linesBefore, liveIds }));
  actor.on('JOURNAL_COMPACTION_FAILED', ({ error }) => log({ event: 'JOURNAL_COMPACTION_FAILED', error }));
  // Started at once: `idle` does no I/O and refuses commands until `start()`.
  actor.start();

  function settle(answer: IdempotencyAnswer): void {
    const waiter = waiters.get(answer.ticket);
    if (waiter === undefined) return;
    waiters.delete(answer.ticket);
    if (waiter.kind === 'reserve' && answer.kind === 'reserve') waiter.resolve(answer.result);
    else if (waiter.kind === 'mark' && answer.kind === 'mark') waiter.resolve(answer.result);
    else if (waiter.kind === 'reconcile' && answer.kind === 'reconcile') waiter.resolve(answer.result);
    else waiter.reject(new IdempotencyTrackerError('IDEMPOTENCY_ACTOR_FAILED', `a ${waiter.kind} was answered as a ${answer.kind}`));
  }

  function readClock(): { now: ClockReading; jump: ClockJump | null } {
    const now = { wallMs: clock.wallMs(), monoMs: clock.monoMs() };
    const observed = observeClock(watch, now, toleranceMs);
    watch = observed.watch;
    if (observed.jump !== null) actor.send({ type: 'CLOCK_JUMPED', jump: observed.jump, now });
    return { now, jump: observed.jump };
  }

  /** Sends what was called in this tick: consecutive reserves as one RESERVE, marks as one MARK. */
  function flushCommands(): void {
    flushScheduled = false;
    if (buffered.length === 0) return;
    const commands = buffered;
    buffered = [];
    const { now } = readClock();
    let reserves: { ticket: number; id: string }[] = [];
    let marks: { ticket: number; id: string; state: OrderOutcome }[] = [];
    const send = (): void => {
      if (reserves.length > 0) {
        const riding = deferred.splice(0);
        actor.send({ type: 'RESERVE', requests: reserves, ...(riding.length > 0 ? { marks: riding } : {}), now });
      }
      if (marks.length > 0) actor.send({ type: 'MARK', marks, now });
      reserves = [];
      marks = [];
    };
    for (const command of commands) {
      // A change of kind ends a run, so a mark never overtakes the reserve called before it.
      if (command.kind === 'reserve') {
        if (marks.length > 0) send();
        reserves.push({ ticket: command.ticket, id: command.id });
      } else {
        if (reserves.length > 0) send();
        marks.push({ ticket: command.ticket, id: command.id, state: command.state });
      }
    }
    send();
  }

  function enqueue(command: BufferedCommand): void {
    buffered.push(command);
    if (flushScheduled) return;
    flushScheduled = true;
    queueMicrotask(flushCommands);
  }

  /** Checks `id`, then queues the command for the actor; the promise settles with its answer. */
  function queue<T>(
    id: string,
    waiterOf: (resolve: (result: T) => void, reject: (error: unknown) => void) => Waiter,
    commandOf: (ticket: number) => BufferedCommand,
    place: (command: BufferedCommand) => void = enqueue,
  ): Promise<T> {
    try {
      assertClientOrderId(id);
    } catch (error) {
      return Promise.reject(error);
    }
    // A dead actor answers nothing: fail now rather than wait.
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise<T>((resolve, reject) => {
      const ticket = nextTicket++;
      waiters.set(ticket, waiterOf(resolve, reject));
      place(commandOf(ticket));
    });
  }

  function lifecycleState(): TrackerState {
    const value = actor.getSnapshot().value;
    return typeof value === 'object' && 'lifecycle' in value ? (value.lifecycle as TrackerState) : 'idle';
  }

  function snapshot(): IdempotencySnapshot {
    const { context } = actor.getSnapshot();
    return {
      state: lifecycleState(),
      liveIds: context.table.size,
      journalLines: context.journalLines,
      unwrittenRecords: context.pending.records.length + context.inFlight.records.length,
      stats: { ...context.stats },
      journal: context.load,
    };
  }

  const stoppedError = (): IdempotencyTrackerError =>
    new IdempotencyTrackerError('IDEMPOTENCY_STOPPED', `idempotency tracker for ${options.stateDir} was stopped`);

  async function startTracker(): Promise<StartReport> {
    if (stopped !== undefined) throw stoppedError();
    if (options.lock === false) await mkdir(options.stateDir, { recursive: true });
    else lock = await lockStateDir(options.stateDir);
    if (stopped !== undefined) {
      // stop() ran while the lock was being taken: it found no lock to release.
      await lock?.release();
      throw stoppedError();
    }
    actor.send({ type: 'START', now: readClock().now });
    const settled = await waitFor(actor, (s) => !s.matches({ lifecycle: 'idle' }) && !s.matches({ lifecycle: 'loading' }), {
      timeout: Infinity,
    });
    const state = lifecycleState();
    if (state === 'faulted') {
      // The actor stays in `faulted` (visible, countable); stop() still releases the lock.
      throw loads.failure instanceof AistockError ? loads.failure : new JournalReadError(journalPath, loads.failure ?? settled.context.loadError);
    }
    const report = settled.context.load;
    if ((state !== 'running' && state !== 'recovering') || report === null) throw stoppedError();
    if (report.status === 'corrupt') {
      const { reason, detail, line, movedTo } = report;
      log({ event: 'JOURNAL_CORRUPT', reason, detail, line, movedTo });
    } else if (report.tornTail !== null) {
      log({ event: 'JOURNAL_TORN_TAIL', ...report.tornTail });
    }
    return { state, journal: report };
  }

  async function stopTracker(): Promise<IdempotencyReport> {
    if (failure === undefined) {
      undefer();
      flushCommands();
      actor.send({ type: 'STOP' });
      await waitFor(actor, (s) => s.matches({ lifecycle: 'shutdown' }) || s.status === 'error', { timeout: Infinity });
    }
    // A load cut short by STOP may still be opening the file: let it finish before closing.
    await loads.inFlight;
    await journal.close();
    await lock?.release();
    // The files are released either way; a dead actor is reported, not hidden behind a report.
    if (failure !== undefined) throw failure;
    return snapshot();
  }

  return {
    actor,
    start: () => (started ??= startTracker()),
    reserve: (id) =>
      queue<ReserveResult>(id, (resolve, reject) => ({ kind: 'reserve', resolve, reject }), (ticket) => ({ kind: 'reserve', ticket, id })),
    mark: (id, state) => {
      undefer();
      return queue<MarkResult>(id, (resolve, reject) => ({ kind: 'mark', resolve, reject }), (ticket) => ({ kind: 'mark', ticket, id, state }));
    },
    markLater: (id, state) =>
      queue<MarkResult>(
        id,
        (resolve, reject) => ({ kind: 'mark', resolve, reject }),
        (ticket) => ({ kind: 'mark', ticket, id, state }),
        (command) => {
          if (command.kind === 'mark') deferred.push(command);
        },
      ),
    reconcile: (knownBrokerIds) => {
      // Ids of other systems' orders cannot collide with ours: only well-formed ones matter.
      const knownIds = [...knownBrokerIds].filter((id) => clientOrderIdSchema.safeParse(id).success);
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<ReconcileResult>((resolve, reject) => {
        const ticket = nextTicket++;
        waiters.set(ticket, { kind: 'reconcile', resolve, reject });
        flushCommands(); // commands called before this one go first
        actor.send({ type: 'RECONCILED', ticket, knownIds, now: readClock().now });
      });
    },
    check: (id) => {
      const { table, watermark } = actor.getSnapshot().context;
      return checkReservation(table, id, clock.monoMs(), ttlMs, watermark);
    },
    advanceWatermark: (lastTs) => {
      if (failure === undefined) actor.send({ type: 'WATERMARK', watermark: watermarkOf(lastTs) });
    },
    checkClock: () => {
      flushCommands();
      return readClock().jump;
    },
    snapshot,
    stop: () => (stopped ??= stopTracker()),
  };
}
