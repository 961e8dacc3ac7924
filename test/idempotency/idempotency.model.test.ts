import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFromLogic } from 'xstate';
import { idempotencyMachine } from '../../machines/idempotency.machine.js';
import { type JournalEntryRecord, type JournalRecord, type OrderOutcome } from '../../src/idempotency/idempotency.js';
import { indexGet } from '../../src/idempotency/persistentIndex.js';
import { ManualClock } from '../../src/common/clock.js';
import { createIdempotencyTracker, type IdempotencyReport } from '../../src/idempotency/idempotencyTracker.js';
import { FileOrderJournal, orderJournalPath, type JournalLoad, type OrderJournal } from '../../src/idempotency/orderJournal.js';
import { errnoError } from '../../src/testing/faultyWriter.js';
import { allStateIds, modelPaths, replayPath, statesReached, type ModelPath } from '../../src/testing/modelTesting.js';

type ModelEvent = EventFromLogic<typeof idempotencyMachine>;

const NOW = { wallMs: Date.UTC(2025, 0, 2, 14, 30), monoMs: 0 };
// A TTL nothing reaches (time does not pass here) and compaction after a few lines.
const config = { ttlMs: 300_000, jumpToleranceMs: 1_000, compactMinLines: 3 };
const JUMP_MS = 5_000;

// Model events: the machine's own commands with their variants, and the outcomes of its
// invoked journal work (load clean / corrupt / failing, a write that syncs or fails, a
// compaction that works or fails).
const events = [
  { type: 'START', now: NOW },
  { type: 'xstate.done.actor.loader', output: { status: 'ok', records: [], tornTail: null, created: true, upgradedFrom: null } },
  { type: 'xstate.done.actor.loader', output: { status: 'corrupt', reason: 'INVALID_HEADER', detail: 'garbage', line: 1, movedTo: 'aside' } },
  { type: 'xstate.error.actor.loader', error: 'EISDIR' },
  { type: 'RESERVE', requests: [{ ticket: 0, id: 'A' }], now: NOW },
  { type: 'xstate.done.actor.appender' },
  { type: 'xstate.error.actor.appender', error: 'EIO' },
  { type: 'MARK', marks: [{ ticket: 0, id: 'A', state: 'submitted' }], now: NOW },
  { type: 'MARK', marks: [{ ticket: 0, id: 'A', state: 'unknown' }], now: NOW },
  { type: 'RECONCILED', ticket: 0, knownIds: [], now: NOW },
  { type: 'RECONCILED', ticket: 0, knownIds: ['A'], now: NOW },
  { type: 'CLOCK_JUMPED', jump: { direction: 'BACKWARD', wallDeltaMs: -JUMP_MS, monoDeltaMs: 0, skewMs: -JUMP_MS }, now: NOW },
  { type: 'CLOCK_JUMPED', jump: { direction: 'FORWARD', wallDeltaMs: JUMP_MS, monoDeltaMs: 0, skewMs: JUMP_MS }, now: NOW },
  { type: 'xstate.done.actor.compactor' },
  { type: 'xstate.error.actor.compactor', error: 'ENOSPC' },
  { type: 'STOP' },
] as unknown as ModelEvent[];

const paths = modelPaths(idempotencyMachine, {
  events,
  input: config,
  // What decides the next transitions: the state, id A's state, whether records wait or are
  // in flight, clock records carried over a failed write, the journal's size (capped at the
  // compaction threshold), and whether a stop still looks at compaction.
  serializeState: (s) =>
    JSON.stringify([
      s.value,
      indexGet(s.context.table, 'A')?.state ?? 'absent',
      s.context.pending.records.length > 0,
      s.context.inFlight.records.length > 0,
      s.context.carried.length > 0,
      Math.min(s.context.journalLines, config.compactMinLines),
      s.context.compactionDue,
      s.context.compactAtStop,
    ]),
});

type Operation = 'load' | 'append' | 'compact';

/** The real file journal, with each operation held until the model says how it ends. */
class GatedJournal implements OrderJournal {
  readonly #waiting: Record<Operation, (() => void)[]> = { load: [], append: [], compact: [] };
  readonly #running: Record<Operation, Set<Promise<unknown>>> = { load: new Set(), append: new Set(), compact: new Set() };
  readonly #arrivals: Record<Operation, (() => void)[]> = { load: [], append: [], compact: [] };
  #open = false;

  constructor(readonly file: FileOrderJournal) {}

  load(): Promise<JournalLoad> {
    return this.#track('load', this.#gate('load').then(() => this.file.load()));
  }

  append(records: readonly JournalRecord[]): Promise<void> {
    return this.#track('append', this.#gate('append').then(() => this.file.append(records)));
  }

  compact(records: readonly JournalEntryRecord[]): Promise<void> {
    return this.#track('compact', this.#gate('compact').then(() => this.file.compact(records)));
  }

  #track<T>(operation: Operation, call: Promise<T>): Promise<T> {
    const running = this.#running[operation];
    running.add(call);
    const forget = (): void => void running.delete(call);
    call.then(forget, forget);
    return call;
  }

  close(): Promise<void> {
    return this.file.close();
  }

  /** Lets every held operation of this kind go on. */
  release(operation: Operation): void {
    for (const go of this.#waiting[operation].splice(0)) go();
  }

  /**
   * The model's "done" (or "failed") of the operation in flight, on the real disk: waits until
   * it is held here (the machine may be in the state that runs it while the write before it is
   * still on the disk), lets it go, and returns once the file has finished it — so the next
   * step's command cannot join a write the model has already finished.
   */
  async finish(operation: Operation): Promise<void> {
    // Told by the gate when the operation arrives (a path whose operation never comes fails on the test's timeout).
    if (this.#waiting[operation].length === 0) await new Promise<void>((resolve) => this.#arrivals[operation].push(resolve));
    const running = [...this.#running[operation]];
    this.release(operation);
    await Promise.allSettled(running);
  }

  /** From now on nothing is held (for the end of a path). */
  openAll(): void {
    this.#open = true;
    for (const operation of ['load', 'append', 'compact'] as const) this.release(operation);
  }

  #gate(operation: Operation): Promise<void> {
    if (this.#open) return Promise.resolve();
    const held = new Promise<void>((go) => this.#waiting[operation].push(go));
    for (const arrived of this.#arrivals[operation].splice(0)) arrived();
    return held;
  }
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'aistock-model-idem-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function replay(path: ModelPath<ModelEvent>, index: number): Promise<void> {
  const stateDir = join(root, String(index));
  await mkdir(stateDir);
  const journalPath = orderJournalPath(stateDir);
  const clock = new ManualClock({ wallMs: NOW.wallMs, monoMs: NOW.monoMs });
  const file = new FileOrderJournal({ path: journalPath, clock });
  const journal = new GatedJournal(file);
  const tracker = createIdempotencyTracker({ stateDir, clock, journal, lock: false, log: () => undefined, ...config });
  tracker.checkClock(); // the baseline that later wall steps are measured from
  const calls: Promise<unknown>[] = [];
  let stopped: Promise<IdempotencyReport> | undefined;
  // Whether A was handed out (`new`) and not released by reconciliation since.
  let handedOut = false;
  const violations: string[] = [];
  const failOnce = (hook: 'beforeWrite' | 'afterWrite', code: string): void => {
    file.faults[hook] = () => {
      file.faults[hook] = undefined;
      throw errnoError(code, journalPath);
    };
  };
  const track = <T>(call: Promise<T>, onResult: (result: T) => void = () => undefined): void => {
    calls.push(call.then(onResult, () => undefined));
  };

  await replayPath(path, {
    actor: tracker.actor,
    cause: async (event) => {
      const e = event as unknown as {
        type: string;
        output?: JournalLoad;
        marks?: { state: OrderOutcome }[];
        knownIds?: string[];
        jump?: { skewMs: number };
      };
      switch (e.type) {
        case 'START':
          return track(tracker.start());
        case 'xstate.done.actor.loader':
          if (e.output?.status === 'corrupt') await writeFile(journalPath, 'garbage\n');
          return journal.release('load');
        case 'xstate.error.actor.loader':
          await mkdir(journalPath); // a directory where the journal should be: EISDIR
          return journal.release('load');
        case 'RESERVE':
          return track(tracker.reserve('A'), (result) => {
            if (result.status !== 'new') return;
            if (handedOut) violations.push('A handed out again while live');
            handedOut = true;
          });
        case 'xstate.done.actor.appender':
          return journal.finish('append');
        case 'xstate.error.actor.appender':
          failOnce('afterWrite', 'EIO');
          return journal.finish('append');
        case 'MARK':
          return track(tracker.mark('A', e.marks?.[0]?.state ?? 'submitted'));
        case 'RECONCILED': {
          const knownIds = e.knownIds ?? [];
          // The broker never saw an unknown A: reconciliation frees it (it may be sent again).
          const before = tracker.check('A');
          const settles = ['running', 'recovering'].includes(tracker.snapshot().state);
          if (settles && before.status === 'held' && before.state === 'unknown' && !knownIds.includes('A')) handedOut = false;
          return track(tracker.reconcile(knownIds));
        }
        case 'CLOCK_JUMPED':
          clock.jumpWall(e.jump?.skewMs ?? 0);
          expect(tracker.checkClock()).not.toBeNull();
          return;
        case 'xstate.done.actor.compactor':
          return journal.finish('compact');
        case 'xstate.error.actor.compactor':
          failOnce('beforeWrite', 'ENOSPC');
          return journal.finish('compact');
        case 'STOP':
          if (stopped === undefined) {
            stopped = tracker.stop();
          } else {
            // A second stop: the same promise, and the machine's own STOP is a no-op.
            expect(tracker.stop()).toBe(stopped);
            tracker.actor.send({ type: 'STOP' });
          }
          return;
        default:
          throw new Error(`no real cause for ${e.type}`);
      }
    },
    // No live id is handed out twice: checked as answers arrive (above), and here the table
    // must still hold an id that was handed out.
    checkInvariants: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      expect(violations).toEqual([]);
      if (handedOut) expect(tracker.check('A').status, 'A handed out but not held').toBe('held');
    },
  });

  // Every path ends, once the disk lets everything through, in shutdown with every call settled.
  journal.openAll();
  const stopping = stopped ?? tracker.stop();
  const report = await stopping;
  await Promise.all(calls);
  expect(violations).toEqual([]);
  expect(report.state).toBe('shutdown');
  // STOP once more: the same promise, and the machine stays in shutdown.
  expect(tracker.stop()).toBe(stopping);
  tracker.actor.send({ type: 'STOP' });
  expect(tracker.snapshot().state).toBe('shutdown');
  // An id handed out is on disk: a restart would find it.
  if (handedOut && (await stat(journalPath)).isFile()) {
    const reloaded = new FileOrderJournal({ path: journalPath, clock });
    const load = await reloaded.load();
    await reloaded.close();
    const written = load.status === 'ok' && load.records.some((record) => 'id' in record && record.id === 'A');
    expect(written, 'A lost from the journal').toBe(true);
  }
}

describe('idempotency model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(255);
  });

  it('reaches every state of the machine', () => {
    expect(statesReached(paths)).toEqual(allStateIds(idempotencyMachine));
  });

  it('replays every path against the real tracker and journal', async () => {
    // One test for all paths: each replay is a few milliseconds, a test each would cost more.
    for (const [index, path] of paths.entries()) await replay(path, index);
  });
});
