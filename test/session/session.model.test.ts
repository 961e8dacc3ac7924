import { FillCounts } from '../../src/session/fillCounts.js';
import { createActor, fromPromise, waitFor, type EventFromLogic, type StateValue } from 'xstate';
import { describe, expect, it } from 'vitest';
import { sessionMachine, type Execution, type Reconciliation, type SessionStart } from '../../machines/session.machine.js';
import { createPortfolio } from '../../src/portfolio/portfolio.js';
import { accountView, createRiskState, updateAccount } from '../../src/risk/risk.js';
import { compileRiskRules, parseRiskLimits } from '../../src/risk/riskLimits.js';
import { createPipeline } from '../../src/session/sessionPipeline.js';
import { barsMachine } from '../../machines/bars.machine.js';
import { dataGuardMachine } from '../../machines/dataGuard.machine.js';
import { portfolioMachine } from '../../machines/portfolio.machine.js';
import { reconcilerMachine } from '../../machines/reconciler.machine.js';
import { riskMachine } from '../../machines/risk.machine.js';
import type { Bar } from '../../src/bars/bar.js';
import type { PlannedOrder } from '../../src/session/sessionPipeline.js';
import { allStateIds, CannotHappenHere, replayPath, stateIdsOf, statesReached, systemPaths, type ModelStep } from '../../src/testing/modelTesting.js';
import { buyOnBars, minuteBars } from '../support/sessionFixture.js';

type ModelEvent = EventFromLogic<typeof sessionMachine>;
/** Shortest paths of the composed tree (the session and its real children), found by running it. */
const PATH_COUNT = 675;

// Buys on bar 2, 5 and 8 (one in each batch): orders to approve, or to deny while halted.
const strategy = buyOnBars([2, 5, 8]);
const rules = compileRiskRules(parseRiskLimits({ rateLimitEnabled: false }));
// Live, so the scheduled reconciliation is part of the model: due once 500 ms of feed time passed.
const input = { strategy, rules, sessionId: 'model', replay: false, symbols: null, reconcileEveryMs: 500 };
const fresh = (): SessionStart => {
  const portfolio = createPortfolio({ initialCash: '100000' });
  return {
  pipeline: createPipeline(strategy),
  portfolio,
  risk: updateAccount(createRiskState(), rules, accountView(portfolio)).state,
  appliedFills: FillCounts.EMPTY,
  unsettled: {},
  settled: [],
  };
};
const noOutcomes: Execution = { outcomes: [] };

const later = (bars: Bar[], minutes: number): Bar[] => bars.map((bar) => ({ ...bar, ts: bar.ts + minutes * 60_000 }));
const HALT = { code: 'POSITION_MISMATCH', detail: 'broker holds 5 AAPL, portfolio 0', at: Date.UTC(2025, 10, 3, 15) };

const events = [
  { type: 'START' },
  { type: 'STOP' },
  { type: 'BARS', bars: minuteBars(3), monoMs: 0 },
  { type: 'BARS', bars: later(minuteBars(3, 'AAPL', 101), 3), monoMs: 1_000 },
  { type: 'BARS', bars: later(minuteBars(3, 'AAPL', 102), 6), monoMs: 1_200 },
  { type: 'xstate.done.actor.reconciler', output: { halt: null, adoptionFills: [] } },
  // The broker holds what the portfolio does not: risk halts (a child's own transition).
  { type: 'xstate.done.actor.reconciler', output: { halt: HALT, adoptionFills: [] } },
  { type: 'xstate.error.actor.reconciler', error: new Error('broker unreachable') },
  // The start sequence: each step can finish or fail; the last one hands over the state.
  ...['locker', 'restorer', 'journalLoader', 'brokerOpener', 'settler'].flatMap((id) => [
    { type: `xstate.done.actor.${id}` },
    { type: `xstate.error.actor.${id}`, error: new Error(`${id} failed`) },
  ]),
  { type: 'xstate.done.actor.starter', output: fresh() },
  { type: 'xstate.error.actor.starter', error: new Error('broker unreachable at start') },
  { type: 'xstate.done.actor.executor', output: noOutcomes },
  // The orders in flight were sent and filled: the portfolio then holds AAPL, so later bars are settled.
  { type: 'xstate.done.actor.executor', output: 'FILLED' },
  { type: 'xstate.error.actor.executor', error: new Error('executor bug') },
  { type: 'xstate.done.actor.drainer' },
  { type: 'xstate.error.actor.drainer', error: new Error('broker down during drain') },
  { type: 'xstate.done.actor.cleanup' },
  { type: 'xstate.error.actor.cleanup', error: new Error('lock release failed') },
  // The journal tracker (a child the runtime creates) dies: XState's own error event.
  { type: 'xstate.error.actor.idempotency', error: new Error('journal actor died') },
  // The store's lease is another process's now (a standby took over): in any state.
  { type: 'HOLD_LOST', error: Object.assign(new Error('the lease was taken over'), { code: 'LEASE_LOST' }) },
] as unknown as ModelEvent[];

/** The outcome of every planned order sent and filled at its price. */
function filled(planned: readonly PlannedOrder[]): Execution {
  return {
    outcomes: planned.map((order) => ({
      kind: 'submitted' as const,
      order,
      fills: [{ clientOrderId: order.clientOrderId, symbol: order.intent.symbol, side: order.intent.side, qty: order.intent.qty, price: String(order.price), commission: '0', filledAt: order.barTs }],
    })),
  };
}

/** The machine with every I/O actor held until the test settles it, as the model says. */
function liveSession() {
  const pending = new Map<string, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  const held = (id: string) =>
    fromPromise(
      () =>
        new Promise<never>((resolve, reject) => {
          pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        }),
    );
  const machine = sessionMachine.provide({
    actors: {
      lockStateDir: held('locker') as never,
      restoreCheckpoint: held('restorer') as never,
      loadJournal: held('journalLoader') as never,
      openBroker: held('brokerOpener') as never,
      settleOrders: held('settler') as never,
      reconcileAtStart: held('starter') as never,
      executeOrders: held('executor') as never,
      drainSession: held('drainer') as never,
      reconciler: reconcilerMachine.provide({ actors: { checkPositions: held('reconciler') as never } }),
    },
  });
  const actor = createActor(machine, { input });
  actor.subscribe({ error: () => undefined });
  actor.start();
  const settle = (id: string, outcome: { output?: unknown; error?: Error }): void => {
    const entry = pending.get(id);
    if (entry === undefined) throw new CannotHappenHere(`no ${id} in flight`);
    pending.delete(id);
    if (outcome.error) entry.reject(outcome.error);
    else entry.resolve(outcome.output);
  };
  return { actor, pending, settle };
}

/** Makes a model event happen to a live session: sends it, or settles the I/O actor it names. */
async function causeIn(live: ReturnType<typeof liveSession>, event: ModelEvent): Promise<void> {
  const e = event as { type: string; output?: unknown; error?: Error };
  const actorEvent = /^xstate\.(done|error)\.actor\.(\w+)$/.exec(e.type);
  // A child's death reaches the session as XState's error event; the model sends it as such.
  if (actorEvent === null || actorEvent[2] === 'idempotency') return void live.actor.send(event);
  // Let the actor start the invocation before settling it.
  await new Promise((resolve) => setImmediate(resolve));
  const id = actorEvent[2] ?? '';
  const output = e.output === 'FILLED' ? filled(live.actor.getSnapshot().context.planned) : e.output;
  // The faulted state's cleanup is the same drainSession actor, held under 'drainer'.
  live.settle(id === 'cleanup' ? 'drainer' : id, actorEvent[1] === 'error' ? { error: e.error ?? new Error('x') } : { output });
}

/** The logic an actor runs (an `Actor`'s own field; `ActorRef` does not type it). */
const logicOf = (ref: object): unknown => (ref as { logic?: unknown }).logic;

const riskOf = (s: ReturnType<ReturnType<typeof liveSession>['actor']['getSnapshot']>) => s.context.children?.risk.getSnapshot();

/** Every state the session passed through while the paths were explored, at rest or between two answers of its children. */
const passedThrough = new Set<string>();
const paths = await systemPaths<ModelEvent>({
  create: () => {
    const live = liveSession();
    live.actor.system.inspect({
      next: (inspection) => {
        if (inspection.type !== '@xstate.microstep' || inspection.actorRef !== live.actor) return;
        for (const id of stateIdsOf((inspection.snapshot as unknown as { value: StateValue }).value)) passedThrough.add(id);
      },
    });
    return { actor: live.actor, cause: (event) => causeIn(live, event), dispose: () => live.actor.stop() };
  },
  events,
  serializeState: (snapshot) => {
    const s = snapshot as ReturnType<ReturnType<typeof liveSession>['actor']['getSnapshot']>;
    return JSON.stringify([
      s.value,
      Math.min(s.context.inbox.length, 1),
      s.context.planned.length > 0,
      s.context.stopRequested,
      s.context.lastMonoMs,
      s.context.lastReconciledMonoMs,
      s.context.fault?.code ?? null,
      riskOf(s)?.value ?? null,
      (s.context.decided?.positions.size ?? 0) > 0,
    ]);
  },
  // Deep enough for: start (7 steps), a batch, its execution, a second batch, a reconciliation, a third batch.
  maxDepth: 13,
});

describe('session model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(PATH_COUNT);
  });

  it('reaches every state of the machine (the states a batch only passes through included)', () => {
    expect(new Set([...statesReached(paths), ...passedThrough])).toEqual(allStateIds(sessionMachine));
  });

  it('walks the composed tree: bars after a fill (settled by the portfolio and risk), bars after risk halted', () => {
    const after = (first: (step: ModelStep<ModelEvent>) => boolean) =>
      paths.some((path) => {
        const at = path.steps.findIndex(first);
        return at >= 0 && path.steps.slice(at + 1).some((step) => step.event.type === 'BARS');
      });
    expect(after((step) => (step.event as { output?: unknown }).output === 'FILLED')).toBe(true);
    expect(after((step) => (step.event as { output?: Reconciliation }).output?.halt === HALT)).toBe(true);
  });

  /** An I/O actor of the start or the stop, finished (as the model's events settle it). */
  const done = (live: ReturnType<typeof liveSession>, id: string, output?: unknown) =>
    causeIn(live, { type: `xstate.done.actor.${id}`, output } as unknown as ModelEvent);
  const holdLost: ModelEvent = { type: 'HOLD_LOST', error: Object.assign(new Error('taken over'), { code: 'LEASE_LOST' }) };

  it('a hold lost while starting faults the session LEASE_LOST once the start completes, never beside it', async () => {
    const live = liveSession();
    live.actor.send({ type: 'START' });
    await done(live, 'locker');
    live.actor.send(holdLost);
    // Still starting: the restore in flight is not abandoned.
    expect(live.actor.getSnapshot().matches({ starting: 'restoring' })).toBe(true);
    for (const id of ['restorer', 'journalLoader', 'brokerOpener', 'settler']) await done(live, id);
    await done(live, 'starter', fresh());
    const s = live.actor.getSnapshot();
    expect(s.matches('faulted')).toBe(true);
    expect(s.context.fault).toMatchObject({ code: 'LEASE_LOST' });
    // Never started trading: no child was spawned from the handed-over state.
    expect(s.context.children).toBeNull();
  });

  it('a hold lost while draining is the fault the stop ends with; the drain still runs to shutdown', async () => {
    const live = liveSession();
    live.actor.send({ type: 'START' });
    for (const id of ['locker', 'restorer', 'journalLoader', 'brokerOpener', 'settler']) await done(live, id);
    await done(live, 'starter', fresh());
    live.actor.send({ type: 'STOP' });
    expect(live.actor.getSnapshot().matches('draining')).toBe(true);
    live.actor.send(holdLost);
    expect(live.actor.getSnapshot().matches('draining')).toBe(true);
    await done(live, 'drainer');
    const s = live.actor.getSnapshot();
    expect(s.matches('shutdown')).toBe(true);
    expect(s.context.fault).toMatchObject({ code: 'LEASE_LOST' });
  });

  it.each(paths.map((p) => [p.description, p] as const))('replays %s; afterwards STOP always reaches shutdown', async (_name, path) => {
    const live = liveSession();
    await replayPath(path, {
      actor: live.actor,
      cause: (event) => causeIn(live, event),
      checkInvariants: () => {
        const s = live.actor.getSnapshot();
        // Nothing is decided before the state is restored, and no order is planned while stopping.
        if (s.matches('idle') || s.matches('starting')) expect(s.context.decided).toBeNull();
        if (s.matches('draining') || s.matches('shutdown') || s.matches('faulted')) expect(s.context.planned).toEqual([]);
        // No session trades on after a fault (a start failure, a crashed execution, a dead child).
        if (s.matches('running')) expect(s.context.fault).toBeNull();
        // A failed start names the step that failed.
        if (s.matches('faulted') && s.context.fault?.code === 'START_FAILED') expect(s.context.fault.step).toBeDefined();
        // Shut down means released: no drain or cleanup still holds the lock, the journal, the broker.
        if (s.matches('shutdown')) expect(live.pending.has('drainer')).toBe(false);
        // No (opening) order reaches the broker while risk is halted.
        if (s.matches({ running: 'executing' })) expect(riskOf(s)?.matches({ running: 'halted' })).toBe(false);
        // Started, the children are the exported machines, each on the shared lifecycle.
        const { children } = s.context;
        if (children !== null) {
          expect(logicOf(children.risk)).toBe(riskMachine);
          expect(logicOf(children.portfolio)).toBe(portfolioMachine);
          expect(logicOf(children.bars)).toBe(barsMachine);
          expect(logicOf(children.dataGuard)).toBe(dataGuardMachine);
          // The reconciler's check is the runtime's I/O: its logic is the exported machine, provided.
          expect((logicOf(children.reconciler) as { config?: unknown }).config).toBe(reconcilerMachine.config);
          if (s.matches('running')) for (const child of Object.values(children)) expect(child.getSnapshot().matches('running')).toBe(true);
          if (s.matches('shutdown')) for (const child of Object.values(children)) expect(child.getSnapshot().hasTag('stopped')).toBe(true);
        }
      },
    });
    // Whatever happened, a STOP (and the I/O finishing) ends in shutdown.
    live.actor.send({ type: 'STOP' });
    for (let i = 0; i < 12 && !live.actor.getSnapshot().hasTag('stopped'); i += 1) {
      await new Promise((resolve) => setImmediate(resolve));
      for (const id of [...live.pending.keys()]) {
        const output = id === 'starter' ? fresh() : id === 'executor' ? noOutcomes : id === 'reconciler' ? { halt: null, adoptionFills: [] } : undefined;
        live.settle(id, { output });
      }
      live.actor.send({ type: 'STOP' });
    }
    await waitFor(live.actor, (s) => s.hasTag('stopped'), { timeout: 1_000 });
  });
});
