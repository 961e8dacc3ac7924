import { z } from 'zod';
import { clientOrderIdSchema } from '../idempotency/clientOrderId.js';
import type { ClockSkewRecord, JournalEntryRecord, JournalRecord } from '../idempotency/idempotency.js';
import { JournalClosedError, JournalReadError, JournalWriteError, type JournalLoad, type OrderJournal } from '../idempotency/orderJournal.js';
import { CommitQueue } from '../common/commitQueue.js';
import { inTransaction, type Pool, type Queryable } from './postgresClient.js';
import { checkFence, LeaseLostError, type LeaseWatch } from './postgresLease.js';

/**
 * The idempotency journal in PostgreSQL: the same {@link OrderJournal} the tracker uses over
 * `orders.journal`, so the TTL, clock-jump and unknown-until-settled rules are the tracker's,
 * unchanged. One row per (session, client order id) holds that id's last record; clock-skew
 * records have a table of their own; `seq` orders both as the file orders its lines, so a load
 * folds to the same table as the file would (an id's older records are ones the fold skips).
 * Appends made while a commit is in flight share the next one (group commit): one statement,
 * which checks the lease's fencing token (`LEASE_LOST` otherwise) in the same statement as the
 * rows it writes, so an append costs one round trip.
 */

const ENTRY_STATES = ['reserved', 'submitted', 'rejected', 'unknown', 'released'] as const satisfies readonly JournalEntryRecord['state'][];

const rowSchema = z.union([
  z.object({ seq: z.coerce.number().int(), id: clientOrderIdSchema, state: z.enum(ENTRY_STATES), at: z.number(), skew: z.null() }),
  z.object({ seq: z.coerce.number().int(), id: z.null(), state: z.null(), at: z.number(), skew: z.number() }),
]);

/** Counters of what the journal did. */
export interface PostgresJournalStats {
  /** `append` calls that carried records. */
  appends: number;
  /** Transactions that committed appends; fewer than `appends` when group commit shares them. */
  commits: number;
  failedCommits: number;
  compactions: number;
}

export class PostgresOrderJournal implements OrderJournal {
  readonly #pool: Pool;
  readonly #watch: LeaseWatch;
  readonly #where: string;
  readonly #queue = new CommitQueue<readonly JournalRecord[]>((batches) => this.#commit(batches));
  #closedBecause: string | undefined = 'not loaded yet';
  #loaded = false;
  /** The last `seq` written; only the lease holder writes, and it loads the highest first. */
  #seq = 0;
  readonly #stats: PostgresJournalStats = { appends: 0, commits: 0, failedCommits: 0, compactions: 0 };

  /** `watch`: the session's lease; once it is known lost, appends fail at once. */
  constructor(options: { pool: Pool; watch: LeaseWatch; where: string }) {
    this.#pool = options.pool;
    this.#watch = options.watch;
    this.#where = options.where;
  }

  /** A copy of the counters. */
  stats(): PostgresJournalStats {
    return { ...this.#stats };
  }

  async load(): Promise<JournalLoad> {
    if (this.#loaded) throw new JournalReadError(this.#where, new Error('already loaded'));
    this.#loaded = true;
    const sessionId = this.#watch.lease.sessionId;
    let created: boolean;
    let rows: unknown[];
    try {
      const inserted = await this.#pool.query('INSERT INTO aistock_sessions (session_id) VALUES ($1) ON CONFLICT DO NOTHING', [sessionId]);
      created = inserted.rowCount === 1;
      const read = await this.#pool.query(
        `SELECT seq::text AS seq, client_order_id AS id, state, at, NULL::float8 AS skew FROM aistock_journal WHERE session_id = $1
         UNION ALL
         SELECT seq::text, NULL, NULL, at, clock_skew_ms FROM aistock_clock_skews WHERE session_id = $1
         ORDER BY seq`,
        [sessionId],
      );
      rows = read.rows;
    } catch (error) {
      throw new JournalReadError(this.#where, error);
    }
    const records: JournalRecord[] = [];
    for (const [index, row] of rows.entries()) {
      const parsed = rowSchema.safeParse(row);
      // The table's types and CHECK hold every row to this: a row that fails is a bug or an edit, not a state to guess at.
      if (!parsed.success) throw new JournalReadError(this.#where, new Error(`row ${index + 1}: ${z.prettifyError(parsed.error)}`));
      const { data } = parsed;
      records.push(data.id === null ? { clockSkewMs: data.skew, at: data.at } : { id: data.id, state: data.state, at: data.at });
      this.#seq = Math.max(this.#seq, data.seq);
    }
    this.#closedBecause = undefined;
    return { status: 'ok', records, tornTail: null, created, upgradedFrom: null };
  }

  append(records: readonly JournalRecord[]): Promise<void> {
    if (this.#closedBecause !== undefined) return Promise.reject(new JournalClosedError(this.#where, this.#closedBecause));
    const { lost } = this.#watch;
    if (lost !== undefined) return Promise.reject(lost);
    if (records.length === 0) return Promise.resolve();
    this.#stats.appends += 1;
    return this.#queue.push(records);
  }

  compact(records: readonly JournalEntryRecord[]): Promise<void> {
    if (this.#closedBecause !== undefined) return Promise.reject(new JournalClosedError(this.#where, this.#closedBecause));
    return this.#queue.exclusive(async () => {
      try {
        await this.#replaceAll(records);
      } catch (error) {
        throw error instanceof LeaseLostError ? error : new JournalWriteError(this.#where, 'compact', error);
      }
      this.#stats.compactions += 1;
    });
  }

  close(): Promise<void> {
    return this.#queue.exclusive(async () => {
      this.#closedBecause = 'closed';
    });
  }

  async #commit(batches: readonly (readonly JournalRecord[])[]): Promise<void> {
    const records = batches.flat();
    const seqBefore = this.#seq;
    try {
      // One statement, one round trip: atomic on its own, the fence inside it.
      this.#watch.assertHeld();
      await this.#insertFenced(this.#pool, records);
      this.#stats.commits += 1;
    } catch (error) {
      // Nothing of the batch is written: its seqs may be used again.
      this.#seq = seqBefore;
      this.#stats.failedCommits += 1;
      throw error instanceof LeaseLostError ? error : new JournalWriteError(this.#where, 'append', error);
    }
  }

  /** Compaction: the session's rows deleted and `records` written in one transaction, fenced like an append. */
  #replaceAll(records: readonly JournalEntryRecord[]): Promise<void> {
    return inTransaction(this.#pool, async (client) => {
      await checkFence(client, this.#watch);
      await client.query('DELETE FROM aistock_journal WHERE session_id = $1', [this.#watch.lease.sessionId]);
      await client.query('DELETE FROM aistock_clock_skews WHERE session_id = $1', [this.#watch.lease.sessionId]);
      await this.#insertFenced(client, records);
    });
  }

  /**
   * Writes `records` in order — each id's last record (an upsert), every clock skew — in one
   * statement that holds the lease row FOR SHARE and writes nothing unless its token is still
   * the watch's; throws {@link LeaseLostError} (and tells the watch) when it is not.
   */
  async #insertFenced(db: Queryable, records: readonly JournalRecord[]): Promise<void> {
    // One row per id: a later record of an id in this batch replaces its earlier one (ON CONFLICT cannot touch a row twice).
    const entries = new Map<string, { record: JournalEntryRecord; seq: number }>();
    const skews: { record: ClockSkewRecord; seq: number }[] = [];
    for (const record of records) {
      this.#seq += 1;
      if ('clockSkewMs' in record) skews.push({ record, seq: this.#seq });
      else {
        entries.delete(record.id);
        entries.set(record.id, { record, seq: this.#seq });
      }
    }
    const rows = [...entries.values()];
    const { lease } = this.#watch;
    const written = await db.query<{ fenced: number }>(
      `WITH fence AS (SELECT 1 FROM aistock_leases WHERE session_id = $1 AND token = $2::bigint FOR SHARE),
       entries AS (
         INSERT INTO aistock_journal (session_id, client_order_id, state, at, seq)
         SELECT $1, u.* FROM unnest($3::text[], $4::text[], $5::float8[], $6::bigint[]) AS u WHERE EXISTS (SELECT 1 FROM fence)
         ON CONFLICT (session_id, client_order_id) DO UPDATE SET state = excluded.state, at = excluded.at, seq = excluded.seq
         RETURNING 1),
       skews AS (
         INSERT INTO aistock_clock_skews (session_id, clock_skew_ms, at, seq)
         SELECT $1, u.* FROM unnest($7::float8[], $8::float8[], $9::bigint[]) AS u WHERE EXISTS (SELECT 1 FROM fence)
         RETURNING 1)
       SELECT (SELECT count(*) FROM fence)::int AS fenced, (SELECT count(*) FROM entries) + (SELECT count(*) FROM skews) AS written`,
      [
        lease.sessionId,
        lease.token,
        rows.map((r) => r.record.id),
        rows.map((r) => r.record.state),
        rows.map((r) => r.record.at),
        rows.map((r) => r.seq),
        skews.map((r) => r.record.clockSkewMs),
        skews.map((r) => r.record.at),
        skews.map((r) => r.seq),
      ],
    );
    if (written.rows[0]?.fenced !== 1) throw this.#watch.stale('another process took it over');
  }
}
