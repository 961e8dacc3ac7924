import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCK_OWNER_FILE, lockStateDir } from '../../src/stateDir/stateDirLock.js';
import { completeLines, readLedger, runCli, sampleSlice, startCli } from '../support/replayFixture.js';

/**
 * Starts a replay and resolves once it has written a checkpoint (a batch of 4,096 bars is done)
 * and sent `orders` orders: it is mid-run, not starting up.
 */
async function replayUnderWay(orders: number) {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-signal-'));
  const bars = await sampleSlice(dir, 12_000);
  const stateDir = join(dir, 'state');
  const child = startCli(['replay', bars, '--state-dir', stateDir, '--json']);
  const output = collect(child);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const checkpointed = async (): Promise<boolean> => readFile(join(stateDir, 'checkpoint.json')).then(() => true, () => false);
  while (!(await checkpointed()) || (await completeLines(join(stateDir, 'broker', 'orders.jsonl'))) < orders) {
    if (child.exitCode !== null) throw new Error(`the replay ended before ${orders} orders: ${output.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { bars, stateDir, run: { child, output, exited } };
}

function collect(child: ChildProcess) {
  const output = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  return output;
}

describe('aistock replay and signals', () => {
  it('drains on SIGTERM: exits 0 with the summary so far, and a second run resumes without sending anything twice', async () => {
    const { bars, stateDir, run } = await replayUnderWay(60);
    run.child.kill('SIGTERM');
    const [code] = await run.exited;
    expect(code, run.output.stderr).toBe(0);
    expect(run.output.stderr).toContain('stopping');
    const interrupted = JSON.parse(run.output.stdout.trim().split('\n').at(-1) ?? '');
    expect(interrupted.orders.submitted).toBeGreaterThanOrEqual(5);

    const resumed = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const summary = JSON.parse(resumed.stdout.trim().split('\n').at(-1) ?? '');
    // The bars the first run processed are skipped, not decided again.
    expect(summary.bars.resumedSkips).toBeGreaterThan(0);
    const ids = (await readLedger(stateDir)).orders.map((o) => o.clientOrderId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('exits 130 on a second signal once the checkpoint is flushed, and the state dir resumes from it', async () => {
    const { bars, stateDir, run } = await replayUnderWay(60);
    // Two kinds, back to back: two pending signals of one kind would reach the process as one.
    run.child.kill('SIGTERM');
    run.child.kill('SIGINT');
    const [code] = await run.exited;
    expect(code, run.output.stderr).toBe(130);
    expect(run.output.stderr).toContain('flushing the checkpoint');
    expect(run.output.stderr).not.toContain('did not reach the disk');
    const checkpoint = JSON.parse(await readFile(join(stateDir, 'checkpoint.json'), 'utf8'));
    expect(checkpoint).toBeTypeOf('object');

    const resumed = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout.trim().split('\n').at(-1) ?? '').bars.resumedSkips).toBeGreaterThan(0);
    const ids = (await readLedger(stateDir)).orders.map((o) => o.clientOrderId);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

/** How long a signalled command may take to exit. */
const EXIT_DEADLINE_MS = 5_000;

/** Whether process `pid` holds `path` open (Linux: its /proc fd links). */
function holdsOpen(pid: number, path: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/**
 * Starts `aistock <command> <fifo> …` on a FIFO no one writes to, and resolves once the command
 * holds the FIFO open (or, if it never does — a read stuck in open(2) — after 10 s), then sends `signal`.
 * Resolves with how it exited and how long after the signal.
 */
async function signalWhileWaitingOnFifo(command: 'replay' | 'bars', signal: NodeJS.Signals) {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-fifo-'));
  const fifo = join(dir, 'bars.csv');
  execFileSync('mkfifo', [fifo]);
  const stateDir = join(dir, 'state');
  const child = startCli(command === 'replay' ? ['replay', fifo, '--state-dir', stateDir, '--json'] : ['bars', fifo, '--timeframe', '1m']);
  const output = collect(child);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const waitingSince = Date.now();
  while (!holdsOpen(child.pid ?? -1, fifo) && Date.now() - waitingSince < 10_000) {
    if (child.exitCode !== null) throw new Error(`aistock ${command} ended before the signal: ${output.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const signalledAt = Date.now();
  child.kill(signal);
  const deadline = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), EXIT_DEADLINE_MS));
  const outcome = await Promise.race([exited, deadline]);
  if (outcome === 'hung') child.kill('SIGKILL');
  return { outcome, afterMs: Date.now() - signalledAt, output, stateDir };
}

describe('signals while the input is a FIFO no one writes to yet', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('aistock replay exits 0 on %s with the summary, and releases the state dir', async (signal) => {
    const { outcome, afterMs, output, stateDir } = await signalWhileWaitingOnFifo('replay', signal);

    expect(outcome, `no exit ${EXIT_DEADLINE_MS} ms after ${signal}: ${output.stderr}`).toEqual([0, null]);
    expect(afterMs).toBeLessThan(EXIT_DEADLINE_MS);
    expect(output.stderr).toContain('stopping');
    const summary = JSON.parse(output.stdout.trim().split('\n').at(-1) ?? '');
    expect(summary.bars).toMatchObject({ accepted: 0, rejected: {} });
    expect(readdirSync(stateDir)).not.toContain(LOCK_OWNER_FILE);
    expect(readdirSync(stateDir)).not.toContain('lock');
    // Nothing holds it: this process can take it at once.
    await (await lockStateDir(stateDir)).release();
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('aistock bars ends at once on %s, killed by it (it has no handler)', async (signal) => {
    const { outcome, afterMs, output } = await signalWhileWaitingOnFifo('bars', signal);

    expect(outcome, `no exit ${EXIT_DEADLINE_MS} ms after ${signal}: ${output.stderr}`).toEqual([null, signal]);
    expect(afterMs).toBeLessThan(EXIT_DEADLINE_MS);
  });
});
