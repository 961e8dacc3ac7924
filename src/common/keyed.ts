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
 * Per-symbol state on the hot path: a `Map`, so a symbol is only ever a key (no prototype to
 * collide with) and a lookup is a hash probe — `own` on a 500-symbol record is a dictionary
 * lookup ~10× slower. Written to JSON (checkpoints) as a plain record of its entries, and read
 * back by {@link symbolMapSchema}.
 */
export class SymbolMap<V> extends Map<string, V> {
  /**
   * A copy of `map`. Each step copies its per-symbol map once per batch (one bar, live), and a
   * `forEach` copy makes no iterator or entry pair per symbol: 0.2 µs for five symbols against
   * 0.33 µs for `new SymbolMap(map)`.
   */
  static copyOf<V>(map: ReadonlyMap<string, V>): SymbolMap<V> {
    const copy = new SymbolMap<V>();
    map.forEach((value, symbol) => copy.set(symbol, value));
    return copy;
  }

  toJSON(): Record<string, V> {
    const record = keyed<V>();
    for (const [symbol, value] of this) record[symbol] = value;
    return record;
  }
}

/** A {@link SymbolMap} its readers may not change (its `toJSON` still writes the record: a plain `Map` would write `{}`). */
export type ReadonlySymbolMap<V> = ReadonlyMap<string, V> & { toJSON(): Record<string, V> };

/** A JSON record of per-symbol values (as {@link SymbolMap.toJSON} writes it) parsed into a {@link SymbolMap}. */
export function symbolMapSchema<T extends z.ZodType>(value: T) {
  return z.record(z.string(), value).transform((parsed) => new SymbolMap<z.infer<T>>(Object.entries(parsed as Record<string, z.infer<T>>)));
}
