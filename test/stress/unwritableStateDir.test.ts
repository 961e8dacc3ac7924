import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atomicFileWriter } from '../../src/stateDir/stateFile.js';
import { readLedger, runCli, sampleSlice } from '../support/replayFixture.js';

/**
 * A full or read-only disk is a state, not a footnote: on a real size-limited file system (a
 * tmpfs the test mounts; it needs root, as CI has), `aistock replay` exits 5 saying what did not
 * persist, and once the disk is fixed the same command resumes to the clean run's result.
 */

const run = promisify(execFile);
let dir: string;
let bars: string;
let cannotMount: string | null = null;
const mounted: string[] = [];
let reference: { ids: string[]; portfolio: unknown };

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1) ?? '');
/** A fresh tmpfs of `size`, unmounted after the tests; `remount` changes its options. */
async function tmpfs(name: string, size: string) {
  const at = join(dir, name);
  await mkdir(at);
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at]);
  mounted.push(at);
  return { at, remount: (options: string) => run('mount', ['-o', `remount,${options}`, at]) };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-disk-'));
  bars = await sampleSlice(dir, 4_000);
  const clean = await runCli(['replay', bars, '--state-dir', join(dir, 'reference'), '--json']);
  expect(clean.code, clean.stderr).toBe(0);
  reference = { ids: (await readLedger(join(dir, 'reference'))).orders.map((o) => o.clientOrderId).sort(), portfolio: lastJson(clean.stdout).portfolio };
  try {
    await tmpfs('probe', '64k');
  } catch (error) {
    cannotMount = `cannot mount a tmpfs here (${String(error).split('\n')[0]}): needs root, as CI has`;
  }
}, 60_000);

afterAll(async () => {
  for (const at of mounted) await run('umount', [at]);
  await rm(dir, { recursive: true, force: true });
});

describe('a state dir on a disk that fills up or turns read-only', () => {
  it('exits 5 naming what did not persist when the disk fills, and resumes to the clean result once there is room', async (ctx) => {
    if (cannotMount !== null) return ctx.skip(cannotMount);
    const disk = await tmpfs('full', '96k');
    const stateDir = join(disk.at, 'state');
    const full = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
    expect(full.code, full.stderr).toBe(5);
    expect(full.stderr).toMatch(/could not be written: \d+ checkpoint writes failed, \d+ orders were refused/);
    expect(lastJson(full.stdout).checkpoints.failed).toBeGreaterThan(0);
    // What is on disk is a whole checkpoint or none: never a torn one put in place.
    const onDisk = await readFile(join(stateDir, 'checkpoint.json'), 'utf8').catch(() => null);
    if (onDisk !== null) expect(() => JSON.parse(onDisk) as unknown).not.toThrow();

    await disk.remount('size=20m');
    const resumed = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(lastJson(resumed.stdout).portfolio).toEqual(reference.portfolio);
    const ids = (await readLedger(stateDir)).orders.map((o) => o.clientOrderId);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(reference.ids);
  }, 120_000);

  it('refuses a file that does not fit with ENOSPC and leaves the old one whole (no short write renamed into place)', async (ctx) => {
    if (cannotMount !== null) return ctx.skip(cannotMount);
    const disk = await tmpfs('short', '64k');
    const path = join(disk.at, 'state.json');
    await writeFile(path, '{"old":true}');
    await expect(atomicFileWriter(path, JSON.stringify({ big: 'x'.repeat(200_000) }))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(await readFile(path, 'utf8')).toBe('{"old":true}');
    // No temp file is left behind to fill the disk further.
    expect((await run('ls', ['-A', disk.at])).stdout.trim().split('\n')).toEqual(['state.json']);
  });

  it('says EROFS, not "locked", for a read-only state dir, and resumes once it is writable again', async (ctx) => {
    if (cannotMount !== null) return ctx.skip(cannotMount);
    const disk = await tmpfs('readonly', '20m');
    const stateDir = join(disk.at, 'state');
    await mkdir(stateDir);
    await disk.remount('ro');
    try {
      const refused = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
      expect(refused.code, refused.stderr).toBe(5);
      expect(refused.stderr).toContain('EROFS');
      expect(refused.stderr).not.toContain('locked');
    } finally {
      await disk.remount('rw');
    }
    const resumed = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(lastJson(resumed.stdout).portfolio).toEqual(reference.portfolio);
  }, 120_000);
});
