import { StateMachine, type AnyStateMachine, type InspectionEvent } from 'xstate';
import { mermaidStateIds, renderMermaid } from '../docs/mermaid.js';
import { boundedView } from './boundedView.js';

/**
 * What the live view shows, folded from the `inspect` observer's events: every actor of the
 * system (its parent, its machine, its current state and the states it went through), the
 * diagrams of their machines, and the newest events. Pure: the server asks it for the whole
 * view (a new viewer) and for what changed since it last asked (every viewer, a few times a second).
 *
 * Cheap on the session's path, since it runs for every event of every actor: an event is kept
 * by reference and turned into text only when a viewer is sent it (the newest
 * {@link LiveModelOptions.eventsShown} at most); a state value is serialized only when it is a new object.
 */

/** A machine's diagram: its Mermaid source and, by state path (`running.active`), each state's Mermaid id. */
export interface LiveDiagram {
  readonly machineId: string;
  readonly source: string;
  readonly stateIds: Readonly<Record<string, string>>;
}

/** One actor as the page shows it. */
export interface LiveActor {
  readonly sessionId: string;
  /** Its `systemId`, else its id (a worker's invoke id). */
  readonly name: string;
  readonly parentId: string | null;
  /** The machine it runs (a key of the view's diagrams), or null for a promise, callback or other worker. */
  readonly machineId: string | null;
  /** `active`, `done`, `error` or `stopped`. */
  readonly status: string;
  /** Its state value as JSON (`{"running":"active"}`), or null for a worker. */
  readonly state: string | null;
  /** The Mermaid ids of its active states (every level, the root left out). */
  readonly activeIds: readonly string[];
  /** The states it was in, newest first, each with the time it entered it (ms since the view started). */
  readonly trail: readonly { readonly state: string; readonly at: number }[];
}

/** One event sent to an actor. */
export interface LiveEvent {
  /** 1, 2, 3, … over the whole run: a page drops what it already has. */
  readonly seq: number;
  /** ms since the view started. */
  readonly at: number;
  readonly type: string;
  /** Name of the actor it was sent to. */
  readonly to: string;
  /** Name of the actor that sent it, or null from outside the system. */
  readonly from: string | null;
  /** Its payload, bounded and cut to {@link PREVIEW_CHARS} characters. */
  readonly preview: string;
}

/** Everything a new viewer needs. */
export interface LiveSnapshot {
  readonly diagrams: readonly LiveDiagram[];
  /** In the order they registered: a parent before its children. */
  readonly actors: readonly LiveActor[];
  /** Newest first. */
  readonly events: readonly LiveEvent[];
  readonly eventCount: number;
}

/**
 * What changed since the last {@link LiveModel.takeUpdate}: the diagrams drawn since, the new or
 * changed actors (whole), the events after the last update (newest first), and the workers that finished.
 */
export interface LiveUpdate extends LiveSnapshot {
  /** Workers that finished: the page drops them. */
  readonly removed: readonly string[];
}

export interface LiveModelOptions {
  /** Machines whose diagrams are there from the start (others are drawn when an actor runs one). */
  readonly machines: readonly AnyStateMachine[];
  /** Events kept and shown, the newest. */
  readonly eventsShown: number;
  /** States kept per actor, the newest. */
  readonly trailLength: number;
  /** Milliseconds on any monotonic clock: event and state times are relative to its first reading. */
  readonly now: () => number;
}

/** Characters of an event's payload shown in the list. */
export const PREVIEW_CHARS = 160;

interface ActorEntry {
  sessionId: string;
  name: string;
  parentId: string | null;
  machineId: string | null;
  stateIds: Readonly<Record<string, string>> | null;
  status: string;
  value: unknown;
  state: string | null;
  activeIds: readonly string[];
  trail: { state: string; at: number }[];
}

/** An actor an event names: its name is looked up when the event is shown (the root's systemId comes late). */
interface EventParty {
  sessionId: string;
  name: string;
}

interface EventEntry {
  seq: number;
  at: number;
  to: EventParty;
  from: EventParty | null;
  event: { readonly type: string };
  preview: string | null;
}

/** The paths of the states a state value has active: `{ running: 'active' }` → `running`, `running.active`. */
export function activeStatePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [`${prefix}${value}`];
  if (typeof value !== 'object' || value === null) return [];
  const paths: string[] = [];
  for (const [key, inner] of Object.entries(value)) {
    paths.push(`${prefix}${key}`, ...activeStatePaths(inner, `${prefix}${key}.`));
  }
  return paths;
}

/** A machine's diagram as {@link renderMermaid} draws it, with its states' ids. */
export function diagramOf(machine: AnyStateMachine): LiveDiagram {
  return { machineId: machine.id, source: renderMermaid(machine), stateIds: Object.fromEntries(mermaidStateIds(machine)) };
}

/** The fields of an actor ref the view reads (an `ActorRefLike` types none of them). */
function actorFacts(ref: unknown): { sessionId: string; name: string; parentId: string | null; logic: unknown } {
  const field = (name: string): unknown => (typeof ref === 'object' && ref !== null ? Reflect.get(ref, name) : undefined);
  const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
  const parent = field('_parent');
  const sessionId = text(field('sessionId')) ?? '?';
  const logic = field('logic');
  // A root's id defaults to its session id (`x:0`): its machine's id says more, as in the Stately inspector.
  const id = text(field('id'));
  const ownId = id !== null && id !== sessionId ? id : logic instanceof StateMachine ? (logic as AnyStateMachine).id : null;
  return {
    sessionId,
    name: text(field('systemId')) ?? ownId ?? sessionId,
    parentId: typeof parent === 'object' && parent !== null ? text(Reflect.get(parent, 'sessionId')) : null,
    logic,
  };
}

export class LiveModel {
  readonly #options: LiveModelOptions;
  readonly #startedAt: number;
  readonly #diagrams = new Map<string, LiveDiagram>();
  readonly #actors = new Map<string, ActorEntry>();
  #events: EventEntry[] = [];
  #eventCount = 0;
  readonly #changed = new Set<string>();
  readonly #newDiagrams: LiveDiagram[] = [];
  #removed: string[] = [];
  #sentSeq = 0;

  constructor(options: LiveModelOptions) {
    this.#options = options;
    this.#startedAt = options.now();
    for (const machine of options.machines) this.#diagrams.set(machine.id, diagramOf(machine));
  }

  /** Folds one inspection event in; the observer to give actors is `{ next: (e) => model.observe(e) }`. */
  observe(event: InspectionEvent): void {
    switch (event.type) {
      case '@xstate.actor':
        this.#register(event.actorRef);
        return;
      case '@xstate.snapshot':
        this.#snapshot(event.actorRef, event.snapshot);
        return;
      case '@xstate.event':
        this.#event(event.actorRef, event.sourceRef, event.event);
        return;
      default:
        return;
    }
  }

  /** The whole view, for a viewer that has just connected. */
  view(): LiveSnapshot {
    return {
      diagrams: [...this.#diagrams.values()],
      actors: [...this.#actors.values()].map(toLiveActor),
      events: this.#newestEvents(0),
      eventCount: this.#eventCount,
    };
  }

  /** What changed since the previous call, or null when nothing did. */
  takeUpdate(): LiveUpdate | null {
    if (this.#changed.size === 0 && this.#removed.length === 0 && this.#eventCount === this.#sentSeq) return null;
    const actors = [...this.#changed].flatMap((id) => {
      const entry = this.#actors.get(id);
      return entry === undefined ? [] : [toLiveActor(entry)];
    });
    const update: LiveUpdate = {
      diagrams: this.#newDiagrams.splice(0),
      actors,
      removed: this.#removed,
      events: this.#newestEvents(this.#sentSeq),
      eventCount: this.#eventCount,
    };
    this.#changed.clear();
    this.#removed = [];
    this.#sentSeq = this.#eventCount;
    return update;
  }

  #at(): number {
    return Math.round(this.#options.now() - this.#startedAt);
  }

  #register(ref: unknown): void {
    const facts = actorFacts(ref);
    const machine = facts.logic instanceof StateMachine ? (facts.logic as AnyStateMachine) : null;
    if (machine !== null && !this.#diagrams.has(machine.id)) {
      const diagram = diagramOf(machine);
      this.#diagrams.set(machine.id, diagram);
      this.#newDiagrams.push(diagram);
    }
    this.#actors.set(facts.sessionId, {
      sessionId: facts.sessionId,
      name: facts.name,
      parentId: facts.parentId,
      machineId: machine?.id ?? null,
      stateIds: machine === null ? null : (this.#diagrams.get(machine.id)?.stateIds ?? null),
      status: 'active',
      value: undefined,
      state: null,
      activeIds: [],
      trail: [],
    });
    this.#changed.add(facts.sessionId);
  }

  #snapshot(ref: unknown, snapshot: unknown): void {
    const facts = actorFacts(ref);
    const { sessionId } = facts;
    const entry = this.#actors.get(sessionId);
    if (entry === undefined || typeof snapshot !== 'object' || snapshot === null) return;
    // XState sets a systemId just after it announces the actor: the name is settled by its first snapshot.
    if (facts.name !== entry.name) {
      entry.name = facts.name;
      this.#changed.add(sessionId);
    }
    const status = String(Reflect.get(snapshot, 'status'));
    if (entry.machineId === null) {
      // A worker is shown while it runs; once it is done, failed or stopped, it goes.
      if (status === 'active') return;
      this.#actors.delete(sessionId);
      this.#changed.delete(sessionId);
      this.#removed.push(sessionId);
      return;
    }
    const value: unknown = Reflect.get(snapshot, 'value');
    if (status !== entry.status) {
      entry.status = status;
      this.#changed.add(sessionId);
    }
    // XState makes a new value object only on a transition that changes it (mostly): compare text then.
    if (value === entry.value) return;
    entry.value = value;
    const state = JSON.stringify(value) ?? 'null';
    if (state === entry.state) return;
    entry.state = state;
    const ids = entry.stateIds ?? {};
    entry.activeIds = activeStatePaths(value).flatMap((path) => (ids[path] === undefined ? [] : [ids[path]]));
    entry.trail.unshift({ state, at: this.#at() });
    if (entry.trail.length > this.#options.trailLength) entry.trail.length = this.#options.trailLength;
    this.#changed.add(sessionId);
  }

  #event(target: unknown, source: unknown, event: { readonly type: string }): void {
    this.#eventCount += 1;
    const party = (ref: unknown): EventParty => {
      const { sessionId, name } = actorFacts(ref);
      return { sessionId, name };
    };
    this.#events.push({ seq: this.#eventCount, at: this.#at(), to: party(target), from: source === undefined ? null : party(source), event, preview: null });
    // Amortized: the list is cut back to what is shown once it holds twice as many.
    if (this.#events.length >= 2 * this.#options.eventsShown) this.#events = this.#events.slice(-this.#options.eventsShown);
  }

  #nameOf(party: EventParty): string {
    return this.#actors.get(party.sessionId)?.name ?? party.name;
  }

  /** The newest events after `afterSeq`, newest first, at most `eventsShown`; their previews made once. */
  #newestEvents(afterSeq: number): LiveEvent[] {
    const shown: LiveEvent[] = [];
    for (let i = this.#events.length - 1; i >= 0 && shown.length < this.#options.eventsShown; i -= 1) {
      const entry = this.#events[i];
      if (entry === undefined || entry.seq <= afterSeq) break;
      entry.preview ??= previewOf(entry.event);
      const from = entry.from === null ? null : this.#nameOf(entry.from);
      shown.push({ seq: entry.seq, at: entry.at, type: entry.event.type, to: this.#nameOf(entry.to), from, preview: entry.preview });
    }
    return shown;
  }
}

function toLiveActor(entry: ActorEntry): LiveActor {
  return {
    sessionId: entry.sessionId,
    name: entry.name,
    parentId: entry.parentId,
    machineId: entry.machineId,
    status: entry.status,
    state: entry.state,
    activeIds: entry.activeIds,
    trail: [...entry.trail],
  };
}

/** An event's payload without its type, bounded, as one line of at most {@link PREVIEW_CHARS} characters. */
function previewOf(event: { readonly type: string }): string {
  const { type: _type, ...payload } = event;
  if (Object.keys(payload).length === 0) return '';
  const text = JSON.stringify(boundedView(payload)) ?? '';
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS - 1)}…` : text;
}
