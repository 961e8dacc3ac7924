import type { AnyStateMachine, AnyStateNode } from 'xstate';

/**
 * Renders a machine's own definition (its `root` state node) as a Mermaid `stateDiagram-v2`,
 * so the diagrams in `docs/machines.md` cannot show a transition the code does not have.
 *
 * - The whole machine is one composite state named by its id: it carries the handlers
 *   declared on the root (drawn as self-loops) and, for a parallel root, its regions.
 * - Compound states are composite states with an initial `[*] -->` arrow; parallel regions are
 *   separated by `--`; final states get an arrow to `[*]`.
 * - Every edge is labelled with its event and, in brackets, its guard: `STOP`, `SAVE [hasPending]`,
 *   `always [nothingPending]`, `after retryBackoff`, `onDone writer`,
 *   `onError writer [reachesDegradeThreshold]`. A transition without a target (handled, state
 *   unchanged, like the lifecycle's second `STOP`) is a self-loop, so it stays visible.
 * - An atomic state that invokes an actor says so in its box (`invokes writeSnapshots as writer`).
 *
 * Mermaid's grammar shapes the text: a label cannot hold `:`, `;` or `#` (hence `onDone writer`,
 * not `done: writer`), and ids are path-based (`lifecycle_idle`) with the state's own key as
 * its label. Edges are written inside a composite only when both ends are its direct
 * children, and otherwise at the top level: Mermaid places a state where it is first
 * mentioned, and some versions move it to the block of a later mention.
 *
 * The output depends only on the definition, in its declaration order: same machine, same text.
 */
export function renderMermaid(machine: AnyStateMachine): string {
  const ids = assignIds(machine.root);
  const out: string[] = ['stateDiagram-v2'];
  const topLevelEdges: string[] = [];
  out.push(`  [*] --> ${idOf(ids, machine.root)}`);
  writeState(machine.root, 1);
  for (const edge of edgesFrom(machine.root)) out.push(`  ${edge}`);
  out.push(...topLevelEdges.map((edge) => `  ${edge}`));
  return `${out.join('\n')}\n`;

  /** Writes a non-atomic state as a block holding its children and their local edges. */
  function writeComposite(node: AnyStateNode, depth: number): void {
    const pad = '  '.repeat(depth);
    out.push(`${pad}state ${stateLabel(node)} as ${idOf(ids, node)} {`);
    const children = childrenOf(node);
    if (node.type === 'parallel') {
      children.forEach((region, index) => {
        if (index > 0) out.push(`${pad}  --`);
        writeState(region, depth + 1);
      });
    } else {
      for (const target of node.initial.target) out.push(`${pad}  [*] --> ${idOf(ids, target)}`);
      for (const child of children) writeState(child, depth + 1);
    }
    for (const child of children) {
      for (const edge of edgesFrom(child)) out.push(`${pad}  ${edge}`);
      if (child.type === 'final') out.push(`${pad}  ${idOf(ids, child)} --> [*]`);
    }
    out.push(`${pad}}`);
  }

  /** Writes a state: a block if it has children, else a labelled box naming what it invokes. */
  function writeState(node: AnyStateNode, depth: number): void {
    if (node.type === 'compound' || node.type === 'parallel') {
      writeComposite(node, depth);
      return;
    }
    const pad = '  '.repeat(depth);
    const id = idOf(ids, node);
    out.push(`${pad}state ${stateLabel(node)} as ${id}`);
    for (const invoked of node.invoke) out.push(`${pad}${id} : ${mermaidText(invocationText(invoked.id, invoked.src))}`);
  }

  /**
   * The edges leaving `node` that belong in its parent's block; the others (which cross a
   * block boundary) are set aside for the top level.
   */
  function edgesFrom(node: AnyStateNode): string[] {
    const local: string[] = [];
    const selfLoops: string[] = [];
    for (const edge of transitionsOf(node)) {
      for (const target of edge.targets.length === 0 ? [node] : edge.targets) {
        if (target === node) {
          selfLoops.push(mermaidText(edge.label));
          continue;
        }
        const line = `${idOf(ids, node)} --> ${idOf(ids, target)} : ${mermaidText(edge.label)}`;
        (target.parent === node.parent ? local : topLevelEdges).push(line);
      }
    }
    // Mermaid draws every self-loop of a state on the same spot: one loop, one label per line.
    if (selfLoops.length > 0) local.push(`${idOf(ids, node)} --> ${idOf(ids, node)} : ${selfLoops.join('<br>')}`);
    return local;
  }
}

/**
 * The Mermaid id {@link renderMermaid} gives each state of `machine`, by the state's path
 * (`running.active`; the root is `''`): how a page finds a state's box in the drawn diagram.
 */
export function mermaidStateIds(machine: AnyStateMachine): Map<string, string> {
  return new Map([...assignIds(machine.root)].map(([node, id]) => [node.path.join('.'), id]));
}

interface Edge {
  label: string;
  targets: readonly AnyStateNode[];
}

/** Every transition declared on `node` (events, timers, invoke outcomes, then `always`). */
function transitionsOf(node: AnyStateNode): Edge[] {
  const delays = new Map(node.after.map((t) => [t.eventType, t.delay]));
  const edges: Edge[] = [];
  for (const [eventType, transitions] of node.transitions) {
    for (const t of transitions) {
      edges.push({ label: withGuard(eventLabel(eventType, delays), t.guard, node), targets: t.target ?? [] });
    }
  }
  for (const t of node.always ?? []) {
    edges.push({ label: withGuard('always', t.guard, node), targets: t.target ?? [] });
  }
  return edges;
}

/** An XState event type as a reader names it: timers and invoke outcomes get short names. */
function eventLabel(eventType: string, delays: ReadonlyMap<string, unknown>): string {
  const delay = delays.get(eventType);
  if (delay !== undefined) return typeof delay === 'number' ? `after ${delay}ms` : `after ${String(delay)}`;
  const doneActor = 'xstate.done.actor.';
  const errorActor = 'xstate.error.actor.';
  if (eventType.startsWith(doneActor)) return `onDone ${eventType.slice(doneActor.length)}`;
  if (eventType.startsWith(errorActor)) return `onError ${eventType.slice(errorActor.length)}`;
  if (eventType.startsWith('xstate.done.state.')) return 'onDone';
  return eventType;
}

function withGuard(label: string, guard: unknown, node: AnyStateNode): string {
  return guard === undefined ? label : `${label} [${guardText(guard, node.machine.id)}]`;
}

/**
 * A guard as text: a named guard by its name, a parameterized one by its type, the
 * higher-order guards spelled out (`hasPending and (in lifecycle.running or …)`).
 */
function guardText(guard: unknown, machineId: string): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return String(guard.type);
  if (typeof guard !== 'function') return 'guard';
  if ('stateValue' in guard) return `in ${stateValueText(guard.stateValue, machineId)}`;
  if ('guards' in guard && Array.isArray(guard.guards)) {
    const parts: unknown[] = guard.guards;
    const operand = (part: unknown): string =>
      isJunction(part) ? `(${guardText(part, machineId)})` : guardText(part, machineId);
    if (guard.name === 'not') return `not ${parts.map(operand).join(' ')}`;
    return parts.map(operand).join(` ${guard.name} `);
  }
  // An inline guard function has no name worth showing (it is named after the `guard` key).
  return 'inline guard';
}

/** An `and`/`or` guard: bracketed when it is an operand, so the text reads unambiguously. */
function isJunction(guard: unknown): boolean {
  return typeof guard === 'function' && 'guards' in guard && (guard.name === 'and' || guard.name === 'or');
}

/** `#checkpointer.lifecycle.running` → `lifecycle.running`; an object value → `a.b`. */
function stateValueText(value: unknown, machineId: string): string {
  if (typeof value === 'string') {
    const ownPrefix = `#${machineId}.`;
    return value.startsWith(ownPrefix) ? value.slice(ownPrefix.length) : value.replace(/^#/, '');
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value)
      .map(([key, inner]) => `${key}.${stateValueText(inner, machineId)}`)
      .join(' and ');
  }
  return String(value);
}

function invocationText(id: string, src: unknown): string {
  if (typeof src !== 'string') return `invokes ${id}`;
  return src === id ? `invokes ${src}` : `invokes ${src} as ${id}`;
}

/** The child states in declaration order. */
function childrenOf(node: AnyStateNode): AnyStateNode[] {
  return Object.values(node.states) as AnyStateNode[];
}

/** A state's own key, quoted: the label Mermaid shows. */
function stateLabel(node: AnyStateNode): string {
  return `"${node.key.replaceAll('"', "'")}"`;
}

/** Edge labels and descriptions: Mermaid ends a label at `:`, `;` or a line break. */
function mermaidText(text: string): string {
  return text.replace(/[:;#\r\n]+/g, ' ').replace(/\s+/g, ' ').trim();
}

/**
 * Mermaid-safe, unique ids from each state's path: `lifecycle.idle` → `lifecycle_idle`; the
 * root is the machine id. Ids that start like a Mermaid keyword (`default`, `state`, `note`,
 * `class`, …) are prefixed, since the lexer would take them for the keyword.
 */
function assignIds(root: AnyStateNode): Map<AnyStateNode, string> {
  const ids = new Map<AnyStateNode, string>();
  const taken = new Set<string>();
  const visit = (node: AnyStateNode): void => {
    let base = (node.path.length === 0 ? node.machine.id : node.path.join('_')).replace(/\W/g, '_');
    if (/^(default|state|note|class|scale|hide|acc|direction)/i.test(base) || /^\d/.test(base)) base = `s_${base}`;
    let id = base;
    for (let n = 2; taken.has(id); n += 1) id = `${base}_${n}`;
    taken.add(id);
    ids.set(node, id);
    for (const child of childrenOf(node)) visit(child);
  };
  visit(root);
  return ids;
}

function idOf(ids: ReadonlyMap<AnyStateNode, string>, node: AnyStateNode): string {
  const id = ids.get(node);
  if (id === undefined) throw new Error(`state ${node.id} is not part of the machine being rendered`);
  return id;
}
