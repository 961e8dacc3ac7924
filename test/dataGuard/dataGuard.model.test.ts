import { createActor, fromCallback, type EventFromLogic } from 'xstate';
import { describe, expect, it } from 'vitest';
import { dataGuardMachine, type DataGuardEmitted } from '../../machines/dataGuard.machine.js';
import type { Bar } from '../../src/bars/bar.js';
import { rejectedTotal } from '../../src/dataGuard/dataGuard.js';
import { allStateIds, modelPaths, replayPath, statesReached, type ModelPath } from '../../src/testing/modelTesting.js';

type ModelEvent = EventFromLogic<typeof dataGuardMachine>;

const T0 = Date.parse('2025-11-03T14:30:00Z');
const bar = (minute: number, fields: Partial<Bar> = {}): Bar => ({
  symbol: 'AAPL',
  ts: T0 + minute * 60_000,
  open: 100,
  high: 101,
  low: 99,
  close: 100,
  volume: 500,
  ...fields,
});

// The guard is pure, so a BARS event is its own real cause; the variants cover a clean
// batch, the next clean batch (sent twice it repeats: DUPLICATE_TIMESTAMP, after the
// later one: OUT_OF_ORDER), a batch with a bad bar, and an empty one.
const events: ModelEvent[] = [
  { type: 'START' },
  { type: 'STOP' },
  { type: 'BARS', bars: [bar(0)] },
  { type: 'BARS', bars: [bar(1), bar(2)] },
  { type: 'BARS', bars: [bar(3, { low: 0 })] },
  { type: 'BARS', bars: [] },
];

/** A path's name with the batch variant spelled out (the generic description only says BARS). */
function describePath(path: ModelPath<ModelEvent>): string {
  const name = (event: ModelEvent): string => {
    if (event.type !== 'BARS') return event.type;
    const [first] = event.bars;
    if (first === undefined) return 'BARS(empty)';
    if (first.low <= 0) return 'BARS(bad)';
    return event.bars.length === 1 ? 'BARS(first)' : 'BARS(next)';
  };
  return path.steps.map((step) => name(step.event)).join(' → ') || '(initial state)';
}

const cap = (n: number) => Math.min(n, 2);
const paths = modelPaths(dataGuardMachine, {
  events,
  serializeState: (s) =>
    JSON.stringify([s.value, cap(s.context.guard.accepted), cap(rejectedTotal(s.context.guard)), cap(s.context.refusedBars)]),
});

async function replay(path: ModelPath<ModelEvent>): Promise<void> {
  const reported: DataGuardEmitted[] = [];
  const emitted: DataGuardEmitted[] = [];
  const recorder = createActor(fromCallback<DataGuardEmitted>(({ receive }) => receive((event) => reported.push(event)))).start();
  const actor = createActor(dataGuardMachine, { systemId: 'dataGuard', input: { reportTo: recorder } });
  actor.on('*', (event) => emitted.push(event));
  actor.start();
  let sentWhileRunning = 0;
  let sentOtherwise = 0;

  await replayPath(path, {
    actor,
    cause: (event) => {
      if (event.type === 'BARS') {
        if (actor.getSnapshot().matches('running')) sentWhileRunning += event.bars.length;
        else sentOtherwise += event.bars.length;
      }
      actor.send(event);
    },
    checkInvariants: () => {
      const { guard, refusedBars } = actor.getSnapshot().context;
      // Every bar is accounted for: passed, rejected by reason, or refused while not running.
      expect(guard.accepted + rejectedTotal(guard)).toBe(sentWhileRunning);
      expect(refusedBars).toBe(sentOtherwise);
      const screened = emitted.filter((event) => event.type === 'BARS_SCREENED');
      expect(screened.reduce((sum, event) => sum + event.bars.length, 0)).toBe(guard.accepted);
      // The parent hears exactly what listeners hear.
      expect(reported).toEqual(screened);
      const refused = emitted.filter((event) => event.type === 'BARS_REFUSED');
      expect(refused.reduce((sum, event) => sum + event.count, 0)).toBe(sentOtherwise);
    },
  });

  // Every path ends in shutdown once STOP is sent, however often.
  actor.send({ type: 'STOP' });
  actor.send({ type: 'STOP' });
  expect(actor.getSnapshot().value).toBe('shutdown');
  actor.stop();
  recorder.stop();
}

describe('data guard model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(57);
  });

  it('reaches every state except the transient draining', () => {
    const reachable = new Set([...allStateIds(dataGuardMachine)].filter((id) => id !== 'draining'));
    expect(statesReached(paths)).toEqual(reachable);
  });

  it('treats an empty batch as a no-op that reports nothing (a self-loop the shortest paths skip)', () => {
    const emitted: DataGuardEmitted[] = [];
    const actor = createActor(dataGuardMachine, { input: {} }).start();
    actor.on('*', (event) => emitted.push(event));
    actor.send({ type: 'START' });
    const before = actor.getSnapshot().context;

    actor.send({ type: 'BARS', bars: [] });

    expect(actor.getSnapshot().context).toBe(before);
    expect(emitted).toEqual([]);
    actor.stop();
  });

  it.each(paths.map((path) => [describePath(path), path] as const))('replays %s against the real actor', async (_name, path) => {
    await replay(path);
  });
});
