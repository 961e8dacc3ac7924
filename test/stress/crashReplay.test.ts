import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/testing/seededRandom.js';
import { completeLines, ledgerBook, readLedger, runCli, sampleSlice, startCli } from '../support/replayFixture.js';

const KILLS = 12;

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
      const random = seededRandom(20251102);
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
