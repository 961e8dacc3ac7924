import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clientOrderId, InvalidClientOrderIdError } from '../../src/idempotency/clientOrderId.js';
import { ManualClock } from '../../src/common/clock.js';
import {
  createIdempotencyTracker,
  type IdempotencyLogEntry,
  type IdempotencyTracker,
  type IdempotencyTrackerOptions,
} from '../../src/idempotency/idempotencyTracker.js';
import { FileOrderJournal, JournalReadError, orderJournalPath } from '../../src/idempotency/orderJournal.js';
import { StateDirLockedError } from '../../src/stateDir/stateDirLock.js';
import { errnoError } from '../../src/testing/faultyWriter.js';

const TTL = 300_000;
const WALL = Date.UTC(2025, 0, 2, 14, 30);
const HOUR = 3_600_000;
const HEADER = `{"journal":"aistock/orders","schemaVersion":1,"createdAt":${WALL}}\n`;

let stateDir: string;
let logs: IdempotencyLogEntry[];
const open: IdempotencyTracker[] = [];
const children: ChildProcess[] = [];

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'aistock-idem-'));
  logs = [];
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.all(open.splice(0).map((tracker) => tracker.stop()));
});

function tracker(clock: ManualClock, options: Partial<IdempotencyTrackerOptions> = {}): IdempotencyTracker {
  const created = createIdempotencyTracker({ stateDir, clock, log: (entry) => logs.push(entry), ...options });
  open.push(created);
  return created;
}

/** A new process's clock: the wall clock goes on (moved by `wallStepMs`), monotonic time restarts. */
function restartedClock(previous: ManualClock, wallStepMs = 0): ManualClock {
  return new ManualClock({ wallMs: previous.wallMs() + wallStepMs, monoMs: 0 });
}

async function submittedA(clock: ManualClock): Promise<IdempotencyTracker> {
  const first = tracker(clock);
  await first.start();
  expect(await first.reserve('A')).toEqual({ status: 'new', id: 'A' });
  expect(await first.mark('A', 'submitted')).toEqual({ status: 'recorded', id: 'A', state: 'submitted' });
  return first;
}

function spawnFixture(name: string, args: string[]): { child: ChildProcess; lines: AsyncIterableIterator<string> } {
  const fixture = join(import.meta.dirname, `../fixtures/${name}.ts`);
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  return { child, lines };
}

async function nextLine(lines: AsyncIterableIterator<string>): Promise<string> {
  const { value, done } = await lines.next();
  if (done === true) throw new Error('child closed stdout');
  return value;
}

describe('audit: clock jumps', () => {
  it('keeps an id a duplicate when the wall clock goes back mid-session (NTP correction)', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const session = await submittedA(clock);
    clock.advance(1_000);
    clock.jumpWall(-HOUR);
    expect(await session.reserve('A')).toEqual({ status: 'duplicate', id: 'A', state: 'submitted', ageMs: 1_000 });
    clock.advance(TTL - 1_001);
    expect(await session.reserve('A')).toMatchObject({ status: 'duplicate', ageMs: TTL - 1 });
    clock.advance(1);
    expect(await session.reserve('A')).toEqual({ status: 'new', id: 'A' });
    expect(session.snapshot().stats.clockJumps).toBe(1);
    expect(logs).toContainEqual({ event: 'CLOCK_JUMPED', count: 1, direction: 'BACKWARD', wallDeltaMs: 1_000 - HOUR, monoDeltaMs: 1_000, skewMs: -HOUR });
  });

  it('does not expire an id early when the wall clock jumps forward mid-session', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const session = await submittedA(clock);
    clock.jumpWall(HOUR);
    expect(session.checkClock()).toMatchObject({ direction: 'FORWARD', skewMs: HOUR });
    expect(await session.reserve('A')).toMatchObject({ status: 'duplicate', ageMs: 0 });
  });

  it('keeps an id a duplicate when the clock went back across a restart (negative wall age)', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    await (await submittedA(clock)).stop();
    const later = restartedClock(clock, -HOUR);
    const restarted = tracker(later);
    await restarted.start();
    expect(await restarted.reserve('A')).toEqual({ status: 'duplicate', id: 'A', state: 'submitted', ageMs: 0 });
    later.advance(TTL - 1);
    expect(await restarted.reserve('A')).toMatchObject({ status: 'duplicate', ageMs: TTL - 1 });
    later.advance(1);
    expect(await restarted.reserve('A')).toEqual({ status: 'new', id: 'A' });
  });

  // A forward jump recorded before a restart: the journal contract (orderJournalContract.ts) checks it for every store.
  it('does not expire an id early after wall drift too small to count as a jump, across a restart', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const first = await submittedA(clock);
    clock.jumpWall(-900); // under the 1 s tolerance: not a jump
    await first.mark('A', 'submitted'); // journaled 900 ms "early" in the wall frame
    clock.jumpWall(1_800); // +900 ms against the baseline: still not a jump
    expect(first.checkClock()).toBeNull();
    await first.stop();
    // The wall age now overstates the real one (0 ms) by 1.8 s: the grace (2 × tolerance) covers it.
    const later = restartedClock(clock);
    const restarted = tracker(later);
    await restarted.start();
    later.advance(TTL - 1);
    expect(await restarted.reserve('A')).toMatchObject({ status: 'duplicate', state: 'submitted' });
  });
});

describe('audit: the ttl boundary', () => {
  it.each([
    ['ttl - 1', 'duplicate', TTL - 1],
    ['exactly ttl', 'new', TTL],
    ['ttl + 1', 'new', TTL + 1],
  ])('answers a submitted id at %s as %s', async (_name, status, ageMs) => {
    const clock = new ManualClock({ wallMs: WALL });
    const session = await submittedA(clock);
    clock.advance(ageMs);
    expect(await session.reserve('A')).toMatchObject({ status });
  });
});

describe('audit: a corrupted journal', () => {
  const line = (id: string, state: string): string => `${JSON.stringify({ id, state, at: WALL })}\n`;

  it('cuts off a torn tail, reports it, and starts with every whole record', async () => {
    await writeFile(orderJournalPath(stateDir), `${HEADER}${line('A', 'submitted')}{"id":"B","state":"res`);
    const clock = new ManualClock({ wallMs: WALL });
    const session = tracker(clock);
    expect(await session.start()).toMatchObject({ state: 'running', journal: { status: 'loaded', liveIds: 1, tornTail: { bytes: 22 } } });
    expect(logs).toContainEqual(expect.objectContaining({ event: 'JOURNAL_TORN_TAIL', bytes: 22 }));
    expect(await session.reserve('A')).toMatchObject({ status: 'duplicate', state: 'submitted' });
    expect(await session.reserve('B')).toEqual({ status: 'new', id: 'B' });
  });

  it.each([
    ['garbage in the middle', `${HEADER}${line('A', 'submitted')}\u0000\u0000garbage\n${line('B', 'reserved')}`, 'INVALID_LINE'],
    ['a wrong version', `${HEADER.replace('"schemaVersion":1', '"schemaVersion":7')}${line('A', 'submitted')}`, 'WRONG_VERSION'],
  ])('with %s: sets it aside and refuses to reserve until reconciled with the broker', async (_name, contents, reason) => {
    await writeFile(orderJournalPath(stateDir), contents);
    const clock = new ManualClock({ wallMs: WALL });
    const session = tracker(clock);
    const started = await session.start();
    expect(started).toMatchObject({ state: 'recovering', journal: { status: 'corrupt', reason } });
    const aside = (await readdir(stateDir)).filter((name) => name.includes('.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(await readFile(join(stateDir, aside[0] ?? ''), 'utf8')).toBe(contents);

    expect(await session.reserve('C')).toMatchObject({ status: 'refused', reason: 'JOURNAL_RECOVERING' });
    expect(await session.reconcile(['A', 'someone-elses id'])).toEqual({
      status: 'reconciled',
      resumed: true,
      confirmed: 0,
      released: 0,
      added: 1,
    });
    expect(session.snapshot().state).toBe('running');
    expect(await session.reserve('A')).toMatchObject({ status: 'duplicate', state: 'submitted' });
    expect(await session.reserve('C')).toEqual({ status: 'new', id: 'C' });
  });

  it('is faulted, with a typed error, when the journal cannot be read at all; stop still frees the dir', async () => {
    await mkdir(orderJournalPath(stateDir));
    const clock = new ManualClock({ wallMs: WALL });
    const session = tracker(clock);
    await expect(session.start()).rejects.toBeInstanceOf(JournalReadError);
    expect(session.snapshot().state).toBe('faulted');
    expect(await session.reserve('A')).toMatchObject({ status: 'refused', reason: 'FAULTED' });
    await session.stop();
    const lock = tracker(clock, { journal: new FileOrderJournal({ path: join(stateDir, 'other.journal'), clock }) });
    await expect(lock.start()).resolves.toMatchObject({ state: 'running' });
  });
});

describe('durability and lifecycle', () => {
  it('resolves a new reservation only after its write is durable', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const journal = new FileOrderJournal({ path: orderJournalPath(stateDir), clock });
    const session = tracker(clock, { journal });
    await session.start();
    let release = (): void => undefined;
    let written = (): void => undefined;
    const bytesWritten = new Promise<void>((resolve) => (written = resolve));
    // The bytes reach the file, and the sync is held until the test lets it finish.
    journal.faults.afterWrite = () => {
      written();
      return new Promise<void>((resolve) => (release = resolve));
    };
    let answered = false;
    const reserved = session.reserve('A').then((result) => {
      answered = true;
      return result;
    });
    await bytesWritten;
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    expect(await session.reserve('A')).toMatchObject({ status: 'duplicate', state: 'reserved' });
    release();
    expect(await reserved).toEqual({ status: 'new', id: 'A' });
  });

  it('fails a reservation whose write fails, and lets the id be reserved again', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const journal = new FileOrderJournal({ path: orderJournalPath(stateDir), clock });
    const session = tracker(clock, { journal });
    await session.start();
    journal.faults.afterWrite = () => {
      journal.faults.afterWrite = undefined;
      throw errnoError('EIO', journal.path, 'fsync');
    };
    await expect(session.reserve('A')).rejects.toMatchObject({ code: 'JOURNAL_WRITE_FAILED', retryable: true });
    expect(await session.reserve('A')).toEqual({ status: 'new', id: 'A' });
    expect(session.snapshot().stats).toMatchObject({ reserved: 1, failedSyncs: 1 });
  });

  it('groups the reservations of concurrent callers into shared syncs', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const session = tracker(clock);
    await session.start();
    const results = await Promise.all(Array.from({ length: 50 }, (_, n) => session.reserve(`ID-${n}`)));
    expect(results.every((result) => result.status === 'new')).toBe(true);
    expect(session.snapshot().stats.syncs).toBe(1);
  });

  it('writes a markLater with the next reservation, in its one sync, and writes the marks still waiting at stop', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const session = tracker(clock);
    await session.start();
    await session.reserve('A');
    const markedA = session.markLater('A', 'submitted');
    await new Promise((resolve) => setImmediate(resolve));
    expect(session.snapshot().stats.syncs).toBe(1);
    await session.reserve('B');
    expect(await markedA).toEqual({ status: 'recorded', id: 'A', state: 'submitted' });
    expect(session.snapshot().stats.syncs).toBe(2);
    const markedB = session.markLater('B', 'rejected');
    await session.stop();
    expect(await markedB).toEqual({ status: 'recorded', id: 'B', state: 'rejected' });
    const lines = (await readFile(orderJournalPath(stateDir), 'utf8')).trim().split('\n').slice(1).map((line) => JSON.parse(line) as { id: string; state: string });
    expect(lines.map(({ id, state }) => `${id} ${state}`)).toEqual(['A reserved', 'A submitted', 'B reserved', 'B rejected']);
  });

  it('compacts the journal when expired ids dominate, keeping every live id', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const session = tracker(clock, { compactMinLines: 25 });
    await session.start();
    for (let n = 0; n < 10; n += 1) {
      await session.reserve(`OLD-${n}`);
      await session.mark(`OLD-${n}`, 'submitted');
    }
    clock.advance(TTL);
    for (let n = 0; n < 5; n += 1) await session.reserve(`LIVE-${n}`);
    await session.stop(); // waits for the compaction the last commit started
    expect(logs).toEqual([{ event: 'JOURNAL_COMPACTED', linesBefore: 25, liveIds: 5 }]);
    const text = await readFile(orderJournalPath(stateDir), 'utf8');
    const ids = text.trim().split('\n').slice(1).map((row) => (JSON.parse(row) as { id: string }).id);
    expect(ids.sort()).toEqual(['LIVE-0', 'LIVE-1', 'LIVE-2', 'LIVE-3', 'LIVE-4']);
  });

  it('leaves one line per live id after a clean stop, once a third of the journal is superseded', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const session = tracker(clock, { compactMinLines: 10 });
    await session.start();
    // 8 reservations, 4 of them marked: 12 lines, 4 superseded — too few for the running
    // policy (half), enough for a stop (a third).
    for (let n = 0; n < 8; n += 1) await session.reserve(`ID-${n}`);
    for (let n = 0; n < 4; n += 1) await session.mark(`ID-${n}`, n % 2 === 0 ? 'submitted' : 'rejected');
    expect(logs).toEqual([]);
    await session.stop();
    expect(logs).toEqual([{ event: 'JOURNAL_COMPACTED', linesBefore: 12, liveIds: 8 }]);
    const lines = (await readFile(orderJournalPath(stateDir), 'utf8')).trim().split('\n').slice(1).map((line) => JSON.parse(line) as { id: string; state: string });
    const expected = ['ID-0 submitted', 'ID-1 rejected', 'ID-2 submitted', 'ID-3 rejected', 'ID-4 reserved', 'ID-5 reserved', 'ID-6 reserved', 'ID-7 reserved'];
    expect(lines.map(({ id, state }) => `${id} ${state}`).sort()).toEqual(expected);
    // The next start holds every id, as it would have from the whole journal.
    const restarted = tracker(clock, { compactMinLines: 10 });
    await restarted.start();
    for (let n = 0; n < 8; n += 1) expect(restarted.check(`ID-${n}`)).toMatchObject({ status: 'held' });
    await restarted.stop();
  });

  it('leaves the journal as it is at a stop when most of its lines are live', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const session = tracker(clock, { compactMinLines: 10 });
    await session.start();
    for (let n = 0; n < 12; n += 1) await session.reserve(`ID-${n}`);
    for (let n = 0; n < 2; n += 1) await session.mark(`ID-${n}`, 'submitted');
    await session.stop();
    expect(logs).toEqual([]);
    expect((await readFile(orderJournalPath(stateDir), 'utf8')).trim().split('\n')).toHaveLength(15);
  });

  it('drains on stop, returns the same promise every time, and refuses commands after', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const session = tracker(clock);
    await session.start();
    const reserved = session.reserve('A');
    const stopping = session.stop();
    expect(session.stop()).toBe(stopping);
    expect(await reserved).toEqual({ status: 'new', id: 'A' });
    expect(await stopping).toMatchObject({ state: 'shutdown', unwrittenRecords: 0 });
    expect(await session.reserve('B')).toMatchObject({ status: 'refused', reason: 'SHUT_DOWN' });
    await expect(session.reserve('not an id')).rejects.toBeInstanceOf(InvalidClientOrderIdError);
  });

  it('fails every command at once after its actor dies, and stop() frees the dir and reports the failure instead of hanging', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const dying = tracker(clock);
    await dying.start();
    // A malformed command makes the actor's own code throw: a bug, not an I/O error.
    dying.actor.send({ type: 'RESERVE', requests: null, now: { wallMs: WALL, monoMs: 0 } } as never);
    expect(dying.actor.getSnapshot().status).toBe('error');
    await expect(dying.reserve('A')).rejects.toMatchObject({ code: 'IDEMPOTENCY_ACTOR_FAILED' });
    await expect(dying.mark('A', 'submitted')).rejects.toMatchObject({ code: 'IDEMPOTENCY_ACTOR_FAILED' });
    await expect(dying.reconcile([])).rejects.toMatchObject({ code: 'IDEMPOTENCY_ACTOR_FAILED' });
    await expect(dying.stop()).rejects.toMatchObject({ code: 'IDEMPOTENCY_ACTOR_FAILED' });
    open.splice(open.indexOf(dying), 1);
    // The lock went with it: the next tracker takes the dir.
    const next = tracker(clock);
    await expect(next.start()).resolves.toBeDefined();
  });

  it('settles unknown ids and those left by a previous process against the broker after a restart', async () => {
    const clock = new ManualClock({ wallMs: WALL });
    const first = tracker(clock);
    await first.start();
    for (const id of ['SENT', 'NOT-SENT', 'MAYBE']) await first.reserve(id);
    await first.mark('MAYBE', 'unknown');
    await first.stop();
    const restarted = tracker(restartedClock(clock));
    await restarted.start();
    expect(await restarted.reserve('NOT-SENT')).toMatchObject({ status: 'duplicate', state: 'reserved' });
    expect(await restarted.reconcile(['SENT'])).toEqual({ status: 'reconciled', resumed: false, confirmed: 1, released: 2, added: 0 });
    expect(await restarted.reserve('SENT')).toMatchObject({ status: 'duplicate', state: 'submitted' });
    expect(await restarted.reserve('NOT-SENT')).toEqual({ status: 'new', id: 'NOT-SENT' });
    expect(await restarted.reserve('MAYBE')).toEqual({ status: 'new', id: 'MAYBE' });
  });
});

describe('audit: two processes on one state dir', () => {
  it('refuses a second tracker with the lock error naming the holder pid', async () => {
    const holder = spawnFixture('idempotencyHolder', [stateDir]);
    expect(await nextLine(holder.lines)).toBe(`started ${holder.child.pid}`);
    const second = tracker(new ManualClock({ wallMs: WALL }));
    const error = await second.start().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StateDirLockedError);
    expect(error).toMatchObject({ code: 'STATE_DIR_LOCKED', holderPid: holder.child.pid });
  });
});

describe('crash safety', () => {
  it('finds every id whose reserve resolved after the reserving process is SIGKILLed, twice over', async () => {
    const resolved: string[] = [];
    for (const [round, killAfter] of [
      ['R1', 150],
      ['R2', 400],
    ] as const) {
      const child = spawnFixture('idempotencyReserver', [stateDir, round]);
      expect(await nextLine(child.lines)).toBe('started');
      for (let n = 0; n < killAfter; n += 1) resolved.push(await nextLine(child.lines));
      child.child.kill('SIGKILL');
      // Lines already written before the kill are ids whose reserve resolved too.
      for await (const id of child.lines) resolved.push(id);
      await once(child.child, 'exit').catch(() => undefined);
    }
    const restarted = tracker(new ManualClock());
    const { journal } = await restarted.start();
    expect(journal).toMatchObject({ status: 'loaded' });
    const missing = resolved.filter((id) => restarted.check(id).status !== 'held');
    expect(missing).toEqual([]);
    expect(resolved.length).toBeGreaterThanOrEqual(550);
  });
});

describe('ids that name their bar: kept until the checkpoint watermark covers it, whatever the downtime', () => {
  const DAY = 24 * HOUR;
  const barTs = WALL - 60_000;
  const sessionId = (minute: number) =>
    clientOrderId({ sessionId: 's', strategyId: 'x', symbol: 'AAPL', barTime: barTs + minute * 60_000, intentIndex: 0, quantity: '1' });

  it.each([0, 6 * 60_000, DAY, 30 * DAY])('still blocks a sent id after a restart %i ms later, with no checkpoint', async (downtime) => {
    const clock = new ManualClock({ wallMs: WALL, monoMs: 0 });
    const first = tracker(clock);
    await first.start();
    expect(await first.reserve(sessionId(0))).toMatchObject({ status: 'new' });
    await first.mark(sessionId(0), 'submitted');
    await first.stop();

    const second = tracker(restartedClock(clock, downtime));
    await second.start();
    expect(await second.reserve(sessionId(0))).toMatchObject({ status: 'duplicate', state: 'submitted' });
  });

  it('lets go at load of the ids whose bar the restored checkpoint covers, and only those', async () => {
    const clock = new ManualClock({ wallMs: WALL, monoMs: 0 });
    const first = tracker(clock);
    await first.start();
    for (const minute of [0, 1, 2]) {
      await first.reserve(sessionId(minute));
      await first.mark(sessionId(minute), 'submitted');
    }
    await first.stop();

    const second = tracker(restartedClock(clock, DAY), { watermark: { AAPL: barTs + 60_000 } });
    const report = await second.start();
    expect(report.journal).toMatchObject({ status: 'loaded', liveIds: 1, expiredDropped: 2 });
    expect(second.check(sessionId(2))).toMatchObject({ status: 'held', state: 'submitted' });
    expect(second.check(sessionId(1))).toEqual({ status: 'free' });
  });

  it('compacts away ids once advanceWatermark says a checkpoint covering them is durable', async () => {
    const clock = new ManualClock({ wallMs: WALL, monoMs: 0 });
    const live = tracker(clock, { compactMinLines: 4 });
    await live.start();
    for (const minute of [0, 1, 2]) {
      await live.reserve(sessionId(minute));
      await live.mark(sessionId(minute), 'submitted');
    }
    await expect.poll(() => live.snapshot().stats.compactions).toBe(1);
    // No age lets them go: the first compaction kept all three.
    expect(live.snapshot().liveIds).toBe(3);
    live.advanceWatermark({ AAPL: barTs + 2 * 60_000 });
    expect(live.check(sessionId(1))).toEqual({ status: 'free' });
    // The next commits reach the compaction threshold again: covered ids are pruned and rewritten away.
    for (const minute of [3, 4]) {
      await live.reserve(sessionId(minute));
      await live.mark(sessionId(minute), 'submitted');
    }
    await expect.poll(() => live.snapshot().stats.compactions).toBe(2);
    expect(live.snapshot().liveIds).toBe(2);
    const text = await readFile(orderJournalPath(stateDir), 'utf8');
    expect(text).not.toContain(sessionId(0));
    expect(text).toContain(sessionId(4));
  });
});
