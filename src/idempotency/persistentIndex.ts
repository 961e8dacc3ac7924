/**
 * An immutable set of records keyed by their `id`, with cheap updates and fast lookups, for
 * actor context that holds 100,000+ records. Every edit returns a new version and leaves the
 * old one valid: snapshots handed to readers never change under them, and `@xstate/graph`
 * can explore several events from one snapshot without one branch leaking into another.
 *
 * Layout: a frozen `Map` (the base, shared by many versions) under a small persistent trie of
 * recent changes (the overlay: 32 × 32 × 32 slots addressed by a hash of the id, where an
 * edit copies only the path to the slots it touches). When the overlay grows past a quarter
 * of the records it is merged into a new base, so lookups are mostly one `Map.get` and an
 * update costs O(1) amortised at any size.
 */

const BITS = 5;
const FANOUT = 1 << BITS;
const MASK = FANOUT - 1;
const LEAVES_ADDRESS = (1 << (2 * BITS)) - 1;
const SLOT_ADDRESS = (1 << (3 * BITS)) - 1;
const MIN_MERGE_AT = 4_096;

/** What the index holds: anything with a string `id`. */
export interface Keyed {
  readonly id: string;
}

/** An overlay entry saying the id was removed (shadows the base). */
class Removed implements Keyed {
  constructor(readonly id: string) {}
}

type Slot<V> = readonly (V | Removed)[];
type Leaves<V> = readonly Slot<V>[];
type Branch<V> = readonly Leaves<V>[];

const EMPTY_SLOT: Slot<never> = [];
const EMPTY_LEAVES: Leaves<never> = new Array<Slot<never>>(FANOUT).fill(EMPTY_SLOT);
const EMPTY_BRANCH: Branch<never> = new Array<Leaves<never>>(FANOUT).fill(EMPTY_LEAVES);
const EMPTY_ROOT: readonly Branch<never>[] = new Array<Branch<never>>(FANOUT).fill(EMPTY_BRANCH);

/** An index version. Never mutate it: use {@link editIndex}. */
export interface PersistentIndex<V extends Keyed> {
  readonly base: ReadonlyMap<string, V>;
  readonly overlay: readonly Branch<V>[];
  /** Entries in the overlay, removals included. */
  readonly overlayEntries: number;
  readonly size: number;
}

/** The mutable view an {@link editIndex} callback works on. */
export interface IndexDraft<V extends Keyed> {
  get(id: string): V | undefined;
  /** Adds `record`, or replaces the record with its id. */
  put(record: V): void;
  remove(id: string): void;
}

/** An index with no records. */
export function emptyIndex<V extends Keyed>(): PersistentIndex<V> {
  return { base: new Map(), overlay: EMPTY_ROOT, overlayEntries: 0, size: 0 };
}

/** An index over `records`, taking the map over: the caller must not change it afterwards. */
export function indexOwning<V extends Keyed>(records: Map<string, V>): PersistentIndex<V> {
  return { base: records, overlay: EMPTY_ROOT, overlayEntries: 0, size: records.size };
}

/** The record with `id`, if any. */
export function indexGet<V extends Keyed>(index: PersistentIndex<V>, id: string): V | undefined {
  if (index.overlayEntries === 0) return index.base.get(id);
  const recent = find(slotAt(index.overlay, hashId(id)), id);
  if (recent === undefined) return index.base.get(id);
  return recent instanceof Removed ? undefined : recent;
}

/** Every record, in no particular order. */
export function indexValues<V extends Keyed>(index: PersistentIndex<V>): IterableIterator<V> {
  // Straight after a load or a merge the overlay is empty: the base map's own iterator is the fast path.
  return index.overlayEntries === 0 ? index.base.values() : mergedValues(index);
}

function* mergedValues<V extends Keyed>(index: PersistentIndex<V>): IterableIterator<V> {
  for (const record of index.base.values()) if (find(slotAt(index.overlay, hashId(record.id)), record.id) === undefined) yield record;
  for (const entry of overlayEntries(index.overlay)) if (!(entry instanceof Removed)) yield entry;
}

/**
 * A new version with `edit`'s changes; `index` itself is left as it was. Returns `index` when
 * `edit` changed nothing.
 */
export function editIndex<V extends Keyed>(index: PersistentIndex<V>, edit: (draft: IndexDraft<V>) => void): PersistentIndex<V> {
  // Copies made by this edit, each level keyed by the hash bits that address it. The new
  // version is built from them; the next edit copies again, so published arrays never change.
  let root: Branch<V>[] | undefined;
  const ownedBranches = new Map<number, Leaves<V>[]>();
  const ownedLeaves = new Map<number, Slot<V>[]>();
  const ownedSlots = new Map<number, (V | Removed)[]>();
  let size = index.size;
  let entries = index.overlayEntries;

  const ownBranch = (hash: number): Leaves<V>[] => {
    const at = hash & MASK;
    let branch = ownedBranches.get(at);
    if (branch === undefined) {
      root ??= index.overlay.slice();
      branch = (root[at] ?? EMPTY_BRANCH).slice();
      root[at] = branch;
      ownedBranches.set(at, branch);
    }
    return branch;
  };
  const ownLeaves = (hash: number): Slot<V>[] => {
    const address = hash & LEAVES_ADDRESS;
    let leaves = ownedLeaves.get(address);
    if (leaves === undefined) {
      const branch = ownBranch(hash);
      const at = (hash >>> BITS) & MASK;
      leaves = (branch[at] ?? EMPTY_LEAVES).slice();
      branch[at] = leaves;
      ownedLeaves.set(address, leaves);
    }
    return leaves;
  };
  const ownSlot = (hash: number): (V | Removed)[] => {
    const address = hash & SLOT_ADDRESS;
    let slot = ownedSlots.get(address);
    if (slot === undefined) {
      const leaves = ownLeaves(hash);
      const at = (hash >>> (2 * BITS)) & MASK;
      slot = (leaves[at] ?? EMPTY_SLOT).slice();
      leaves[at] = slot;
      ownedSlots.set(address, slot);
    }
    return slot;
  };
  const current = (hash: number, id: string): V | undefined => {
    const recent = find(ownedSlots.get(hash & SLOT_ADDRESS) ?? slotAt(root ?? index.overlay, hash), id);
    if (recent === undefined) return index.base.get(id);
    return recent instanceof Removed ? undefined : recent;
  };
  const write = (hash: number, entry: V | Removed): void => {
    const slot = ownSlot(hash);
    const at = position(slot, entry.id);
    if (at === -1) {
      slot.push(entry);
      entries += 1;
    } else {
      slot[at] = entry;
    }
  };

  edit({
    get: (id) => current(hashId(id), id),
    put: (record) => {
      const hash = hashId(record.id);
      if (current(hash, record.id) === undefined) size += 1;
      write(hash, record);
    },
    remove: (id) => {
      const hash = hashId(id);
      if (current(hash, id) === undefined) return;
      write(hash, new Removed(id));
      size -= 1;
    },
  });
  if (root === undefined) return index;
  const next = { base: index.base, overlay: root, overlayEntries: entries, size };
  return entries > Math.max(MIN_MERGE_AT, size >>> 2) ? merged(next) : next;
}

/** The same records with an empty overlay (a new base map; the old one is left as it was). */
function merged<V extends Keyed>(index: PersistentIndex<V>): PersistentIndex<V> {
  const base = new Map(index.base);
  for (const entry of overlayEntries(index.overlay)) {
    if (entry instanceof Removed) base.delete(entry.id);
    else base.set(entry.id, entry);
  }
  return { base, overlay: EMPTY_ROOT, overlayEntries: 0, size: base.size };
}

function* overlayEntries<V extends Keyed>(overlay: readonly Branch<V>[]): IterableIterator<V | Removed> {
  for (const branch of overlay) {
    if (branch === EMPTY_BRANCH) continue;
    for (const leaves of branch) for (const slot of leaves) yield* slot;
  }
}

function slotAt<V extends Keyed>(overlay: readonly Branch<V>[], hash: number): Slot<V> {
  return overlay[hash & MASK]?.[(hash >>> BITS) & MASK]?.[(hash >>> (2 * BITS)) & MASK] ?? EMPTY_SLOT;
}

function find<V extends Keyed>(slot: Slot<V>, id: string): V | Removed | undefined {
  for (let i = 0; i < slot.length; i += 1) {
    const entry = slot[i];
    if (entry?.id === id) return entry;
  }
  return undefined;
}

function position<V extends Keyed>(slot: Slot<V>, id: string): number {
  for (let i = 0; i < slot.length; i += 1) if (slot[i]?.id === id) return i;
  return -1;
}

/** FNV-1a over UTF-16 code units, then murmur3's finaliser so the low 15 bits (the address) mix well. */
function hashId(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i += 1) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}
