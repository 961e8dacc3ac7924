/**
 * Example: a user's model-based test of a session running their own strategy, written only
 * against the public entry points (`aistock`, `aistock/testing`; imported here by relative path
 * because the example lives in the repository). `npm test` runs it, so it cannot rot.
 *
 * The model is the user's own: a small machine of what an operator does — start the session,
 * feed it the next chunk of bars, stop it (and later start it again on the same state dir).
 * `modelPaths` enumerates every way to do that; each path is replayed against a real session
 * with a real state dir and PaperBroker, checking the user's invariants after every step.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assign, setup } from 'xstate';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTradingSession, type Bar, type Strategy, type Summary, type TradingSession } from '../src/index.js';
import { ManualClock, modelPaths } from '../src/testing/index.js';

/** The user's strategy: per symbol, buy 5 on the 3rd bar and sell them on the 6th. */
const thirdAndSixth: Strategy<Record<string, number>> = {
  id: 'example',
  stateSchema: z.record(z.string(), z.number()),
  initialState: () => ({}),
  onBar(seen, bar) {
    const n = (seen[bar.symbol] ?? 0) + 1;
    const state = { ...seen, [bar.symbol]: n };
    if (n === 3) return { state, intents: [{ symbol: bar.symbol, side: 'buy', qty: '5', type: 'market' }] };
    if (n === 6) return { state, intents: [{ symbol: bar.symbol, side: 'sell', qty: '5', type: 'market' }] };
    return { state, intents: [] };
  },
};

const CHUNKS = 3;
const bars: Bar[] = Array.from({ length: 9 }, (_, i) => ({
  symbol: 'ACME',
  ts: Date.UTC(2025, 10, 3, 14, 30 + i),
  open: 50,
  high: 51,
  low: 49,
  close: 50 + i * 0.25,
  volume: 5_000,
}));
const chunk = (k: number): Bar[] => bars.slice(k * 3, k * 3 + 3);

/** The operator model: START, INGEST (the next chunk), STOP; at most two starts. */
const operator = setup({
  types: { context: {} as { fed: number; starts: number }, events: {} as { type: 'START' } | { type: 'INGEST' } | { type: 'STOP' } },
  guards: { moreBars: ({ context }) => context.fed < CHUNKS, mayStart: ({ context }) => context.starts < 2 },
}).createMachine({
  id: 'operator',
  context: { fed: 0, starts: 0 },
  initial: 'stopped',
  states: {
    stopped: { on: { START: { guard: 'mayStart', target: 'running', actions: assign({ starts: ({ context }) => context.starts + 1 }) } } },
    running: {
      on: {
        INGEST: { guard: 'moreBars', actions: assign({ fed: ({ context }) => context.fed + 1 }) },
        STOP: 'stopped',
      },
    },
  },
});

const paths = modelPaths(operator, {
  events: [{ type: 'START' }, { type: 'INGEST' }, { type: 'STOP' }],
  strategy: 'simple',
  serializeState: (s) => JSON.stringify([s.value, s.context]),
});

async function brokerIds(stateDir: string): Promise<string[]> {
  const text = await readFile(join(stateDir, 'broker', 'orders.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => z.object({ clientOrderId: z.string() }).parse(JSON.parse(line)).clientOrderId);
}

/** One uninterrupted run over every chunk: what any path that fed everything must end with. */
let reference: Summary;

beforeAll(async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'aistock-example-ref-'));
  const session = createTradingSession({ stateDir, clock: new ManualClock(), strategy: thirdAndSixth, replay: true, log: () => undefined });
  await session.start();
  for (let k = 0; k < CHUNKS; k += 1) await session.ingest(chunk(k));
  reference = await session.stop();
});

describe('a session with a custom strategy, model-tested', () => {
  it('explores the operator model', () => {
    expect(paths.length).toBeGreaterThan(10);
  });

  it.each(paths.map((p) => [p.description, p] as const))('%s: no order twice, same end as one run', async (_name, path) => {
    const stateDir = await mkdtemp(join(tmpdir(), 'aistock-example-'));
    let session: TradingSession | undefined;
    let fed = 0;
    let last: Summary | undefined;
    for (const step of path.steps) {
      if (step.event.type === 'START') {
        session = createTradingSession({ stateDir, clock: new ManualClock(), strategy: thirdAndSixth, replay: true, log: () => undefined });
        await session.start();
        // A restart resumes: feeding from the first chunk again must change nothing already done.
        for (let k = 0; k < fed; k += 1) await session.ingest(chunk(k));
      } else if (step.event.type === 'INGEST') {
        await session?.ingest(chunk(fed));
        fed += 1;
      } else {
        last = await session?.stop();
      }
      const ids = await brokerIds(stateDir);
      expect(new Set(ids).size, `after ${step.event.type}`).toBe(ids.length);
    }
    last = (await session?.stop()) ?? last;
    if (fed === CHUNKS && last !== undefined) expect(last.portfolio).toEqual(reference.portfolio);
  });
});
