import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/testing/seededRandom.js';
import { completeLines, ledgerBook, readLedger, runCli, sampleSlice, startCli } from '../support/replayFixture.js';

/**
 * Exactly once after any restart (real processes, real files): resumed after long downtime, with
 * the journal lost or damaged, or with the checkpoint gone, a replay sends exactly the orders of
 * one uninterrupted run — none twice — and ends with its cash and positions, which equal the
 * broker's own fills, with no reconciliation difference.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

interface Reference {
  ids: string[];
  portfolio: unknown;
}

let dir: string;
let bars: string;
let reference: Reference;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-restart-'));
  bars = await sampleSlice(dir, 12_000);
  const run = await runCli(['replay', bars, '--state-dir', join(dir, 'reference'), '--json']);
  expect(run.code, run.stderr).toBe(0);
  const ledger = await readLedger(join(dir, 'reference'));
  expect(ledger.orders.length).toBeGreaterThan(100);
  reference = { ids: ledger.orders.map((o) => o.clientOrderId).sort(), portfolio: lastJson(run.stdout).portfolio };
}, 60_000);

function lastJson(stdout: string) {
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '');
}

/**
 * A replay with the wall clock `offsetMs` ahead, SIGKILLed once the broker holds `killAfter`
 * orders (and, with `afterCheckpoint`, once a checkpoint is on disk).
 */
async function killedRun(stateDir: string, killAfter: number, offsetMs: number, extraMs: number, afterCheckpoint = false): Promise<number> {
  const ledgerFile = join(stateDir, 'broker', 'orders.jsonl');
  const child = startCli(['replay', bars, '--state-dir', stateDir, '--json'], { AISTOCK_CLOCK_OFFSET_MS: String(offsetMs) });
  const exited = once(child, 'exit');
  const checkpointed = async () => !afterCheckpoint || (await stat(join(stateDir, 'checkpoint.json')).then(() => true, () => false));
  const watcher = setInterval(() => {
    void Promise.all([completeLines(ledgerFile), checkpointed()]).then(([sent, hasCheckpoint]) => {
      if (sent >= killAfter && hasCheckpoint) setTimeout(() => child.kill('SIGKILL'), extraMs);
    });
  }, 3);
  const [code, signal] = await exited;
  clearInterval(watcher);
  expect({ code, signal }, `the run was to be killed after order ${killAfter}`).toEqual({ code: null, signal: 'SIGKILL' });
  return completeLines(ledgerFile);
}

/** Resumes to the end and checks the run against the reference, the broker's ledger and the reconciliation. */
async function expectCleanResult(stateDir: string, offsetMs: number) {
  const final = await runCli(['replay', bars, '--state-dir', stateDir, '--json'], { AISTOCK_CLOCK_OFFSET_MS: String(offsetMs) });
  expect(final.code, final.stderr).toBe(0);
  const summary = lastJson(final.stdout);
  const ledger = await readLedger(stateDir);
  const ids = ledger.orders.map((o) => o.clientOrderId);
  // No client order id reached the market twice, and exactly the uninterrupted run's did.
  expect(new Set(ids).size).toBe(ids.length);
  expect([...ids].sort()).toEqual(reference.ids);
  // The same cash and positions as the uninterrupted run, which the broker's own fills give too.
  expect(summary.portfolio).toEqual(reference.portfolio);
  const book = ledgerBook('100000', ledger.fills);
  expect(summary.portfolio.cash).toBe(book.cash);
  const positions = Object.fromEntries(Object.entries(summary.portfolio.positions as Record<string, { qty: string }>).map(([s, p]) => [s, p.qty]));
  expect(positions).toEqual(book.positions);
  // Nothing was explained away: no difference, no adopted position, at start or stop.
  expect(summary.reconciled).toMatchObject({ differences: 0, adoptedFills: 0 });
  expect(summary.reconciliation.map((r: { at: string; differences: unknown[] }) => [r.at, r.differences])).toEqual([
    ['start', []],
    ['stop', []],
  ]);
  return summary;
}

describe('exactly once after any restart', () => {
  it(
    'resumes after downtimes of 6 minutes to 30 days, SIGKILLed mid-run each time, with exactly the uninterrupted run',
    async () => {
      const stateDir = join(dir, 'downtime');
      const random = seededRandom(20261201);
      // Each resume happens this much later than the start of the first run (the journal's old TTL was 5 minutes).
      const downtimes = [0, 6 * MINUTE, HOUR, DAY, 3 * DAY, 30 * DAY];
      const sentCounts: number[] = [];
      for (const offsetMs of downtimes) {
        const sentBefore = await completeLines(join(stateDir, 'broker', 'orders.jsonl'));
        sentCounts.push(await killedRun(stateDir, sentBefore + 5 + Math.floor(random() * 30), offsetMs, Math.floor(random() * 20)));
      }
      // Every kill hit a run with its orders half sent.
      expect(sentCounts.every((sent) => sent > 0 && sent < reference.ids.length)).toBe(true);
      await expectCleanResult(stateDir, 31 * DAY);
    },
    240_000,
  );

  it('lets exactly one of four replays restarted together after a SIGKILL run; the others exit 3 naming it', async () => {
    const stateDir = join(dir, 'racing');
    await killedRun(stateDir, 20, 0, 0);
    // The bars come through a FIFO that gets a writer only once the losers are out, so the
    // winner still holds the state dir while the others try it, however the four are scheduled.
    const fifo = join(dir, 'racing-bars.csv');
    await promisify(execFile)('mkfifo', [fifo]);
    const children = Array.from({ length: 4 }, () => startCli(['replay', fifo, '--state-dir', stateDir, '--json']));
    const stderr = children.map((child) => {
      let text = '';
      child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.stdout?.resume();
      return () => text;
    });
    const exits = children.map((child) => once(child, 'exit').then(([code]) => code as number | null));
    const finished: (number | null | undefined)[] = children.map(() => undefined);
    exits.forEach((exit, i) => void exit.then((code) => (finished[i] = code)));
    await expect.poll(() => finished.filter((code) => code === 3).length, { timeout: 30_000 }).toBe(3);
    await writeFile(fifo, await readFile(bars));
    const codes = await Promise.all(exits);
    expect([...codes].sort()).toEqual([0, 3, 3, 3]);
    for (const [i, code] of codes.entries()) {
      if (code === 3) expect(stderr[i]?.()).toMatch(/locked by another process \(pid \d+ on /);
    }
    await expectCleanResult(stateDir, 0);
  }, 60_000);

  describe('with the journal or checkpoint lost or damaged after a SIGKILL', () => {
    let crashed: string;
    beforeAll(async () => {
      crashed = join(dir, 'crashed');
      // Past its first checkpoint, so both "the checkpoint is there" and "it is gone" are tried.
      await killedRun(crashed, Math.floor(reference.ids.length / 3), 0, 0, true);
    }, 60_000);

    // [what, how, the reason the checkpoint is set aside for (null: it is not)]
    const damage: [string, (stateDir: string) => Promise<void>, string | null][] = [
      ['emptied', (d) => writeFile(join(d, 'orders.journal'), ''), null],
      ['deleted', (d) => rm(join(d, 'orders.journal')), null],
      ['header only', async (d) => writeFile(join(d, 'orders.journal'), `${(await readFile(join(d, 'orders.journal'), 'utf8')).split('\n')[0]}\n`), null],
      [
        'a flipped byte mid-file',
        async (d) => {
          const bytes = await readFile(join(d, 'orders.journal'));
          const at = Math.floor(bytes.length / 2);
          bytes[at] = (bytes[at] ?? 0) ^ 0x04;
          await writeFile(join(d, 'orders.journal'), bytes);
        },
        null,
      ],
      ['a torn tail', async (d) => writeFile(join(d, 'orders.journal'), (await readFile(join(d, 'orders.journal'))).subarray(0, -9)), null],
      ['the checkpoint deleted', (d) => rm(join(d, 'checkpoint.json')), null],
      ['journal and checkpoint deleted', async (d) => Promise.all([rm(join(d, 'orders.journal')), rm(join(d, 'checkpoint.json'))]).then(() => undefined), null],
      ['the checkpoint replaced by garbage', (d) => writeFile(join(d, 'checkpoint.json'), '{"schemaVersion": 1, "da'), 'UNPARSABLE'],
      [
        "the checkpoint's cash edited (it parses, but breaks an invariant)",
        async (d) => {
          const file = join(d, 'checkpoint.json');
          const envelope = JSON.parse(await readFile(file, 'utf8'));
          envelope.data.portfolio.cash = '1000000.00';
          await writeFile(file, JSON.stringify(envelope));
        },
        'INVALID_STATE',
      ],
    ];

    it.each(damage)('recovers from %s, a day later, to the uninterrupted run', async (name, spoil, setAsideFor) => {
      const stateDir = join(dir, `damaged-${name.replaceAll(/[^a-z]+/g, '-')}`);
      await cp(crashed, stateDir, { recursive: true });
      await spoil(stateDir);
      const summary = await expectCleanResult(stateDir, DAY);
      // A damaged file is set aside, never overwritten or deleted, and the summary says where.
      const setAside = setAsideFor === null ? null : { reason: setAsideFor, movedTo: expect.stringContaining('checkpoint.json.corrupt-') };
      expect(summary.checkpoints.setAside).toEqual(setAside);
      expect((await readdir(stateDir)).some((file) => file.startsWith('checkpoint.json.corrupt-'))).toBe(setAsideFor !== null);
    }, 60_000);
  });
});
