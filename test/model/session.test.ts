import { createActor, fromPromise, waitFor, type EventFromLogic } from 'xstate';
import { describe, expect, it } from 'vitest';
import { sessionMachine, type Execution, type SessionStart } from '../../machines/session.machine.js';
import { createPortfolio } from '../../src/core/portfolio.js';
import { accountView, createRiskState, updateAccount } from '../../src/core/risk.js';
import { compileRiskRules, parseRiskLimits } from '../../src/core/riskLimits.js';
import { createPipeline } from '../../src/core/sessionPipeline.js';
import { allStateIds, modelPaths, replayPath, statesReached } from '../../src/testing/modelTesting.js';
import { buyOnBars, minuteBars } from '../support/sessionFixture.js';

type ModelEvent = EventFromLogic<typeof sessionMachine>;

const strategy = buyOnBars([2]);
const rules = compileRiskRules(parseRiskLimits({ rateLimitEnabled: false }));
// Live, so the scheduled reconciliation is part of the model: due once 500 ms of feed time passed.
const input = { strategy, rules, sessionId: 'model', replay: false, symbols: null, reconcileEveryMs: 500 };
const fresh = (): SessionStart => {
  const portfolio = createPortfolio({ initialCash: '100000' });
  return {
  pipeline: createPipeline(strategy),
  portfolio,
  risk: updateAccount(createRiskState(), rules, accountView(portfolio)).state,
  appliedFills: {},
  unsettled: {},
  settled: [],
  };
};
const noOutcomes: Execution = { outcomes: [] };

const events = [
  { type: 'START' },
  { type: 'STOP' },
  { type: 'BARS', bars: minuteBars(3), monoMs: 0 },
  { type: 'BARS', bars: minuteBars(3, 'AAPL', 101), monoMs: 1_000 },
  { type: 'xstate.done.actor.reconciler', output: { halt: null, adoptionFills: [] } },
  { type: 'xstate.error.actor.reconciler', error: new Error('broker unreachable') },
  // The start sequence: each step can finish or fail; the last one hands over the state.
  ...['locker', 'restorer', 'journalLoader', 'brokerOpener', 'settler'].flatMap((id) => [
    { type: `xstate.done.actor.${id}` },
    { type: `xstate.error.actor.${id}`, error: new Error(`${id} failed`) },
  ]),
  { type: 'xstate.done.actor.starter', output: fresh() },
  { type: 'xstate.error.actor.starter', error: new Error('broker unreachable at start') },
  { type: 'xstate.done.actor.executor', output: noOutcomes },
  { type: 'xstate.error.actor.executor', error: new Error('executor bug') },
  { type: 'xstate.done.actor.drainer' },
  { type: 'xstate.error.actor.drainer', error: new Error('broker down during drain') },
  { type: 'xstate.done.actor.cleanup' },
  { type: 'xstate.error.actor.cleanup', error: new Error('lock release failed') },
  { type: 'CHILD_FAILED', child: 'idempotency', error: 'journal actor died' },
] as unknown as ModelEvent[];

const paths = modelPaths(sessionMachine, {
  events,
  input,
  serializeState: (s) =>
    JSON.stringify([
      s.value,
      Math.min(s.context.inbox.length, 1),
      s.context.planned.length > 0,
      s.context.stopRequested,
      s.context.lastMonoMs,
      s.context.lastReconciledMonoMs,
      s.context.fault !== null,
    ]),
});

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
      reconcilePositions: held('reconciler') as never,
    },
  });
  const actor = createActor(machine, { input });
  actor.subscribe({ error: () => undefined });
  actor.start();
  const settle = (id: string, outcome: { output?: unknown; error?: Error }): void => {
    const entry = pending.get(id);
    if (entry === undefined) throw new Error(`no ${id} in flight`);
    pending.delete(id);
    if (outcome.error) entry.reject(outcome.error);
    else entry.resolve(outcome.output);
  };
  return { actor, pending, settle };
}

describe('session model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(134);
  });

  it('reaches every state of the machine', () => {
    expect(statesReached(paths)).toEqual(allStateIds(sessionMachine));
  });

  it.each(paths.map((p) => [p.description, p] as const))('replays %s; afterwards STOP always reaches shutdown', async (_name, path) => {
    const live = liveSession();
    await replayPath(path, {
      actor: live.actor,
      cause: async (event) => {
        const e = event as { type: string; output?: unknown; error?: Error };
        const actorEvent = /^xstate\.(done|error)\.actor\.(\w+)$/.exec(e.type);
        if (actorEvent === null) return void live.actor.send(event);
        // Let the actor start the invocation before settling it.
        await new Promise((resolve) => setImmediate(resolve));
        const id = actorEvent[2] ?? '';
        // The faulted state's cleanup is the same drainSession actor, held under 'drainer'.
        live.settle(id === 'cleanup' ? 'drainer' : id, actorEvent[1] === 'error' ? { error: e.error ?? new Error('x') } : { output: e.output });
      },
      checkInvariants: () => {
        const s = live.actor.getSnapshot();
        // Nothing is decided before the state is restored, and no order is planned while stopping.
        if (s.matches('idle') || s.matches('starting')) expect(s.context.pipeline).toBeNull();
        if (s.matches('draining') || s.matches('shutdown') || s.matches('faulted')) expect(s.context.planned).toEqual([]);
        // No session trades on after a fault (a start failure, a crashed execution, a dead child).
        if (s.matches('running')) expect(s.context.fault).toBeNull();
        // A failed start names the step that failed.
        if (s.matches('faulted') && s.context.fault?.code === 'START_FAILED') expect(s.context.fault.step).toBeDefined();
        // Shut down means released: no drain or cleanup still holds the lock, the journal, the broker.
        if (s.matches('shutdown')) expect(live.pending.has('drainer')).toBe(false);
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
