import { and, assign, enqueueActions, fromPromise, not, or, setup, stateIn } from 'xstate';
import { describeError } from '../src/common/errors.js';
import {
  emptyReservationTable,
  markIds,
  nextCompactionThreshold,
  planCompaction,
  planCompactionAtStop,
  releaseReservations,
  reserveIds,
  restoreTable,
  settleFromBroker,
  tableRecords,
  DEFAULT_JUMP_TOLERANCE_MS,
  DEFAULT_TTL_MS,
  NO_WATERMARK,
  type ClockJump,
  type ClockReading,
  type JournalEntryRecord,
  type JournalRecord,
  type OrderOutcome,
  type ReservationTable,
  type ReserveVerdict,
  type SettleSummary,
  type Watermark,
} from '../src/idempotency/idempotency.js';
import type { JournalLoad, TornTail } from '../src/idempotency/orderJournal.js';
import { LIFECYCLE, lifecycleStatesWithFault } from './lifecycle.js';

/**
 * The idempotency tracker (AIStock's OrderIdempotencyTracker): decides whether an order may go
 * to the broker, and makes that decision durable first.
 *
 * - `START` loads the write-ahead journal (`loading`). A clean or torn-tail journal leads to
 *   `running`; a corrupt one (set aside by the journal) to `recovering`, where every `RESERVE`
 *   is refused (`JOURNAL_RECOVERING`) until `RECONCILED` brings the broker's known ids.
 * - `RESERVE` (a batch) answers duplicates at once; new ids are answered only after the
 *   journal write that holds them is fsynced. Batches arriving while a write is in flight
 *   share the next one (group commit). A failed write refuses its reservations (the ids are
 *   taken back) and the loop goes on. A `RESERVE` may carry marks made before it (the tracker's
 *   `markLater`): they are applied first and written in the same commit, so an order's answer
 *   costs no journal write of its own.
 * - `CLOCK_JUMPED` is counted, reported and journaled (so a restart ages ids in the new wall
 *   frame); ages are monotonic, so nothing expires early because of it.
 * - `WATERMARK` (a checkpoint became durable) lets go of the ids whose bar it covers; an id
 *   naming a bar is never dropped by age (`ttlMs` applies only to ids that name none).
 * - Each time the journal doubles (from `compactMinLines`), expired ids are pruned, and if at
 *   least half its lines are dead the live ids are rewritten as a new journal (compaction).
 * - `STOP` drains: pending records are written before `shutdown`. A stop from `running` then
 *   compacts the journal if a third of its lines are dead, so a clean stop leaves one line per
 *   live id and the next start reads only those. A second `STOP` is a no-op.
 */

/** Tunables; the tracker fills them from its options. */
export interface IdempotencyConfig {
  /** An id that names no bar is a duplicate while younger than this; it expires at exactly this age. */
  ttlMs: number;
  /** Wall-vs-monotonic difference that counts as a jump; loaded ids get twice this as grace. */
  jumpToleranceMs: number;
  /** The journal is not compacted below this many lines. */
  compactMinLines: number;
}

/** Defaults: the original's 300 s TTL, a 1 s jump tolerance, compaction from 10,000 lines. */
export const DEFAULT_IDEMPOTENCY_CONFIG: IdempotencyConfig = {
  ttlMs: DEFAULT_TTL_MS,
  jumpToleranceMs: DEFAULT_JUMP_TOLERANCE_MS,
  compactMinLines: 10_000,
};

/** Why a command was refused (a value, never an exception). */
export type IdempotencyRefusal = 'NOT_STARTED' | 'JOURNAL_RECOVERING' | 'STOPPING' | 'SHUT_DOWN' | 'FAULTED';

/** `reserve`'s answer. Send the order only on `new`. */
export type ReserveResult =
  | ReserveVerdict
  | { readonly status: 'refused'; readonly id: string; readonly reason: IdempotencyRefusal; readonly detail: string };

/** `mark`'s answer: `recorded` once the new state is durable. */
export type MarkResult =
  | { readonly status: 'recorded'; readonly id: string; readonly state: OrderOutcome }
  | { readonly status: 'refused'; readonly id: string; readonly reason: IdempotencyRefusal; readonly detail: string };

/** `reconcile`'s answer: what settling against the broker changed, once durable. */
export type ReconcileResult =
  | ({ readonly status: 'reconciled'; readonly resumed: boolean } & SettleSummary)
  | { readonly status: 'refused'; readonly reason: IdempotencyRefusal; readonly detail: string };

/** The answer to one ticketed command. */
export type IdempotencyAnswer =
  | { readonly kind: 'reserve'; readonly ticket: number; readonly result: ReserveResult }
  | { readonly kind: 'mark'; readonly ticket: number; readonly result: MarkResult }
  | { readonly kind: 'reconcile'; readonly ticket: number; readonly result: ReconcileResult };

/** What `start` found in the journal. */
export type LoadReport =
  | {
      readonly status: 'loaded';
      readonly liveIds: number;
      /** Settled ids older than the TTL, left out of the table. */
      readonly expiredDropped: number;
      readonly journalLines: number;
      readonly tornTail: TornTail | null;
      readonly created: boolean;
    }
  /** The journal's own corrupt result, as it reported it. */
  | Extract<JournalLoad, { status: 'corrupt' }>;

/**
 * Commands carry the tracker's clock reading (the machine reads no clock). `RESERVE` and `MARK`
 * are batches: everything called in one tick travels as one event. `RECONCILED` and
 * `CLOCK_JUMPED` are facts: the broker's known ids, and a wall step the tracker observed.
 */
export type IdempotencyEvent =
  | { type: 'START'; now: ClockReading }
  | { type: 'STOP' }
  /** `marks`: answers recorded before these reservations, riding their journal commit (`markLater`). */
  | { type: 'RESERVE'; requests: readonly { ticket: number; id: string }[]; marks?: readonly { ticket: number; id: string; state: OrderOutcome }[]; now: ClockReading }
  | { type: 'MARK'; marks: readonly { ticket: number; id: string; state: OrderOutcome }[]; now: ClockReading }
  | { type: 'RECONCILED'; ticket: number; knownIds: readonly string[]; now: ClockReading }
  | { type: 'CLOCK_JUMPED'; jump: ClockJump; now: ClockReading }
  /** A checkpoint became durable: bars up to `watermark` are never decided again. */
  | { type: 'WATERMARK'; watermark: Watermark };

/** What the machine tells observers (`actor.on(type, …)`); the tracker settles its promises from these. */
export type IdempotencyEmitted =
  | { type: 'ANSWERED'; answers: readonly IdempotencyAnswer[] }
  | { type: 'BATCH_FAILED'; tickets: readonly number[]; error: unknown }
  | { type: 'CLOCK_JUMPED'; jump: ClockJump; count: number }
  | { type: 'JOURNAL_COMPACTED'; linesBefore: number; liveIds: number }
  | { type: 'JOURNAL_COMPACTION_FAILED'; error: string };

/** Journal records not yet written, and the answers that wait for them. */
export interface JournalBatch {
  readonly records: readonly JournalRecord[];
  readonly answers: readonly IdempotencyAnswer[];
  /** Ids this batch reserves: taken back if the write fails. */
  readonly reservedIds: readonly string[];
}

/** Counters for the stop report and snapshots. */
export interface IdempotencyStats {
  reserved: number;
  duplicates: number;
  refused: number;
  marks: number;
  reconciliations: number;
  syncs: number;
  failedSyncs: number;
  compactions: number;
  failedCompactions: number;
  clockJumps: number;
}

/** The machine's context: the reservation table, the journal batches, counters. */
export interface IdempotencyContext {
  config: IdempotencyConfig;
  table: ReservationTable;
  /** The newest durable checkpoint's watermark: ids of bars it covers may be let go. */
  watermark: Watermark;
  /** The newest clock reading seen (every command carries one). */
  now: ClockReading;
  pending: JournalBatch;
  inFlight: JournalBatch;
  /** Clock-skew records from a failed write: they ride along with the next one. */
  carried: readonly JournalRecord[];
  journalLines: number;
  /** The line count at which compaction is considered next. */
  nextCompactionAt: number;
  /** Set when the journal reached `nextCompactionAt` with at least half its lines dead. */
  compactionDue: boolean;
  /** Lines the running compaction writes. */
  compactedLines: number;
  /** A stop from `running` looks at compaction once, when the journal is quiet (`armed`), then `decided`. */
  compactAtStop: 'off' | 'armed' | 'decided';
  load: LoadReport | null;
  loadError: string | null;
  stats: IdempotencyStats;
}

const EMPTY_BATCH: JournalBatch = { records: [], answers: [], reservedIds: [] };

/** What keeps an id: its bar above the watermark, or (ids naming no bar) the TTL. */
function retention(context: Pick<IdempotencyContext, 'config' | 'watermark'>): { ttlMs: number; watermark: Watermark } {
  return { ttlMs: context.config.ttlMs, watermark: context.watermark };
}

const REFUSAL_DETAIL: Record<IdempotencyRefusal, string> = {
  NOT_STARTED: 'the tracker has not finished starting',
  JOURNAL_RECOVERING: "the journal was corrupt and set aside: reconcile with the broker's known client order ids first",
  STOPPING: 'the tracker is stopping',
  SHUT_DOWN: 'the tracker is shut down',
  FAULTED: 'the journal could not be loaded',
};

function withPending(batch: JournalBatch, records: readonly JournalRecord[], answers: readonly IdempotencyAnswer[], reservedIds: readonly string[] = []): JournalBatch {
  return {
    records: records.length === 0 ? batch.records : [...batch.records, ...records],
    answers: answers.length === 0 ? batch.answers : [...batch.answers, ...answers],
    reservedIds: reservedIds.length === 0 ? batch.reservedIds : [...batch.reservedIds, ...reservedIds],
  };
}

function ticketsOf(batch: JournalBatch): number[] {
  return batch.answers.map((answer) => answer.ticket);
}

const idempotencySetup = setup({
  types: {
    context: {} as IdempotencyContext,
    events: {} as IdempotencyEvent,
    input: {} as (Partial<IdempotencyConfig> & { watermark?: Watermark }) | undefined,
    emitted: {} as IdempotencyEmitted,
  },
  actors: {
    /** Reads the journal and opens it for appends; supplied by `src/idempotency/idempotencyTracker.ts` with `.provide()`. */
    loadJournal: fromPromise<JournalLoad, void>(async () => {
      throw new Error('loadJournal is not provided: use idempotencyMachine.provide({ actors })');
    }),
    /** Appends and fsyncs the records. */
    appendRecords: fromPromise<void, { records: readonly JournalRecord[] }>(async () => {
      throw new Error('appendRecords is not provided: use idempotencyMachine.provide({ actors })');
    }),
    /** Atomically replaces the journal with the live records. */
    compactJournal: fromPromise<void, { records: readonly JournalEntryRecord[] }>(async () => {
      throw new Error('compactJournal is not provided: use idempotencyMachine.provide({ actors })');
    }),
  },
  guards: {
    loadFoundCorruption: (_, params: { load: JournalLoad }) => params.load.status === 'corrupt',
    hasPending: ({ context }) => context.pending.records.length > 0,
    nothingToDrain: ({ context }) => context.pending.records.length === 0 && context.inFlight.records.length === 0,
    compactionDue: ({ context }) => context.compactionDue,
    compactAtStopArmed: ({ context }) => context.compactAtStop === 'armed',
  },
  actions: {
    noteStart: assign({ now: ({ context, event }) => (event.type === 'START' ? event.now : context.now) }),
    applyLoad: assign(({ context }, params: { load: JournalLoad }) => {
      const { load } = params;
      if (load.status !== 'ok') return {};
      const { config, now } = context;
      const journalLines = load.records.length;
      const { table, expired } = restoreTable(load.records, now, { ...retention(context), graceMs: 2 * config.jumpToleranceMs });
      const report: LoadReport = {
        status: 'loaded',
        liveIds: table.size,
        expiredDropped: expired,
        journalLines,
        tornTail: load.tornTail,
        created: load.created,
      };
      // A journal that is mostly dead lines (expired ids) is compacted right away.
      const threshold = nextCompactionThreshold(table.size, config.compactMinLines);
      const plan = planCompaction(table, journalLines, threshold, now.monoMs, { ...retention(context), minLines: config.compactMinLines });
      return { table: plan.table, journalLines, nextCompactionAt: plan.thresholdLines, compactionDue: plan.compact, load: report };
    }),
    startRecovery: assign((_, params: { load: JournalLoad }) => {
      const { load } = params;
      if (load.status !== 'corrupt') return {};
      const { reason, detail, line, movedTo } = load;
      return { load: { status: 'corrupt', reason, detail, line, movedTo } satisfies LoadReport };
    }),
    recordLoadFailure: assign({ loadError: ({ event }) => ('error' in event ? describeError(event.error) : 'unknown') }),
    reserve: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'RESERVE') return;
      // Marks riding this commit were made before these reservations: applied first.
      const riding = event.marks ?? [];
      const marked = riding.length > 0 ? markIds(context.table, riding, event.now) : null;
      const markAnswers = riding.map(({ ticket, id, state }): IdempotencyAnswer => ({ kind: 'mark', ticket, result: { status: 'recorded', id, state } }));
      const withMarks = marked === null ? context.pending : withPending(context.pending, marked.records, markAnswers);
      const change = reserveIds(marked?.table ?? context.table, event.requests.map((request) => request.id), event.now, context.config.ttlMs, context.watermark);
      // New ids are answered once their record is durable; duplicates at once.
      const waiting: IdempotencyAnswer[] = [];
      const immediate: IdempotencyAnswer[] = [];
      const reservedIds: string[] = [];
      event.requests.forEach(({ ticket }, index) => {
        const result = change.extra.verdicts[index];
        if (result === undefined) return;
        if (result.status === 'new') reservedIds.push(result.id);
        (result.status === 'new' ? waiting : immediate).push({ kind: 'reserve', ticket, result });
      });
      enqueue.assign({
        table: change.table,
        now: event.now,
        pending: withPending(withMarks, change.records, waiting, reservedIds),
        stats: {
          ...context.stats,
          reserved: context.stats.reserved + waiting.length,
          duplicates: context.stats.duplicates + immediate.length,
          marks: context.stats.marks + riding.length,
        },
      });
      if (immediate.length > 0) enqueue.emit({ type: 'ANSWERED', answers: immediate });
    }),
    mark: assign(({ context, event }) => {
      if (event.type !== 'MARK') return {};
      const change = markIds(context.table, event.marks, event.now);
      const answers = event.marks.map(({ ticket, id, state }): IdempotencyAnswer => ({
        kind: 'mark',
        ticket,
        result: { status: 'recorded', id, state },
      }));
      return {
        table: change.table,
        now: event.now,
        pending: withPending(context.pending, change.records, answers),
        stats: { ...context.stats, marks: context.stats.marks + answers.length },
      };
    }),
    reconcile: enqueueActions(({ context, event, enqueue }, params: { resumed: boolean }) => {
      if (event.type !== 'RECONCILED') return;
      const change = settleFromBroker(context.table, event.knownIds, event.now, context.watermark);
      const answer: IdempotencyAnswer = {
        kind: 'reconcile',
        ticket: event.ticket,
        result: { status: 'reconciled', resumed: params.resumed, ...change.extra },
      };
      const durable = change.records.length > 0;
      enqueue.assign({
        table: change.table,
        now: event.now,
        pending: withPending(context.pending, change.records, durable ? [answer] : []),
        stats: { ...context.stats, reconciliations: context.stats.reconciliations + 1 },
      });
      // Nothing to write: the answer need not wait for a sync.
      if (!durable) enqueue.emit({ type: 'ANSWERED', answers: [answer] });
    }),
    refuse: enqueueActions(({ context, event, enqueue }, params: { reason: IdempotencyRefusal }) => {
      const { reason } = params;
      const detail = REFUSAL_DETAIL[reason];
      let answers: IdempotencyAnswer[];
      if (event.type === 'RESERVE') {
        answers = [
          ...(event.marks ?? []).map(({ ticket, id }): IdempotencyAnswer => ({ kind: 'mark', ticket, result: { status: 'refused', id, reason, detail } })),
          ...event.requests.map(({ ticket, id }): IdempotencyAnswer => ({ kind: 'reserve', ticket, result: { status: 'refused', id, reason, detail } })),
        ];
      } else if (event.type === 'MARK') {
        answers = event.marks.map(({ ticket, id }) => ({ kind: 'mark', ticket, result: { status: 'refused', id, reason, detail } }));
      } else if (event.type === 'RECONCILED') {
        answers = [{ kind: 'reconcile', ticket: event.ticket, result: { status: 'refused', reason, detail } }];
      } else {
        return;
      }
      enqueue.assign({ stats: { ...context.stats, refused: context.stats.refused + answers.length } });
      enqueue.emit({ type: 'ANSWERED', answers });
    }),
    takeBatch: assign(({ context }) => ({
      inFlight: { ...context.pending, records: [...context.carried, ...context.pending.records] },
      pending: EMPTY_BATCH,
      carried: [],
    })),
    commitBatch: enqueueActions(({ context, enqueue }) => {
      const { inFlight, config } = context;
      const journalLines = context.journalLines + inFlight.records.length;
      const plan = planCompaction(context.table, journalLines, context.nextCompactionAt, context.now.monoMs, {
        ...retention(context),
        minLines: config.compactMinLines,
      });
      enqueue.assign({
        table: plan.table,
        inFlight: EMPTY_BATCH,
        journalLines,
        nextCompactionAt: plan.thresholdLines,
        compactionDue: plan.compact,
        stats: { ...context.stats, syncs: context.stats.syncs + 1 },
      });
      if (inFlight.answers.length > 0) enqueue.emit({ type: 'ANSWERED', answers: inFlight.answers });
    }),
    failBatch: enqueueActions(({ context, event, enqueue }) => {
      const { inFlight } = context;
      enqueue.assign({
        table: releaseReservations(context.table, inFlight.reservedIds),
        inFlight: EMPTY_BATCH,
        carried: inFlight.records.filter((record) => 'clockSkewMs' in record),
        stats: {
          ...context.stats,
          reserved: context.stats.reserved - inFlight.reservedIds.length,
          failedSyncs: context.stats.failedSyncs + 1,
        },
      });
      const error = 'error' in event ? event.error : new Error('journal write failed');
      if (inFlight.answers.length > 0) enqueue.emit({ type: 'BATCH_FAILED', tickets: ticketsOf(inFlight), error });
    }),
    armCompactionAtStop: assign({ compactAtStop: 'armed' }),
    decideCompactionAtStop: assign(({ context }) => {
      const { config, journalLines, now } = context;
      const plan = planCompactionAtStop(context.table, journalLines, now.monoMs, { ...retention(context), minLines: config.compactMinLines });
      return { table: plan.table, compactionDue: plan.compact, compactAtStop: 'decided' as const };
    }),
    startCompaction: assign(({ context }) => ({ compactionDue: false, compactedLines: context.table.size })),
    finishCompaction: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({
        journalLines: context.compactedLines,
        nextCompactionAt: nextCompactionThreshold(context.compactedLines, context.config.compactMinLines),
        stats: { ...context.stats, compactions: context.stats.compactions + 1 },
      });
      enqueue.emit({ type: 'JOURNAL_COMPACTED', linesBefore: context.journalLines, liveIds: context.compactedLines });
    }),
    recordCompactionFailure: enqueueActions(({ context, event, enqueue }) => {
      // Try again only after another compactMinLines lines, not in a loop against a failing disk.
      enqueue.assign({
        nextCompactionAt: context.journalLines + context.config.compactMinLines,
        stats: { ...context.stats, failedCompactions: context.stats.failedCompactions + 1 },
      });
      enqueue.emit({ type: 'JOURNAL_COMPACTION_FAILED', error: 'error' in event ? describeError(event.error) : 'unknown' });
    }),
    countClockJump: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'CLOCK_JUMPED') return;
      const count = context.stats.clockJumps + 1;
      enqueue.assign({ now: event.now, stats: { ...context.stats, clockJumps: count } });
      enqueue.emit({ type: 'CLOCK_JUMPED', jump: event.jump, count });
    }),
    advanceWatermark: assign({ watermark: ({ context, event }) => (event.type === 'WATERMARK' ? event.watermark : context.watermark) }),
    journalClockJump: assign(({ context, event }) => {
      if (event.type !== 'CLOCK_JUMPED') return {};
      return { pending: withPending(context.pending, [{ clockSkewMs: event.jump.skewMs, at: event.now.wallMs }], []) };
    }),
  },
});

const REFUSE = (reason: IdempotencyRefusal) => ({ type: 'refuse', params: { reason } }) as const;

/** Commands refused with one reason (before start, while stopping, after shutdown, …). */
function refuseCommands(reason: IdempotencyRefusal) {
  return { RESERVE: { actions: REFUSE(reason) }, MARK: { actions: REFUSE(reason) }, RECONCILED: { actions: REFUSE(reason) } } as const;
}

const journalOpen = or([stateIn('#idempotency.lifecycle.running'), stateIn('#idempotency.lifecycle.draining')]);
const journalQuiet = and(['nothingToDrain', not(stateIn('#idempotency.journal.compacting'))]);

/** The idempotency machine (id `idempotency`); `src/idempotency/idempotencyTracker.ts` runs it. */
export const idempotencyMachine = idempotencySetup.createMachine({
  id: 'idempotency',
  context: ({ input }) => {
    const { watermark = NO_WATERMARK, ...tunables } = input ?? {};
    const config = { ...DEFAULT_IDEMPOTENCY_CONFIG, ...tunables };
    return {
      config,
      table: emptyReservationTable(),
      watermark,
      now: { wallMs: 0, monoMs: 0 },
      pending: EMPTY_BATCH,
      inFlight: EMPTY_BATCH,
      carried: [],
      journalLines: 0,
      nextCompactionAt: config.compactMinLines,
      compactionDue: false,
      compactedLines: 0,
      compactAtStop: 'off',
      load: null,
      loadError: null,
      stats: {
        reserved: 0,
        duplicates: 0,
        refused: 0,
        marks: 0,
        reconciliations: 0,
        syncs: 0,
        failedSyncs: 0,
        compactions: 0,
        failedCompactions: 0,
        clockJumps: 0,
      },
    };
  },
  // Two regions: the lifecycle, and the journal writer, whose one write in flight outlives the
  // running → draining step (a write is never abandoned and redone beside itself).
  type: 'parallel',
  // Counted in every state; journaled wherever a journal will still be written.
  on: { CLOCK_JUMPED: { actions: ['countClockJump', 'journalClockJump'] }, WATERMARK: { actions: 'advanceWatermark' } },
  states: {
    lifecycle: {
      initial: LIFECYCLE.idle,
      states: {
        ...lifecycleStatesWithFault({
          idle: {
            on: { START: { target: 'loading', actions: 'noteStart' }, ...refuseCommands('NOT_STARTED') },
          },
          running: {
            on: {
              STOP: { target: LIFECYCLE.draining, actions: 'armCompactionAtStop' },
              RESERVE: { actions: 'reserve' },
              MARK: { actions: 'mark' },
              RECONCILED: { actions: { type: 'reconcile', params: { resumed: false } } },
            },
          },
          draining: {
            // Done once every record taken is written (or failed) and no compaction is running —
            // after the stop's own compaction, if one is due (the first transition wins while armed).
            always: [
              { guard: and([journalQuiet, 'compactAtStopArmed']), actions: 'decideCompactionAtStop' },
              { guard: and([journalQuiet, not('compactionDue')]), target: LIFECYCLE.shutdown },
            ],
            // Outcomes of orders already sent are still recorded; new orders are not.
            on: { ...refuseCommands('STOPPING'), MARK: { actions: 'mark' } },
          },
          shutdown: {
            on: { ...refuseCommands('SHUT_DOWN'), CLOCK_JUMPED: { actions: 'countClockJump' } },
          },
          faulted: {
            on: { ...refuseCommands('FAULTED'), CLOCK_JUMPED: { actions: 'countClockJump' } },
          },
        }),
        loading: {
          invoke: {
            id: 'loader',
            src: 'loadJournal',
            onDone: [
              {
                guard: { type: 'loadFoundCorruption', params: ({ event }) => ({ load: event.output }) },
                target: 'recovering',
                actions: { type: 'startRecovery', params: ({ event }) => ({ load: event.output }) },
              },
              { target: LIFECYCLE.running, actions: { type: 'applyLoad', params: ({ event }) => ({ load: event.output }) } },
            ],
            onError: { target: LIFECYCLE.faulted, actions: 'recordLoadFailure' },
          },
          on: { ...refuseCommands('NOT_STARTED'), STOP: LIFECYCLE.shutdown },
        },
        recovering: {
          on: {
            ...refuseCommands('JOURNAL_RECOVERING'),
            RECONCILED: { target: LIFECYCLE.running, actions: { type: 'reconcile', params: { resumed: true } } },
            // Clock records queued while recovering are still written on the way out.
            STOP: LIFECYCLE.draining,
          },
        },
      },
    },
    journal: {
      initial: 'waiting',
      states: {
        waiting: {
          always: [
            { guard: and(['hasPending', journalOpen]), target: 'flushing' },
            { guard: and(['compactionDue', journalOpen]), target: 'compacting' },
          ],
        },
        flushing: {
          entry: 'takeBatch',
          invoke: {
            id: 'appender',
            src: 'appendRecords',
            input: ({ context }) => ({ records: context.inFlight.records }),
            onDone: { target: 'waiting', actions: 'commitBatch' },
            onError: { target: 'waiting', actions: 'failBatch' },
          },
        },
        compacting: {
          entry: 'startCompaction',
          invoke: {
            id: 'compactor',
            src: 'compactJournal',
            input: ({ context }) => ({ records: tableRecords(context.table, context.now) }),
            onDone: { target: 'waiting', actions: 'finishCompaction' },
            onError: { target: 'waiting', actions: 'recordCompactionFailure' },
          },
        },
      },
    },
  },
});
