import { AistockError, describeError, isPackageMissing, OptionalPackageUnavailableError } from '../common/errors.js';

/**
 * The small part of node-postgres (`pg`) the store uses, typed here so that aistock's own type
 * declarations never name `pg`: a program that never uses PostgreSQL needs neither `pg` nor
 * its types. `pg` is an optional peer dependency, loaded on first use like the inspector's
 * package (src/inspector/inspector.ts).
 */

/** One query's result, as `pg` returns it. */
export interface QueryResult<R> {
  readonly rows: R[];
  readonly rowCount: number | null;
}

/** Something that runs a parameterized query: a pool or a checked-out client. */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
}

/** A client checked out of the pool; `release(error)` destroys it instead of returning it. */
export interface PooledClient extends Queryable {
  release(error?: Error | boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

/** A `pg.Pool`. */
export interface Pool extends Queryable {
  connect(): Promise<PooledClient>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

interface PgModule {
  readonly Pool: new (config: {
    connectionString: string;
    max?: number;
    connectionTimeoutMillis?: number;
    application_name?: string;
    idle_in_transaction_session_timeout?: number;
  }) => Pool;
}

/** The package the PostgreSQL store needs. */
export const POSTGRES_DRIVER_PACKAGE = 'pg';

/**
 * The PostgreSQL store's driver, `pg` (an optional peer dependency of aistock), is not installed:
 * `npm install pg` (8) and start again. Not retryable.
 */
export class PostgresDriverUnavailableError extends OptionalPackageUnavailableError {
  constructor(cause: unknown) {
    super('POSTGRES_DRIVER_UNAVAILABLE', 'the PostgreSQL store', POSTGRES_DRIVER_PACKAGE, '^8.23.1', cause);
  }
}

/** The server could not be reached or a query failed (not: it refused, which has its own errors). Retryable. */
export class PostgresStoreError extends AistockError {
  constructor(what: string, cause: unknown) {
    super('POSTGRES_STORE_FAILED', `PostgreSQL store: ${what}: ${describeError(cause)}`, { cause, retryable: true });
  }
}

/**
 * Opens a pool on `url`, loading `pg` on first use; its absence is a {@link PostgresDriverUnavailableError}.
 * `idleInTransactionMs`: the server ends a session idle that long inside a transaction — a
 * holder paused (SIGSTOP, a VM frozen) mid-transaction would otherwise keep its lock on the
 * lease row, and no standby could ever take over.
 */
export async function openPool(url: string, max: number, idleInTransactionMs = 5_000): Promise<Pool> {
  let pg: PgModule;
  try {
    const loaded = (await import(POSTGRES_DRIVER_PACKAGE)) as { default?: PgModule } & Partial<PgModule>;
    pg = loaded.default ?? (loaded as PgModule);
  } catch (error) {
    throw isPackageMissing(error, POSTGRES_DRIVER_PACKAGE) ? new PostgresDriverUnavailableError(error) : error;
  }
  return new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 10_000,
    application_name: 'aistock',
    idle_in_transaction_session_timeout: idleInTransactionMs,
  });
}

/** `url` without its password, for messages and logs. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    return parsed.toString();
  } catch {
    // Not a URL (a bare libpq string): say nothing of it rather than risk printing a password.
    return 'postgresql://(unparsable url)';
  }
}

/**
 * Runs `run` in one transaction on a client of its own: COMMIT if it resolves, ROLLBACK if it
 * throws (the error is rethrown). A client whose connection failed is destroyed, not reused.
 */
export async function inTransaction<T>(pool: Pool, run: (client: PooledClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // The server may end the connection mid-transaction (idle_in_transaction_session_timeout after a
  // pause, a restart): the client then emits `error`, which would crash the process unheard. The
  // same failure rejects the transaction's query, which reports it; here it marks the client broken.
  const onError = (error: Error): void => {
    broken = error;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await run(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      // The connection is gone: the server rolls back by itself. The first error is the one to report.
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
