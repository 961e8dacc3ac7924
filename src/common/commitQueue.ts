/**
 * Group commit, the one queue behind every durable appender (the file and PostgreSQL journals,
 * the PaperBroker's ledger files and tables): items pushed while a commit is in flight are
 * committed together by the next one, so 64 callers cost a few commits, not 64. Exclusive work
 * (a compaction, a close) runs alone, after everything pushed before it. A commit that throws
 * fails every item in it; one that resolves settles them all.
 */
type Queued<T> =
  | { readonly kind: 'item'; readonly item: T; readonly resolve: () => void; readonly reject: (error: unknown) => void }
  | { readonly kind: 'exclusive'; readonly run: () => Promise<void> };

export class CommitQueue<T> {
  readonly #commit: (items: readonly T[]) => Promise<void>;
  #queue: Queued<T>[] = [];
  #busy = false;

  constructor(commit: (items: readonly T[]) => Promise<void>) {
    this.#commit = commit;
  }

  /** Resolves once `item` is committed; rejects with its commit's error. */
  push(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ kind: 'item', item, resolve, reject });
      this.#kick();
    });
  }

  /** Runs `run` once everything queued before it is done, and nothing beside it. */
  exclusive<R>(run: () => Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ kind: 'exclusive', run: () => run().then(resolve, reject) });
      this.#kick();
    });
  }

  /** Starts on the next microtask, so items pushed in one tick share a commit. */
  #kick(): void {
    if (this.#busy) return;
    this.#busy = true;
    queueMicrotask(() => void this.#drain());
  }

  async #drain(): Promise<void> {
    try {
      for (let next = this.#queue[0]; next !== undefined; next = this.#queue[0]) {
        if (next.kind === 'exclusive') {
          this.#queue.shift();
          await next.run();
          continue;
        }
        const end = this.#queue.findIndex((queued) => queued.kind !== 'item');
        const batch = this.#queue.splice(0, end === -1 ? this.#queue.length : end);
        const items: T[] = [];
        for (const queued of batch) if (queued.kind === 'item') items.push(queued.item);
        try {
          await this.#commit(items);
        } catch (error) {
          for (const queued of batch) if (queued.kind === 'item') queued.reject(error);
          continue;
        }
        for (const queued of batch) if (queued.kind === 'item') queued.resolve();
      }
    } finally {
      // Whatever ended the loop, the next push starts a new one instead of queueing behind a dead one.
      this.#busy = false;
    }
  }
}
