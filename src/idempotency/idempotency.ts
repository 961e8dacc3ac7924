import { parseClientOrderId, symbolPrefix } from './clientOrderId.js';
import type { ClockReading } from '../common/clockReading.js';
import { editIndex, emptyIndex, indexGet, indexOwning, indexValues, type PersistentIndex } from './persistentIndex.js';

/**
 * The client-order-id reservation table as plain functions: what `reserve` answers, how an
 * id ages and expires, what a clock jump is, and how the write-ahead journal's records fold
 * back into a table after a restart. The idempotency machine calls these from `assign`.
 *
 * No clock decides that an order may be sent again. A session's id (one `clientOrderId` made:
 * it names its bar) is kept until the watermark covers its bar — the bar time up to which a
 * durable checkpoint has made every decision final, so that bar is never decided again —
 * however long the process was down. Only an id of another shape (a library user's own) ages
 * out after `ttlMs`: monotonic age inside a process, wall age once at load (a negative wall
 * age counts as 0: still fresh).
 */

/** An id that names no bar is a duplicate while its age is below this, and expires at exactly this age. */
export const DEFAULT_TTL_MS = 300_000;

/** A wall step larger than this (against the monotonic clock) is a clock jump. */
export const DEFAULT_JUMP_TOLERANCE_MS = 1_000;

/**
 * `reserved`: written ahead, the broker not yet asked. `submitted` / `rejected`: the broker
 * answered. `unknown`: the broker call failed or timed out, so the order may be in the market.
 */
export type ReservationState = 'reserved' | 'submitted' | 'rejected' | 'unknown';

/** What the session learns from the broker after a reserve. */
export type OrderOutcome = Exclude<ReservationState, 'reserved'>;

export type { ClockReading } from '../common/clockReading.js';

/** One id in the table. */
export interface Reservation {
  readonly id: string;
  readonly state: ReservationState;
  /** Monotonic time at which the id was 0 ms old (before this process started, if loaded). */
  readonly bornMonoMs: number;
  /** Loaded from the journal: its `reserved` state belongs to a dead process, not a live caller. */
  readonly fromJournal: boolean;
  /** The symbol prefix of the bar the id names (null: the id names no bar, and ages out by TTL instead). */
  readonly barPrefix: string | null;
  /** The bar time the id names (0 when `barPrefix` is null). */
  readonly barTs: number;
}

/**
 * Per symbol prefix of the ids (see `symbolPrefix`), the bar time up to which a durable
 * checkpoint has made every decision final: bars at or before it are never decided again.
 */
export type Watermark = ReadonlyMap<string, number>;

/** No durable checkpoint: every bar may be decided again. */
export const NO_WATERMARK: Watermark = new Map();

/**
 * The watermark of a checkpoint's newest bar time per symbol: per id prefix, the oldest of
 * the symbols that share it (so no symbol's undecided bar is covered by another's).
 */
export function watermarkOf(lastTs: Readonly<Record<string, number>> | ReadonlyMap<string, number>): Watermark {
  const watermark = new Map<string, number>();
  for (const [symbol, ts] of Symbol.iterator in lastTs ? (lastTs as ReadonlyMap<string, number>) : Object.entries(lastTs)) {
    const prefix = symbolPrefix(symbol);
    watermark.set(prefix, Math.min(ts, watermark.get(prefix) ?? ts));
  }
  return watermark;
}

/** A reservation of `id`, with the bar its id names (parsed once, here). */
export function newReservation(id: string, state: ReservationState, bornMonoMs: number, fromJournal: boolean): Reservation {
  const parts = parseClientOrderId(id);
  return { id, state, bornMonoMs, fromJournal, barPrefix: parts?.symbolPrefix ?? null, barTs: parts?.barTime ?? 0 };
}

/** Every live id, immutable: each change returns a new table. */
export type ReservationTable = PersistentIndex<Reservation>;

/** A table with no ids. */
export function emptyReservationTable(): ReservationTable {
  return emptyIndex<Reservation>();
}

/** `reserved` and `unknown` ids are never handed out again until reconciliation settles them. */
export function isUnsettled(state: ReservationState): boolean {
  return state === 'reserved' || state === 'unknown';
}

/** How old `reservation` is at monotonic time `nowMonoMs`. */
export function reservationAgeMs(reservation: Reservation, nowMonoMs: number): number {
  return nowMonoMs - reservation.bornMonoMs;
}

/**
 * Whether a reservation may be forgotten: never while unsettled; an id naming a bar once the
 * watermark covers that bar (whatever its age); any other id at exactly `ttlMs` of age.
 */
export function isExpired(reservation: Reservation, nowMonoMs: number, ttlMs: number, watermark: Watermark = NO_WATERMARK): boolean {
  if (isUnsettled(reservation.state)) return false;
  if (reservation.barPrefix !== null) {
    const covered = watermark.get(reservation.barPrefix);
    return covered !== undefined && reservation.barTs <= covered;
  }
  return reservationAgeMs(reservation, nowMonoMs) >= ttlMs;
}

/** Whether an id would be handed out now, without reserving it. */
export type ReservationCheck =
  | { readonly status: 'free' }
  | { readonly status: 'held'; readonly state: ReservationState; readonly ageMs: number };

const FREE: ReservationCheck = { status: 'free' };

/** The in-memory duplicate check (no allocation when the id is free). */
export function checkReservation(
  table: ReservationTable,
  id: string,
  nowMonoMs: number,
  ttlMs: number,
  watermark: Watermark = NO_WATERMARK,
): ReservationCheck {
  const reservation = indexGet(table, id);
  if (reservation === undefined || isExpired(reservation, nowMonoMs, ttlMs, watermark)) return FREE;
  return { status: 'held', state: reservation.state, ageMs: reservationAgeMs(reservation, nowMonoMs) };
}

/** `reserve`'s answer: `new` means the caller may send the order (once the record is durable). */
export type ReserveVerdict =
  | { readonly status: 'new'; readonly id: string }
  | { readonly status: 'duplicate'; readonly id: string; readonly state: ReservationState; readonly ageMs: number };

/** A journal line that sets an id's state. `at` is the wall time at which the id was 0 ms old. */
export interface JournalEntryRecord {
  readonly id: string;
  /** `released`: reconciliation found the broker never saw it; the id is free again. */
  readonly state: ReservationState | 'released';
  readonly at: number;
}

/** A journal line saying the wall clock stepped by `clockSkewMs` (against monotonic time) at `at`. */
export interface ClockSkewRecord {
  readonly clockSkewMs: number;
  readonly at: number;
}

/** One line of the write-ahead journal, after its header. */
export type JournalRecord = JournalEntryRecord | ClockSkewRecord;

/** A table change and the journal lines that make it durable. */
export interface TableChange<TExtra = object> {
  readonly table: ReservationTable;
  readonly records: JournalEntryRecord[];
  readonly extra: TExtra;
}

/** Reserves each id that is absent or expired; answers `duplicate` (with state and age) otherwise. */
export function reserveIds(
  table: ReservationTable,
  ids: readonly string[],
  now: ClockReading,
  ttlMs: number,
  watermark: Watermark = NO_WATERMARK,
): TableChange<{ verdicts: ReserveVerdict[] }> {
  const verdicts: ReserveVerdict[] = [];
  const records: JournalEntryRecord[] = [];
  const next = editIndex(table, (draft) => {
    for (const id of ids) {
      const existing = draft.get(id);
      if (existing !== undefined && !isExpired(existing, now.monoMs, ttlMs, watermark)) {
        verdicts.push({ status: 'duplicate', id, state: existing.state, ageMs: reservationAgeMs(existing, now.monoMs) });
        continue;
      }
      draft.put(newReservation(id, 'reserved', now.monoMs, false));
      verdicts.push({ status: 'new', id });
      records.push({ id, state: 'reserved', at: now.wallMs });
    }
  });
  return { table: next, records, extra: { verdicts } };
}

/**
 * Records the broker's answer for each id. The id keeps its age (the TTL runs from the
 * reservation); an id the table does not hold is added as of `now`, so a fact the broker
 * reported still blocks a resend.
 */
export function markIds(
  table: ReservationTable,
  marks: readonly { readonly id: string; readonly state: OrderOutcome }[],
  now: ClockReading,
): TableChange {
  const records: JournalEntryRecord[] = [];
  const next = editIndex(table, (draft) => {
    for (const { id, state } of marks) {
      const existing = draft.get(id);
      const bornMonoMs = existing?.bornMonoMs ?? now.monoMs;
      draft.put(existing === undefined ? newReservation(id, state, bornMonoMs, false) : { ...existing, state });
      records.push(entryRecord(id, state, now.monoMs - bornMonoMs, now));
    }
  });
  return { table: next, records, extra: {} };
}

/**
 * Takes back reservations whose journal write failed: their callers were told to not send,
 * so the ids must be reservable again. Ids already marked since are left alone.
 */
export function releaseReservations(table: ReservationTable, ids: readonly string[]): ReservationTable {
  return editIndex(table, (draft) => {
    for (const id of ids) {
      const existing = draft.get(id);
      if (existing?.state === 'reserved' && !existing.fromJournal) draft.remove(id);
    }
  });
}

/** Drops every expired id. */
export function pruneExpired(
  table: ReservationTable,
  nowMonoMs: number,
  ttlMs: number,
  watermark: Watermark = NO_WATERMARK,
): { table: ReservationTable; pruned: number } {
  const expired: string[] = [];
  for (const reservation of indexValues(table)) if (isExpired(reservation, nowMonoMs, ttlMs, watermark)) expired.push(reservation.id);
  if (expired.length === 0) return { table, pruned: 0 };
  return {
    table: editIndex(table, (draft) => {
      for (const id of expired) draft.remove(id);
    }),
    pruned: expired.length,
  };
}

/** What reconciliation changed. */
export interface SettleSummary {
  /** Unsettled ids the broker knows: now `submitted`. */
  readonly confirmed: number;
  /** Unsettled ids the broker never saw: free again. */
  readonly released: number;
  /** Ids the broker knows that the table did not hold (and whose bar is not final): added as `submitted`. */
  readonly added: number;
}

/**
 * Settles the table against the broker's known client order ids. `unknown` ids, and `reserved`
 * ids left by a previous process, become `submitted` if the broker knows them and are released
 * if not. `reserved` ids of this process are left alone: a live caller is about to mark them.
 * Every known id is held (as `submitted`, fresh from `now`), so nothing the broker has is resent —
 * except ids whose bar the watermark covers: that bar is never decided again.
 */
export function settleFromBroker(
  table: ReservationTable,
  knownIds: Iterable<string>,
  now: ClockReading,
  watermark: Watermark = NO_WATERMARK,
): TableChange<SettleSummary> {
  const known = new Set(knownIds);
  const records: JournalEntryRecord[] = [];
  let confirmed = 0;
  let released = 0;
  let added = 0;
  // One pass that keeps only the few unsettled ids: a restart looks at every live id here.
  const settleable: Reservation[] = [];
  for (const reservation of indexValues(table)) {
    if (reservation.state === 'unknown' || (reservation.state === 'reserved' && reservation.fromJournal)) settleable.push(reservation);
  }
  // Settling touches only ids the table holds, so the known ids to add are exactly those `table`
  // lacks: plain map lookups here, not lookups through the edit (the broker may know 100,000).
  const unheld: Reservation[] = [];
  for (const id of known) {
    if (indexGet(table, id) !== undefined) continue;
    const reservation = newReservation(id, 'submitted', now.monoMs, false);
    // The TTL does not apply here: an id that names no bar is held as of now.
    if (!isExpired(reservation, now.monoMs, Number.POSITIVE_INFINITY, watermark)) unheld.push(reservation);
  }
  const next = editIndex(table, (draft) => {
    for (const { id } of settleable) {
      if (known.has(id)) {
        draft.put(newReservation(id, 'submitted', now.monoMs, false));
        records.push({ id, state: 'submitted', at: now.wallMs });
        confirmed += 1;
      } else {
        draft.remove(id);
        records.push({ id, state: 'released', at: now.wallMs });
        released += 1;
      }
    }
    for (const reservation of unheld) {
      draft.put(reservation);
      records.push({ id: reservation.id, state: 'submitted', at: now.wallMs });
      added += 1;
    }
  });
  return { table: next, records, extra: { confirmed, released, added } };
}

/** The whole table as journal lines, for compaction (prune first to leave expired ids out). */
export function tableRecords(table: ReservationTable, now: ClockReading): JournalEntryRecord[] {
  const records: JournalEntryRecord[] = [];
  for (const reservation of indexValues(table)) {
    records.push(entryRecord(reservation.id, reservation.state, reservationAgeMs(reservation, now.monoMs), now));
  }
  return records;
}

/**
 * The table a restarted process starts from, folded from the journal's records in one pass,
 * newest first: the first record met of an id is its last one, which wins, and every older
 * record of it is skipped without building anything; `released` forgets the id.
 *
 * Ages come from wall time. A clock-skew record moves every earlier birth into the wall
 * frame that followed the jump, so a forward step recorded before the restart does not make
 * old ids look older than they are. `graceMs` is taken off every wall age (steps under the
 * jump tolerance go unrecorded, so a wall age may overstate the real one by up to twice the
 * tolerance), and an age never goes below 0: a birth in the future (the clock went back
 * across the restart) is simply fresh. Settled ids already expired (their bar under the
 * watermark, or past the TTL for ids that name no bar) are left out and counted.
 */
export function restoreTable(
  records: readonly JournalRecord[],
  now: ClockReading,
  policy: { readonly ttlMs: number; readonly graceMs: number; readonly watermark?: Watermark },
): { table: ReservationTable; expired: number } {
  const live = new Map<string, Reservation>();
  // Ids whose last record released them or has expired: their older records are dead too.
  const dropped = new Set<string>();
  let expired = 0;
  let skewAheadMs = 0; // the skew recorded after the current record
  for (let index = records.length - 1; index >= 0; index -= 1) {
    const record = records[index];
    if (record === undefined) continue;
    if ('clockSkewMs' in record) {
      skewAheadMs += record.clockSkewMs;
      continue;
    }
    if (live.has(record.id) || (dropped.size > 0 && dropped.has(record.id))) continue;
    if (record.state === 'released') {
      dropped.add(record.id);
      continue;
    }
    const ageMs = Math.max(0, now.wallMs - (record.at + skewAheadMs) - policy.graceMs);
    const reservation = newReservation(record.id, record.state, now.monoMs - ageMs, true);
    if (isExpired(reservation, now.monoMs, policy.ttlMs, policy.watermark)) {
      dropped.add(record.id);
      expired += 1;
    } else {
      live.set(record.id, reservation);
    }
  }
  return { table: indexOwning(live), expired };
}

/** The reading clock jumps are measured from; it moves only when a jump is detected. */
export interface ClockWatch {
  readonly baseline: ClockReading;
}

/** The wall clock moved `skewMs` more (or less, if negative) than the monotonic clock. */
export interface ClockJump {
  readonly direction: 'FORWARD' | 'BACKWARD';
  readonly wallDeltaMs: number;
  readonly monoDeltaMs: number;
  readonly skewMs: number;
}

/**
 * Compares wall and monotonic time elapsed since the baseline. A difference beyond
 * `toleranceMs` is a jump, and `now` becomes the new baseline. Measuring from the baseline
 * (not the previous reading) means small steps cannot add up unnoticed.
 */
export function observeClock(
  watch: ClockWatch | undefined,
  now: ClockReading,
  toleranceMs: number,
): { watch: ClockWatch; jump: ClockJump | null } {
  if (watch === undefined) return { watch: { baseline: now }, jump: null };
  const wallDeltaMs = now.wallMs - watch.baseline.wallMs;
  const monoDeltaMs = now.monoMs - watch.baseline.monoMs;
  const skewMs = wallDeltaMs - monoDeltaMs;
  if (Math.abs(skewMs) <= toleranceMs) return { watch, jump: null };
  return {
    watch: { baseline: now },
    jump: { direction: skewMs > 0 ? 'FORWARD' : 'BACKWARD', wallDeltaMs, monoDeltaMs, skewMs },
  };
}

/** Whether to compact the journal now, with the table pruned of expired ids to decide it. */
export interface CompactionPlan {
  readonly table: ReservationTable;
  readonly compact: boolean;
  /** The line count at which to look again (unchanged when `compact`). */
  readonly thresholdLines: number;
}

/**
 * Looks at compaction once the journal reaches `thresholdLines`: prunes expired ids, and
 * compacts if at least half the lines are dead (superseded or expired); otherwise waits until
 * the journal has doubled again. Pruning here, only at thresholds, keeps it O(1) per line.
 */
export function planCompaction(
  table: ReservationTable,
  journalLines: number,
  thresholdLines: number,
  nowMonoMs: number,
  policy: { readonly ttlMs: number; readonly minLines: number; readonly watermark?: Watermark },
): CompactionPlan {
  if (journalLines < thresholdLines) return { table, compact: false, thresholdLines };
  const live = pruneExpired(table, nowMonoMs, policy.ttlMs, policy.watermark).table;
  if (2 * live.size <= journalLines) return { table: live, compact: true, thresholdLines };
  return { table: live, compact: false, thresholdLines: nextCompactionThreshold(live.size, policy.minLines) };
}

/**
 * Whether a clean stop compacts the journal (pruned of expired ids first): when it has at least
 * `minLines` lines and at least a third of them are dead (superseded or expired). A stop then
 * leaves about one line per live id, so the next start reads no more than it must — a start's
 * cost is the journal's length (a restart after a crash reads what the crash left).
 */
export function planCompactionAtStop(
  table: ReservationTable,
  journalLines: number,
  nowMonoMs: number,
  policy: { readonly ttlMs: number; readonly minLines: number; readonly watermark?: Watermark },
): { table: ReservationTable; compact: boolean } {
  if (journalLines < policy.minLines) return { table, compact: false };
  const live = pruneExpired(table, nowMonoMs, policy.ttlMs, policy.watermark).table;
  return { table: live, compact: 3 * live.size <= 2 * journalLines };
}

/**
 * The journal line count at which to compact next: twice the live ids it was left with (then
 * at least half its lines are superseded or expired), and never below `minLines`. Rewriting
 * the live ids each time the journal doubles costs O(1) per appended line.
 */
export function nextCompactionThreshold(liveIds: number, minLines: number): number {
  return Math.max(minLines, 2 * liveIds);
}

function entryRecord(id: string, state: ReservationState, ageMs: number, now: ClockReading): JournalEntryRecord {
  return { id, state, at: now.wallMs - ageMs };
}
