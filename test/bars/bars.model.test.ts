import { createActor, fromCallback, type EventFromLogic } from 'xstate';
import { describe, expect, it } from 'vitest';
import { barsMachine, type BarsEmitted } from '../../machines/bars.machine.js';
import { openBars } from '../../src/bars/aggregator.js';
import type { Bar } from '../../src/bars/bar.js';
import type { BarsConfigInput } from '../../src/bars/barProcessor.js';
import { recentBars } from '../../src/bars/barHistory.js';
import type { TimeframeBar } from '../../src/bars/timeframe.js';
import { allStateIds, modelPaths, replayPath, statesReached, type ModelPath } from '../../src/testing/modelTesting.js';

type ModelEvent = EventFromLogic<typeof barsMachine>;

const T0 = Date.parse('2025-11-03T14:30:00Z'); // 09:30 in New York
const bar = (minute: number): Bar => ({ symbol: 'SPY', ts: T0 + minute * 60_000, open: 600, high: 601, low: 599, close: 600.5, volume: 10 + minute });
const WARM_UP_BARS = 3;
const config: BarsConfigInput = { zone: 'America/New_York', baseTimeframe: '1m', timeframes: ['1m', '5m'], warmUpBars: WARM_UP_BARS };

// The bars actor is pure, so a BARS event is its own real cause. Variants: the 09:30 bar;
// 09:31–09:35, which completes the 09:30 5m bar and opens the next (sent after the first,
// or again, its bars are late); an empty batch; and FLUSH.
const events: ModelEvent[] = [
  { type: 'START' },
  { type: 'STOP' },
  { type: 'BARS', bars: [bar(0)] },
  { type: 'BARS', bars: [1, 2, 3, 4, 5].map(bar) },
  { type: 'BARS', bars: [] },
  { type: 'FLUSH' },
];

function describePath(path: ModelPath<ModelEvent>): string {
  const name = (event: ModelEvent): string => {
    if (event.type !== 'BARS') return event.type;
    return event.bars.length === 0 ? 'BARS(empty)' : event.bars.length === 1 ? 'BARS(09:30)' : 'BARS(09:31-09:35)';
  };
  return path.steps.map((step) => name(step.event)).join(' → ') || '(initial state)';
}

const paths = modelPaths(barsMachine, {
  events,
  input: { config },
  serializeState: (s) =>
    JSON.stringify([
      s.value,
      Math.min(s.context.stats.closed, 3),
      openBars(s.context.state.aggregation).length,
      s.context.state.aggregation.lateBars > 0,
      s.context.stats.refused > 0,
    ]),
});

const key = (bar: TimeframeBar) => `${bar.symbol}/${bar.timeframe}/${bar.ts}`;

async function replay(path: ModelPath<ModelEvent>): Promise<void> {
  const reported: BarsEmitted[] = [];
  const emitted: BarsEmitted[] = [];
  const recorder = createActor(fromCallback<BarsEmitted>(({ receive }) => receive((event) => reported.push(event)))).start();
  const actor = createActor(barsMachine, { systemId: 'bars', input: { config, reportTo: recorder } });
  actor.on('*', (event) => emitted.push(event));
  actor.start();
  let lastTs = Number.NEGATIVE_INFINITY;
  let baseVolume = 0;
  let refusedBars = 0;

  await replayPath(path, {
    actor,
    cause: (event) => {
      if (event.type === 'BARS') {
        if (!actor.getSnapshot().matches('running')) refusedBars += event.bars.length;
        else {
          for (const b of event.bars) {
            if (b.ts > lastTs) baseVolume += b.volume;
            lastTs = Math.max(lastTs, b.ts);
          }
        }
      }
      actor.send(event);
    },
    checkInvariants: () => {
      const { state, stats } = actor.getSnapshot().context;
      const closed = emitted.flatMap((event) => (event.type === 'BARS_CLOSED' ? event.bars : []));
      // No bar is ever reported closed twice.
      expect(new Set(closed.map(key)).size).toBe(closed.length);
      expect(stats.closed).toBe(closed.length);
      // Base bars close on arrival: every non-late base bar's volume is out, none is pending.
      const base = closed.filter((b) => b.timeframe === '1m');
      expect(base.reduce((sum, b) => sum + b.volume, 0)).toBe(baseVolume);
      // The history holds what closed, per timeframe.
      expect(recentBars(state.history, 'SPY', '1m').map(key)).toEqual(base.map(key));
      expect(recentBars(state.history, 'SPY', '5m').map(key)).toEqual(closed.filter((b) => b.timeframe === '5m').map(key));
      // Warm-up is announced once, when the third base bar arrives.
      const ready = emitted.filter((event) => event.type === 'SYMBOLS_READY');
      expect(ready).toHaveLength(base.length >= WARM_UP_BARS ? 1 : 0);
      // Refused bars are counted and reported; the parent hears what listeners hear.
      expect(stats.refused).toBe(refusedBars);
      expect(reported).toEqual(emitted.filter((event) => event.type !== 'BARS_REFUSED'));
    },
  });

  actor.send({ type: 'STOP' });
  actor.send({ type: 'STOP' });
  expect(actor.getSnapshot().value).toBe('shutdown');
  actor.stop();
  recorder.stop();
}

describe('bars model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(38);
  });

  it('reaches every state except the transient draining', () => {
    const reachable = new Set([...allStateIds(barsMachine)].filter((id) => id !== 'draining'));
    expect(statesReached(paths)).toEqual(reachable);
  });

  it('keeps open buckets through STOP, for the checkpoint, instead of flushing them', () => {
    const actor = createActor(barsMachine, { input: { config } }).start();
    actor.send({ type: 'START' });
    actor.send({ type: 'BARS', bars: [bar(0), bar(1)] });

    actor.send({ type: 'STOP' });

    expect(actor.getSnapshot().value).toBe('shutdown');
    expect(openBars(actor.getSnapshot().context.state.aggregation)).toMatchObject([{ timeframe: '5m', ts: T0, volume: 21 }]);
    actor.stop();
  });

  it('treats an empty batch as a no-op that reports nothing (a self-loop the shortest paths skip)', () => {
    const emitted: BarsEmitted[] = [];
    const actor = createActor(barsMachine, { input: { config } }).start();
    actor.on('*', (event) => emitted.push(event));
    actor.send({ type: 'START' });
    const before = actor.getSnapshot().context;

    actor.send({ type: 'BARS', bars: [] });

    expect(actor.getSnapshot().context).toBe(before);
    expect(emitted).toEqual([]);
    actor.stop();
  });

  it('answers a screened batch with one BARS_AGGREGATED to reportTo, what closed included — an empty one too', () => {
    const received: { type: string }[] = [];
    const reader = createActor(fromCallback(({ receive }) => receive((event) => received.push(event)))).start();
    const actor = createActor(barsMachine, { input: { config, reportTo: reader } }).start();
    actor.send({ type: 'START' });
    actor.send({ type: 'BARS_SCREENED', bars: [0, 1, 2, 3, 4, 5].map(bar) });
    actor.send({ type: 'BARS_SCREENED', bars: [] });
    expect(received.map((event) => event.type)).toEqual(['BARS_AGGREGATED', 'BARS_AGGREGATED']);
    const [first] = received as Extract<BarsEmitted, { type: 'BARS_AGGREGATED' }>[];
    expect(first?.bars).toHaveLength(6);
    expect(first?.closed.some((closed) => closed.timeframe === '5m')).toBe(true);
    actor.stop();
  });

  it('refuses a screened batch before START and after STOP, counted and reported (BARS_REFUSED)', () => {
    const emitted: BarsEmitted[] = [];
    const actor = createActor(barsMachine, { input: { config } }).start();
    actor.on('*', (event) => emitted.push(event));
    actor.send({ type: 'BARS_SCREENED', bars: [bar(0)] });
    actor.send({ type: 'STOP' });
    actor.send({ type: 'BARS_SCREENED', bars: [bar(1), bar(2)] });
    expect(actor.getSnapshot().context.stats.refused).toBe(3);
    expect(emitted).toEqual([
      { type: 'BARS_REFUSED', count: 1, reason: 'NOT_RUNNING' },
      { type: 'BARS_REFUSED', count: 2, reason: 'NOT_RUNNING' },
    ]);
    actor.stop();
  });

  it.each(paths.map((path) => [describePath(path), path] as const))('replays %s against the real actor', async (_name, path) => {
    await replay(path);
  });
});
