import { createActor, fromPromise, waitFor, type ActorOptions, type AnyActorLogic, type AnyActorRef } from 'xstate';
import {
  checkpointerMachine,
  type CheckpointerConfig,
  type CheckpointerEmitted,
} from '../../machines/checkpointer.machine.js';
import { AistockError } from '../common/errors.js';
import { assertCheckpointKey, type CheckpointStore } from './checkpointStore.js';

/** A `SAVE` after the checkpointer has shut down: the snapshot was not queued. */
export class CheckpointerStoppedError extends AistockError {
  readonly key: string;

  constructor(key: string) {
    super('CHECKPOINTER_STOPPED', `checkpointer is shut down: snapshot for "${key}" was not saved`);
    this.key = key;
  }
}

/** What a stopped checkpointer reports. `unpersistedKeys` is empty when the drain wrote everything. */
export interface CheckpointerReport {
  /** SAVEs offered through the handle (many may coalesce into one actor SAVE). */
  saves: number;
  written: number;
  failed: number;
  refused: number;
  degraded: boolean;
  unpersistedKeys: string[];
  lastError: string | null;
}

/** What {@link createCheckpointer} needs: a store, and optionally config, timers and an inspector. */
export interface CheckpointerOptions {
  store: CheckpointStore;
  config?: Partial<CheckpointerConfig>;
  /** Timer source for backoff and the drain deadline (xstate's `SimulatedClock` in tests). */
  timers?: ActorOptions<AnyActorLogic>['clock'];
  /** An XState inspector (e.g. from `@statelyai/inspect`). */
  inspect?: ActorOptions<AnyActorLogic>['inspect'];
  /**
   * The actor this one is a child of (a session): it joins that actor's system under `systemId`
   * `checkpointer`, and its death reaches the parent as XState's `xstate.error.actor.checkpointer`.
   */
  parent?: AnyActorRef;
}

/** The checkpointer's actor died (its own code threw): nothing offered from now on is saved. */
export class CheckpointerFailedError extends AistockError {
  readonly key: string;

  constructor(key: string, cause: unknown) {
    super('CHECKPOINTER_FAILED', `checkpointer failed: snapshot for "${key}" was not saved`, { cause });
    this.key = key;
  }
}

/** The checkpointer actor with its I/O supplied, and a small promise-based handle. */
export interface Checkpointer {
  readonly actor: ReturnType<typeof createCheckpointerActor>;
  start(): void;
  /**
   * Queues the newest snapshot of `key` (delivered to the actor at the next microtask, newest
   * per key); throws {@link CheckpointerStoppedError} after shutdown and
   * {@link CheckpointerFailedError} once the actor has died.
   */
  save(key: string, snapshot: unknown): void;
  /** Delivers queued SAVEs to the actor now instead of at the next microtask. */
  flush(): void;
  /**
   * Resolves true once every snapshot offered so far is on disk (nothing pending, no write in
   * flight) or the checkpointer has stopped; false if that takes longer than `timeoutMs`.
   */
  settled(timeoutMs: number): Promise<boolean>;
  /** Subscribes to `CHECKPOINT_DEGRADED`, `CHECKPOINT_RECOVERED`, `SAVE_REFUSED`. */
  on<T extends CheckpointerEmitted['type']>(type: T, handler: (event: Extract<CheckpointerEmitted, { type: T }>) => void): () => void;
  /** Drains and shuts down; the same promise on every call, and it always settles. */
  stop(): Promise<CheckpointerReport>;
}

function createCheckpointerActor(options: CheckpointerOptions) {
  const machine = checkpointerMachine.provide({
    actors: {
      writeSnapshots: fromPromise(({ input }) => options.store.write(input.writes)),
    },
  });
  return createActor(machine, {
    systemId: 'checkpointer',
    ...(options.parent ? { parent: options.parent, id: 'checkpointer' } : {}),
    input: options.config,
    ...(options.timers ? { clock: options.timers } : {}),
    ...(options.inspect ? { inspect: options.inspect } : {}),
  });
}

/** Creates a checkpointer over `store`, in `idle` (SAVEs are queued); `start()` begins writing. */
export function createCheckpointer(options: CheckpointerOptions): Checkpointer {
  const actor = createCheckpointerActor(options);
  let fatal: unknown;
  // An unobserved actor error would crash the process; keep it and fail stop() with it instead.
  actor.subscribe({ error: (error) => (fatal = error) });
  // Started at once: `idle` does no I/O and queues SAVEs until `start()`.
  actor.start();
  let stopped: Promise<CheckpointerReport> | undefined;
  let offered = 0;
  // SAVEs made in one synchronous run are coalesced here (newest per key) and reach the actor
  // as one SAVE per key at the next microtask: a caller pays a Map.set, not an actor step.
  let outbox: Map<string, unknown> | undefined;
  const deliver = (): void => {
    const batch = outbox;
    outbox = undefined;
    if (batch === undefined) return;
    for (const [key, snapshot] of batch) actor.send({ type: 'SAVE', key, snapshot });
  };

  return {
    actor,
    start: () => actor.send({ type: 'START' }),
    save: (key, snapshot) => {
      if (fatal !== undefined) throw new CheckpointerFailedError(key, fatal);
      if (actor.getSnapshot().hasTag('stopped')) throw new CheckpointerStoppedError(key);
      if (outbox === undefined) {
        outbox = new Map();
        queueMicrotask(deliver);
      }
      if (!outbox.has(key)) assertCheckpointKey(key);
      outbox.set(key, snapshot);
      offered += 1;
    },
    flush: deliver,
    settled: async (timeoutMs) => {
      deliver();
      const quiet = (s: ReturnType<typeof actor.getSnapshot>): boolean =>
        s.hasTag('stopped') || (s.context.inFlight.length === 0 && Object.keys(s.context.pending).length === 0);
      try {
        await waitFor(actor, quiet, { timeout: timeoutMs });
        return true;
      } catch {
        return false;
      }
    },
    on: (type, handler) => {
      const subscription = actor.on(type, handler as (event: CheckpointerEmitted) => void);
      return () => subscription.unsubscribe();
    },
    stop: () => {
      stopped ??= (async () => {
        if (fatal !== undefined) throw fatal;
        deliver();
        actor.send({ type: 'STOP' });
        const { context } = await waitFor(actor, (snapshot) => snapshot.hasTag('stopped'), { timeout: Infinity });
        return {
          ...context.stats,
          saves: offered,
          degraded: context.degraded,
          unpersistedKeys: context.unpersistedKeys,
          lastError: context.lastError,
        };
      })();
      return stopped;
    },
  };
}
