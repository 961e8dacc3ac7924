import type { TimeframeBar } from './timeframe.js';

/** A ring as checkpoints hold it: bars in insertion slots; once full, `next` is the oldest slot. */
export interface BarRingJson {
  items: TimeframeBar[];
  next: number;
}

/**
 * The newest `capacity` bars of one symbol and timeframe, oldest first, immutable to its readers.
 *
 * Appending shares storage instead of copying the ring: a ring's bars are `store[end - size, end)`,
 * and `append` writes at `store[end]` only while no other ring has (`store.length === end`), else
 * it copies its own bars first. So every earlier ring still reads exactly its bars, while a batch
 * touching 500 symbols costs 500 pushes, not 500 copies of their histories. The store is cut back
 * to the ring's bars once it holds twice `capacity` (amortized O(1) per bar).
 *
 * Iterable (oldest first), so `toEqual` compares contents; serialized (`toJSON`) as the
 * checkpoint's plain `{ items, next }`.
 */
export class BarRing {
  readonly #store: TimeframeBar[];
  #end: number;
  #size: number;
  readonly capacity: number;
  /** The batch that made this ring (see `append`): only it may still append in place. */
  readonly #batch: object | undefined;

  private constructor(store: TimeframeBar[], end: number, size: number, capacity: number, batch?: object) {
    this.#store = store;
    this.#end = end;
    this.#size = size;
    this.capacity = capacity;
    this.#batch = batch;
  }

  /** An empty ring that keeps `capacity` bars. */
  static empty(capacity: number): BarRing {
    return new BarRing([], 0, 0, capacity);
  }

  /** The ring a checkpoint holds (slots and `next`, as `toJSON` writes them), keeping `capacity` bars. */
  static fromJSON(json: BarRingJson, capacity: number): BarRing {
    const { items, next } = json;
    const ordered = items.length < capacity ? items : [...items.slice(next), ...items.slice(0, next)];
    const kept = ordered.slice(Math.max(0, ordered.length - capacity));
    return new BarRing(kept, kept.length, kept.length, capacity);
  }

  /** How many bars it holds (at most `capacity`). */
  get length(): number {
    return this.#size;
  }

  /**
   * This ring with `bar` appended as its newest (the oldest dropped when full). `batch`: a token
   * the caller makes once per batch. A ring appended with it is that batch's own until the
   * caller hands it over (no reader has it yet), so the batch's later appends to it extend it in
   * place: one ring per symbol and timeframe per batch, not one per bar.
   */
  append(bar: TimeframeBar, batch?: object): BarRing {
    const size = Math.min(this.#size + 1, this.capacity);
    if (this.#store.length === this.#end && this.#end < 2 * this.capacity) {
      this.#store.push(bar);
      if (batch !== undefined && this.#batch === batch) {
        this.#end += 1;
        this.#size = size;
        return this;
      }
      return new BarRing(this.#store, this.#end + 1, size, this.capacity, batch);
    }
    // Another ring wrote past this one's end, or the store is due for cutting back: start a new one.
    const store = this.#store.slice(this.#end - size + 1, this.#end);
    store.push(bar);
    return new BarRing(store, store.length, size, this.capacity, batch);
  }

  /** The newest `count` bars (default: all), oldest first. */
  newest(count = this.#size): TimeframeBar[] {
    const taken = Math.max(0, Math.min(count, this.#size));
    return this.#store.slice(this.#end - taken, this.#end);
  }

  *[Symbol.iterator](): IterableIterator<TimeframeBar> {
    for (let i = this.#end - this.#size; i < this.#end; i += 1) yield this.#store[i] as TimeframeBar;
  }

  toJSON(): BarRingJson {
    const items = this.newest();
    return { items, next: items.length === this.capacity ? 0 : items.length };
  }
}
