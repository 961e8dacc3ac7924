import { once } from 'node:events';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { completeLines, runCli, sampleSlice, startCli } from '../support/replayFixture.js';

const lastJson = (stdout: string): { durability: string; bars: { resumedSkips: number } } => JSON.parse(stdout.trim().split('\n').at(-1) ?? '');

describe('aistock replay --durability none (research mode)', () => {
  it('refuses, after a SIGKILL, to resume the state dir in either mode (exit 2), saying to start fresh', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-research-cli-'));
    const bars = await sampleSlice(dir, 12_000);
    const stateDir = join(dir, 'state');
    const child = startCli(['replay', bars, '--state-dir', stateDir, '--durability', 'none', '--json']);
    const exited = once(child, 'exit');
    const checkpointed = async (): Promise<boolean> => readFile(join(stateDir, 'checkpoint.json')).then(() => true, () => false);
    // Mid-run: a checkpoint written and orders sent.
    while (!(await checkpointed()) || (await completeLines(join(stateDir, 'broker', 'orders.jsonl'))) < 20) {
      if (child.exitCode !== null) throw new Error('the replay ended before it could be killed');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill('SIGKILL');
    await exited;

    for (const durability of ['none', 'full']) {
      const resumed = await runCli(['replay', bars, '--state-dir', stateDir, '--durability', durability]);
      expect(resumed.code, resumed.stderr).toBe(2);
      expect(resumed.stderr).toMatch(/research-mode run \(durability none, started .*\) that did not end cleanly: .*start fresh with a new --state-dir/);
    }
  });

  it('records the run as not durable in the summary, and resumes a research run that ended normally', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-research-cli-'));
    const stateDir = join(dir, 'state');
    const first = await runCli(['replay', await sampleSlice(dir, 1_000), '--state-dir', stateDir, '--durability', 'none', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(lastJson(first.stdout).durability).toBe('none');
    const resumed = await runCli(['replay', await sampleSlice(dir, 2_000), '--state-dir', stateDir, '--durability', 'none']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain('durability none (research mode): nothing was fsynced');
  });
});
