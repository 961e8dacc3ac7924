import { z } from 'zod';
import { AistockError } from '../common/errors.js';
import { CommitQueue } from '../common/commitQueue.js';
import type { Fill } from '../common/order.js';
import {
  APPENDED,
  BrokerLedgerClosedError,
  BrokerLedgerCorruptError,
  CancelLineSchema,
  FillLineSchema,
  ledgerContents,
  OrderLineSchema,
  type CancelLine,
  type LedgerContents,
  type LedgerFileKind,
  type LedgerRecords,
  type FillAppend,
  type OrderAppend,
  type OrderLine,
  type PaperBrokerLedgerStore,
} from '../broker/paperBrokerLedger.js';
import { describeUrl, openPool, PostgresStoreError, type Pool } from './postgresClient.js';
import { migrate } from './postgresSchema.js';
import type { LeaseLostError, LeaseWatch } from './postgresLease.js';
import { CHECKPOINT_KEY } from '../session/sessionCheckpoint.js';

/**
 * The PaperBroker's ledger in PostgreSQL, keyed by session id: a row per line of `orders.jsonl`,
 * `fills.jsonl` and `cancels.jsonl` (tables `aistock_broker_orders`, `…_fills`, `…_cancels`),
 * each holding the line's record as the file would, ordered by an identity column. The
 * PaperBroker's rules (the book rebuilt, an interrupted market order completed, a missing copy
 * of a carried fill written again) are the broker's, the same over this store as over files.
 * Appends waiting together are one statement (group commit, one round trip, atomic).
 *
 * The orders that reach the market are not fenced by the session's lease, on purpose: the broker
 * stands for the market, whose record is not the session's. Keeping a fenced-out holder from
 * sending is the lease's work upstream (the journal's reservation and `assertHeld` before every
 * broker call); the market accepts the orders that reach it. So the failover tests read this ledger as
 * an outside check of that fencing — a fenced holder that sent anything would show here — instead
 * of a second fence hiding a hole in the first. What the market does refuse is a client order id
 * it already holds: the table's `UNIQUE (session_id, client_order_id)` is the duplicate-id rule
 * across every process on the session (a holder paused between its reservation and its broker
 * call, waking after a takeover, is refused `DUPLICATE_CLIENT_ORDER_ID` if the new holder sent it).
 *
 * The fills a bar makes (`appendFill`: resting orders reached by `observeBar`) are the market's
 * own doing, and a paper session runs that market in its process: a holder taken over but still
 * running would run a second copy of it and fill resting orders the new holder's market already
 * filled. With `fence` (a session's lease) those fills are written only while its token holds
 * (the same statement checks it); a stale one fails them `LEASE_LOST` — the order keeps resting
 * in the stale book, the ledger gets nothing — and the watch learns the loss. Cancels are fenced
 * the same way: the stale book's idea of which orders still work is out of date, and a cancel of an
 * order the new holder's market has filled would leave a ledger the next open refuses. A fill at submit
 * rides its order line (`appendOrder`), and a carried fill's copy is kept once, so neither needs it.
 */

/** One append waiting for its commit; `duplicate` is set by the commit when the unique key refused an order line. */
interface LedgerWrite {
  /** `copies`: the fills copies of carried fills, at most one per order line. */
  readonly kind: LedgerFileKind | 'copies';
  readonly clientOrderId: string;
  readonly record: OrderLine | Fill | CancelLine;
  /** A bar's fill: which of its order's fills it is (the unique key that makes a rewrite a no-op). */
  readonly ordinal: number | null;
  /** The store held the record already (an order line's id, a bar fill's order and ordinal): nothing written. */
  duplicate: boolean;
  /** A bar's fill the fence refused (the lease was taken over): nothing of it was written. */
  fenced: LeaseLostError | undefined;
}

const TABLES: Record<LedgerFileKind, string> = { orders: 'aistock_broker_orders', fills: 'aistock_broker_fills', cancels: 'aistock_broker_cancels' };
const rowSchema = z.object({ kind: z.enum(['orders', 'fills', 'cancels']), record: z.unknown() });

/** Counters of what the ledger did. */
export interface PostgresPaperBrokerLedgerStats {
  appends: number;
  /** Statements that committed appends; fewer than `appends` when group commit shares them. */
  commits: number;
  failedCommits: number;
}

/** A PaperBroker's ledger in PostgreSQL (see the module comment); opened by a session's `postgresStore`, or read by {@link openPostgresAudit}. */
export class PostgresPaperBrokerLedger implements PaperBrokerLedgerStore {
  readonly where: string;
  readonly uniqueClientOrderIds = true;
  readonly #pool: Pool;
  readonly #sessionId: string;
  readonly #fence: LeaseWatch | undefined;
  readonly #queue = new CommitQueue<LedgerWrite>((writes) => this.#commit(writes));
  readonly #stats: PostgresPaperBrokerLedgerStats = { appends: 0, commits: 0, failedCommits: 0 };
  #closing: Promise<void> | undefined;

  /** `where`: the database as `describeUrl` names it (no password); `fence`: the session's lease, which a bar's fills need (see above). */
  constructor(options: { pool: Pool; sessionId: string; where: string; fence?: LeaseWatch }) {
    this.#pool = options.pool;
    this.#sessionId = options.sessionId;
    this.#fence = options.fence;
    this.where = `${options.where} (session ${options.sessionId})`;
  }

  /** A copy of the counters. */
  stats(): PostgresPaperBrokerLedgerStats {
    return { ...this.#stats };
  }

  locate(kind: LedgerFileKind): string {
    return `${TABLES[kind]} of ${this.where}`;
  }

  async open(): Promise<LedgerRecords> {
    let rows: unknown[];
    try {
      // One statement, one snapshot of the three tables.
      const read = await this.#pool.query(
        `SELECT 'orders' AS kind, record, seq FROM aistock_broker_orders WHERE session_id = $1
         UNION ALL SELECT 'fills', record, seq FROM aistock_broker_fills WHERE session_id = $1
         UNION ALL SELECT 'cancels', record, seq FROM aistock_broker_cancels WHERE session_id = $1
         ORDER BY kind, seq`,
        [this.#sessionId],
      );
      rows = read.rows;
    } catch (error) {
      throw new PostgresStoreError(`read the broker ledger of session ${this.#sessionId}`, error);
    }
    const orders: OrderLine[] = [];
    const fills: Fill[] = [];
    const cancels: CancelLine[] = [];
    for (const row of rows) {
      const parsedRow = rowSchema.safeParse(row);
      if (!parsedRow.success) throw new BrokerLedgerCorruptError(this.where, rows.indexOf(row) + 1, 'INVALID_LINE', z.prettifyError(parsedRow.error));
      const { kind, record } = parsedRow.data;
      if (kind === 'orders') orders.push(this.#parse(kind, orders.length, record, OrderLineSchema));
      else if (kind === 'fills') fills.push(this.#parse(kind, fills.length, record, FillLineSchema));
      else cancels.push(this.#parse(kind, cancels.length, record, CancelLineSchema));
    }
    return { orders, fills, cancels, tornLinesRemoved: 0, filesUpgraded: 0 };
  }

  async appendOrder(line: OrderLine): Promise<OrderAppend> {
    const write = this.#push('orders', line.clientOrderId, line);
    await write.committed;
    if (!write.item.duplicate) return APPENDED;
    // Rare (a holder taken over, still running): the line the table holds.
    const stored = await this.#stored('orders', `order ${line.clientOrderId}`, 'client_order_id = $2', [line.clientOrderId], OrderLineSchema);
    return { status: 'duplicate', stored };
  }

  async appendFill(fill: Fill, ordinal: number): Promise<FillAppend> {
    const write = this.#push('fills', fill.clientOrderId, fill, ordinal);
    await write.committed;
    if (write.item.fenced !== undefined) throw write.item.fenced;
    if (!write.item.duplicate) return APPENDED;
    // Written before by a commit whose answer was lost: the fill the table holds is the fill.
    const where = 'client_order_id = $2 AND fill_index = $3 AND NOT copy';
    const stored = await this.#stored('fills', `fill ${ordinal} of ${fill.clientOrderId}`, where, [fill.clientOrderId, ordinal], FillLineSchema);
    return { status: 'duplicate', stored };
  }

  /**
   * Durable like any append (a commit here costs what the file's sync costs there), and at most once
   * per order line: a second copy — the one a holder taken over writes late, after the new holder's
   * open copied the fill again — is skipped by the unique index, so it never becomes a second fill.
   */
  copyFill(fill: Fill): Promise<void> {
    return this.#push('copies', fill.clientOrderId, fill).committed;
  }

  /** Fenced like a bar's fill (see the module comment): a holder taken over cancels nothing. */
  async appendCancel(line: CancelLine): Promise<void> {
    const write = this.#push('cancels', line.clientOrderId, line);
    await write.committed;
    if (write.item.fenced !== undefined) throw write.item.fenced;
  }

  /** Waits for appends in flight; the pool is the session store's (or the reader's) to end. */
  close(): Promise<void> {
    this.#closing ??= this.#queue.exclusive(async () => undefined);
    return this.#closing;
  }

  #push(kind: LedgerWrite['kind'], clientOrderId: string, record: LedgerWrite['record'], ordinal: number | null = null): { item: LedgerWrite; committed: Promise<void> } {
    const item: LedgerWrite = { kind, clientOrderId, record, ordinal, duplicate: false, fenced: undefined };
    if (this.#closing !== undefined) return { item, committed: Promise.reject(new BrokerLedgerClosedError(this.where, 'closed')) };
    this.#stats.appends += 1;
    return { item, committed: this.#queue.push(item) };
  }

  /**
   * Every waiting append in one statement: an insert per table, each in its appends' order (a bar's fills and copies in one); order lines whose id the
   * table holds are skipped and marked `duplicate`, copies already there skipped, a bar's fills written only under the fence.
   */
  async #commit(writes: readonly LedgerWrite[]): Promise<void> {
    const of = (kind: LedgerWrite['kind']) => writes.filter((write) => write.kind === kind);
    const [orders, fills, cancels] = [of('orders'), of('fills'), of('cancels')];
    // A bar's fills and carried fills' copies go to one table: one insert, in append order.
    const fillRows = writes.filter((write) => write.kind === 'fills' || write.kind === 'copies');
    const column = (list: readonly LedgerWrite[]) => [list.map((write) => write.clientOrderId), list.map((write) => JSON.stringify(write.record))];
    const insert = (table: string, ids: number, extra: { conflict?: string; where?: string } = {}) =>
      `INSERT INTO ${table} (session_id, client_order_id, record)
       SELECT $1, u.id, u.record::json FROM unnest($${ids}::text[], $${ids + 1}::text[]) WITH ORDINALITY AS u(id, record, n) ${extra.where ?? ''} ORDER BY u.n
       ${extra.conflict ?? ''} RETURNING client_order_id`;
    // Without a fence (no session: a test's, or an audit's own ledger) a bar's fills and cancels are written as they come.
    const fence = this.#fence === undefined || (fills.length === 0 && cancels.length === 0) ? null : this.#fence;
    let inserted: string[];
    let filled: string[];
    let held: boolean;
    try {
      const result = await this.#pool.query<{ inserted: string[] | null; filled: string[] | null; fenced: number }>(
        `WITH fence AS (${fence === null ? 'SELECT 1' : 'SELECT 1 FROM aistock_leases WHERE session_id = $1 AND token = $10::bigint FOR SHARE'}),
         orders AS (${insert(TABLES.orders, 2, { conflict: 'ON CONFLICT (session_id, client_order_id) DO NOTHING' })}),
         fills AS (
           INSERT INTO ${TABLES.fills} (session_id, client_order_id, record, copy, fill_index)
           SELECT $1, u.id, u.record::json, u.copy, u.ordinal
             FROM unnest($4::text[], $5::text[], $6::boolean[], $9::integer[]) WITH ORDINALITY AS u(id, record, copy, ordinal, n)
            WHERE u.copy OR EXISTS (SELECT 1 FROM fence) ORDER BY u.n
           -- A copy already there, or a bar's fill already written (by a commit whose answer was lost): skipped.
           ON CONFLICT DO NOTHING RETURNING client_order_id, fill_index),
         cancels AS (${insert(TABLES.cancels, 7, { where: 'WHERE EXISTS (SELECT 1 FROM fence)' })})
         SELECT (SELECT array_agg(client_order_id) FROM orders) AS inserted,
                (SELECT array_agg(client_order_id || ' ' || fill_index) FROM fills WHERE fill_index IS NOT NULL) AS filled,
                (SELECT count(*) FROM fence)::int AS fenced`,
        [
          this.#sessionId,
          ...column(orders),
          ...column(fillRows),
          fillRows.map((write) => write.kind === 'copies'),
          ...column(cancels),
          fillRows.map((write) => write.ordinal),
          ...(fence === null ? [] : [fence.lease.token]),
        ],
      );
      inserted = result.rows[0]?.inserted ?? [];
      filled = result.rows[0]?.filled ?? [];
      held = fence === null || result.rows[0]?.fenced === 1;
    } catch (error) {
      this.#stats.failedCommits += 1;
      throw new PostgresStoreError(`append to the broker ledger of session ${this.#sessionId}`, error);
    }
    this.#stats.commits += 1;
    if (!held && fence !== null) {
      const lost = fence.stale(`another process took it over (${fills.length > 0 ? 'a fill of the paper market' : 'a cancel'} refused)`);
      for (const write of [...fills, ...cancels]) write.fenced = lost;
    }
    const written = new Set(inserted);
    for (const order of orders) {
      // The first line of an id in the batch is the one written; the broker never sends an id twice in one batch.
      if (written.delete(order.clientOrderId)) continue;
      order.duplicate = true;
    }
    if (!held) return;
    const fillsWritten = new Set(filled);
    for (const fill of fills) if (!fillsWritten.has(`${fill.clientOrderId} ${fill.ordinal}`)) fill.duplicate = true;
  }

  /**
   * The record of `kind` the table holds where `where` (after `session_id = $1`), read in a
   * statement of its own, which sees the committed insert that made an append conflict.
   */
  async #stored<T>(kind: LedgerFileKind, what: string, where: string, params: readonly unknown[], schema: z.ZodType<T>): Promise<T> {
    let record: unknown;
    try {
      const row = await this.#pool.query<{ record: unknown }>(`SELECT record FROM ${TABLES[kind]} WHERE session_id = $1 AND ${where}`, [this.#sessionId, ...params]);
      record = row.rows[0]?.record;
    } catch (error) {
      throw new PostgresStoreError(`read ${what} from the broker ledger of session ${this.#sessionId}`, error);
    }
    return this.#parse(kind, 0, record, schema);
  }

  #parse<T>(kind: LedgerFileKind, index: number, record: unknown, schema: z.ZodType<T>): T {
    const parsed = schema.safeParse(record);
    if (parsed.success) return parsed.data;
    // The rows are the broker's own writes: one that fails is an edit, refused like a damaged file line, never guessed at.
    throw new BrokerLedgerCorruptError(this.locate(kind), index + 1, 'INVALID_LINE', `${z.prettifyError(parsed.error)} in ${JSON.stringify(record).slice(0, 80)}`);
  }
}

/** `aistock ledger --store`: the session id names no session in the database. Not retryable. */
export class UnknownSessionError extends AistockError {
  readonly sessionId: string;

  constructor(where: string, sessionId: string) {
    super('UNKNOWN_SESSION', `${where} holds no session ${sessionId}`);
    this.sessionId = sessionId;
  }
}

/** What an audit reads of one session in the database (see {@link openPostgresAudit}). */
export interface PostgresAudit {
  /** The session's broker ledger, in the two shapes of DESIGN.md (as `readLedger` reads a state dir). */
  ledger(): Promise<LedgerContents>;
  /** The session's checkpoint envelope, as `<stateDir>/checkpoint.json` would hold it; null when none was written. */
  checkpoint(): Promise<string | null>;
  close(): Promise<void>;
}

/**
 * Opens `sessionId` in the database at `url` for audit (`aistock ledger`, `aistock report`): it
 * takes no lease and writes nothing of the session's (the schema is brought up to date as at a
 * session's open), so it may read while the session runs. Throws {@link UnknownSessionError}
 * when no session of that id ever ran there.
 */
export async function openPostgresAudit(options: { url: string; sessionId: string }): Promise<PostgresAudit> {
  const { sessionId } = options;
  const where = describeUrl(options.url);
  const pool = await openPool(options.url, 1);
  pool.on('error', () => undefined); // an idle connection lost between reads: the next query fails and says so
  try {
    let known: boolean;
    try {
      await migrate(pool);
      known = (await pool.query('SELECT 1 FROM aistock_sessions WHERE session_id = $1', [sessionId])).rows.length > 0;
    } catch (error) {
      throw error instanceof AistockError ? error : new PostgresStoreError(`cannot read ${where}`, error);
    }
    if (!known) throw new UnknownSessionError(where, sessionId);
  } catch (error) {
    await pool.end();
    throw error;
  }
  return {
    ledger: async () => ledgerContents(await new PostgresPaperBrokerLedger({ pool, sessionId, where }).open()),
    checkpoint: async () => {
      try {
        const row = await pool.query<{ envelope: string }>('SELECT envelope FROM aistock_checkpoints WHERE session_id = $1 AND key = $2', [sessionId, CHECKPOINT_KEY]);
        return row.rows[0]?.envelope ?? null;
      } catch (error) {
        throw new PostgresStoreError(`read the checkpoint of session ${sessionId}`, error);
      }
    },
    close: () => pool.end(),
  };
}
