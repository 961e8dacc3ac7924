import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimulatedClock, type EventFromLogic, type SnapshotFrom } from 'xstate';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkpointerMachine } from '../../machines/checkpointer.machine.js';
import { retryDelayMs } from '../../src/checkpointer/checkpointQueue.js';
import { ManualClock } from '../../src/common/clock.js';
import { createCheckpointer, type CheckpointerReport } from '../../src/checkpointer/checkpointer.js';
import { fileCheckpointStore } from '../../src/checkpointer/checkpointStore.js';
import { FaultyWriter } from '../../src/testing/faultyWriter.js';
import { allStateIds, modelPaths, replayPath, statesReached, type ModelPath } from '../../src/testing/modelTesting.js';

type ModelEvent = EventFromLogic<typeof checkpointerMachine>;

const config = { degradeAfter: 2, retryBaseMs: 10, retryMaxMs: 20, drainTimeoutMs: 1_000 };
const KEYS = ['session', 'portfolio'] as const;

// Model events: the machine's own, plus the invoked writer's outcomes and the timers.
const allEvents = [
  { type: 'START' },
  { type: 'STOP' },
  ...KEYS.map((key) => ({ type: 'SAVE', key, snapshot: 'next' })),
  { type: 'xstate.done.actor.writer' },
  { type: 'xstate.error.actor.writer', error: 'EIO' },
  { type: 'xstate.error.actor.writer', error: 'bug' },
  { type: 'xstate.after.retryBackoff.checkpointer.writer.backingOff' },
  { type: 'xstate.after.drainTimeout.checkpointer.lifecycle.draining' },
] as unknown as ModelEvent[];

// Backoff (≤ 20 ms) is far shorter than the drain deadline (1 s), so while the writer backs
// off, its retry always fires first: the deadline can only end a drain during a write.
const events = (snapshot: SnapshotFrom<typeof checkpointerMachine>): ModelEvent[] =>
  snapshot.matches({ writer: 'backingOff' }) ? allEvents.filter((e) => !e.type.includes('drainTimeout')) : allEvents;

const paths = modelPaths(checkpointerMachine, {
  events,
  input: config,
  serializeState: (s) =>
    JSON.stringify([
      s.value,
      Object.keys(s.context.pending).sort(),
      Math.min(s.context.consecutiveFailures, config.degradeAfter),
      s.context.degraded,
    ]),
});

const snapshotSchema = z.object({ n: z.number() });

async function replay(path: ModelPath<ModelEvent>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-model-cp-'));
  const writer = new FaultyWriter().hold();
  const timers = new SimulatedClock();
  const store = fileCheckpointStore({ dir, clock: new ManualClock(), writer: writer.write });
  const cp = createCheckpointer({ store, timers, config });
  const newest = new Map<string, number>();
  let counter = 0;
  let stopped: Promise<CheckpointerReport> | undefined;

  const finishWrite = (fail: 'EIO' | 'bug' | null): void => {
    if (fail === 'EIO') writer.failWith('EIO', 1);
    if (fail === 'bug') writer.throwBug(1);
    writer.release().hold();
  };

  await replayPath(path, {
    actor: cp.actor,
    cause: (event) => {
      const e = event as { type: string; key?: string; error?: 'EIO' | 'bug' };
      switch (true) {
        case e.type === 'SAVE': {
          counter += 1;
          newest.set(e.key ?? '', counter);
          cp.save(e.key ?? '', { n: counter });
          return;
        }
        case e.type === 'START':
          return cp.start();
        case e.type === 'STOP':
          stopped = cp.stop();
          return;
        case e.type.startsWith('xstate.done.actor'):
          return finishWrite(null);
        case e.type.startsWith('xstate.error.actor'):
          return finishWrite(e.error ?? 'EIO');
        case e.type.includes('retryBackoff'): {
          const failures = cp.actor.getSnapshot().context.consecutiveFailures;
          return timers.increment(retryDelayMs(failures, config.retryBaseMs, config.retryMaxMs));
        }
        case e.type.includes('drainTimeout'):
          return timers.increment(config.drainTimeoutMs);
        default:
          throw new Error(`no real cause for ${e.type}`);
      }
    },
    // Nothing persisted is lost: the newest snapshot of every key is on disk or still pending.
    checkInvariants: async () => {
      const { context } = cp.actor.getSnapshot();
      for (const [key, n] of newest) {
        const pending = (context.pending[key]?.snapshot as { n: number } | undefined)?.n;
        if (pending === n) continue;
        const read = await store.read(key, snapshotSchema);
        const onDisk = read.status === 'ok' ? read.data.n : undefined;
        const givenUp = cp.actor.getSnapshot().matches({ lifecycle: 'shutdown' }) && context.unpersistedKeys.includes(key);
        expect(onDisk === n || givenUp, `${key}: newest ${n}, pending ${pending}, disk ${onDisk}`).toBe(true);
      }
    },
  });

  // Every path ends, once the disk works and time passes, in shutdown with stop() settled.
  writer.heal().release();
  stopped ??= cp.stop();
  for (let i = 0; i < 100 && !cp.actor.getSnapshot().matches({ lifecycle: 'shutdown' }); i += 1) {
    timers.increment(config.retryMaxMs);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const report = await stopped;
  expect(cp.actor.getSnapshot().matches({ lifecycle: 'shutdown' })).toBe(true);
  for (const [key, n] of newest) {
    const read = await store.read(key, snapshotSchema);
    const persisted = read.status === 'ok' && read.data.n === n;
    expect(persisted || report.unpersistedKeys.includes(key), `${key} lost`).toBe(true);
  }
}

describe('checkpointer model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(60);
  });

  it('reaches every state of the machine', () => {
    expect(statesReached(paths)).toEqual(allStateIds(checkpointerMachine));
  });

  it.each(paths.map((path) => [path.description, path] as const))('replays %s against the real actor', async (_name, path) => {
    await replay(path);
  });
});
