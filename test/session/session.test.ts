import { describe, expect, it } from 'vitest';
import { SimulatedClock, type ActorRefLike } from 'xstate';
import { createTradingSession, SessionFaultedError } from '../../src/session/createTradingSession.js';
import { PaperBroker } from '../../src/broker/paperBroker.js';
import { lockStateDir, StateDirLockedError } from '../../src/stateDir/stateDirLock.js';
import { smaCross } from '../../src/strategy/strategy.js';
import { readFile, rm } from 'node:fs/promises';
import { z } from 'zod';
import { clientOrderId } from '../../src/idempotency/clientOrderId.js';
import type { Strategy } from '../../src/strategy/strategy.js';
import { join } from 'node:path';
import type { ManualClock } from '../../src/common/clock.js';
import { buyOnBars, delegatingBroker, minuteBars, sessionDeps } from '../support/sessionFixture.js';
import { readLedger } from '../support/replayFixture.js';

describe('trading session', () => {
  it("writes its journal's log lines to the session's log, named as the journal's", async () => {
    const deps = await sessionDeps();
    const entries: Record<string, unknown>[] = [];
    const session = createTradingSession({ ...deps, strategy: buyOnBars([1, 3]), replay: true, log: (entry) => entries.push(entry) });
    await session.start();
    const bars = minuteBars(4);
    await session.ingest(bars.slice(0, 2));
    // The wall clock steps back a minute between two orders: the journal sees it at the next reservation.
    deps.clock.jumpWall(-60_000);
    await session.ingest(bars.slice(2));
    const summary = await session.stop();
    expect(summary.clockJumps).toBe(1);
    expect(entries).toContainEqual(expect.objectContaining({ component: 'idempotency', event: 'CLOCK_JUMPED', direction: 'BACKWARD' }));
    await rm(deps.stateDir, { recursive: true, force: true });
  });

  it('sends each approved order once, with its fill in the portfolio', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([3, 5]), replay: true });
    await session.start();
    await session.ingest(minuteBars(10));
    const summary = await session.stop();
    expect(summary.orders).toMatchObject({ submitted: 2, duplicatesBlocked: 0, unknown: 0 });
    expect(summary.fills).toBe(2);
    expect(summary.portfolio.positions).toEqual({ AAPL: expect.objectContaining({ qty: '2' }) });
  });

  it('returns the same promise from a second stop(), and both settle in shutdown', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]) });
    await session.start();
    const first = session.stop();
    expect(session.stop()).toBe(first);
    await first;
    expect(session.actor.getSnapshot().value).toBe('shutdown');
    session.actor.send({ type: 'STOP' });
    expect(session.actor.getSnapshot().value).toBe('shutdown');
  });

  it('honours a stop() during starting once started, releasing the state dir', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]) });
    const started = session.start();
    const stopped = session.stop();
    expect(session.actor.getSnapshot().value).toEqual({ starting: 'locking' });
    await started;
    await stopped;
    expect(session.actor.getSnapshot().value).toBe('shutdown');
    const next = createTradingSession({ stateDir: deps.stateDir, strategy: buyOnBars([]), log: deps.log });
    await next.start();
    await next.stop();
  });

  it('marks an order unknown when the broker is disconnected, sends nothing, and refuses that symbol until settled', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([3, 6]), replay: true });
    await session.start();
    deps.broker.faults.disconnect();
    await session.ingest(minuteBars(8));
    const summary = await session.stop();
    expect(summary.orders).toMatchObject({ submitted: 0, unknown: 1, refused: 1 });
    expect((await readLedger(deps.stateDir)).orders).toEqual([]);
  });

  it('holds every new order, of any symbol, while the broker is unreachable, says why, and resumes once it answers', async () => {
    const deps = await sessionDeps();
    const outcomes: { kind: string; symbol: string; reason?: { code: string; detail: string; ids?: readonly string[] } }[] = [];
    // The cue counts bars over all symbols: the 2nd (AAPL), 5th (MSFT) and 8th (NVDA) bar buy.
    const session = createTradingSession({ ...deps, strategy: buyOnBars([2, 5, 8]), replay: true });
    session.actor.on('ORDER_OUTCOMES', (event) => {
      for (const o of event.outcomes) outcomes.push({ kind: o.kind, symbol: o.order.intent.symbol, ...('reason' in o ? { reason: o.reason } : {}) });
    });
    await session.start();
    deps.broker.faults.disconnect();
    await session.ingest(minuteBars(3, 'AAPL'));
    await session.ingest(minuteBars(3, 'MSFT'));
    deps.broker.faults.reconnect();
    await session.ingest(minuteBars(3, 'NVDA'));
    const summary = await session.stop();
    expect(outcomes).toEqual([
      { kind: 'unknown', symbol: 'AAPL', reason: { code: 'BROKER_DISCONNECTED', detail: expect.any(String) } },
      // A typed refusal: its code, and the order it waits for.
      { kind: 'refused', symbol: 'MSFT', reason: { code: 'BROKER_UNREACHABLE', detail: expect.stringMatching(/AAPL-/), ids: [expect.stringMatching(/^AAPL-/)] } },
      // Reconnected: the unknown AAPL order is settled first (it never arrived), then NVDA goes out.
      { kind: 'settled', symbol: 'AAPL' },
      { kind: 'submitted', symbol: 'NVDA' },
    ]);
    expect((await readLedger(deps.stateDir)).orders.map((o) => o.symbol)).toEqual(['NVDA']);
    expect(summary.orders).toMatchObject({ submitted: 1, unknown: 1, refused: 1, settled: 1 });
  });

  it('settles a lost ack by asking the broker: the order counts as submitted with its fill', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([3]), replay: true });
    await session.start();
    deps.broker.faults.loseNextAck();
    await session.ingest(minuteBars(5));
    const summary = await session.stop();
    expect(summary.orders).toMatchObject({ submitted: 1, unknown: 0 });
    expect(summary.fills).toBe(1);
    expect((await readLedger(deps.stateDir)).orders).toHaveLength(1);
  });

  it('counts a broker rejection and applies no fill', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([3]), replay: true });
    await session.start();
    deps.broker.faults.rejectNext(1);
    await session.ingest(minuteBars(5));
    const summary = await session.stop();
    expect(summary.orders).toMatchObject({ submitted: 0, rejected: 1 });
    expect(summary.fills).toBe(0);
    expect(summary.portfolio.positions).toEqual({});
  });

  it('treats a submit that outlives its deadline as unknown, then settles it on restart without sending it again', async () => {
    const deps = await sessionDeps();
    // A network that can stall: while the gate is shut, every broker call waits for it.
    let gate: Promise<void> = Promise.resolve();
    let openGate = (): void => undefined;
    // This test's broker stalls on command; the default one must not keep the ledger open beside it.
    await deps.broker.close();
    const slowBroker = await PaperBroker.open({ dir: join(deps.stateDir, 'broker'), clock: deps.clock, latencyMs: 1, sleep: () => gate });
    // The deadline is timed on a simulated clock: the test moves it a minute; no real minute passes.
    const timers = new SimulatedClock();
    const first = createTradingSession({ ...deps, broker: slowBroker, strategy: buyOnBars([3]), replay: true, brokerTimeoutMs: 60_000, timers });
    await first.start();
    gate = new Promise<void>((resolve) => (openGate = resolve));
    let ingested = false;
    const ingesting = first.ingest(minuteBars(5)).then(() => (ingested = true));
    await expect.poll(() => {
      timers.increment(60_000);
      return ingested;
    }).toBe(true);
    await ingesting;
    expect(first.snapshot().orders).toMatchObject({ submitted: 0, unknown: 1 });
    openGate();
    // The stalled submit reaches the market after the session gave up waiting.
    await expect.poll(async () => (await readLedger(deps.stateDir)).orders.length).toBe(1);
    await first.stop();

    const second = createTradingSession({ stateDir: deps.stateDir, strategy: buyOnBars([3]), replay: true, log: deps.log, clock: deps.clock });
    await second.start();
    await second.ingest(minuteBars(5));
    const summary = await second.stop();
    expect(summary.orders).toMatchObject({ submitted: 0, settled: 1 });
    expect(summary.fills).toBe(1);
    expect(summary.portfolio.positions).toEqual({ AAPL: expect.objectContaining({ qty: '1' }) });
    expect((await readLedger(deps.stateDir)).orders).toHaveLength(1);
  });

  it('re-processing the same bars on the same state dir sends nothing again and leaves the portfolio as it was', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([3]), replay: true });
    await session.start();
    await session.ingest(minuteBars(5));
    const summary = await session.stop();
    expect(summary.orders.submitted).toBe(1);
    // Restart on the same dir with the same bars: the order is re-decided and blocked as a duplicate.
    const again = createTradingSession({ stateDir: deps.stateDir, strategy: buyOnBars([3]), replay: true, log: deps.log, clock: deps.clock });
    await again.start();
    await again.ingest(minuteBars(5));
    const second = await again.stop();
    expect(second.bars.resumedSkips).toBe(5);
    expect(second.portfolio).toEqual(summary.portfolio);
  });

  it('shows every admitted bar to the market once, in order, one bar per event or in batches, orders or not', async () => {
    const deps = await sessionDeps();
    const shown: string[] = [];
    const observe = deps.broker.observeBar.bind(deps.broker);
    deps.broker.observeBar = (bar) => {
      shown.push(`${bar.symbol}#${(bar.ts - Date.UTC(2025, 10, 3, 14, 30)) / 60_000}`);
      return observe(bar);
    };
    const session = createTradingSession({ ...deps, strategy: buyOnBars([2, 5]), symbols: ['AAPL'], guard: { maxStalenessMs: null } });
    await session.start();
    const aapl = minuteBars(7);
    const msft = minuteBars(7, 'MSFT');
    for (const bar of [aapl[0], msft[0], aapl[1], msft[1], aapl[2]]) if (bar !== undefined) await session.ingest(bar);
    await session.ingest(aapl.slice(3));
    await session.ingest(msft.slice(2));
    const summary = await session.stop();
    expect(summary.orders.submitted).toBe(2);
    expect(summary.bars.dropped).toBe(7);
    expect(shown).toEqual(['AAPL#0', 'AAPL#1', 'AAPL#2', 'AAPL#3', 'AAPL#4', 'AAPL#5', 'AAPL#6']);
  });

  it('flushCheckpoint() writes the newest state a throttled save skipped, and waits until it is on disk', async () => {
    const deps = await sessionDeps();
    // Only the first save gets through the throttle.
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true, checkpointIntervalMs: 1_000_000_000 });
    await session.start();
    const bars = minuteBars(6);
    await session.ingest(bars.slice(0, 3));
    await session.ingest(bars.slice(3));
    const onDisk = async () => JSON.parse(await readFile(join(deps.stateDir, 'checkpoint.json'), 'utf8')) as { data: { pipeline: { lastTs: Record<string, number> } } };
    expect(await session.flushCheckpoint(5_000)).toBe(true);
    expect((await onDisk()).data.pipeline.lastTs.AAPL).toBe(bars[5]?.ts);
    await session.stop();
  });

  it('goes faulted with the reason when its idempotency tracker dies, refuses bars after, and stop() still ends', async () => {
    const deps = await sessionDeps();
    const actors: ActorRefLike[] = [];
    const session = createTradingSession({
      ...deps,
      strategy: buyOnBars([]),
      replay: true,
      inspect: (event) => {
        if (event.type === '@xstate.actor') actors.push(event.actorRef);
      },
    });
    await session.start();
    await session.ingest(minuteBars(2));
    const tracker = actors.find((ref) => (ref.getSnapshot() as { machine?: { id?: string } }).machine?.id === 'idempotency');
    // A malformed command makes the tracker's own code throw: a bug in a child, not an I/O error.
    tracker?.send({ type: 'RESERVE', requests: null, now: { wallMs: 0, monoMs: 0 } });
    expect(tracker?.getSnapshot().status).toBe('error');
    await expect(session.ingest(minuteBars(3).slice(2))).rejects.toBeInstanceOf(SessionFaultedError);
    expect(session.actor.getSnapshot().matches('faulted')).toBe(true);
    const summary = await session.stop();
    expect(summary.fault).toEqual({ code: 'CHILD_FAILED', child: 'idempotency', detail: expect.any(String) });
    // Everything was released: another session takes the state dir.
    const next = createTradingSession({ stateDir: deps.stateDir, strategy: buyOnBars([]), replay: true, log: deps.log, clock: deps.clock });
    await next.start();
    await next.stop();
  });

  it.each(['dataGuard', 'bars', 'portfolio', 'risk'] as const)(
    'faults with CHILD_FAILED naming %s when that spawned child dies, and still releases the state dir',
    async (child) => {
      const deps = await sessionDeps();
      const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
      await session.start();
      await session.ingest(minuteBars(2));
      const ref = session.actor.system.get(child);
      // A malformed event makes the component's own code throw: a bug in a child, not an I/O error.
      ref?.send({ type: child === 'portfolio' ? 'FILLS' : child === 'risk' ? 'SETTLE' : 'BARS', fills: null, bars: [null], series: null, check: null });
      expect(ref?.getSnapshot().status).toBe('error');
      expect(session.actor.getSnapshot().matches('faulted')).toBe(true);
      await expect(session.ingest(minuteBars(3).slice(2))).rejects.toBeInstanceOf(SessionFaultedError);
      const summary = await session.stop();
      expect(summary.fault).toMatchObject({ code: 'CHILD_FAILED', child });
      const next = createTradingSession({ stateDir: deps.stateDir, strategy: buyOnBars([]), replay: true, log: deps.log, clock: deps.clock });
      await next.start();
      await next.stop();
    },
  );

  it('checks orders against the account a late fill left, even when the first bar of a batch asks for them', async () => {
    const deps = await sessionDeps();
    // Bar 3 is the first of the second batch; only gross exposure can deny its order.
    const session = createTradingSession({
      ...deps,
      strategy: buyOnBars([3]),
      replay: true,
      risk: { rateLimitEnabled: false, maxGrossExposure: 1, maxLeverage: 10, maxPositionFraction: 1, perTradeRiskPct: 1, perSymbolNotionalCap: 1e9, maxSinglePositionUnits: 1e9 },
    });
    await session.start();
    const bars = minuteBars(4);
    await session.ingest(bars.slice(0, 2));
    // The broker reports a fill of a resting order: 1,500 MSFT at 100, gross exposure 150% of equity.
    session.actor.send({ type: 'FILLS', fills: [{ clientOrderId: 'resting-1', symbol: 'MSFT', side: 'buy', qty: '1500', price: '100', commission: '0', filledAt: bars[1]?.ts ?? 0 }] });
    await session.ingest(bars.slice(2));
    const summary = await session.stop();
    expect(summary.orders).toMatchObject({ submitted: 0, denied: 1 });
  });

  it('ends in shutdown with DRAIN_FAILED naming the broker when its close fails, and still releases the state dir', async () => {
    const deps = await sessionDeps();
    const close = deps.broker.close.bind(deps.broker);
    deps.broker.close = async () => {
      await close();
      throw new Error('ledger close failed');
    };
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    await session.start();
    await session.ingest(minuteBars(2));
    const summary = await session.stop();
    expect(session.actor.system.get('broker')?.getSnapshot().value).toBe('shutdown');
    expect(summary.fault).toMatchObject({ code: 'DRAIN_FAILED', detail: expect.stringContaining('broker: ledger close failed') });
    const next = createTradingSession({ stateDir: deps.stateDir, strategy: buyOnBars([]), replay: true, log: deps.log, clock: deps.clock });
    await next.start();
    await next.stop();
  });

  it('fails the start at openingBroker with the adapter’s own error, the broker child faulted', async () => {
    const deps = await sessionDeps();
    deps.broker.knownClientOrderIds = async () => {
      throw new Error('the broker does not answer');
    };
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    await expect(session.start()).rejects.toThrow('the broker does not answer');
    expect(session.actor.getSnapshot().context.fault).toMatchObject({ code: 'START_FAILED', step: 'openingBroker' });
    expect(session.actor.system.get('broker')?.getSnapshot().value).toBe('faulted');
    await session.stop();
  });

  it('takes bars handed to ingest within one tick as one batch, and settles every caller with it', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([3]), replay: true });
    await session.start();
    const bars = minuteBars(6);
    await Promise.all(bars.map((bar) => session.ingest(bar)));
    const { stats } = session.actor.getSnapshot().context;
    expect(stats).toMatchObject({ batches: 1, barsReceived: 6 });
    expect((await session.stop()).orders.submitted).toBe(1);
  });

  it('drops bars ingested after stop and counts them', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    await session.start();
    await session.stop();
    await session.ingest(minuteBars(3));
    expect(session.snapshot().bars.dropped).toBe(3);
  });
});

describe('a start that fails names its step', () => {
  it('locking: another process holds the state dir', async () => {
    const deps = await sessionDeps();
    const holder = await lockStateDir(deps.stateDir);
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    await expect(session.start()).rejects.toBeInstanceOf(StateDirLockedError);
    expect(session.snapshot().fault).toEqual({ code: 'START_FAILED', step: 'locking', cause: 'STATE_DIR_LOCKED', detail: expect.stringContaining('locked') });
    await session.stop().catch(() => undefined);
    await holder.release();
  });

  it('restoring: the state dir belongs to another strategy', async () => {
    const deps = await sessionDeps();
    const first = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    await first.start();
    await first.ingest(minuteBars(2));
    await first.stop();
    const other = createTradingSession({ stateDir: deps.stateDir, clock: deps.clock, log: deps.log, strategy: smaCross(), replay: true });
    await expect(other.start()).rejects.toMatchObject({ code: 'INVALID_SESSION_OPTIONS' });
    expect(other.snapshot().fault).toMatchObject({ code: 'START_FAILED', step: 'restoring', cause: 'INVALID_SESSION_OPTIONS' });
    await other.stop().catch(() => undefined);
  });

  it('openingBroker: the broker holds ids of the first scheme', async () => {
    const deps = await sessionDeps();
    for (const bar of minuteBars(1)) deps.broker.observeBar(bar);
    await deps.broker.submit({ clientOrderId: 'AAPL-6e0d4e7adcc08379c97f4608', symbol: 'AAPL', side: 'buy', qty: '1', type: 'market' });
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    await expect(session.start()).rejects.toMatchObject({ code: 'LEGACY_ORDER_IDS' });
    expect(session.snapshot().fault).toMatchObject({ code: 'START_FAILED', step: 'openingBroker', cause: 'LEGACY_ORDER_IDS' });
    await session.stop().catch(() => undefined);
  });
});

describe('user code is contained', () => {
  /** A strategy (id `cue`, as `buyOnBars`) that misbehaves from its third bar on. */
  const misbehaving = (onThird: (clock: ManualClock) => { state: number; intents: unknown[] }, clock: ManualClock): Strategy<number> => ({
    id: 'cue',
    stateSchema: z.number().int(),
    initialState: () => 0,
    onBar: (seen) => (seen + 1 === 3 ? (onThird(clock) as { state: number; intents: [] }) : { state: seen + 1, intents: [] }),
  });

  it.each([
    ['throws', () => {
      throw new Error('division by zero');
    }, /cue\.onBar threw: division by zero/],
    ['returns an intent with a number for its quantity', () => ({ state: 3, intents: [{ symbol: 'AAPL', side: 'buy', qty: 10, type: 'market' }] }), /invalid intent #0.*qty/s],
    ['returns nothing', () => undefined as never, /returned no \{ state, intents \}/],
    [
      'takes longer than strategyTimeoutMs',
      (clock: ManualClock) => {
        clock.advance(1_001);
        return { state: 3, intents: [] };
      },
      /cue\.onBar took 1001 ms, over strategyTimeoutMs 1000/,
    ],
  ])('a strategy that %s faults the session with STRATEGY_FAILED naming the bar; ingest rejects, stop settles, the dir resumes', async (_what, onThird, detail) => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: misbehaving(onThird, deps.clock), replay: true });
    await session.start();
    const bars = minuteBars(5);
    await session.ingest(bars.slice(0, 2));
    await expect(session.ingest(bars.slice(2))).rejects.toBeInstanceOf(SessionFaultedError);
    const summary = await session.stop();
    expect(summary.fault).toEqual({ code: 'STRATEGY_FAILED', bar: { symbol: 'AAPL', ts: bars[2]?.ts }, detail: expect.stringMatching(detail) });
    // Everything released; the same dir resumes with a strategy that works, from before the failed bar.
    const again = createTradingSession({ stateDir: deps.stateDir, clock: deps.clock, log: deps.log, strategy: buyOnBars([]), replay: true });
    await again.start();
    await again.ingest(bars);
    const resumed = await again.stop();
    expect(resumed.fault).toBeNull();
    expect(resumed.bars.accepted).toBe(5);
  });
});

describe('a broker adapter that breaks its contract', () => {
  it('faults the session when submit throws something that is not a BrokerError, and a restart settles the order with the broker', async () => {
    const deps = await sessionDeps();
    const paper = deps.broker;
    // The PaperBroker in every way but submit, which has a bug.
    const broken = delegatingBroker(paper, {
      submit: async () => {
        throw new TypeError("cannot read properties of undefined (reading 'id')");
      },
    });
    const session = createTradingSession({ ...deps, broker: broken, strategy: buyOnBars([2]), replay: true });
    await session.start();
    await expect(session.ingest(minuteBars(3))).rejects.toBeInstanceOf(SessionFaultedError);
    const summary = await session.stop();
    expect(summary.fault).toMatchObject({ code: 'EXECUTION_FAILED', cause: 'BROKER_ADAPTER_FAILED', detail: expect.stringContaining('not a BrokerError') });
    // The broker never saw it: the restart releases the id and sends the order once.
    const again = createTradingSession({ stateDir: deps.stateDir, clock: deps.clock, log: deps.log, strategy: buyOnBars([2]), replay: true });
    await again.start();
    await again.ingest(minuteBars(3));
    expect((await again.stop()).orders.submitted).toBe(1);
    expect((await readLedger(deps.stateDir)).orders).toHaveLength(1);
  });
});

describe('risk through the public API', () => {
  /** Buys 100 at 100, then the price halves: a 5 % daily loss against a 1 % limit. */
  async function crash(killSwitchEnabled: boolean) {
    const deps = await sessionDeps();
    const risk = { maxDailyLossPct: 0.01, maxDrawdownPct: 0.9, perTradeRiskPct: 0.5, maxPositionFraction: 0.5, killSwitchEnabled };
    const session = createTradingSession({ ...deps, strategy: buyOnBars([1, 4], '100'), replay: true, risk });
    await session.start();
    const bars = minuteBars(5).map((bar, i) => (i < 2 ? bar : { ...bar, open: 50, high: 50.05, low: 49.95, close: 50 }));
    await session.ingest(bars);
    return session.stop();
  }

  it('never halts on a breach with the kill switch off: it is only reported', async () => {
    const summary = await crash(false);
    expect(summary.risk).toEqual({ state: 'active', haltReasons: [] });
    // The second buy (bar 4, after the loss) is still sent.
    expect(summary.orders.submitted).toBe(2);
  });

  it('halts on the same breach with the kill switch on, and sends nothing after it', async () => {
    const summary = await crash(true);
    expect(summary.risk.state).toBe('halted');
    expect(summary.risk.haltReasons[0]).toMatch(/^DAILY_LOSS_LIMIT/);
    expect(summary.orders).toMatchObject({ submitted: 1, denied: 1 });
  });
});

describe('reconciliation with the broker', () => {
  async function brokerWithForeignPosition() {
    const deps = await sessionDeps();
    // A trade the session never made (placed by hand at the broker).
    for (const bar of minuteBars(1)) deps.broker.observeBar(bar);
    await deps.broker.submit({ clientOrderId: 'MANUAL-1', symbol: 'AAPL', side: 'buy', qty: '4', type: 'market' });
    return deps;
  }

  it('adopts a broker position the portfolio does not know, and reports it', async () => {
    const deps = await brokerWithForeignPosition();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    await session.start();
    await session.ingest(minuteBars(3));
    const summary = await session.stop();
    expect(summary.reconciliation[0]).toMatchObject({ at: 'start', halt: false, differences: [expect.objectContaining({ symbol: 'AAPL', local: '0', broker: '4' })] });
    expect(summary.portfolio.positions).toEqual({ AAPL: expect.objectContaining({ qty: '4' }) });
    expect(summary.reconciliation[1]).toMatchObject({ at: 'stop', differences: [] });
    // Counted, not only listed: one difference found, one position adopted.
    expect(summary.reconciled).toMatchObject({ checks: 2, differences: 1, adoptedFills: 1, recoveredFills: 0 });
  });

  it('books the broker fills of its own orders as its own, at their price, after journal and checkpoint are lost and a month has passed', async () => {
    const deps = await sessionDeps();
    const first = createTradingSession({ ...deps, strategy: buyOnBars([3]), replay: true });
    await first.start();
    await first.ingest(minuteBars(5));
    const before = await first.stop();
    await rm(join(deps.stateDir, 'orders.journal'));
    await rm(join(deps.stateDir, 'checkpoint.json'));
    deps.clock.advance(30 * 24 * 3_600_000);

    const again = createTradingSession({ stateDir: deps.stateDir, strategy: buyOnBars([3]), replay: true, log: deps.log, clock: deps.clock });
    await again.start();
    await again.ingest(minuteBars(5));
    const summary = await again.stop();
    // The broker's id carries this session's tag: its fill is the order's own, not an adopted position.
    expect(summary.reconciled).toMatchObject({ differences: 0, adoptedFills: 0, journalRebuilt: 1 });
    expect(summary.orders).toMatchObject({ submitted: 0, duplicatesBlocked: 1 });
    expect(summary.portfolio).toEqual(before.portfolio);
    expect((await readLedger(deps.stateDir)).orders).toHaveLength(1);
  });

  it('recovers, at its own price, the fill of its resting order that the broker made while the session was down', async () => {
    const deps = await sessionDeps();
    const bidLow: Strategy<number> = {
      id: 'bid-low',
      stateSchema: z.number().int(),
      initialState: () => 0,
      onBar: (seen, bar) => ({
        state: seen + 1,
        intents: seen === 1 ? [{ symbol: bar.symbol, side: 'buy', qty: '2', type: 'limit', limitPrice: '95' }] : [],
      }),
    };
    const first = createTradingSession({ ...deps, strategy: bidLow, replay: true });
    await first.start();
    await first.ingest(minuteBars(4));
    expect((await first.stop()).portfolio.positions).toEqual({});

    // While no session runs, the market trades through the limit.
    const market = await PaperBroker.open({ dir: join(deps.stateDir, 'broker'), clock: deps.clock });
    const [dip] = minuteBars(1, 'AAPL', 94);
    if (dip === undefined) throw new Error('no bar');
    await market.observeBar({ ...dip, ts: dip.ts + 10 * 60_000 });
    await market.close();

    const again = createTradingSession({ stateDir: deps.stateDir, strategy: bidLow, replay: true, log: deps.log, clock: deps.clock });
    await again.start();
    await again.ingest(minuteBars(4));
    const summary = await again.stop();
    expect(summary.reconciled).toMatchObject({ recoveredFills: 1, differences: 0, adoptedFills: 0 });
    expect(summary.portfolio.positions).toEqual({ AAPL: { qty: '2', avgPrice: '95' } });
  });

  it('refuses to resume a state dir whose broker holds ids of the first scheme, naming the way out', async () => {
    const deps = await sessionDeps();
    for (const bar of minuteBars(1)) deps.broker.observeBar(bar);
    await deps.broker.submit({ clientOrderId: 'AAPL-6e0d4e7adcc08379c97f4608', symbol: 'AAPL', side: 'buy', qty: '1', type: 'market' });
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    await expect(session.start()).rejects.toMatchObject({ code: 'LEGACY_ORDER_IDS', message: expect.stringContaining('start a new state dir') });
    await session.stop().catch(() => undefined);
  });

  it('reports at stop a fill of its own order on a bar it already decided that it never applied', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([]), replay: true });
    await session.start();
    await session.ingest(minuteBars(3));
    // An order carrying this session's tag for a decided bar, placed behind the session's back.
    const [bar] = minuteBars(1);
    if (bar === undefined) throw new Error('no bar');
    const id = clientOrderId({ sessionId: 'aistock', strategyId: 'cue', symbol: 'AAPL', barTime: bar.ts, intentIndex: 0, quantity: '1' });
    await deps.broker.submit({ clientOrderId: id, symbol: 'AAPL', side: 'buy', qty: '1', type: 'market' });
    const summary = await session.stop();
    expect(summary.reconciliation.at(-1)).toMatchObject({ at: 'stop', differences: [expect.objectContaining({ symbol: 'AAPL', local: '0', broker: '1', unexplained: '1' })] });
    expect(summary.reconciled.differences).toBe(1);
  });

  it('halts trading under the halt policy when the difference exceeds the tolerance', async () => {
    const deps = await brokerWithForeignPosition();
    const session = createTradingSession({ ...deps, strategy: buyOnBars([2]), replay: true, reconcile: { policy: 'halt', tolerance: 0.1 } });
    await session.start();
    await session.ingest(minuteBars(3));
    const summary = await session.stop();
    expect(summary.risk.state).toBe('halted');
    expect(summary.risk.haltReasons[0]).toContain('RECONCILIATION_MISMATCH');
    expect(summary.orders.submitted).toBe(0);
    expect(summary.orders.denied).toBe(1);
  });
});

describe('scheduled reconciliation (live)', () => {
  it('finds a position placed at the broker mid-session at the next interval, and adopts it', async () => {
    const deps = await sessionDeps();
    const session = createTradingSession({
      ...deps,
      strategy: buyOnBars([]),
      guard: { maxStalenessMs: null },
      reconcile: { policy: 'adopt', tolerance: 0.1, intervalMs: 60_000 },
    });
    await session.start();
    const bars = minuteBars(4);
    await session.ingest(bars.slice(0, 2));
    // Someone trades by hand at the broker while the session runs.
    for (const bar of bars.slice(1, 2)) deps.broker.observeBar(bar);
    await deps.broker.submit({ clientOrderId: 'MANUAL-2', symbol: 'AAPL', side: 'buy', qty: '3', type: 'market' });
    deps.clock.advance(61_000);
    await session.ingest(bars.slice(2, 3));
    await session.ingest(bars.slice(3));
    const summary = await session.stop();
    const scheduled = summary.reconciliation.filter((report) => report.at === 'scheduled');
    expect(scheduled[0]?.differences).toEqual([expect.objectContaining({ symbol: 'AAPL', local: '0', broker: '3' })]);
    expect(summary.portfolio.positions).toEqual({ AAPL: expect.objectContaining({ qty: '3' }) });
  });
});

describe('rate limits across a replay restart', () => {
  /** Five-second bars from 09:30 New York on 2025-11-03. */
  const fiveSecondBars = (count: number) =>
    Array.from({ length: count }, (_, i) => {
      const price = 100 + i * 0.01;
      return { symbol: 'AAPL', ts: Date.UTC(2025, 10, 3, 14, 30) + i * 5_000, open: price, high: price + 0.05, low: price - 0.05, close: price, volume: 10_000 };
    });

  it('keeps the per-minute window of market time when a replay resumes', async () => {
    const deps = await sessionDeps();
    const options = {
      stateDir: deps.stateDir,
      clock: deps.clock,
      log: deps.log,
      strategy: buyOnBars([3, 4]),
      replay: true,
      baseTimeframe: '5s' as const,
      timeframes: ['5s' as const, '1m' as const],
      risk: { maxOrdersPerMinute: 1 },
    };
    const first = createTradingSession({ ...options, broker: deps.broker });
    await first.start();
    await first.ingest(fiveSecondBars(3));
    expect((await first.stop()).orders.submitted).toBe(1);

    // Bar 4 is 5 s of market time after the first order: the 1-per-minute limit must still hold.
    const second = createTradingSession(options);
    await second.start();
    await second.ingest(fiveSecondBars(4));
    const summary = await second.stop();
    expect(summary.orders).toMatchObject({ submitted: 0, denied: 1 });
  });
});
