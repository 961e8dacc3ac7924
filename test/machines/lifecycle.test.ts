import { createActor, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { LIFECYCLE, lifecycleStates, lifecycleStatesWithFault, type LifecycleEvent } from '../../machines/lifecycle.js';
import { allStateIds, modelPaths, statesReached } from '../../src/testing/modelTesting.js';

const componentMachine = setup({ types: { events: {} as LifecycleEvent | { type: 'FAIL' } | { type: 'DONE' } } }).createMachine({
  id: 'component',
  initial: LIFECYCLE.idle,
  states: lifecycleStatesWithFault({
    running: { on: { FAIL: LIFECYCLE.faulted } },
    draining: { on: { DONE: LIFECYCLE.shutdown } },
    faulted: {},
  }),
});

const events = [{ type: 'START' }, { type: 'STOP' }, { type: 'FAIL' }, { type: 'DONE' }] as const;

describe('the shared lifecycle', () => {
  it('goes idle → running → draining → shutdown', () => {
    const actor = createActor(componentMachine).start();
    const seen = [actor.getSnapshot().value];
    for (const event of [{ type: 'START' }, { type: 'STOP' }, { type: 'DONE' }] as const) {
      actor.send(event);
      seen.push(actor.getSnapshot().value);
    }
    expect(seen).toEqual(['idle', 'running', 'draining', 'shutdown']);
  });

  it('stops straight from idle', () => {
    const actor = createActor(componentMachine).start();
    actor.send({ type: 'STOP' });
    expect(actor.getSnapshot().value).toBe('shutdown');
  });

  it('ignores a second STOP while draining, explicitly', () => {
    const actor = createActor(componentMachine).start();
    actor.send({ type: 'START' });
    actor.send({ type: 'STOP' });
    const before = actor.getSnapshot();
    actor.send({ type: 'STOP' });
    expect(actor.getSnapshot().value).toBe('draining');
    expect(actor.getSnapshot().context).toBe(before.context);
    expect(componentMachine.root.states.draining?.on.STOP).toBeDefined();
  });

  it('handles STOP in every state, and every STOP leads to shutdown', () => {
    for (const id of allStateIds(componentMachine)) {
      expect(componentMachine.root.states[id]?.on.STOP, `STOP in ${id}`).toBeDefined();
    }
    const paths = modelPaths(componentMachine, { events: [...events], strategy: 'simple' });
    for (const path of paths) {
      const actor = createActor(componentMachine).start();
      for (const step of path.steps) actor.send(step.event);
      actor.send({ type: 'STOP' });
      actor.send({ type: 'DONE' });
      expect(actor.getSnapshot().value, path.description).toBe('shutdown');
    }
  });

  it('reaches every lifecycle state on some path', () => {
    const paths = modelPaths(componentMachine, { events: [...events] });
    expect(paths).toHaveLength(5);
    expect(statesReached(paths)).toEqual(allStateIds(componentMachine));
  });

  it('leaves faulted only through STOP', () => {
    const actor = createActor(componentMachine).start();
    actor.send({ type: 'START' });
    actor.send({ type: 'FAIL' });
    actor.send({ type: 'START' });
    actor.send({ type: 'DONE' });
    expect(actor.getSnapshot().value).toBe('faulted');
    actor.send({ type: 'STOP' });
    expect(actor.getSnapshot().value).toBe('shutdown');
  });

  it('lets a component override START in idle (e.g. to load first)', () => {
    const loading = setup({ types: { events: {} as LifecycleEvent } }).createMachine({
      initial: 'idle',
      states: { ...lifecycleStates({ idle: { on: { START: 'loading' } }, running: {}, draining: {} }), loading: {} },
    });
    const actor = createActor(loading).start();
    actor.send({ type: 'START' });
    expect(actor.getSnapshot().value).toBe('loading');
  });

  it('tags only shutdown as stopped', () => {
    const actor = createActor(componentMachine).start();
    expect(actor.getSnapshot().hasTag('stopped')).toBe(false);
    actor.send({ type: 'STOP' });
    expect(actor.getSnapshot().hasTag('stopped')).toBe(true);
  });
});
