/**
 * What watching costs: the bundled sample replayed (sma-cross, orders and all, on a real disk)
 * without inspection, streamed to the Stately relay alone, to the relay and the offline live view,
 * and to both with a live view viewer reading the stream. Bars per second of each, and the bytes
 * the viewer was sent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBars } from '../src/bars/barReader.js';
import { packageRoot } from '../src/common/packageRoot.js';
import { startInspector, type RunningInspector } from '../src/inspector/inspector.js';
import { createTradingSession } from '../src/session/createTradingSession.js';
import { report } from './report.js';

const BENCH = 'inspector';
const SAMPLE = join(packageRoot(), 'data/sample-bars.csv');

/** Subscribes to the live view's stream like a page; returns how many bytes it has read so far. */
async function viewer(url: string): Promise<() => number> {
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    get(`${url}events`, (response) => {
      response.on('data', (chunk: Buffer) => (bytes += chunk.length));
      resolve();
    }).on('error', reject);
  });
  return () => bytes;
}

async function replay(mode: 'none' | 'relay' | 'liveView' | 'liveViewWatched'): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'aistock-bench-inspector-'));
  const inspector: RunningInspector | undefined = mode === 'none' ? undefined : await startInspector({ port: 0, liveView: mode !== 'relay' });
  const sent = mode === 'liveViewWatched' && inspector?.live ? await viewer(inspector.live.url) : undefined;
  const session = createTradingSession({ stateDir, replay: true, log: () => undefined, ...(inspector === undefined ? {} : { inspect: inspector.inspect }) });
  const started = performance.now();
  let bars = 0;
  await session.start();
  for await (const batch of readBars(SAMPLE, { assumeZone: null, onBadRow: 'skip' })) {
    await session.ingest(batch.bars);
    bars += batch.bars.length;
  }
  await session.stop();
  const seconds = (performance.now() - started) / 1000;
  await inspector?.stop();
  report(BENCH, `sampleReplayBarsPerSec.${mode}`, bars / seconds, 'bars/s');
  if (sent !== undefined) report(BENCH, 'liveViewStreamBytes', sent(), 'bytes');
  await rm(stateDir, { recursive: true, force: true });
}

for (const mode of ['none', 'relay', 'liveView', 'liveViewWatched'] as const) await replay(mode);
