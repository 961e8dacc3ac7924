import { once } from 'node:events';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ledgerBook, readLedger, runCli, sampleSlice, startCli } from '../support/replayFixture.js';

/** A small seeded PRNG (mulberry32), so a failing run can be repeated. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const KILLS = 12;

/** Lines a killed writer finished (a torn last line is not counted); 0 for no file yet. */
async function completeLines(file: string): Promise<number> {
  try {
    return (await readFile(file, 'utf8')).split('\n').length - 1;
  } catch {
    return 0;
  }
}

describe('crash safety of aistock replay', () => {
  it(
    'SIGKILLed at random moments and restarted, it ends exactly as one uninterrupted run',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'aistock-crash-'));
      const bars = await sampleSlice(dir, 12_000);

      const reference = await runCli(['replay', bars, '--state-dir', join(dir, 'reference'), '--json']);
      expect(reference.code, reference.stderr).toBe(0);
      const expected = JSON.parse(reference.stdout.trim().split('\n').at(-1) ?? '');
      const referenceLedger = await readLedger(join(dir, 'reference'));
      expect(referenceLedger.orders.length).toBeGreaterThan(40);

      // Each run is killed once it has sent a few more orders (1–6, then 0–25 ms more), so the
      // kills land inside the work — between a reserve and its submit, between an order line and
      // its fill line, mid-checkpoint — and the run never gets to finish on its own.
      const stateDir = join(dir, 'crashed');
      const ledgerFile = join(stateDir, 'broker', 'orders.jsonl');
      const random = prng(20251102);
      const sentCounts: number[] = [];
      for (let kill = 0; kill < KILLS; kill += 1) {
        const sentBefore = await completeLines(ledgerFile);
        const killAfter = sentBefore + 1 + Math.floor(random() * 6);
        const extraMs = Math.floor(random() * 25);
        const child = startCli(['replay', bars, '--state-dir', stateDir, '--json']);
        const exited = once(child, 'exit');
        const watcher = setInterval(() => {
          void completeLines(ledgerFile).then((sent) => {
            if (sent >= killAfter) setTimeout(() => child.kill('SIGKILL'), extraMs);
          });
        }, 3);
        const [code, signal] = await exited;
        clearInterval(watcher);
        expect({ code, signal }, `run ${kill} was to be killed after order ${killAfter}`).toEqual({ code: null, signal: 'SIGKILL' });
        sentCounts.push(await completeLines(ledgerFile));
      }
      // Every kill hit a run with the orders half sent.
      expect(sentCounts.every((sent) => sent > 0 && sent < referenceLedger.orders.length)).toBe(true);

      const final = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
      expect(final.code, final.stderr).toBe(0);
      const summary = JSON.parse(final.stdout.trim().split('\n').at(-1) ?? '');
      const ledger = await readLedger(stateDir);

      // No client order id reached the market twice.
      const ids = ledger.orders.map((o) => o.clientOrderId);
      expect(new Set(ids).size).toBe(ids.length);
      // The same orders as the uninterrupted run, and the same cash and positions.
      expect(ids.sort()).toEqual(referenceLedger.orders.map((o) => o.clientOrderId).sort());
      expect(summary.portfolio).toEqual(expected.portfolio);
      // The portfolio equals the broker's fills to the cent.
      const book = ledgerBook('100000', ledger.fills);
      expect(summary.portfolio.cash).toBe(book.cash);
    },
    240_000,
  );
});
