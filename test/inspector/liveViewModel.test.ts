import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, sendTo, setup, waitFor } from 'xstate';
import { riskMachine } from '../../machines/index.js';
import { mermaidStateIds } from '../../src/docs/mermaid.js';
import { activeStatePaths, LiveModel, PREVIEW_CHARS, type LiveActor } from '../../src/inspector/liveViewModel.js';

/** A child with a compound state, so the active ids span two levels. */
const lampMachine = setup({}).createMachine({
  id: 'lamp',
  initial: 'off',
  states: {
    off: { on: { FLIP: 'on' } },
    on: { initial: 'dim', on: { FLIP: 'off' }, states: { dim: { on: { BRIGHTER: 'bright' } }, bright: {} } },
  },
});

/** A parent that spawns the lamp under a systemId and, on `FETCH`, invokes a promise worker that waits for `release`. */
function houseMachine(release: Promise<string>) {
  return setup({
    actors: { lamp: lampMachine, fetcher: fromPromise(() => release) },
  }).createMachine({
    id: 'house',
    initial: 'idle',
    invoke: { src: 'lamp', id: 'lamp', systemId: 'lamp' },
    on: { FLIP: { actions: sendTo('lamp', ({ event }) => event) }, BRIGHTER: { actions: sendTo('lamp', ({ event }) => event) } },
    states: {
      idle: { on: { FETCH: 'fetching' } },
      fetching: { invoke: { src: 'fetcher', id: 'fetcher', onDone: 'idle' } },
    },
  });
}

let clock = 0;
function model(eventsShown = 200, trailLength = 12): LiveModel {
  clock = 0;
  return new LiveModel({ machines: [], eventsShown, trailLength, now: () => clock });
}

function byName(actors: readonly LiveActor[], name: string): LiveActor | undefined {
  return actors.find((actor) => actor.name === name);
}

describe('activeStatePaths', () => {
  it('lists every active state of a value, parents before children, regions side by side', () => {
    expect(activeStatePaths('idle')).toEqual(['idle']);
    expect(activeStatePaths({ running: 'active' })).toEqual(['running', 'running.active']);
    expect(activeStatePaths({ lifecycle: 'running', journal: { writing: 'batch' } })).toEqual([
      'lifecycle',
      'lifecycle.running',
      'journal',
      'journal.writing',
      'journal.writing.batch',
    ]);
  });
});

describe('LiveModel', () => {
  it('shows the actor tree: each actor by its systemId, its parent, its machine and its diagram', () => {
    const live = model();
    const house = createActor(houseMachine(new Promise(() => undefined)), { systemId: 'home', inspect: (event) => live.observe(event) });
    house.start();

    const view = live.view();
    const root = byName(view.actors, 'home');
    // The root's systemId is set by XState after it announces the actor: the name still ends up right.
    expect(root).toMatchObject({ sessionId: house.sessionId, parentId: null, machineId: 'house', state: '"idle"' });
    expect(byName(view.actors, 'lamp')).toMatchObject({ parentId: house.sessionId, machineId: 'lamp', state: '"off"' });
    expect(view.diagrams.map((d) => d.machineId).sort()).toEqual(['house', 'lamp']);
    expect(view.diagrams.find((d) => d.machineId === 'lamp')?.source).toMatch(/^stateDiagram-v2\n/);
  });

  it('draws the machines it is given before any actor runs them, with each state’s Mermaid id', () => {
    const live = new LiveModel({ machines: [riskMachine], eventsShown: 10, trailLength: 5, now: () => 0 });

    const [risk] = live.view().diagrams;

    expect(risk?.machineId).toBe('risk');
    expect(risk?.stateIds).toEqual(Object.fromEntries(mermaidStateIds(riskMachine)));
    expect(risk?.stateIds['running.active']).toBe('running_active');
  });

  it('lights the active states at every level and keeps the states an actor went through, newest first, bounded', () => {
    const live = model(200, 2);
    const house = createActor(houseMachine(new Promise(() => undefined)), { inspect: (event) => live.observe(event) });
    house.start();
    clock = 1_000;
    house.send({ type: 'FLIP' });
    clock = 2_000;
    house.send({ type: 'BRIGHTER' });

    const lamp = byName(live.view().actors, 'lamp');

    expect(lamp?.state).toBe('{"on":"bright"}');
    expect(lamp?.activeIds).toEqual(['on', 'on_bright']);
    expect(lamp?.trail).toEqual([
      { state: '{"on":"bright"}', at: 2_000 },
      { state: '{"on":"dim"}', at: 1_000 },
    ]);
  });

  it('sends in an update only what changed since the last one: changed actors and the new events', () => {
    const live = model();
    const house = createActor(houseMachine(new Promise(() => undefined)), { inspect: (event) => live.observe(event) });
    house.start();
    const first = live.takeUpdate();
    expect(first?.actors.map((a) => a.machineId).sort()).toEqual(['house', 'lamp']);
    expect(live.takeUpdate()).toBeNull();

    house.send({ type: 'FLIP' });
    const update = live.takeUpdate();

    expect(update?.actors.map((a) => a.name)).toEqual(['lamp']);
    // FLIP reaches the house from outside, then the lamp from the house: newest first.
    expect(update?.events.map((e) => [e.type, e.from, e.to])).toEqual([
      ['FLIP', 'house', 'lamp'],
      ['FLIP', null, 'house'],
    ]);
    expect(update?.eventCount).toBe(update?.events[0]?.seq);
  });

  it('keeps the newest events only, and a payload’s preview short', () => {
    const live = model(3);
    const house = createActor(houseMachine(new Promise(() => undefined)), { inspect: (event) => live.observe(event) });
    house.start();
    for (let i = 0; i < 10; i += 1) house.send({ type: 'NOTE', text: 'x'.repeat(1_000), i });

    const { events, eventCount } = live.view();

    expect(events.map((e) => e.seq)).toEqual([eventCount, eventCount - 1, eventCount - 2]);
    expect(events[0]?.preview.length).toBe(PREVIEW_CHARS);
    expect(events[0]?.preview).toMatch(/^\{"text":"x+…$/);
  });

  it('shows an invoked worker while it runs and drops it once it is done', async () => {
    const live = model();
    let release: (value: string) => void = () => undefined;
    const house = createActor(houseMachine(new Promise((resolve) => (release = resolve))), { inspect: (event) => live.observe(event) });
    house.start();
    house.send({ type: 'FETCH' });
    const worker = byName(live.view().actors, 'fetcher');
    expect(worker).toMatchObject({ machineId: null, parentId: house.sessionId, state: null });
    live.takeUpdate();

    release('fetched');
    await waitFor(house, (s) => s.matches('idle'));

    expect(byName(live.view().actors, 'fetcher')).toBeUndefined();
    expect(live.takeUpdate()?.removed).toEqual([worker?.sessionId]);
  });
});
