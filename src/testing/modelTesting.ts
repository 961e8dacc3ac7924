import { getShortestPaths, getSimplePaths } from '@xstate/graph';
import { isDeepStrictEqual } from 'node:util';
import {
  waitFor,
  type AnyActorRef,
  type AnyStateMachine,
  type DoneActorEvent,
  type ErrorActorEvent,
  type EventFromLogic,
  type InputFrom,
  type SnapshotFrom,
  type StateValue,
} from 'xstate';

/**
 * Model-based testing: `@xstate/graph` enumerates a machine's paths, and each path is replayed
 * against a real, running actor whose I/O is real (temp dirs, failing writers, a manual clock).
 * `createTestModel` refuses machines with `invoke`/`after`, so this takes the graph's paths
 * and lets the test turn every model event into its real-world cause.
 */

/** One step of a model path: the event, and the state value the machine is in after it. */
export interface ModelStep<TEvent> {
  readonly event: TEvent;
  readonly expected: StateValue;
}

/** A path from the initial state, ready to replay. `description` reads `START → SAVE → …`. */
export interface ModelPath<TEvent> {
  readonly description: string;
  /** The state the actor starts in, before the first step. */
  readonly initial: StateValue;
  readonly steps: readonly ModelStep<TEvent>[];
}

/** A delayed transition's event, as XState sends it: `xstate.after.<delay>.<state node id>`. */
export interface AfterEvent {
  readonly type: `xstate.after.${string}`;
}

/**
 * An event a model of `TMachine` may explore: one of the machine's own, or one XState sends
 * itself — a timer ({@link AfterEvent}, `xstate.after.retry.connection.waiting`), an invoked
 * actor's `xstate.done.actor.<id>` or `xstate.error.actor.<id>`.
 */
export type ModelEventOf<TMachine extends AnyStateMachine> =
  | EventFromLogic<TMachine>
  | AfterEvent
  | DoneActorEvent<unknown, string>
  | ErrorActorEvent<unknown, string>;

/** Options of {@link modelPaths}. */
export interface ModelPathOptions<TMachine extends AnyStateMachine, TEvent extends ModelEventOf<TMachine> = EventFromLogic<TMachine>> {
  /**
   * Every event to explore, with payload variants and the synthetic `xstate.*` events (timers,
   * invoked actors' outcomes: {@link ModelEventOf}); or a function of the snapshot, to offer only
   * the events that can really happen there (e.g. a timer that cannot fire before another one).
   */
  events: readonly TEvent[] | ((snapshot: SnapshotFrom<TMachine>) => readonly TEvent[]);
  /** The state identity: what distinguishes two snapshots (default: the state value). */
  serializeState?: (snapshot: SnapshotFrom<TMachine>) => string;
  /** `shortest` (one path per state, default) or `simple` (every path without a cycle). */
  strategy?: 'shortest' | 'simple';
  /** Do not explore past a snapshot for which this is true. */
  stopWhen?: (snapshot: SnapshotFrom<TMachine>) => boolean;
  /** Input for the machine's initial state. */
  input?: InputFrom<TMachine>;
}

/**
 * The machine's paths, as replayable steps (the graph's `xstate.init` step dropped). The steps'
 * events have the type of the events given, literal types kept: a path's
 * `xstate.after.retry.connection.waiting` step narrows by its `type` like the machine's own events.
 */
export function modelPaths<TMachine extends AnyStateMachine, const TEvent extends ModelEventOf<TMachine> = EventFromLogic<TMachine>>(
  machine: TMachine,
  options: ModelPathOptions<TMachine, TEvent>,
): ModelPath<TEvent>[] {
  const traverse = options.strategy === 'simple' ? getSimplePaths : getShortestPaths;
  const serializeState =
    options.serializeState ?? ((snapshot: SnapshotFrom<TMachine>) => JSON.stringify((snapshot as { value: StateValue }).value));
  const { events } = options;
  const paths = traverse(machine, {
    // The graph walks any event the machine's transition accepts, XState's own included.
    events:
      typeof events === 'function'
        ? (snapshot) => events(snapshot as SnapshotFrom<TMachine>) as unknown as EventFromLogic<TMachine>[]
        : (events as unknown as EventFromLogic<TMachine>[]),
    serializeState: (snapshot) => serializeState(snapshot as SnapshotFrom<TMachine>),
    // Events may carry domain values (exact money is bigint), which plain JSON refuses.
    serializeEvent: (event) => JSON.stringify(event, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)),
    ...(options.stopWhen ? { stopWhen: (snapshot) => options.stopWhen?.(snapshot as SnapshotFrom<TMachine>) ?? false } : {}),
    ...(options.input === undefined ? {} : { input: options.input }),
  });
  return paths.map((path) => {
    const initial = (path.steps[0]?.state ?? path.state).value as StateValue;
    const steps = path.steps
      .filter((step) => step.event.type !== 'xstate.init')
      .map((step) => ({ event: step.event as unknown as TEvent, expected: step.state.value as StateValue }));
    return { description: steps.map((step) => step.event.type).join(' → ') || '(initial state)', initial, steps };
  });
}

/** Every state-node path (`running.writing`, …) that some model path ends in or passes through. */
export function statesReached(paths: readonly ModelPath<unknown>[]): Set<string> {
  const reached = new Set<string>();
  for (const path of paths) {
    for (const value of [path.initial, ...path.steps.map((step) => step.expected)]) {
      for (const id of stateIdsOf(value)) reached.add(id);
    }
  }
  return reached;
}

/** Every state node of a machine as dotted paths, for coverage checks against {@link statesReached}. */
export function allStateIds(machine: AnyStateMachine): Set<string> {
  const ids = new Set<string>();
  const visit = (node: AnyStateMachine['root'], prefix: string): void => {
    for (const [key, child] of Object.entries(node.states)) {
      const id = prefix === '' ? key : `${prefix}.${key}`;
      ids.add(id);
      visit(child, id);
    }
  };
  visit(machine.root, '');
  return ids;
}

/** The state-node paths a state value is in (`running`, `running.ready`). */
export function stateIdsOf(value: StateValue, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix === '' ? value : `${prefix}.${value}`];
  return Object.entries(value).flatMap(([key, child]) => {
    const id = prefix === '' ? key : `${prefix}.${key}`;
    return child === undefined ? [id] : [id, ...stateIdsOf(child, id)];
  });
}

/** The real system under a model test. */
export interface LiveSystem<TEvent> {
  /** The running actor whose state is compared with the model's after every step. */
  readonly actor: AnyActorRef;
  /** Makes the real-world cause of `event` happen (send it, fail a write, jump the clock). */
  cause(event: TEvent): void | Promise<void>;
  /** Checked after every step; throw (e.g. `expect`) when an invariant does not hold. */
  checkInvariants?(step: ModelStep<TEvent>, index: number): void | Promise<void>;
}

/** A step whose real actor did not reach the state the model predicts. */
export class ModelStepMismatch extends Error {
  readonly code = 'MODEL_STEP_MISMATCH';
}

/**
 * Replays `path` against `system`: after each cause, waits until the real actor is in exactly
 * the model's state (or fails after `timeoutMs`), then checks the invariants.
 */
export async function replayPath<TEvent>(
  path: ModelPath<TEvent>,
  system: LiveSystem<TEvent>,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  for (const [index, step] of path.steps.entries()) {
    await system.cause(step.event);
    try {
      await waitFor(system.actor, (snapshot) => isDeepStrictEqual(snapshot.value, step.expected), {
        timeout: options.timeoutMs ?? 2_000,
      });
    } catch (error) {
      const actual = JSON.stringify(system.actor.getSnapshot().value);
      throw new ModelStepMismatch(
        `path "${path.description}", step ${index + 1} (${(step.event as { type: string }).type}): ` +
          `expected ${JSON.stringify(step.expected)}, actor is in ${actual}`,
        { cause: error },
      );
    }
    await system.checkInvariants?.(step, index);
  }
}

/** Thrown by a cause whose event cannot happen in the system's current state (e.g. no such work in flight). */
export class CannotHappenHere extends Error {
  readonly code = 'CANNOT_HAPPEN_HERE';
}

/** Options of {@link systemPaths}. */
export interface SystemPathOptions<TEvent> {
  /** A fresh real system (its actor started) for each exploration; `dispose` ends it. */
  create(): LiveSystem<TEvent> & { dispose(): void };
  /** Every event to try in every state; a cause that throws {@link CannotHappenHere} skips it there. */
  events: readonly TEvent[];
  /** The state identity of the running actor's snapshot (what distinguishes two states). */
  serializeState(snapshot: ReturnType<AnyActorRef['getSnapshot']>): string;
  /** How long a cause may take to settle before the state is read (default: two turns of the event loop). */
  settle?: () => Promise<void>;
  /** Do not explore deeper than this many steps. */
  maxDepth?: number;
}

const twoTurns = async (): Promise<void> => {
  for (let turn = 0; turn < 2; turn += 1) await new Promise((resolve) => setImmediate(resolve));
};

/**
 * Shortest paths of a composed system — a root and the children it spawns, which
 * `@xstate/graph` cannot walk (it transitions one machine in a mock system) — found by
 * running it: breadth first, every event is caused on a fresh real system replayed to each
 * state found so far, and every new state (by `serializeState`) becomes a path. So the paths
 * are what the real tree does, children's answers included.
 */
export async function systemPaths<TEvent extends { type: string }>(options: SystemPathOptions<TEvent>): Promise<ModelPath<TEvent>[]> {
  const settle = options.settle ?? twoTurns;
  const run = async (events: readonly TEvent[]): Promise<{ key: string; value: StateValue } | null> => {
    const system = options.create();
    try {
      for (const event of events) {
        await system.cause(event);
        await settle();
      }
      const snapshot = system.actor.getSnapshot() as { value: StateValue };
      return { key: options.serializeState(snapshot), value: snapshot.value };
    } catch (error) {
      if (error instanceof CannotHappenHere) return null;
      throw error;
    } finally {
      system.dispose();
    }
  };
  const initial = await run([]);
  if (initial === null) throw new Error('the system does not start');
  const root: ModelPath<TEvent> = { description: '(initial state)', initial: initial.value, steps: [] };
  const seen = new Set([initial.key]);
  const paths: ModelPath<TEvent>[] = [root];
  let frontier = [root];
  for (let depth = 0; frontier.length > 0 && depth < (options.maxDepth ?? 12); depth += 1) {
    const next: ModelPath<TEvent>[] = [];
    for (const path of frontier) {
      for (const event of options.events) {
        const reached = await run([...path.steps.map((step) => step.event), event]);
        if (reached === null || seen.has(reached.key)) continue;
        seen.add(reached.key);
        const steps = [...path.steps, { event, expected: reached.value }];
        const found = { description: steps.map((step) => step.event.type).join(' → '), initial: root.initial, steps };
        paths.push(found);
        next.push(found);
      }
    }
    frontier = next;
  }
  return paths;
}
