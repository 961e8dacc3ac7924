/**
 * Offers 100,000 SAVEs to a checkpointer over a real disk (write-file-atomic, fsync on) as
 * fast as the caller can, and measures what the caller pays per SAVE, how many writes the
 * disk did, their p99 latency, and how long after the last SAVE its snapshot was on disk.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { waitFor } from 'xstate';
import { systemClock } from '../src/common/clock.js';
import { createCheckpointer } from '../src/checkpointer/checkpointer.js';
import { fileCheckpointStore } from '../src/checkpointer/checkpointStore.js';
import { atomicFileWriter, type FileWriter } from '../src/stateDir/stateFile.js';
import { percentile, report } from './report.js';

const SAVES = 100_000;
const dir = await mkdtemp(join(tmpdir(), 'aistock-bench-cp-'));
const writeMs: number[] = [];
const timedWriter: FileWriter = async (path, contents) => {
  const started = performance.now();
  await atomicFileWriter(path, contents);
  writeMs.push(performance.now() - started);
};
const cp = createCheckpointer({ store: fileCheckpointStore({ dir, clock: systemClock, writer: timedWriter }) });
cp.start();

// A session-sized snapshot: a few positions and counters, not a toy number.
const snapshot = (n: number) => ({
  barsAccepted: n,
  cash: '100000.00',
  positions: { AAPL: { qty: '10', avgPrice: '189.21' }, MSFT: { qty: '-5', avgPrice: '411.10' } },
});

const offerStarted = performance.now();
for (let n = 1; n <= SAVES; n += 1) {
  cp.save('session', snapshot(n));
  // Yield now and then, as a real session does between bar batches, so writes can complete.
  if (n % 1_000 === 0) await new Promise((resolve) => setImmediate(resolve));
}
const offerMs = performance.now() - offerStarted;
const lastSaveAt = performance.now();
await waitFor(cp.actor, (s) => Object.keys(s.context.pending).length === 0, { timeout: 30_000 });
const newestOnDiskMs = performance.now() - lastSaveAt;
const result = await cp.stop();

report('checkpointer', 'saveCostUs', (offerMs * 1_000) / SAVES, 'us');
report('checkpointer', 'savesPerSec', SAVES / (offerMs / 1_000), 'saves/s');
report('checkpointer', 'writesPerSec', result.written / (offerMs / 1_000), 'writes/s');
report('checkpointer', 'writes', result.written, 'writes');
report('checkpointer', 'writeP50Ms', percentile(writeMs, 50), 'ms');
report('checkpointer', 'writeP99Ms', percentile(writeMs, 99), 'ms');
report('checkpointer', 'newestOnDiskAfterLastSaveMs', newestOnDiskMs, 'ms');
await rm(dir, { recursive: true, force: true });
