/**
 * The checkpointer's queue as plain data: the newest snapshot per key, each with a version,
 * so a write that finishes after a newer SAVE does not mark the newer one as persisted.
 * Coalescing is what keeps the queue bounded: N saves of K keys hold at most K snapshots.
 */

/** One snapshot waiting to be written. */
export interface PendingWrite {
  readonly key: string;
  readonly snapshot: unknown;
  readonly version: number;
}

/** Newest pending snapshot per key, in the order keys were first saved. */
export type PendingSnapshots = Readonly<Record<string, PendingWrite>>;

/** Queues `snapshot` under `key`, replacing any older pending one for that key. */
export function offerSnapshot(pending: PendingSnapshots, key: string, snapshot: unknown, version: number): PendingSnapshots {
  return { ...pending, [key]: { key, snapshot, version } };
}

/** What one write should persist: every pending key's newest snapshot. */
export function pendingWrites(pending: PendingSnapshots): PendingWrite[] {
  return Object.values(pending);
}

/** Drops the keys whose written version is still the newest; newer saves stay pending. */
export function settleWrites(pending: PendingSnapshots, written: readonly PendingWrite[]): PendingSnapshots {
  let next: Record<string, PendingWrite> | undefined;
  for (const write of written) {
    if (pending[write.key]?.version !== write.version) continue;
    next ??= { ...pending };
    delete next[write.key];
  }
  return next ?? pending;
}

/** Exponential backoff: `baseMs · 2^(failures-1)`, capped at `maxMs`. */
export function retryDelayMs(consecutiveFailures: number, baseMs: number, maxMs: number): number {
  const exponent = Math.max(0, consecutiveFailures - 1);
  return Math.min(maxMs, baseMs * 2 ** Math.min(exponent, 30));
}
