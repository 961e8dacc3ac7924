import { z } from 'zod';
import { editIndex, emptyIndex, indexGet, indexOwning, indexValues, type PersistentIndex } from '../idempotency/persistentIndex.js';
import { keyed } from '../common/keyed.js';

interface FillCount {
  readonly id: string;
  readonly fills: number;
}

/**
 * How many of each order's broker fills the portfolio holds, by client order id: one entry for
 * every order ever filled. Immutable, and a new version costs only the orders it changes — a
 * record copied at every booking made each order cost as much as all the orders before it
 * (quadratic over a run). Written to JSON (checkpoints) as the plain record it was before.
 */
export class FillCounts {
  static readonly EMPTY = new FillCounts(emptyIndex<FillCount>(), 0);

  readonly #index: PersistentIndex<FillCount>;
  /** Fills held over every order. */
  readonly total: number;

  private constructor(index: PersistentIndex<FillCount>, total: number) {
    this.#index = index;
    this.total = total;
  }

  /** The counts a checkpoint (or a caller) holds as a record: one index built whole, as a journal's table is at load. */
  static of(counts: Readonly<Record<string, number>>): FillCounts {
    const entries = new Map<string, FillCount>();
    let total = 0;
    for (const [id, fills] of Object.entries(counts)) {
      entries.set(id, { id, fills });
      total += fills;
    }
    return entries.size === 0 ? FillCounts.EMPTY : new FillCounts(indexOwning(entries), total);
  }

  /** Fills of `clientOrderId` the portfolio holds (0 for an order it holds none of). */
  get(clientOrderId: string): number {
    return indexGet(this.#index, clientOrderId)?.fills ?? 0;
  }

  /** Orders with fills held. */
  get orders(): number {
    return this.#index.size;
  }

  /** These counts with each of `counts`' orders set to its count; this version is left as it was. */
  with(counts: Iterable<readonly [string, number]>): FillCounts {
    let total = this.total;
    const index = editIndex(this.#index, (draft) => {
      for (const [id, fills] of counts) {
        total += fills - (draft.get(id)?.fills ?? 0);
        draft.put({ id, fills });
      }
    });
    return index === this.#index ? this : new FillCounts(index, total);
  }

  toJSON(): Record<string, number> {
    const record = keyed<number>();
    for (const { id, fills } of indexValues(this.#index)) record[id] = fills;
    return record;
  }
}

/** A checkpoint's record of fill counts, parsed into {@link FillCounts}. */
export const FillCountsSchema = z.record(z.string(), z.number().int().nonnegative()).transform((counts) => FillCounts.of(counts));
