import { and, fromPromise, or, setup, stateIn } from 'xstate';
import { describe, expect, it } from 'vitest';
import { lifecycleStates } from '../../machines/lifecycle.js';
import { renderMermaid } from '../../src/docs/mermaid.js';

// A small checkpointer-like machine: the shared lifecycle beside a writer region, a root
// handler, a timer, an invoked actor with guarded outcomes, and a higher-order guard.
const writerMachine = setup({
  types: { events: {} as { type: 'START' } | { type: 'STOP' } | { type: 'SAVE' } | { type: 'PING' } },
  actors: { writeSnapshots: fromPromise(async () => undefined) },
  guards: { hasPending: () => true, nothingPending: () => true, reachesDegradeThreshold: () => false },
  delays: { retryBackoff: 10, drainTimeout: 1_000 },
}).createMachine({
  id: 'writerDemo',
  type: 'parallel',
  on: { PING: {} },
  states: {
    lifecycle: {
      initial: 'idle',
      states: lifecycleStates({
        running: {},
        draining: {
          always: { guard: 'nothingPending', target: 'shutdown' },
          after: { drainTimeout: 'shutdown' },
        },
        shutdown: { on: { SAVE: {} } },
      }),
    },
    writer: {
      initial: 'waiting',
      states: {
        waiting: {
          on: { SAVE: { guard: 'hasPending', target: 'writing' } },
          always: {
            guard: and(['hasPending', or([stateIn('#writerDemo.lifecycle.running'), stateIn('#writerDemo.lifecycle.draining')])]),
            target: 'writing',
          },
        },
        writing: {
          invoke: {
            id: 'writer',
            src: 'writeSnapshots',
            onDone: 'waiting',
            onError: [{ guard: 'reachesDegradeThreshold', target: 'backingOff' }, { target: 'backingOff' }],
          },
        },
        backingOff: { after: { retryBackoff: 'waiting' } },
      },
    },
  },
});

// A compound root with a nested compound state, a transition out of it, and a state whose
// key Mermaid's lexer would take for a keyword.
const nestedMachine = setup({ types: { events: {} as { type: 'GO' } | { type: 'FAIL' } | { type: 'RESET' } } }).createMachine({
  id: 'nested',
  initial: 'running',
  states: {
    running: {
      initial: 'first',
      states: {
        first: { on: { GO: 'second' } },
        second: { on: { FAIL: '#nested.default' } },
      },
    },
    default: { on: { RESET: 'running' } },
  },
});

const lines = (text: string): string[] => text.split('\n');

describe('renderMermaid', () => {
  const diagram = renderMermaid(writerMachine);

  it('starts a stateDiagram-v2 that enters the machine as one composite state', () => {
    expect(lines(diagram).slice(0, 3)).toEqual(['stateDiagram-v2', '  [*] --> writerDemo', '  state "writerDemo" as writerDemo {']);
  });

  it('declares every state node under its own key, with a path-based id', () => {
    const declared = [
      'state "lifecycle" as lifecycle {',
      'state "idle" as lifecycle_idle',
      'state "running" as lifecycle_running',
      'state "draining" as lifecycle_draining',
      'state "shutdown" as lifecycle_shutdown',
      'state "writer" as writer {',
      'state "waiting" as writer_waiting',
      'state "writing" as writer_writing',
      'state "backingOff" as writer_backingOff',
    ];
    const trimmed = lines(diagram).map((line) => line.trim());
    for (const declaration of declared) expect(trimmed).toContain(declaration);
  });

  it('marks the initial state of each compound state', () => {
    expect(diagram).toContain('    [*] --> lifecycle_idle\n');
    expect(diagram).toContain('    [*] --> writer_waiting\n');
  });

  it('draws the lifecycle STOP transitions, the no-op ones in draining and shutdown as self-loops', () => {
    expect(diagram).toContain('lifecycle_idle --> lifecycle_shutdown : STOP\n');
    expect(diagram).toContain('lifecycle_running --> lifecycle_draining : STOP\n');
    expect(diagram).toContain('lifecycle_draining --> lifecycle_draining : STOP\n');
    expect(diagram).toContain('lifecycle_shutdown --> lifecycle_shutdown : SAVE<br>STOP\n');
  });

  it('draws all the self-loops of one state as one loop, a label per line', () => {
    expect(diagram.match(/lifecycle_shutdown --> lifecycle_shutdown/g)).toHaveLength(1);
  });

  it('puts guards in brackets after the event, for events, eventless transitions and invoke outcomes', () => {
    expect(diagram).toContain('writer_waiting --> writer_writing : SAVE [hasPending]\n');
    expect(diagram).toContain('lifecycle_draining --> lifecycle_shutdown : always [nothingPending]\n');
    expect(diagram).toContain('writer_writing --> writer_backingOff : onError writer [reachesDegradeThreshold]\n');
    expect(diagram).toContain('writer_writing --> writer_backingOff : onError writer\n');
  });

  it('spells out higher-order guards with the states they test', () => {
    expect(diagram).toContain(
      'writer_waiting --> writer_writing : always [hasPending and (in lifecycle.running or in lifecycle.draining)]\n',
    );
  });

  it('names timers and invoked actors', () => {
    expect(diagram).toContain('lifecycle_draining --> lifecycle_shutdown : after drainTimeout\n');
    expect(diagram).toContain('writer_backingOff --> writer_waiting : after retryBackoff\n');
    expect(diagram).toContain('writer_writing --> writer_waiting : onDone writer\n');
    expect(diagram).toContain('writer_writing : invokes writeSnapshots as writer\n');
  });

  it('draws a handler on the root as a self-loop on the whole machine', () => {
    expect(diagram).toContain('\n  writerDemo --> writerDemo : PING\n');
  });

  it('separates parallel regions with --, between the two region blocks', () => {
    const all = lines(diagram);
    const lifecycleStart = all.indexOf('    state "lifecycle" as lifecycle {');
    const writerStart = all.indexOf('    state "writer" as writer {');
    const divider = all.indexOf('    --');
    expect(lifecycleStart).toBeGreaterThan(0);
    expect(divider).toBeGreaterThan(lifecycleStart);
    expect(writerStart).toBe(divider + 1);
    expect(all[divider - 1]).toBe('    }');
  });

  it('writes no label that Mermaid would cut (no ":", ";" or "#" after the separator)', () => {
    const edges = lines(diagram).filter((line) => line.includes(' --> '));
    expect(edges.length).toBeGreaterThan(10);
    for (const edge of edges) expect(edge).toMatch(/^\s*(\[\*\]|\w+) --> \w+( : [^:;#]+)?$/);
  });

  it('renders the same text every time', () => {
    expect(renderMermaid(writerMachine)).toBe(diagram);
  });
});

describe('renderMermaid with nested states', () => {
  const diagram = renderMermaid(nestedMachine);

  it('writes an edge inside a composite when both ends are its children', () => {
    expect(diagram).toContain('\n      running_first --> running_second : GO\n');
  });

  it('writes an edge that leaves a composite at the top level, so Mermaid keeps each state in its block', () => {
    expect(diagram).toContain('\n  running_second --> s_default : FAIL\n');
    expect(diagram).toContain('\n    s_default --> running : RESET\n');
  });

  it('prefixes an id that Mermaid would read as a keyword, and keeps the state key as its label', () => {
    expect(diagram).toContain('state "default" as s_default\n');
    expect(diagram).not.toMatch(/^\s*default\b/m);
  });
});
