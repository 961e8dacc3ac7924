import { FillCounts } from '../../src/session/fillCounts.js';
import { createActor, fromPromise, type EventFromLogic } from 'xstate';
import { describe, expect, it } from 'vitest';
import { reconcilerMachine, type PositionsCheck, type Reconciliation, type ReconcilerEmitted } from '../../machines/reconciler.machine.js';
import { createPortfolio } from '../../src/portfolio/portfolio.js';
import { allStateIds, modelPaths, replayPath, statesReached, type ModelPath } from '../../src/testing/modelTesting.js';

type ModelEvent = EventFromLogic<typeof reconcilerMachine>;

const CHECK = { type: 'CHECK', portfolio: createPortfolio({ initialCash: '1000' }), appliedFills: FillCounts.EMPTY } as const;
const HALTING: Reconciliation = { halt: { code: 'POSITION_MISMATCH', detail: 'broker holds 5 X', at: 0 }, adoptionFills: [] };

// The machine's own events, plus the check's outcomes: an answer, a broker that does not answer.
const events = [
  { type: 'START' },
  { type: 'STOP' },
  CHECK,
  { type: 'xstate.done.actor.checker', output: HALTING },
  { type: 'xstate.error.actor.checker', error: new Error('broker unreachable') },
] as unknown as ModelEvent[];

const paths = modelPaths(reconcilerMachine, {
  events,
  serializeState: (s) => JSON.stringify([s.value, Math.min(s.context.checks, 2), Math.min(s.context.failed, 1)]),
  // Past shutdown only counters move.
  stopWhen: (s) => s.matches('shutdown'),
});

/** The reconciler with its check held until the test answers it, and every answer it gives. */
function liveReconciler() {
  let answer: { resolve: (value: Reconciliation) => void; reject: (error: Error) => void } | null = null;
  const machine = reconcilerMachine.provide({
    actors: {
      checkPositions: fromPromise<Reconciliation, PositionsCheck>(
        () =>
          new Promise<Reconciliation>((resolve, reject) => {
            answer = { resolve, reject };
          }),
      ),
    },
  });
  const actor = createActor(machine, { input: {} });
  const answers: ReconcilerEmitted[] = [];
  actor.on('*', (event: ReconcilerEmitted) => answers.push(event));
  actor.start();
  const settle = async (outcome: 'done' | 'error'): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve));
    const pending = answer;
    if (pending === null) throw new Error('no check in flight');
    answer = null;
    if (outcome === 'done') pending.resolve(HALTING);
    else pending.reject(new Error('broker unreachable'));
  };
  return { actor, answers, settle };
}

async function replay(path: ModelPath<ModelEvent>): Promise<void> {
  const live = liveReconciler();
  let checksSent = 0;
  await replayPath(path, {
    actor: live.actor,
    cause: async (event) => {
      if (event.type === 'CHECK') checksSent += 1;
      const outcome = /^xstate\.(done|error)\.actor\.checker$/.exec(event.type)?.[1];
      if (outcome === undefined) return void live.actor.send(event);
      await live.settle(outcome === 'done' ? 'done' : 'error');
    },
    checkInvariants: () => {
      // Every CHECK is answered, or is the one in flight: none is queued or lost.
      const inFlight = live.actor.getSnapshot().matches({ running: 'checking' }) ? 1 : 0;
      expect(live.answers.length + inFlight).toBe(checksSent);
    },
  });
  live.actor.send({ type: 'STOP' });
  live.actor.send({ type: 'STOP' });
  expect(live.actor.getSnapshot().value).toBe('shutdown');
}

describe('reconciler model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(PATH_COUNT);
  });

  it('reaches every state except the transient draining', () => {
    const expected = [...allStateIds(reconcilerMachine)].filter((id) => id !== 'draining');
    expect([...statesReached(paths)].sort()).toEqual(expected.sort());
  });

  it.each(paths.map((path) => [path.description, path] as const))('replays %s against the real machine', async (_name, path) => {
    await replay(path);
  });
});

describe('reconciler', () => {
  it('answers a check while one is in flight at once (ALREADY_CHECKING), and the first one still', async () => {
    const live = liveReconciler();
    live.actor.send({ type: 'START' });
    live.actor.send(CHECK);
    live.actor.send(CHECK);
    expect(live.answers).toEqual([{ type: 'RECONCILE_FAILED', code: 'ALREADY_CHECKING', error: 'a check is in flight' }]);
    await live.settle('done');
    await new Promise((resolve) => setImmediate(resolve));
    expect(live.answers.at(-1)).toEqual({ type: 'RECONCILED', reconciliation: HALTING });
  });

  it('abandons a check in flight on STOP: a broker that never answers cannot hold up the stop', () => {
    const live = liveReconciler();
    live.actor.send({ type: 'START' });
    live.actor.send(CHECK);
    live.actor.send({ type: 'STOP' });
    expect(live.actor.getSnapshot().value).toBe('shutdown');
    // Asked after stopping: answered at once, not left waiting.
    live.actor.send(CHECK);
    expect(live.answers.map((answer) => (answer.type === 'RECONCILE_FAILED' ? answer.code : answer.type))).toEqual(['ABANDONED', 'NOT_RUNNING']);
  });
});

const PATH_COUNT = 14;
