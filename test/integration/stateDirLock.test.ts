import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { lockStateDir, StateDirLockedError } from '../../src/runtime/stateDirLock.js';

const fixture = join(import.meta.dirname, '../fixtures/holdStateDirLock.ts');
const children: ChildProcess[] = [];

function startHolder(stateDir: string): { child: ChildProcess; firstLine: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, stateDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const firstLine = once(lines, 'line').then(([line]) => String(line));
  return { child, firstLine };
}

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

describe('state dir lock', () => {
  it('refuses a second process and names the holder pid', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-lock-'));
    const holder = startHolder(dir);
    expect(await holder.firstLine).toBe(`locked ${holder.child.pid}`);

    const second = startHolder(dir);
    expect(await second.firstLine).toBe(`refused ${holder.child.pid}`);
    const [code] = await once(second.child, 'exit');
    expect(code).toBe(3);

    const error = await lockStateDir(dir).catch((e) => e);
    expect(error).toBeInstanceOf(StateDirLockedError);
    expect(error).toMatchObject({ code: 'STATE_DIR_LOCKED', holderPid: holder.child.pid });
    expect(error.message).toContain(`pid ${holder.child.pid}`);
  });

  it('takes over the lock of a holder killed with SIGKILL, without waiting for staleness', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-lock-'));
    const holder = startHolder(dir);
    expect(await holder.firstLine).toBe(`locked ${holder.child.pid}`);
    holder.child.kill('SIGKILL');
    await once(holder.child, 'exit');

    const started = performance.now();
    const lock = await lockStateDir(dir, { staleMs: 60_000 });
    expect(performance.now() - started).toBeLessThan(5_000);
    await lock.release();
  });

  it('can be taken again after release, and release is idempotent', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-lock-'));
    const first = await lockStateDir(dir);
    await expect(lockStateDir(dir)).rejects.toBeInstanceOf(StateDirLockedError);
    await first.release();
    await first.release();
    const second = await lockStateDir(dir);
    await second.release();
  });
});
