import { z } from 'zod';
import { clientOrderIdSchema } from '../idempotency/clientOrderId.js';
import type { ClockSkewRecord, JournalEntryRecord, JournalRecord } from '../idempotency/idempotency.js';
import { JournalClosedError, JournalReadError, JournalWriteError, type JournalLoad, type OrderJournal } from '../idempotency/orderJournal.js';
import { CommitQueue } from './commitQueue.js';
import { inTransaction, type Pool, type PooledClient } from './postgresClient.js';
import { checkFence, LeaseLostError, type LeaseWatch } from './postgresLease.js';

/**
 * The idempotency journal in PostgreSQL: the same {@link OrderJournal} the tracker uses over
 * `orders.journal`, so the TTL, clock-jump and unknown-until-settled rules are the tracker's,
 * unchanged. One row per (session, client order id) holds that id's last record; clock-skew
 * records have a table of their own; `seq` orders both as the file orders its lines, so a load
 * folds to the same table as the file would (an id's older records are ones the fold skips).
 * Appends made while a transaction is in flight share the next one (group commit), and every
 * transaction first checks the lease's fencing token (`LEASE_LOST` otherwise), in the same
 * transaction as the rows it writes.
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
        await this.#fenced(async (client) => {
          await client.query('DELETE FROM aistock_journal WHERE session_id = $1', [this.#watch.lease.sessionId]);
          await client.query('DELETE FROM aistock_clock_skews WHERE session_id = $1', [this.#watch.lease.sessionId]);
          await this.#insert(client, records);
        });
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
      await this.#fenced((client) => this.#insert(client, records));
      this.#stats.commits += 1;
    } catch (error) {
      // Nothing of the batch is written: its seqs may be used again.
      this.#seq = seqBefore;
      this.#stats.failedCommits += 1;
      throw error instanceof LeaseLostError ? error : new JournalWriteError(this.#where, 'append', error);
    }
  }

  /** A transaction that first checks the fencing token. */
  #fenced(run: (client: PooledClient) => Promise<void>): Promise<void> {
    return inTransaction(this.#pool, async (client) => {
      await checkFence(client, this.#watch);
      await run(client);
    });
  }

  /** Writes `records` in order: each id's last record (an upsert), every clock skew. */
  async #insert(client: PooledClient, records: readonly JournalRecord[]): Promise<void> {
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
    const sessionId = this.#watch.lease.sessionId;
    if (entries.size > 0) {
      const rows = [...entries.values()];
      await client.query(
        `INSERT INTO aistock_journal (session_id, client_order_id, state, at, seq)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::float8[], $5::bigint[])
         ON CONFLICT (session_id, client_order_id) DO UPDATE SET state = excluded.state, at = excluded.at, seq = excluded.seq`,
        [sessionId, rows.map((r) => r.record.id), rows.map((r) => r.record.state), rows.map((r) => r.record.at), rows.map((r) => r.seq)],
      );
    }
    if (skews.length > 0) {
      await client.query(
        `INSERT INTO aistock_clock_skews (session_id, clock_skew_ms, at, seq) SELECT $1, * FROM unnest($2::float8[], $3::float8[], $4::bigint[])`,
        [sessionId, skews.map((s) => s.record.clockSkewMs), skews.map((s) => s.record.at), skews.map((s) => s.seq)],
      );
    }
  }
}
