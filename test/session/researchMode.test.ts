import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { createTradingSession, type Summary } from '../../src/session/createTradingSession.js';
import type { Durability } from '../../src/stateDir/durability.js';
import { NON_DURABLE_MARKER_FILE } from '../../src/stateDir/nonDurableRun.js';
import { buyOnBars, minuteBars } from '../support/sessionFixture.js';
import { countSyncs } from '../../src/testing/syncCounter.js';
import { startReportRecorder } from '../../src/report/reportRecorder.js';

const BARS = minuteBars(240);
// An order every 10th bar: 24 orders, each with its journal reservation, ledger line and fill.
const CUES = Array.from({ length: 24 }, (_, i) => i * 10 + 1);

async function newStateDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'aistock-research-'));
}

/** A replay session over `stateDir` with its own PaperBroker, checkpointing after every batch. */
function session(stateDir: string, durability: Durability) {
  return createTradingSession({
    stateDir,
    durability,
    strategy: buyOnBars(CUES),
    replay: true,
    checkpointIntervalMs: 0,
    clock: new ManualClock({ wallMs: Date.UTC(2025, 10, 3, 15), monoMs: 1_000 }),
    log: () => undefined,
  });
}

/**
 * Runs `bars` in batches of 30, recording the report as `aistock replay` does, and counts the
 * syncs made while the session runs (between start and stop).
 */
async function run(stateDir: string, durability: Durability, bars = BARS): Promise<{ summary: Summary; syncsWhileRunning: number; syncOpens: number }> {
  const s = session(stateDir, durability);
  const counter = await countSyncs();
  try {
    await s.start();
    const before = counter.syncs();
    const recorder = await startReportRecorder({ stateDir, session: s, durability, warn: (message) => expect.fail(message) });
    for (let i = 0; i < bars.length; i += 30) await s.ingest(bars.slice(i, i + 30));
    // The recording's last writes (the curve, the end line) before the session's own drain.
    expect(await recorder.finish({ summary: s.snapshot(), inputRejected: {} })).not.toBeNull();
    const syncsWhileRunning = counter.syncs() - before;
    const summary = await s.stop();
    return { summary, syncsWhileRunning, syncOpens: counter.syncOpens() };
  } finally {
    counter.restore();
  }
}

async function marker(stateDir: string): Promise<unknown> {
  const text = await readFile(join(stateDir, NON_DURABLE_MARKER_FILE), 'utf8').catch(() => null);
  return text === null ? null : (JSON.parse(text) as { data: unknown }).data;
}

describe('research mode (durability none)', () => {
  let restore: (() => void) | undefined;
  afterEach(() => restore?.());

  it('trades exactly as a durable run does, without one fsync or O_DSYNC write while it runs', async () => {
    const durable = await run(await newStateDir(), 'full');
    const research = await run(await newStateDir(), 'none');
    // The counter sees the durable run's syncs: journal, ledger and checkpoints.
    expect(durable.syncsWhileRunning + durable.syncOpens).toBeGreaterThan(24);
    expect(research.syncsWhileRunning).toBe(0);
    expect(research.syncOpens).toBe(0);
    expect(research.summary.orders.submitted).toBe(24);
    expect(research.summary.checkpoints.written).toBeGreaterThan(4);
    expect(research.summary.durability).toBe('none');
    expect(durable.summary.durability).toBe('full');
    expect(research.summary.portfolio).toEqual(durable.summary.portfolio);
    expect(research.summary.fills).toBe(durable.summary.fills);
  });

  it('marks the state dir as not durable, records a clean end, and resumes it in research mode without sending anything twice', async () => {
    const stateDir = await newStateDir();
    const first = await run(stateDir, 'none', BARS.slice(0, 120));
    expect(await marker(stateDir)).toMatchObject({ durability: 'none', endedCleanly: true });
    const resumed = await run(stateDir, 'none');
    expect(first.summary.orders.submitted + resumed.summary.orders.submitted).toBe(24);
    expect(resumed.summary.bars.resumedSkips).toBe(120);
    expect(await marker(stateDir)).toMatchObject({ endedCleanly: true });
  });

  it('resumes a research dir that ended cleanly with full durability, and removes its marker: the clean end synced the dir', async () => {
    const stateDir = await newStateDir();
    await run(stateDir, 'none', BARS.slice(0, 120));
    const resumed = await run(stateDir, 'full');
    expect(resumed.summary.orders.submitted).toBe(12);
    await expect(stat(join(stateDir, NON_DURABLE_MARKER_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a state dir whose marker is unreadable, and keeps refusing it at every later start, in either mode', async () => {
    const stateDir = await newStateDir();
    await writeFile(join(stateDir, NON_DURABLE_MARKER_FILE), 'not a marker');
    for (const durability of ['full', 'none'] as const) {
      const s = session(stateDir, durability);
      await expect(s.start()).rejects.toMatchObject({ code: 'STATE_DIR_NOT_DURABLE' });
      await s.stop().catch(() => undefined);
    }
  });
});
