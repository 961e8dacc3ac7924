import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimulatedClock, waitFor } from 'xstate';
import { beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ManualClock } from '../../src/common/clock.js';
import { CheckpointerFailedError, createCheckpointer, CheckpointerStoppedError, type CheckpointerOptions } from '../../src/checkpointer/checkpointer.js';
import { fileCheckpointStore, type CheckpointStore } from '../../src/checkpointer/checkpointStore.js';
import { FaultyWriter } from '../../src/testing/faultyWriter.js';

const snapshotSchema = z.object({ n: z.number() });
let dir: string;
let writer: FaultyWriter;
let store: CheckpointStore;
let timers: SimulatedClock;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-checkpointer-'));
  writer = new FaultyWriter();
  store = fileCheckpointStore({ dir, clock: new ManualClock(), writer: writer.write });
  timers = new SimulatedClock();
});

function checkpointer(config: CheckpointerOptions['config'] = {}) {
  return createCheckpointer({ store, timers, config: { retryBaseMs: 10, retryMaxMs: 40, drainTimeoutMs: 1_000, ...config } });
}

async function onDisk(key: string): Promise<number | undefined> {
  const read = await store.read(key, snapshotSchema);
  return read.status === 'ok' ? read.data.n : undefined;
}

describe('checkpointer', () => {
  it('writes the newest snapshot of each key', async () => {
    const cp = checkpointer();
    cp.start();
    cp.save('session', { n: 1 });
    cp.save('session', { n: 2 });
    cp.save('portfolio', { n: 7 });
    await cp.stop();
    expect([await onDisk('session'), await onDisk('portfolio')]).toEqual([2, 7]);
  });

  it('returns the same promise from a second stop(), and both settle', async () => {
    const cp = checkpointer();
    cp.start();
    cp.save('session', { n: 1 });
    const first = cp.stop();
    const second = cp.stop();
    expect(second).toBe(first);
    const report = await first;
    expect(report).toMatchObject({ written: 1, unpersistedKeys: [] });
    expect(cp.actor.getSnapshot().matches({ lifecycle: 'shutdown' })).toBe(true);
  });

  it('settled() answers false while a write is held past the deadline, and true once it is on disk', async () => {
    const cp = checkpointer();
    cp.start();
    writer.hold();
    cp.save('session', { n: 1 });
    expect(await cp.settled(30)).toBe(false);
    writer.release();
    expect(await cp.settled(5_000)).toBe(true);
    expect(await onDisk('session')).toBe(1);
    await cp.stop();
  });

  it('ignores a second STOP while draining', async () => {
    const cp = checkpointer();
    cp.start();
    writer.hold();
    cp.save('session', { n: 1 });
    cp.flush();
    cp.actor.send({ type: 'STOP' });
    cp.actor.send({ type: 'STOP' });
    expect(cp.actor.getSnapshot().value).toEqual({ lifecycle: 'draining', writer: 'writing' });
    writer.release();
    await cp.stop();
    expect(await onDisk('session')).toBe(1);
  });

  it('survives a writer that throws (worker crash) and retries the pending snapshot', async () => {
    const cp = checkpointer();
    cp.start();
    writer.throwBug(1);
    cp.save('session', { n: 1 });
    cp.save('session', { n: 2 });
    await waitFor(cp.actor, (s) => s.matches({ writer: 'backingOff' }));
    expect(cp.actor.getSnapshot().context.lastError).toContain('writer bug');
    expect(cp.actor.getSnapshot().context.pending.session?.snapshot).toEqual({ n: 2 });
    cp.save('session', { n: 3 });
    cp.flush();
    timers.increment(10);
    await waitFor(cp.actor, (s) => s.matches({ lifecycle: 'running', writer: 'waiting' }));
    expect(await onDisk('session')).toBe(3);
    expect(await cp.stop()).toMatchObject({ failed: 1, written: 1, unpersistedKeys: [] });
  });

  it('coalesces 10,000 SAVEs offered during a slow write into at most two writes', async () => {
    const cp = checkpointer();
    cp.start();
    writer.hold();
    cp.save('session', { n: 0 });
    await waitFor(cp.actor, (s) => s.matches({ writer: 'writing' }));
    for (let n = 1; n <= 10_000; n += 1) cp.save('session', { n });
    cp.flush();
    expect(Object.keys(cp.actor.getSnapshot().context.pending)).toEqual(['session']);
    const stopped = cp.stop();
    writer.release();
    const report = await stopped;
    expect(writer.written.length).toBeLessThanOrEqual(2);
    expect(report).toMatchObject({ saves: 10_001, unpersistedKeys: [] });
    expect(await onDisk('session')).toBe(10_000);
  });

  it('reports CHECKPOINT_DEGRADED after repeated disk errors, keeps the snapshot, and reports recovery', async () => {
    const cp = checkpointer({ degradeAfter: 3 });
    const events: string[] = [];
    cp.on('CHECKPOINT_DEGRADED', (e) => events.push(`${e.type}:${e.consecutiveFailures}:${e.error.includes('EIO')}`));
    cp.on('CHECKPOINT_RECOVERED', (e) => events.push(e.type));
    cp.start();
    writer.failWith('EIO');
    cp.save('session', { n: 5 });
    for (const delay of [10, 20]) {
      await waitFor(cp.actor, (s) => s.matches({ writer: 'backingOff' }));
      timers.increment(delay);
    }
    await waitFor(cp.actor, (s) => s.context.consecutiveFailures === 3);
    expect(events).toEqual(['CHECKPOINT_DEGRADED:3:true']);
    expect(cp.actor.getSnapshot().context.pending.session?.snapshot).toEqual({ n: 5 });
    writer.heal();
    timers.increment(40);
    await waitFor(cp.actor, (s) => s.matches({ lifecycle: 'running', writer: 'waiting' }));
    expect(events).toEqual(['CHECKPOINT_DEGRADED:3:true', 'CHECKPOINT_RECOVERED']);
    expect(await onDisk('session')).toBe(5);
    await cp.stop();
  });

  it.each(['ENOSPC', 'EACCES'] as const)('retries %s with backoff until the disk comes back', async (code) => {
    const cp = checkpointer();
    cp.start();
    writer.failWith(code, 2);
    cp.save('session', { n: 9 });
    await waitFor(cp.actor, (s) => s.matches({ writer: 'backingOff' }));
    timers.increment(10);
    await waitFor(cp.actor, (s) => s.context.consecutiveFailures === 2);
    timers.increment(20);
    await waitFor(cp.actor, (s) => s.matches({ lifecycle: 'running', writer: 'waiting' }));
    expect(await onDisk('session')).toBe(9);
    expect(cp.actor.getSnapshot().context.stats).toMatchObject({ failed: 2, written: 1 });
    await cp.stop();
  });

  it('completes shutdown after the deadline when writes keep failing, naming the unwritten keys', async () => {
    const cp = checkpointer({ drainTimeoutMs: 500 });
    cp.start();
    cp.save('portfolio', { n: 1 });
    await waitFor(cp.actor, (s) => s.matches({ lifecycle: 'running', writer: 'waiting' }));
    writer.failWith('EIO');
    cp.save('session', { n: 2 });
    cp.save('portfolio', { n: 3 });
    const stopped = cp.stop();
    await waitFor(cp.actor, (s) => s.matches({ lifecycle: 'draining', writer: 'backingOff' }));
    timers.increment(500);
    const report = await stopped;
    expect(report.unpersistedKeys.sort()).toEqual(['portfolio', 'session']);
    expect(report.lastError).toContain('EIO');
    expect(await onDisk('portfolio')).toBe(1);
  });

  it('refuses a save once its actor has died, instead of sending it to a dead actor, and stop() reports the death', async () => {
    const cp = checkpointer();
    cp.start();
    // A key whose string conversion throws makes the actor's own code throw: a bug, not an I/O error.
    const poisoned = { toString: (): string => { throw new Error('bad key'); } };
    cp.actor.send({ type: 'SAVE', key: poisoned as unknown as string, snapshot: 1 });
    expect(cp.actor.getSnapshot().status).toBe('error');
    expect(() => cp.save('session', { n: 1 })).toThrow(CheckpointerFailedError);
    await expect(cp.stop()).rejects.toThrow('bad key');
  });

  it('refuses a SAVE after shutdown with a typed error and counts it', async () => {
    const cp = checkpointer();
    const refused: string[] = [];
    cp.on('SAVE_REFUSED', (e) => refused.push(e.key));
    cp.start();
    await cp.stop();
    expect(() => cp.save('session', { n: 1 })).toThrow(CheckpointerStoppedError);
    cp.actor.send({ type: 'SAVE', key: 'late', snapshot: { n: 2 } });
    expect(refused).toEqual(['late']);
    expect(cp.actor.getSnapshot().context.stats.refused).toBe(1);
    expect(await onDisk('late')).toBeUndefined();
  });

  it('writes snapshots queued before start once started', async () => {
    const cp = checkpointer();
    cp.save('session', { n: 4 });
    cp.flush();
    expect(cp.actor.getSnapshot().context.pending.session?.snapshot).toEqual({ n: 4 });
    expect(writer.attempts).toEqual([]);
    cp.start();
    await waitFor(cp.actor, (s) => s.matches({ lifecycle: 'running', writer: 'waiting' }));
    expect(await onDisk('session')).toBe(4);
    await cp.stop();
  });

  it('stops from idle without writing, reporting queued snapshots as unpersisted', async () => {
    const cp = checkpointer();
    cp.save('session', { n: 1 });
    const report = await cp.stop();
    expect(cp.actor.getSnapshot().matches({ lifecycle: 'shutdown' })).toBe(true);
    expect(writer.attempts).toEqual([]);
    expect(report.unpersistedKeys).toEqual(['session']);
  });

  it('rejects a key that cannot be a file name', () => {
    const cp = checkpointer();
    expect(() => cp.save('../escape', {})).toThrow(/INVALID_CHECKPOINT_KEY|must match/);
  });
});
