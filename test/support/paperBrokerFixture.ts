import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { PaperBroker, type PaperBrokerOptions } from '../../src/broker/paperBroker.js';

/** 2025-01-02 14:30 UTC: the first bar's time in the PaperBroker tests. */
export const T0 = Date.UTC(2025, 0, 2, 14, 30);
export const MINUTE = 60_000;
/** The broker's wall clock, fixed at {@link T0}. */
export const clock = new ManualClock({ wallMs: T0 });

/**
 * Registers a fresh `<tmp>/broker` dir per test and closes every broker opened with
 * `openBroker` after it. `dir()` is the current test's ledger dir.
 */
export function usePaperBrokers(): { dir: () => string; openBroker: (options?: Omit<PaperBrokerOptions, 'dir' | 'clock'>) => Promise<PaperBroker> } {
  let dir = '';
  const opened: PaperBroker[] = [];
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'aistock-paper-')), 'broker');
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((broker) => broker.close()));
  });
  return {
    dir: () => dir,
    openBroker: async (options = {}) => {
      const broker = await PaperBroker.open({ dir, clock, ...options });
      opened.push(broker);
      return broker;
    },
  };
}
