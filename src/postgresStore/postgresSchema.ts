import { AistockError } from '../common/errors.js';
import { inTransaction, type Pool } from './postgresClient.js';

/**
 * The store's tables, created by numbered migrations that run once each, in order, recorded in
 * `aistock_schema`. Opening the store migrates under a transaction-scoped advisory lock, so
 * any number of sessions opening one database at once apply each migration exactly once.
 */

/** Every migration, in order; a migration is never edited once released, only added. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE aistock_sessions (
     session_id text PRIMARY KEY,
     created_at timestamptz NOT NULL DEFAULT clock_timestamp()
   );
   -- The single-writer lease: the holder renews expires_at; every takeover increments token (the fence).
   CREATE TABLE aistock_leases (
     session_id text PRIMARY KEY,
     token bigint NOT NULL,
     holder_host text NOT NULL,
     holder_pid integer NOT NULL,
     acquired_at timestamptz NOT NULL,
     expires_at timestamptz NOT NULL
   );
   -- The idempotency journal: one row per client order id, its last record; seq orders it among the clock skews.
   CREATE TABLE aistock_journal (
     session_id text NOT NULL,
     client_order_id text NOT NULL,
     state text NOT NULL CHECK (state IN ('reserved', 'submitted', 'rejected', 'unknown', 'released')),
     at double precision NOT NULL,
     seq bigint NOT NULL,
     PRIMARY KEY (session_id, client_order_id)
   );
   CREATE TABLE aistock_clock_skews (
     session_id text NOT NULL,
     seq bigint NOT NULL,
     clock_skew_ms double precision NOT NULL,
     at double precision NOT NULL,
     PRIMARY KEY (session_id, seq)
   );
   -- Checkpoints: the file store's envelope text, one row per key.
   CREATE TABLE aistock_checkpoints (
     session_id text NOT NULL,
     key text NOT NULL,
     envelope text NOT NULL,
     written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (session_id, key)
   );
   CREATE TABLE aistock_checkpoints_set_aside (
     id bigserial PRIMARY KEY,
     session_id text NOT NULL,
     key text NOT NULL,
     reason text NOT NULL,
     envelope text NOT NULL,
     set_aside_at timestamptz NOT NULL DEFAULT clock_timestamp()
   );`,
  // 2: the PaperBroker's ledger (postgresPaperBrokerLedger.ts), a row per line of orders.jsonl, fills.jsonl and cancels.jsonl,
  // the line's record as written; seq orders a session's rows as the file orders its lines. What reaches the market is not
  // fenced by the lease (a bar's fills are, in their statement): see postgresPaperBrokerLedger.ts.
  `CREATE TABLE aistock_broker_orders (
     session_id text NOT NULL,
     seq bigint GENERATED ALWAYS AS IDENTITY,
     client_order_id text NOT NULL,
     record json NOT NULL,
     PRIMARY KEY (session_id, seq),
     -- The market's duplicate-id rule (PaperBroker's rejectDuplicateIds), held by the database across every process on the session.
     UNIQUE (session_id, client_order_id)
   );
   CREATE TABLE aistock_broker_fills (
     session_id text NOT NULL,
     seq bigint GENERATED ALWAYS AS IDENTITY,
     client_order_id text NOT NULL,
     record json NOT NULL,
     -- The fills.jsonl copy of the fill an order line carries: one per order line (ids are unique), so a
     -- late copy from a holder taken over is a no-op, never a second fill.
     copy boolean NOT NULL DEFAULT false,
     -- A bar's fill: which of its order's fills (0 the first). Unique, so a fill whose commit's outcome was
     -- lost (the connection dropped after the server committed it) and that is written again is a no-op.
     fill_index integer,
     PRIMARY KEY (session_id, seq)
   );
   CREATE UNIQUE INDEX aistock_broker_fill_copies ON aistock_broker_fills (session_id, client_order_id) WHERE copy;
   CREATE UNIQUE INDEX aistock_broker_fill_index ON aistock_broker_fills (session_id, client_order_id, fill_index) WHERE NOT copy;
   CREATE TABLE aistock_broker_cancels (
     session_id text NOT NULL,
     seq bigint GENERATED ALWAYS AS IDENTITY,
     client_order_id text NOT NULL,
     record json NOT NULL,
     PRIMARY KEY (session_id, seq)
   );`,
];

/** The schema version this code writes and reads. */
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

/** Any 64-bit number the store alone uses: the advisory lock that serialises migrations. */
const MIGRATION_LOCK = 0x61697374_6f636b01n;

/** The database holds a schema from a newer aistock: this one does not know its tables. Not retryable. */
export class PostgresSchemaTooNewError extends AistockError {
  constructor(found: number) {
    super('POSTGRES_SCHEMA_TOO_NEW', `the database's aistock schema is version ${found}; this aistock knows up to ${POSTGRES_SCHEMA_VERSION}: upgrade aistock`);
  }
}

/** Brings the schema up to {@link POSTGRES_SCHEMA_VERSION}; returns the versions applied (none if current). */
export async function migrate(pool: Pool): Promise<number[]> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK.toString()]);
    await client.query('CREATE TABLE IF NOT EXISTS aistock_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const current = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM aistock_schema');
    const found = current.rows[0]?.version ?? 0;
    if (found > POSTGRES_SCHEMA_VERSION) throw new PostgresSchemaTooNewError(found);
    const applied: number[] = [];
    for (let version = found + 1; version <= POSTGRES_SCHEMA_VERSION; version += 1) {
      await client.query(MIGRATIONS[version - 1] ?? '');
      await client.query('INSERT INTO aistock_schema (version) VALUES ($1)', [version]);
      applied.push(version);
    }
    return applied;
  });
}
