import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
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

describe('crash safety of aistock replay', () => {
  it(
    'SIGKILLed at random moments and restarted, it ends exactly as one uninterrupted run',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'aistock-crash-'));
      const bars = await sampleSlice(dir, 6_000);

      const reference = await runCli(['replay', bars, '--state-dir', join(dir, 'reference'), '--json']);
      expect(reference.code, reference.stderr).toBe(0);
      const expected = JSON.parse(reference.stdout.trim().split('\n').at(-1) ?? '');
      const referenceLedger = await readLedger(join(dir, 'reference'));
      expect(referenceLedger.orders.length).toBeGreaterThan(20);

      const stateDir = join(dir, 'crashed');
      const random = prng(20251102);
      let kills = 0;
      for (let attempt = 0; kills < KILLS && attempt < KILLS * 3; attempt += 1) {
        const child = startCli(['replay', bars, '--state-dir', stateDir, '--json']);
        const exited = once(child, 'exit');
        // Between start-up (≈ 0.4 s of tsx) and the end of a run.
        const delayMs = 300 + Math.floor(random() * 1_700);
        const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
        const [code, signal] = await exited;
        clearTimeout(timer);
        if (signal === 'SIGKILL') kills += 1;
        else expect(code, `run ${attempt} exited ${code}`).toBe(0);
      }
      expect(kills).toBeGreaterThanOrEqual(10);

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
