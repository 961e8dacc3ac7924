import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LOCK_OWNER_FILE,
  lockStateDir,
  StateDirLockedElsewhereError,
  StateDirLockedError,
} from '../../src/stateDir/stateDirLock.js';

const fixtures = join(import.meta.dirname, '../fixtures');
const children: ChildProcess[] = [];

/** The lines a child prints, one `next()` at a time. */
function linesOf(child: ChildProcess): () => Promise<string> {
  const queue: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter === undefined) queue.push(line);
    else waiter(line);
  });
  return () => {
    const line = queue.shift();
    return line === undefined ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve(line);
  };
}

function startNode(fixture: string, stateDir: string): { child: ChildProcess; next: () => Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(fixtures, fixture), stateDir], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  return { child, next: linesOf(child) };
}

async function killed(child: ChildProcess): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** The owner file of a holder on this host, as the lock writes it, with fields changed. */
async function ownerFileHere(dir: string, change: Record<string, unknown>): Promise<void> {
  const netns = await readlink('/proc/self/ns/net');
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  const owner = { pid: process.ppid, host: hostname(), since: Date.UTC(2026, 0, 1), netns, bootId, ...change };
  await writeFile(join(dir, LOCK_OWNER_FILE), JSON.stringify(owner));
}

const tempDir = () => mkdtemp(join(tmpdir(), 'aistock-lock-'));

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

describe('state dir lock', () => {
  it('refuses a second process and names the holder pid', async () => {
    const dir = await tempDir();
    const holder = startNode('holdStateDirLock.ts', dir);
    expect(await holder.next()).toBe(`locked ${holder.child.pid}`);

    const second = startNode('holdStateDirLock.ts', dir);
    expect(await second.next()).toBe(`refused ${holder.child.pid}`);
    const [code] = await once(second.child, 'exit');
    expect(code).toBe(3);

    const error = await lockStateDir(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateDirLockedError);
    expect(error).toMatchObject({ code: 'STATE_DIR_LOCKED', holderPid: holder.child.pid, holderHost: hostname() });
    expect((error as Error).message).toContain(`pid ${holder.child.pid} on ${hostname()}`);
  });

  it('is taken at once after its holder was killed with SIGKILL: the kernel let go of it', async () => {
    const dir = await tempDir();
    const holder = startNode('holdStateDirLock.ts', dir);
    expect(await holder.next()).toBe(`locked ${holder.child.pid}`);
    await killed(holder.child);
    // The dead holder's owner file is still there; it does not matter.
    expect(JSON.parse(await readFile(join(dir, LOCK_OWNER_FILE), 'utf8'))).toMatchObject({ pid: holder.child.pid });

    const lock = await lockStateDir(dir);
    expect(JSON.parse(await readFile(join(dir, LOCK_OWNER_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('gives exactly one holder when 20 restarts start in the same millisecond after a SIGKILL, every time', async () => {
    const dir = await tempDir();
    const crashed = startNode('holdStateDirLock.ts', dir);
    expect(await crashed.next()).toBe(`locked ${crashed.child.pid}`);
    await killed(crashed.child);

    let racers = Array.from({ length: 20 }, () => startNode('raceStateDirLock.ts', dir));
    for (const racer of racers) expect(await racer.next()).toBe('ready');
    const rounds = 5;
    for (let round = 0; round < rounds; round += 1) {
      // Far enough ahead that every racer is spinning when the millisecond comes.
      const at = Date.now() + 300;
      for (const racer of racers) racer.child.stdin?.write(`go ${at}\n`);
      const answers = await Promise.all(racers.map((racer) => racer.next()));
      const winners = racers.filter((_, i) => answers[i]?.startsWith('locked'));
      expect(winners, `round ${round}: ${answers.join(', ')}`).toHaveLength(1);
      const [winner] = winners;
      if (winner === undefined) return;
      // Every loser names the winner.
      expect(answers.filter((answer) => answer === `refused ${winner.child.pid}`), answers.join(', ')).toHaveLength(19);
      // The winner dies holding the lock; a fresh process takes its place for the next round.
      await killed(winner.child);
      const fresh = startNode('raceStateDirLock.ts', dir);
      expect(await fresh.next()).toBe('ready');
      racers = [...racers.filter((racer) => racer !== winner), fresh];
    }
  }, 120_000);

  it('is not blocked by a holder that died and was never reaped (a zombie)', async () => {
    const dir = await tempDir();
    // `sleep` becomes the holder's parent and never waits for it, as a PID 1 without an init does.
    const script = `"$0" --import tsx "$1" "$2" & echo "holder $!"; exec sleep 600`;
    const parent = spawn('sh', ['-c', script, process.execPath, join(fixtures, 'holdStateDirLock.ts'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(parent);
    const next = linesOf(parent);
    const holderPid = Number((await next()).split(' ')[1]);
    expect(await next()).toBe(`locked ${holderPid}`);
    process.kill(holderPid, 'SIGKILL');
    // Dead and unreaped: a zombie, every thread gone (until the last one exits, the process still holds its files).
    const status = async () => (await readFile(`/proc/${holderPid}/status`, 'utf8')).match(/^(State|Threads):\s+(\S+)/gm)?.join(' ');
    await expect.poll(status).toMatch(/State:\s+Z Threads:\s+1$/);
    // A zombie still answers kill(pid, 0): a liveness check by pid would call it alive.
    expect(() => process.kill(holderPid, 0)).not.toThrow();

    const lock = await lockStateDir(dir);
    await lock.release();
  });

  it('is not blocked by an owner file whose pid now belongs to an unrelated live process', async () => {
    const dir = await tempDir();
    await ownerFileHere(dir, { pid: process.ppid });
    const lock = await lockStateDir(dir);
    await lock.release();
  });

  it('takes over an owner file left by an earlier boot of this host', async () => {
    const dir = await tempDir();
    await ownerFileHere(dir, { bootId: 'an-earlier-boot', netns: 'net:[1]' });
    const lock = await lockStateDir(dir);
    await lock.release();
  });

  it.each([
    ['another host', { host: 'trader-2.example' }],
    ['another network namespace (container) of this host', { netns: 'net:[1]' }],
  ])('never takes over a lock held from %s: it explains host, pid and age, and leaves the file', async (_where, change) => {
    const dir = await tempDir();
    await ownerFileHere(dir, { pid: 4242, ...change });
    const before = await readFile(join(dir, LOCK_OWNER_FILE), 'utf8');

    const error = await lockStateDir(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateDirLockedElsewhereError);
    expect(error).toMatchObject({ code: 'STATE_DIR_LOCKED_ELSEWHERE', holderPid: 4242 });
    expect((error as Error).message).toMatch(/pid 4242 on .*since 2026-01-01T00:00:00\.000Z.* s old\)\. If it is gone for good, delete .*lock\.owner\.json/);
    expect(await readFile(join(dir, LOCK_OWNER_FILE), 'utf8')).toBe(before);

    // Deleting the file, as the message says, is how a person hands the dir over.
    await rm(join(dir, LOCK_OWNER_FILE));
    const lock = await lockStateDir(dir);
    await lock.release();
  });

  it('can be taken again after release, and release is idempotent', async () => {
    const dir = await tempDir();
    const first = await lockStateDir(dir);
    await expect(lockStateDir(dir)).rejects.toBeInstanceOf(StateDirLockedError);
    await first.release();
    await first.release();
    await expect(readFile(join(dir, LOCK_OWNER_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
    const second = await lockStateDir(dir);
    await second.release();
  });
});
