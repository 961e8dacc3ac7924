import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateMachine, type AnyStateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import * as machines from '../../machines/index.js';

/**
 * Every exported machine has a model-based test whose paths reach every state node. This
 * checks the tests exist and do the check; each model test proves its own coverage
 * (`statesReached(paths)` against `allStateIds(machine)`).
 */

// A new machine in machines/index.ts fails here until it has test/<id>/<id>.model.test.ts.
const EXPECTED_MACHINE_IDS = ['bars', 'broker', 'checkpointer', 'dataGuard', 'idempotency', 'portfolio', 'reconciler', 'risk', 'session'];

// What a model test of this project does: enumerate paths (@xstate/graph's for one machine,
// `systemPaths` — found by running it — for the session and its children), assert how many,
// replay each against the real actor, and compare the states reached with every state node.
const MODEL_TEST_CALLS = ['toHaveLength(', 'replayPath(', 'statesReached(', 'allStateIds('];
const PATH_FINDERS = ['modelPaths(', 'systemPaths<'];

const exported: [string, AnyStateMachine][] = Object.entries(machines).flatMap(([name, value]) =>
  value instanceof StateMachine ? [[name, value as AnyStateMachine]] : [],
);

describe('model-based test coverage', () => {
  it('knows every machine exported from machines/index.ts', () => {
    expect(exported.map(([, machine]) => machine.id).sort()).toEqual(EXPECTED_MACHINE_IDS);
  });

  it.each(exported)('%s is exported under its id (<id>Machine)', (name, machine) => {
    expect(name).toBe(`${machine.id}Machine`);
  });

  it.each(exported)('%s has a model test whose paths are checked to reach every state node', async (name, machine) => {
    const file = `test/${machine.id}/${machine.id}.model.test.ts`;
    const path = join(import.meta.dirname, '../..', file);
    const text = await readFile(path, 'utf8').catch(() => '');

    expect(text, `${file} is missing`).not.toBe('');
    expect(text).toContain(name);
    for (const call of MODEL_TEST_CALLS) expect(text, `${file} never calls ${call}`).toContain(call);
    expect(PATH_FINDERS.some((finder) => text.includes(finder)), `${file} finds no paths`).toBe(true);
  });
});
