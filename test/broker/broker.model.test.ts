import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, type EventFromLogic } from 'xstate';
import { describe, expect, it } from 'vitest';
import { brokerMachine, type BrokerEmitted } from '../../machines/broker.machine.js';
import { brokerLogic, openBrokerConnection, type BrokerHeld } from '../../src/broker/brokerConnection.js';
import { ManualClock } from '../../src/common/clock.js';
import { PaperBroker } from '../../src/broker/paperBroker.js';
import { allStateIds, modelPaths, replayPath, statesReached, type ModelPath } from '../../src/testing/modelTesting.js';

type ModelEvent = EventFromLogic<typeof brokerMachine>;

// The machine's own events, plus the adapter's opening and closing, each finishing or failing.
const events = [
  { type: 'START' },
  { type: 'STOP' },
  { type: 'xstate.done.actor.opener', output: [] },
  { type: 'xstate.error.actor.opener', error: new Error('cannot open') },
  { type: 'xstate.done.actor.closer' },
  { type: 'xstate.error.actor.closer', error: new Error('cannot close') },
] as unknown as ModelEvent[];

const paths = modelPaths(brokerMachine, {
  events,
  serializeState: (s) => JSON.stringify([s.value, s.context.stopRequested, s.context.error !== null]),
});

/**
 * A real PaperBroker in a temp dir whose opening and closing wait for the test: the model's
 * `done` lets them go, its `error` makes them fail for real (a state dir that is a file, a
 * ledger closed twice over a failing close).
 */
async function liveConnection() {
  const dir = await mkdtemp(join(tmpdir(), 'aistock-model-broker-'));
  const gates = new Map<'opener' | 'closer', (fail: boolean) => void>();
  const wait = (id: 'opener' | 'closer') => new Promise<boolean>((resolve) => gates.set(id, resolve));
  const held: BrokerHeld = {};
  const open = async () => {
    const fail = await wait('opener');
    if (fail) {
      // A broker dir that is a file: PaperBroker.open fails with the OS's own error.
      await writeFile(join(dir, 'file'), '');
      return PaperBroker.open({ dir: join(dir, 'file'), clock: new ManualClock() });
    }
    const broker = await PaperBroker.open({ dir: join(dir, 'broker'), clock: new ManualClock() });
    const close = broker.close.bind(broker);
    broker.close = async () => {
      const failClose = await wait('closer');
      await close();
      if (failClose) throw new Error('ledger close failed');
    };
    return broker;
  };
  const actor = createActor(brokerLogic(open, held));
  const emitted: BrokerEmitted[] = [];
  actor.on('*', (event: BrokerEmitted) => emitted.push(event));
  actor.start();
  // The adapter's real I/O (opening the ledger) comes before its close is called: poll for it.
  const release = async (id: 'opener' | 'closer', fail: boolean): Promise<void> => {
    for (let i = 0; i < 500 && !gates.has(id); i += 1) await new Promise((resolve) => setTimeout(resolve, 2));
    const gate = gates.get(id);
    if (gate === undefined) throw new Error(`no ${id} in flight`);
    gates.delete(id);
    gate(fail);
  };
  return { actor, emitted, held, release, pending: gates };
}

async function replay(path: ModelPath<ModelEvent>): Promise<void> {
  const live = await liveConnection();
  await replayPath(path, {
    actor: live.actor,
    cause: async (event) => {
      const actorEvent = /^xstate\.(done|error)\.actor\.(opener|closer)$/.exec(event.type);
      if (actorEvent === null) return void live.actor.send(event);
      await live.release(actorEvent[2] as 'opener' | 'closer', actorEvent[1] === 'error');
    },
    checkInvariants: () => {
      const s = live.actor.getSnapshot();
      // Running means opened: the ids the broker holds are known, and it was reported.
      if (s.matches('running')) expect(live.emitted.some((e) => e.type === 'BROKER_OPENED')).toBe(true);
      // A failed open or close is reported with the error, never silent.
      if (s.matches('faulted')) expect(live.emitted.at(-1)).toMatchObject({ type: 'BROKER_OPEN_FAILED', error: expect.any(String) });
      if (s.matches('shutdown') && s.context.error !== null) {
        expect(live.emitted.some((e) => e.type === 'BROKER_CLOSE_FAILED' || e.type === 'BROKER_OPEN_FAILED')).toBe(true);
      }
    },
  });
  // Whatever happened, STOP (and the adapter's I/O finishing) ends in shutdown.
  live.actor.send({ type: 'STOP' });
  for (let i = 0; i < 500 && !live.actor.getSnapshot().hasTag('stopped'); i += 1) {
    for (const id of [...live.pending.keys()]) await live.release(id, false);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  expect(live.actor.getSnapshot().value).toBe('shutdown');
}

describe('broker connection model', () => {
  it('has the expected number of shortest paths', () => {
    expect(paths).toHaveLength(PATH_COUNT);
  });

  it('reaches every state of the machine', () => {
    expect(statesReached(paths)).toEqual(allStateIds(brokerMachine));
  });

  it.each(paths.map((path) => [path.description, path] as const))('replays %s against a real PaperBroker', async (_name, path) => {
    await replay(path);
  });
});

describe('openBrokerConnection', () => {
  it('rejects with the adapter’s own error when it cannot open, and leaves the actor faulted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-broker-'));
    await writeFile(join(dir, 'file'), '');
    await expect(openBrokerConnection({ open: () => PaperBroker.open({ dir: join(dir, 'file'), clock: new ManualClock() }) })).rejects.toMatchObject({
      code: expect.any(String),
    });
  });

  it('opens, knows the ids the broker holds, and closes through the actor', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-broker-'));
    const first = await PaperBroker.open({ dir, clock: new ManualClock() });
    first.observeBar({ symbol: 'AAPL', ts: Date.UTC(2025, 0, 2, 14, 30), open: 100, high: 100, low: 100, close: 100 });
    await first.submit({ clientOrderId: 'AAPL-1', symbol: 'AAPL', side: 'buy', qty: '1', type: 'market' });
    await first.close();
    const connection = await openBrokerConnection({ open: () => PaperBroker.open({ dir, clock: new ManualClock() }) });
    expect(connection.knownClientOrderIds).toEqual(['AAPL-1']);
    expect(connection.actor.getSnapshot().value).toBe('running');
    await connection.close();
    expect(connection.actor.getSnapshot().value).toBe('shutdown');
  });
});

const PATH_COUNT = 12;
