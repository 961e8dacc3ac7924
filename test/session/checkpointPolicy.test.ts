import { describe, expect, it } from 'vitest';
import { createCheckpointer } from '../../src/checkpointer/checkpointer.js';
import type { CheckpointStore } from '../../src/checkpointer/checkpointStore.js';
import { ManualClock } from '../../src/common/clock.js';
import { createPortfolio } from '../../src/portfolio/portfolio.js';
import { createRiskState } from '../../src/risk/risk.js';
import { createCheckpointPolicy, MAX_MAIN_THREAD_SHARE } from '../../src/session/checkpointPolicy.js';
import { FillCounts } from '../../src/session/fillCounts.js';
import { createPipeline, type SessionState } from '../../src/session/sessionPipeline.js';
import { buyOnBars } from '../support/sessionFixture.js';

const INTERVAL_MS = 250;
const state: SessionState = {
  pipeline: createPipeline(buyOnBars([])),
  portfolio: createPortfolio({ initialCash: '100000' }),
  risk: createRiskState(),
  appliedFills: FillCounts.EMPTY,
  unsettled: {},
};

/** A policy whose checkpointer writes to a store that holds the main thread `writeMs` (on the manual clock) before its first await. */
function pacedPolicy(writeMs: () => number) {
  const clock = new ManualClock({ wallMs: Date.UTC(2025, 10, 3, 15), monoMs: 0 });
  const writtenAt: number[] = [];
  const store: CheckpointStore = {
    write: async () => {
      clock.advance(writeMs());
      writtenAt.push(clock.monoMs());
    },
    read: async () => ({ status: 'missing' }),
    setAside: async () => 'nowhere',
  };
  const policy = createCheckpointPolicy({
    checkpointer: () => checkpointer,
    ids: { sessionId: 'test', strategyId: 'cue' },
    intervalMs: INTERVAL_MS,
    clock,
    riskClockOf: () => 0,
  });
  const checkpointer = createCheckpointer({ store: policy.through(store, () => undefined) });
  checkpointer.start();
  /** An unforced save at `atMs`, answered with whether it was written. */
  const saveAt = async (atMs: number): Promise<boolean> => {
    clock.advance(atMs - clock.monoMs());
    const before = writtenAt.length;
    policy.save(state, false);
    await checkpointer.settled(1_000);
    return writtenAt.length > before;
  };
  return { saveAt, checkpointer };
}

describe('the checkpoint policy', () => {
  it('writes at most one unforced checkpoint per interval when writing is cheap', async () => {
    const { saveAt, checkpointer } = pacedPolicy(() => 0);
    expect(await saveAt(0)).toBe(true);
    expect(await saveAt(INTERVAL_MS - 1)).toBe(false);
    expect(await saveAt(INTERVAL_MS)).toBe(true);
    await checkpointer.stop();
  });

  it('stretches the interval to keep slow writes under a tenth of the main thread', async () => {
    // Serialising takes 40 ms: the next unforced save waits 400 ms, not 250.
    const { saveAt, checkpointer } = pacedPolicy(() => 40);
    expect(MAX_MAIN_THREAD_SHARE).toBe(0.1);
    expect(await saveAt(0)).toBe(true);
    expect(await saveAt(INTERVAL_MS + 50)).toBe(false);
    expect(await saveAt(399)).toBe(false);
    expect(await saveAt(400)).toBe(true);
    await checkpointer.stop();
  });

  it('goes back to the interval once writes are cheap again', async () => {
    let writeMs = 40;
    const { saveAt, checkpointer } = pacedPolicy(() => writeMs);
    expect(await saveAt(0)).toBe(true);
    writeMs = 0;
    expect(await saveAt(400)).toBe(true);
    expect(await saveAt(400 + INTERVAL_MS)).toBe(true);
    await checkpointer.stop();
  });
});
