import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkReservation,
  emptyReservationTable,
  markIds,
  nextCompactionThreshold,
  planCompaction,
  planCompactionAtStop,
  observeClock,
  pruneExpired,
  releaseReservations,
  restoreTable,
  reserveIds,
  settleFromBroker,
  tableRecords,
  type ClockReading,
  type ClockWatch,
  type JournalRecord,
  type OrderOutcome,
  type ReservationTable,
  type ReserveVerdict,
  watermarkOf,
  NO_WATERMARK,
} from '../../src/idempotency/idempotency.js';
import { clientOrderId } from '../../src/idempotency/clientOrderId.js';
import { editIndex, emptyIndex, indexGet, indexOwning, indexValues } from '../../src/idempotency/persistentIndex.js';

const TTL = 300_000;
const WALL = Date.UTC(2025, 0, 2, 14, 30);
const at = (monoMs: number, wallMs = WALL + monoMs): ClockReading => ({ wallMs, monoMs });

function reserveOne(table: ReservationTable, id: string, now: ClockReading, ttlMs = TTL): { table: ReservationTable; verdict: ReserveVerdict } {
  const change = reserveIds(table, [id], now, ttlMs);
  const verdict = change.extra.verdicts[0];
  if (verdict === undefined) throw new Error('no verdict');
  return { table: change.table, verdict };
}

function submitted(id: string, reservedAt: ClockReading): ReservationTable {
  const reserved = reserveOne(emptyReservationTable(), id, reservedAt).table;
  return markIds(reserved, [{ id, state: 'submitted' }], reservedAt).table;
}

describe('reserving client order ids', () => {
  it('hands out a new id once and answers duplicate with its state and age after that', () => {
    const first = reserveOne(emptyReservationTable(), 'A', at(0));
    const second = reserveOne(first.table, 'A', at(250));
    expect(first.verdict).toEqual({ status: 'new', id: 'A' });
    expect(second.verdict).toEqual({ status: 'duplicate', id: 'A', state: 'reserved', ageMs: 250 });
  });

  it('answers the second of two equal ids in one batch as a duplicate', () => {
    const change = reserveIds(emptyReservationTable(), ['A', 'A'], at(0), TTL);
    expect(change.extra.verdicts.map((verdict) => verdict.status)).toEqual(['new', 'duplicate']);
    expect(change.records).toEqual([{ id: 'A', state: 'reserved', at: WALL }]);
  });

  it('keeps the table it was given unchanged', () => {
    const before = emptyReservationTable();
    reserveOne(before, 'A', at(0));
    expect(before.size).toBe(0);
    expect(checkReservation(before, 'A', 0, TTL)).toEqual({ status: 'free' });
  });

  // The audit's TTL cases: duplicate while age < ttl, expired at exactly ttl.
  it('still blocks a submitted id at ttl - 1 ms', () => {
    const table = submitted('A', at(0));
    expect(reserveOne(table, 'A', at(TTL - 1)).verdict).toEqual({ status: 'duplicate', id: 'A', state: 'submitted', ageMs: TTL - 1 });
  });

  it('hands a submitted id out again at exactly ttl', () => {
    expect(reserveOne(submitted('A', at(0)), 'A', at(TTL)).verdict).toEqual({ status: 'new', id: 'A' });
  });

  it('hands a submitted id out again at ttl + 1 ms', () => {
    expect(reserveOne(submitted('A', at(0)), 'A', at(TTL + 1)).verdict).toEqual({ status: 'new', id: 'A' });
  });

  it.each(['reserved', 'unknown'] as const)('never expires a %s id, however old', (state) => {
    let table = reserveOne(emptyReservationTable(), 'A', at(0)).table;
    if (state === 'unknown') table = markIds(table, [{ id: 'A', state }], at(5)).table;
    expect(reserveOne(table, 'A', at(100 * TTL)).verdict).toMatchObject({ status: 'duplicate', state });
    expect(pruneExpired(table, 100 * TTL, TTL).pruned).toBe(0);
  });

  it('measures age on the monotonic clock, so wall jumps neither expire nor renew an id', () => {
    const table = submitted('A', at(0));
    const forwardAnHour = { wallMs: WALL + 3_600_000, monoMs: 1_000 };
    const backAnHour = { wallMs: WALL - 3_600_000, monoMs: TTL };
    expect(reserveOne(table, 'A', forwardAnHour).verdict).toMatchObject({ status: 'duplicate', ageMs: 1_000 });
    expect(reserveOne(table, 'A', backAnHour).verdict).toEqual({ status: 'new', id: 'A' });
  });

  it('marks keep the age of the reservation and journal it in the current wall frame', () => {
    const reserved = reserveOne(emptyReservationTable(), 'A', at(0)).table;
    const change = markIds(reserved, [{ id: 'A', state: 'rejected' }], { wallMs: WALL + 60_000 + 500, monoMs: 500 });
    expect(change.records).toEqual([{ id: 'A', state: 'rejected', at: WALL + 60_000 }]);
    expect(checkReservation(change.table, 'A', 500, TTL)).toEqual({ status: 'held', state: 'rejected', ageMs: 500 });
  });

  it('records a broker answer for an id it never reserved, as of now', () => {
    const change = markIds(emptyReservationTable(), [{ id: 'B', state: 'submitted' }], at(10));
    expect(checkReservation(change.table, 'B', 10 + TTL - 1, TTL)).toMatchObject({ status: 'held', state: 'submitted' });
  });

  it('takes back reservations whose write failed, but not ids marked since', () => {
    let table = reserveIds(emptyReservationTable(), ['A', 'B'], at(0), TTL).table;
    table = markIds(table, [{ id: 'B', state: 'submitted' }], at(1)).table;
    table = releaseReservations(table, ['A', 'B']);
    expect(checkReservation(table, 'A', 1, TTL)).toEqual({ status: 'free' });
    expect(checkReservation(table, 'B', 1, TTL)).toMatchObject({ status: 'held', state: 'submitted' });
  });

  it('prunes expired ids only', () => {
    let table = submitted('OLD', at(0));
    table = reserveOne(table, 'NEW', at(TTL)).table;
    const pruned = pruneExpired(table, TTL, TTL);
    expect(pruned.pruned).toBe(1);
    expect([...indexValues(pruned.table)].map((reservation) => reservation.id)).toEqual(['NEW']);
  });
});

describe('restoring the table from the journal', () => {
  const restore = (records: JournalRecord[], now: ClockReading, graceMs = 0) => restoreTable(records, now, { ttlMs: TTL, graceMs });

  it('keeps the last state per id and forgets released ids', () => {
    const { table } = restore(
      [
        { id: 'A', state: 'reserved', at: WALL },
        { id: 'B', state: 'reserved', at: WALL },
        { id: 'A', state: 'submitted', at: WALL },
        { id: 'B', state: 'released', at: WALL },
      ],
      at(0),
    );
    expect([...indexValues(table)]).toEqual([{ id: 'A', state: 'submitted', bornMonoMs: 0, fromJournal: true, barPrefix: null, barTs: 0 }]);
  });

  it('counts only the newest record of an id, whatever came before it', () => {
    const { table, expired } = restore(
      [
        { id: 'AGAIN', state: 'reserved', at: WALL },
        { id: 'AGAIN', state: 'released', at: WALL },
        { id: 'AGAIN', state: 'reserved', at: WALL },
        { id: 'OLD', state: 'reserved', at: WALL - TTL },
        { id: 'OLD', state: 'submitted', at: WALL - TTL },
        { id: 'OLD', state: 'submitted', at: WALL - TTL },
      ],
      at(0),
    );
    expect(checkReservation(table, 'AGAIN', 0, TTL)).toMatchObject({ status: 'held', state: 'reserved' });
    expect(checkReservation(table, 'OLD', 0, TTL)).toEqual({ status: 'free' });
    expect({ expired, live: table.size }).toEqual({ expired: 1, live: 1 });
  });

  it('moves births before a recorded clock jump into the wall frame after it', () => {
    const { table } = restore(
      [
        { id: 'A', state: 'submitted', at: WALL },
        { clockSkewMs: 3_600_000, at: WALL + 3_602_000 },
        { id: 'B', state: 'submitted', at: WALL + 3_602_500 },
        { clockSkewMs: -500, at: WALL + 3_603_000 },
      ],
      { wallMs: WALL + 3_604_000, monoMs: 0 },
    );
    // In real time A was born 4.5 s ago (2 s before the first jump, 1 s between them, 1.5 s since) and B 2 s ago.
    expect(checkReservation(table, 'A', 0, TTL)).toMatchObject({ status: 'held', ageMs: 4_500 });
    expect(checkReservation(table, 'B', 0, TTL)).toMatchObject({ status: 'held', ageMs: 2_000 });
  });

  it('ages ids by their wall time, less the jump grace, and leaves out the expired', () => {
    const { table, expired } = restore(
      [
        { id: 'FRESH', state: 'submitted', at: WALL - 10_000 },
        { id: 'EXPIRED', state: 'submitted', at: WALL - TTL - 2_000 },
        { id: 'IN_GRACE', state: 'submitted', at: WALL - TTL - 1_999 },
      ],
      { wallMs: WALL, monoMs: 50 },
      2_000,
    );
    expect(expired).toBe(1);
    expect(checkReservation(table, 'FRESH', 50, TTL)).toMatchObject({ status: 'held', ageMs: 8_000 });
    expect(checkReservation(table, 'IN_GRACE', 50, TTL)).toMatchObject({ status: 'held', ageMs: TTL - 1 });
    expect(checkReservation(table, 'EXPIRED', 50, TTL)).toEqual({ status: 'free' });
  });

  // The audit's case: the clock went back across the restart, so the wall age is negative.
  it('treats an id born in the future (clock set back across a restart) as fresh for a full ttl', () => {
    const { table } = restore([{ id: 'A', state: 'submitted', at: WALL }], { wallMs: WALL - 3_600_000, monoMs: 7 });
    expect(checkReservation(table, 'A', 7, TTL)).toEqual({ status: 'held', state: 'submitted', ageMs: 0 });
    expect(checkReservation(table, 'A', 7 + TTL - 1, TTL)).toMatchObject({ status: 'held' });
    expect(checkReservation(table, 'A', 7 + TTL, TTL)).toEqual({ status: 'free' });
  });

  it('keeps reserved and unknown ids whatever their age', () => {
    const { table, expired } = restore(
      [
        { id: 'R', state: 'reserved', at: 0 },
        { id: 'U', state: 'unknown', at: 0 },
      ],
      at(0),
    );
    expect(expired).toBe(0);
    expect(table.size).toBe(2);
  });

  it('writes the live table so that a restore ages every id the same', () => {
    let table = submitted('A', at(0));
    table = reserveOne(table, 'B', at(1_000)).table;
    const now = { wallMs: WALL + 5_000, monoMs: 2_000 }; // the wall clock is 3 s ahead of monotonic time
    const restored = restore(tableRecords(table, now), now).table;
    expect(checkReservation(restored, 'A', 2_000, TTL)).toEqual(checkReservation(table, 'A', 2_000, TTL));
    expect(checkReservation(restored, 'B', 2_000, TTL)).toEqual(checkReservation(table, 'B', 2_000, TTL));
  });
});

describe('reconciliation with the broker', () => {
  const loaded = restoreTable(
    [
      { id: 'SENT', state: 'reserved', at: WALL },
      { id: 'NEVER_SENT', state: 'reserved', at: WALL },
      { id: 'MAYBE', state: 'unknown', at: WALL },
      { id: 'DONE', state: 'rejected', at: WALL },
    ],
    at(0),
    { ttlMs: TTL, graceMs: 0 },
  ).table;

  it('confirms what the broker has, releases what it never saw, and adds what it alone knows', () => {
    const table = reserveOne(loaded, 'LIVE', at(1)).table;
    const change = settleFromBroker(table, ['SENT', 'MAYBE', 'FOREIGN'], at(2));
    expect(change.extra).toEqual({ confirmed: 2, released: 1, added: 1 });
    const state = (id: string) => checkReservation(change.table, id, 2, TTL);
    expect(state('SENT')).toMatchObject({ status: 'held', state: 'submitted', ageMs: 0 });
    expect(state('MAYBE')).toMatchObject({ status: 'held', state: 'submitted' });
    expect(state('FOREIGN')).toMatchObject({ status: 'held', state: 'submitted' });
    expect(state('NEVER_SENT')).toEqual({ status: 'free' });
    expect(state('DONE')).toMatchObject({ status: 'held', state: 'rejected' });
    // A reservation of this process belongs to a live caller: reconciliation leaves it alone.
    expect(state('LIVE')).toMatchObject({ status: 'held', state: 'reserved' });
    expect(change.records).toContainEqual({ id: 'NEVER_SENT', state: 'released', at: WALL + 2 });
  });

  it('adds back a broker id whose bar may be decided again, and not one whose bar is final', () => {
    const id = (minute: number) =>
      clientOrderId({ sessionId: 's', strategyId: 'x', symbol: 'AAPL', barTime: WALL + minute * 60_000, intentIndex: 0, quantity: '1' });
    const change = settleFromBroker(emptyReservationTable(), [id(0), id(1), id(2)], at(0), watermarkOf({ AAPL: WALL + 60_000 }));
    expect(change.extra).toEqual({ confirmed: 0, released: 0, added: 1 });
    expect(change.records).toEqual([{ id: id(2), state: 'submitted', at: WALL }]);
    expect(checkReservation(change.table, id(2), 0, TTL)).toMatchObject({ status: 'held', state: 'submitted' });
  });
});

describe('clock jumps', () => {
  const start = observeClock(undefined, at(0), 1_000).watch;

  it.each([
    ['back (an NTP correction)', -5_000, 'BACKWARD'],
    ['forward', 5_000, 'FORWARD'],
  ] as const)('detects a wall step %s beyond the tolerance', (_name, stepMs, direction) => {
    const { jump, watch } = observeClock(start, { wallMs: WALL + 2_000 + stepMs, monoMs: 2_000 }, 1_000);
    expect(jump).toEqual({ direction, wallDeltaMs: 2_000 + stepMs, monoDeltaMs: 2_000, skewMs: stepMs });
    expect(watch.baseline).toEqual({ wallMs: WALL + 2_000 + stepMs, monoMs: 2_000 });
  });

  it('ignores a step within the tolerance', () => {
    expect(observeClock(start, { wallMs: WALL + 2_000 + 1_000, monoMs: 2_000 }, 1_000).jump).toBeNull();
  });

  it('adds up small steps until together they pass the tolerance', () => {
    let watch: ClockWatch = start;
    const jumps = [600, 1_200].map((skew, step) => {
      const observed = observeClock(watch, { wallMs: WALL + (step + 1) * 100 + skew, monoMs: (step + 1) * 100 }, 1_000);
      watch = observed.watch;
      return observed.jump?.skewMs ?? null;
    });
    expect(jumps).toEqual([null, 1_200]);
  });
});

describe('compaction policy', () => {
  const policy = { ttlMs: TTL, minLines: 10 };

  it('waits below the threshold', () => {
    const table = submitted('A', at(0));
    expect(planCompaction(table, 9, 10, TTL, policy)).toEqual({ table, compact: false, thresholdLines: 10 });
  });

  it('compacts at the threshold when at least half the lines are dead, pruning expired ids', () => {
    let table = submitted('OLD', at(0));
    table = reserveIds(table, ['LIVE-1', 'LIVE-2'], at(TTL), TTL).table;
    const plan = planCompaction(table, 10, 10, TTL, policy);
    expect(plan.compact).toBe(true);
    expect(plan.table.size).toBe(2);
  });

  it('waits for the journal to double when most lines are still live', () => {
    const table = reserveIds(emptyReservationTable(), Array.from({ length: 8 }, (_, n) => `ID-${n}`), at(0), TTL).table;
    expect(planCompaction(table, 10, 10, 0, policy)).toMatchObject({ compact: false, thresholdLines: 16 });
  });

  it('compacts at a stop when a third of the lines are dead, pruning expired ids first', () => {
    const live = reserveIds(emptyReservationTable(), Array.from({ length: 8 }, (_, n) => `ID-${n}`), at(0), TTL).table;
    expect(planCompactionAtStop(live, 12, 0, policy).compact).toBe(true);
    expect(planCompactionAtStop(live, 11, 0, policy).compact).toBe(false);
    // Below the minimum a journal is left as it is, however dead.
    expect(planCompactionAtStop(submitted('A', at(0)), 9, 0, policy)).toEqual({ table: submitted('A', at(0)), compact: false });
    const withExpired = reserveIds(submitted('OLD', at(0)), ['LIVE'], at(TTL), TTL).table;
    expect(planCompactionAtStop(withExpired, 10, TTL, policy)).toMatchObject({ compact: true, table: { size: 1 } });
  });

  it('compacts again when the journal has doubled, but not below the minimum', () => {
    expect(nextCompactionThreshold(8_000, 10_000)).toBe(16_000);
    expect(nextCompactionThreshold(10, 10_000)).toBe(10_000);
  });
});

describe('the persistent index', () => {
  it('behaves like a Map under any edits, and never changes an older version', () => {
    const edits = fc.array(
      fc.record({ id: fc.string({ maxLength: 3 }), remove: fc.boolean(), value: fc.integer() }),
      { maxLength: 200 },
    );
    fc.assert(
      fc.property(fc.array(edits, { maxLength: 8 }), (batches) => {
        let index = emptyIndex<{ id: string; value: number }>();
        const model = new Map<string, number>();
        for (const batch of batches) {
          const before = index;
          const beforeModel = new Map(model);
          index = editIndex(index, (draft) => {
            for (const { id, remove, value } of batch) {
              if (remove) draft.remove(id);
              else draft.put({ id, value });
              expect(draft.get(id)?.value).toBe(remove ? undefined : value);
            }
          });
          for (const { id, remove, value } of batch) remove ? model.delete(id) : model.set(id, value);
          expect(before.size).toBe(beforeModel.size);
          for (const [id, value] of beforeModel) expect(indexGet(before, id)?.value).toBe(value);
        }
        expect(index.size).toBe(model.size);
        expect(new Map([...indexValues(index)].map((record) => [record.id, record.value]))).toEqual(model);
      }),
    );
  });

  it('merges many changes into a new base without changing any older version', () => {
    // A base of 8,000, then 80 batches of 100 puts and a removal: recent changes are merged
    // into a new base once they pass 4,096.
    const initial = Array.from({ length: 8_000 }, (_, n) => ({ id: `K${n}`, batch: -1 }));
    let index = indexOwning(new Map(initial.map((record) => [record.id, record])));
    const model = new Map(initial.map((record) => [record.id, record.batch]));
    const versions: { index: typeof index; expected: Map<string, number> }[] = [];
    for (let batch = 0; batch < 80; batch += 1) {
      index = editIndex(index, (draft) => {
        for (let n = 0; n < 100; n += 1) draft.put({ id: `K${(batch * 70 + n) % 8_000}`, batch });
        draft.remove(`K${batch * 50}`);
      });
      for (let n = 0; n < 100; n += 1) model.set(`K${(batch * 70 + n) % 8_000}`, batch);
      model.delete(`K${batch * 50}`);
      versions.push({ index, expected: new Map(model) });
    }
    versions.forEach(({ index: version, expected }, batch) => {
      expect(version.size).toBe(expected.size);
      if (batch % 8 !== 7) return; // the full contents of every eighth version (each is 8,000 records)
      expect(new Map([...indexValues(version)].map((record) => [record.id, record.batch]))).toEqual(expected);
    });
  });
});

// The property the issue asks for: whatever happens, an id is never handed out twice while live.
describe('no id is handed out twice within its ttl', () => {
  const ttlMs = 1_000;
  const toleranceMs = 100;
  const ids = ['A', 'B'];

  type Step =
    | { kind: 'reserve'; id: string }
    | { kind: 'mark'; id: string; state: OrderOutcome }
    | { kind: 'advance'; ms: number }
    | { kind: 'jump'; ms: number }
    | { kind: 'compact' }
    | { kind: 'restart'; downMs: number; wallBackMs: number; monoStart: number };

  // Boundary-heavy durations: ttl ± 1, the tolerance ± 1, and anything else.
  const duration = fc.oneof(
    fc.integer({ min: 0, max: 1_500 }),
    fc.constantFrom(1, ttlMs - 2 * toleranceMs, ttlMs - toleranceMs, ttlMs - 1, ttlMs, ttlMs + 1, toleranceMs, toleranceMs + 1),
  );
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('reserve' as const), id: fc.constantFrom(...ids) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('mark' as const),
        id: fc.constantFrom(...ids),
        state: fc.constantFrom<OrderOutcome>('submitted', 'rejected', 'unknown'),
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: duration }) },
    // Steps up to the tolerance go unnoticed (drift); larger ones are jumps.
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('jump' as const),
        ms: fc.oneof(
          { weight: 2, arbitrary: fc.integer({ min: -toleranceMs, max: toleranceMs }) },
          { weight: 1, arbitrary: fc.integer({ min: -5_000, max: 5_000 }) },
        ),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const) }) },
    // A forward wall step while no process runs cannot be seen by anyone; a backward one can be
    // (negative wall age), and must only ever keep ids longer.
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('restart' as const),
        downMs: duration,
        wallBackMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5_000 })),
        monoStart: fc.integer({ min: 0, max: 1e9 }),
      }),
    },
  );

  it('holds for any interleaving of reserve, mark, advance, jump, compaction and restart', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40, size: 'medium' }), (steps) => {
        let trueMs = 0;
        let wallMs = WALL;
        let monoMs = 0;
        let table = emptyReservationTable();
        let journal: JournalRecord[] = [];
        let watch: ClockWatch | undefined;
        // Per id: when (true time) it was last handed out, and whether the broker settled it.
        const handedOut = new Map<string, { atMs: number; settled: boolean }>();

        const read = (): ClockReading => {
          const now = { wallMs, monoMs };
          const observed = observeClock(watch, now, toleranceMs);
          watch = observed.watch;
          if (observed.jump) journal.push({ clockSkewMs: observed.jump.skewMs, at: now.wallMs });
          return now;
        };

        for (const s of steps) {
          if (s.kind === 'reserve') {
            const change = reserveIds(table, [s.id], read(), ttlMs);
            table = change.table;
            journal.push(...change.records);
            if (change.extra.verdicts[0]?.status !== 'new') continue;
            const previous = handedOut.get(s.id);
            if (previous) {
              expect(previous.settled, `${s.id} handed out again while unsettled`).toBe(true);
              expect(trueMs - previous.atMs, `${s.id} handed out again within its ttl`).toBeGreaterThanOrEqual(ttlMs);
            }
            handedOut.set(s.id, { atMs: trueMs, settled: false });
          } else if (s.kind === 'mark') {
            const issued = handedOut.get(s.id);
            if (issued === undefined) continue; // the session only marks ids it reserved
            const change = markIds(table, [{ id: s.id, state: s.state }], read());
            table = change.table;
            journal.push(...change.records);
            issued.settled = s.state !== 'unknown';
          } else if (s.kind === 'advance') {
            trueMs += s.ms;
            wallMs += s.ms;
            monoMs += s.ms;
          } else if (s.kind === 'jump') {
            // The tracker reads the clock on every call (and on checkClock): the step is seen
            // at the next read, before anything else happens.
            wallMs += s.ms;
            read();
          } else if (s.kind === 'compact') {
            const now = read();
            table = pruneExpired(table, now.monoMs, ttlMs).table;
            journal = tableRecords(table, now);
          } else {
            trueMs += s.downMs;
            wallMs += s.downMs - s.wallBackMs;
            monoMs = s.monoStart;
            watch = undefined;
            table = restoreTable(journal, read(), { ttlMs, graceMs: 2 * toleranceMs }).table;
          }
          // After every step, every id still live in real time must be held.
          for (const [id, issued] of handedOut) {
            const live = !issued.settled || trueMs - issued.atMs < ttlMs;
            if (live) expect(checkReservation(table, id, monoMs, ttlMs).status, `${id} free while live`).toBe('held');
          }
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('retention of ids that name their bar (the watermark, not a clock)', () => {
  const DAY = 86_400_000;
  const barTs = Date.UTC(2025, 0, 2, 14, 30);
  const sessionId = (symbol: string, ts = barTs) =>
    clientOrderId({ sessionId: 's', strategyId: 'sma-cross', symbol, barTime: ts, intentIndex: 0, quantity: '1' });

  it('keeps a submitted session id however old it is while no watermark covers its bar', () => {
    const id = sessionId('AAPL');
    const table = submitted(id, at(0));
    for (const age of [TTL, 10 * 60_000, DAY, 30 * DAY]) {
      expect(checkReservation(table, id, age, TTL), `after ${age} ms`).toMatchObject({ status: 'held', state: 'submitted' });
      expect(checkReservation(table, id, age, TTL, watermarkOf({ AAPL: barTs - 1 }))).toMatchObject({ status: 'held' });
    }
  });

  it('lets it go once a durable checkpoint covers its bar, at any age', () => {
    const id = sessionId('AAPL');
    const table = submitted(id, at(0));
    expect(checkReservation(table, id, 0, TTL, watermarkOf({ AAPL: barTs }))).toEqual({ status: 'free' });
    expect(pruneExpired(table, 0, TTL, watermarkOf({ AAPL: barTs })).pruned).toBe(1);
    // Another symbol's watermark covers nothing of AAPL's.
    expect(pruneExpired(table, 30 * DAY, TTL, watermarkOf({ MSFT: barTs + DAY })).pruned).toBe(0);
  });

  it('never lets go of an unsettled id, whatever the watermark', () => {
    const id = sessionId('AAPL');
    const table = reserveOne(emptyReservationTable(), id, at(0)).table;
    expect(checkReservation(table, id, 30 * DAY, TTL, watermarkOf({ AAPL: barTs + DAY }))).toMatchObject({ status: 'held', state: 'reserved' });
  });

  it('still ages out an id that names no bar at the TTL', () => {
    const table = submitted('USER-ORDER-1', at(0));
    expect(checkReservation(table, 'USER-ORDER-1', TTL - 1, TTL, watermarkOf({ AAPL: barTs }))).toMatchObject({ status: 'held' });
    expect(checkReservation(table, 'USER-ORDER-1', TTL, TTL, NO_WATERMARK)).toEqual({ status: 'free' });
  });

  it('restores session ids written 30 days ago as held, unless the checkpoint covers their bar', () => {
    const kept = sessionId('AAPL', barTs + 60_000);
    const covered = sessionId('AAPL', barTs);
    const records: JournalRecord[] = [
      { id: covered, state: 'submitted', at: WALL },
      { id: kept, state: 'submitted', at: WALL },
    ];
    const { table, expired } = restoreTable(records, at(0, WALL + 30 * DAY), { ttlMs: TTL, graceMs: 0, watermark: watermarkOf({ AAPL: barTs }) });
    expect(expired).toBe(1);
    expect(checkReservation(table, kept, 0, TTL)).toMatchObject({ status: 'held', state: 'submitted' });
    expect(checkReservation(table, covered, 0, TTL)).toEqual({ status: 'free' });
  });

  it('takes, per id prefix, the oldest bar of the symbols sharing it', () => {
    // BRK.A and BRKA share the prefix BRKA: the watermark is the older of the two.
    expect(watermarkOf({ 'BRK.A': 200, BRKA: 100, AAPL: 50 })).toEqual(new Map([['BRKA', 100], ['AAPL', 50]]));
    expect(watermarkOf(Object.assign(Object.create(null), { toString: 7 }))).toEqual(new Map([['TOSTRI', 7]]));
  });

  it('never hands out again an id whose bar is after the watermark, for any downtime and any watermark before the bar (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 365 * DAY }), fc.integer({ min: 1, max: 10 * DAY }), (downtime, gap) => {
        const id = sessionId('AAPL');
        const { table } = restoreTable([{ id, state: 'submitted', at: WALL }], at(0, WALL + downtime), {
          ttlMs: TTL,
          graceMs: 0,
          watermark: watermarkOf({ AAPL: barTs - gap }),
        });
        return reserveIds(table, [id], at(downtime), TTL, watermarkOf({ AAPL: barTs - gap })).extra.verdicts[0]?.status === 'duplicate';
      }),
    );
  });
});
