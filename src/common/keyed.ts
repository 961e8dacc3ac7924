import { z } from 'zod';

/**
 * Records keyed by user data — symbols, client order ids — have no prototype, so a symbol named
 * `toString`, `constructor` or `hasOwnProperty` is just a key: reading an absent one gives
 * `undefined`, not an `Object.prototype` member, and writing one changes nothing else.
 */

/** A new record with no prototype, holding `entries`' own keys. */
export function keyed<T>(entries?: Readonly<Record<string, T>>): Record<string, T> {
  const record = Object.create(null) as Record<string, T>;
  if (entries !== undefined) for (const [key, value] of Object.entries(entries)) record[key] = value;
  return record;
}

/** A zod record (string keys) parsed into a record with no prototype (checkpoints, state files). */
export function keyedRecord<T extends z.ZodType>(value: T) {
  return z.record(z.string(), value).transform((parsed) => keyed(parsed as Record<string, z.infer<T>>));
}

/**
 * `record[key]` if it is the record's own key, else `undefined`: how the session pipeline reads
 * its small per-symbol records (the data guard, aggregator and bar history hold a
 * {@link SymbolMap}). Those stay plain objects, copied by spread — a null-prototype record is a
 * dictionary-mode object that V8 copies ~70× slower (2 µs against 28 ns for five symbols, per
 * bar) — and their keys pass the symbol grammar, which refuses `__proto__`; so the only way a
 * symbol could collide with `Object.prototype` is a read of an absent key, which this closes.
 */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/**
 * The symbols a family of {@link SymbolMap}s has ever held, each with its slot: shared by a map
 * and every copy made from it, and only ever appended to, so a slot means the same symbol in
 * every map of the family.
 */
class SymbolSlots {
  readonly slotOf = new Map<string, number>();
  readonly symbols: string[] = [];

  slot(symbol: string): number {
    let slot = this.slotOf.get(symbol);
    if (slot === undefined) {
      slot = this.symbols.length;
      this.symbols.push(symbol);
      this.slotOf.set(symbol, slot);
    }
    return slot;
  }
}

/**
 * Per-symbol state on the hot path, a `Map` of symbol to value whose copy is cheap. A symbol is
 * only ever a key (no prototype to collide with) and a lookup is a hash probe — `own` on a
 * 500-symbol record is a dictionary lookup ~10× slower.
 *
 * Each step of the pipeline copies the maps it changes once per batch, so a copy must not cost
 * a hash table: with 500 symbols and one bar per batch (live), copying `Map`s took 57 % of a
 * bar. Here a copy shares the family's slots (see {@link SymbolSlots}) and copies only an
 * array of values, one pointer per symbol. Values are never `undefined` (an empty slot).
 * Iteration follows the slots: the order in which the family first held each symbol.
 *
 * Written to JSON (checkpoints) as a plain record of its entries, and read back by {@link symbolMapSchema}.
 */
export class SymbolMap<V> implements Map<string, V> {
  #slots: SymbolSlots;
  #values: (V | undefined)[];
  #size: number;

  /** A map of `entries`; given a `SymbolMap`, a copy of it in its family (see {@link SymbolMap.copyOf}). */
  constructor(entries?: Iterable<readonly [string, V]> | null) {
    if (entries instanceof SymbolMap) {
      this.#slots = entries.#slots;
      this.#values = entries.#values.slice();
      this.#size = entries.#size;
      return;
    }
    this.#slots = new SymbolSlots();
    this.#values = [];
    this.#size = 0;
    if (entries !== undefined && entries !== null) for (const [symbol, value] of entries) this.set(symbol, value);
  }

  /** A copy of `map`; of a `SymbolMap`, sharing its slots: one pointer copied per symbol, no hashing. */
  static copyOf<V>(map: ReadonlyMap<string, V>): SymbolMap<V> {
    return new SymbolMap(map);
  }

  get size(): number {
    return this.#size;
  }

  get(symbol: string): V | undefined {
    const slot = this.#slots.slotOf.get(symbol);
    return slot === undefined ? undefined : this.#values[slot];
  }

  has(symbol: string): boolean {
    return this.get(symbol) !== undefined;
  }

  set(symbol: string, value: V): this {
    if (value === undefined) throw new TypeError(`SymbolMap: ${symbol}'s value is undefined (an empty slot)`);
    const slot = this.#slots.slot(symbol);
    const values = this.#values;
    while (values.length < slot) values.push(undefined);
    if (values[slot] === undefined) this.#size += 1;
    values[slot] = value;
    return this;
  }

  delete(symbol: string): boolean {
    const slot = this.#slots.slotOf.get(symbol);
    if (slot === undefined || this.#values[slot] === undefined) return false;
    this.#values[slot] = undefined;
    this.#size -= 1;
    return true;
  }

  clear(): void {
    this.#values = [];
    this.#size = 0;
  }

  forEach(callback: (value: V, symbol: string, map: Map<string, V>) => void, thisArg?: unknown): void {
    const values = this.#values;
    const { symbols } = this.#slots;
    for (let slot = 0; slot < values.length; slot += 1) {
      const value = values[slot];
      if (value !== undefined) callback.call(thisArg, value, symbols[slot] as string, this);
    }
  }

  *entries(): MapIterator<[string, V]> {
    const values = this.#values;
    const { symbols } = this.#slots;
    for (let slot = 0; slot < values.length; slot += 1) {
      const value = values[slot];
      if (value !== undefined) yield [symbols[slot] as string, value];
    }
  }

  *keys(): MapIterator<string> {
    for (const [symbol] of this.entries()) yield symbol;
  }

  *values(): MapIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'SymbolMap';
  }

  toJSON(): Record<string, V> {
    const record = keyed<V>();
    for (const [symbol, value] of this) record[symbol] = value;
    return record;
  }

  /** `console.log` and the test runner's diffs show the entries (the fields are private). */
  [Symbol.for('nodejs.util.inspect.custom')](): Map<string, V> {
    return new Map(this);
  }
}

/** A {@link SymbolMap} its readers may not change (its `toJSON` still writes the record: a plain `Map` would write `{}`). */
export type ReadonlySymbolMap<V> = ReadonlyMap<string, V> & { toJSON(): Record<string, V> };

/** A JSON record of per-symbol values (as {@link SymbolMap.toJSON} writes it) parsed into a {@link SymbolMap}. */
export function symbolMapSchema<T extends z.ZodType>(value: T) {
  return z.record(z.string(), value).transform((parsed) => new SymbolMap<z.infer<T>>(Object.entries(parsed as Record<string, z.infer<T>>)));
}
