import { AistockError } from '../common/errors.js';
import type { OpenSessionStore, SessionStore } from '../session/sessionStore.js';
import { NonDurableServerError, nonDurableSetting, readDurabilitySettings } from './durabilitySettings.js';
import { describeUrl, openPool, PostgresStoreError, type Pool } from './postgresClient.js';
import { postgresCheckpointStore } from './postgresCheckpointStore.js';
import { PostgresPaperBrokerLedger } from './postgresPaperBrokerLedger.js';
import { PostgresOrderJournal } from './postgresJournal.js';
import { keepRenewing, LeaseWatch, releaseLease, SessionLeaseHeldError, tryTakeLease, type HeldLease, type LeaseTimers } from './postgresLease.js';
import { migrate } from './postgresSchema.js';
import { realTimers } from '../session/orderExecution.js';

/**
 * `postgresStore({ url })`: a session's journal, checkpoints, lease and PaperBroker ledger in
 * PostgreSQL, keyed by session id, so many sessions on many hosts share one database and a standby can take a
 * session over. Opening it checks the server's durability settings (refusing `fsync`,
 * `synchronous_commit` or `full_page_writes` off), brings the schema up to date, and takes the
 * session's lease — or, with `standby`, waits until the holder's lease expires and takes it
 * over (the fencing token goes up, and the old holder's next write fails with `LEASE_LOST`).
 */

/** Options of {@link postgresStore}. */
export interface PostgresStoreOptions {
  /** `postgresql://user:password@host:port/database` (libpq's URL form; `?options=-c…` is honoured). */
  url: string;
  /** How long the lease lasts unless renewed (default 10,000 ms): a dead holder's session is taken over this long after its last renewal. */
  leaseMs?: number;
  /** How often the holder renews (default a third of `leaseMs`). */
  renewEveryMs?: number;
  /** Wait for the lease and take it over when it expires, instead of failing with `SESSION_LEASE_HELD`. */
  standby?: boolean;
  /** What times renewals and the standby's waits (default Node's timers; a test pauses a holder by never firing them). */
  timers?: LeaseTimers;
  /** Connections in the session's pool (default 5: journal, checkpoints, lease, the PaperBroker's ledger, one spare). */
  poolSize?: number;
}

/** Options the store was given that it cannot run with; `option` names the one (the CLI names its flag). Not retryable. */
export class InvalidPostgresStoreOptionsError extends AistockError {
  readonly option: 'url' | 'leaseMs' | 'renewEveryMs';
  readonly detail: string;

  constructor(option: InvalidPostgresStoreOptionsError['option'], detail: string) {
    super('INVALID_STORE_OPTIONS', `invalid postgresStore options: ${option}: ${detail}`);
    this.option = option;
    this.detail = detail;
  }
}

/** The session store in PostgreSQL (see {@link PostgresStoreOptions}); opened by the session at start. */
export function postgresStore(options: PostgresStoreOptions): SessionStore {
  const description = describeUrl(options.url);
  if (!/^postgres(ql)?:\/\//.test(options.url)) throw new InvalidPostgresStoreOptionsError('url', `expected a postgresql:// URL, got ${description}`);
  const leaseMs = options.leaseMs ?? 10_000;
  const renewEveryMs = options.renewEveryMs ?? Math.max(1, Math.floor(leaseMs / 3));
  // A lease renewed at least once before it expires: 2 ms is the least (renewed every 1 ms).
  if (!Number.isInteger(leaseMs) || leaseMs < 2) throw new InvalidPostgresStoreOptionsError('leaseMs', `expected a whole number of milliseconds, at least 2, got ${leaseMs}`);
  if (!Number.isInteger(renewEveryMs) || renewEveryMs <= 0 || renewEveryMs >= leaseMs) {
    throw new InvalidPostgresStoreOptionsError('renewEveryMs', `expected a positive whole number below leaseMs (${leaseMs}), got ${renewEveryMs}`);
  }
  const timers = options.timers ?? realTimers;
  return {
    description,
    async open({ sessionId, clock, log, onHoldLost }): Promise<OpenSessionStore> {
      // A holder paused inside a transaction blocks a takeover until the server ends it: at most half a lease.
      const pool = await openPool(options.url, options.poolSize ?? 5, Math.max(100, Math.floor(leaseMs / 2)));
      // An idle connection that breaks is reported here; without a listener it would crash the process.
      pool.on('error', (error) => log({ event: 'POSTGRES_CONNECTION_LOST', store: description, error: error.message }));
      try {
        await checkServer(pool, description);
        const lease = await takeLease(pool, sessionId, leaseMs, options.standby === true, timers, log);
        const watch = new LeaseWatch(lease, (error) => {
          log({ event: 'LEASE_LOST', sessionId, token: lease.token });
          onHoldLost?.(error);
        });
        const renewals = keepRenewing({
          pool,
          watch,
          leaseMs,
          everyMs: renewEveryMs,
          timers,
          onError: (error) => log({ event: 'LEASE_RENEWAL_FAILED', sessionId, error: String(error) }),
        });
        const where = `${description} (session ${sessionId})`;
        let released: Promise<void> | undefined;
        return {
          journal: new PostgresOrderJournal({ pool, watch, where }),
          checkpoints: postgresCheckpointStore({ pool, watch, clock }),
          // The orders that reach the market are not fenced by the lease; the fills its bars make and cancels are (see postgresPaperBrokerLedger.ts).
          paperBrokerLedger: () => new PostgresPaperBrokerLedger({ pool, sessionId, where: description, fence: watch }),
          assertHeld: () => watch.assertHeld(),
          release: () =>
            (released ??= (async () => {
              await renewals.stop();
              try {
                if (watch.lost === undefined) await releaseLease(pool, lease);
              } finally {
                await pool.end();
              }
            })()),
        };
      } catch (error) {
        await pool.end();
        throw error;
      }
    },
  };
}

async function checkServer(pool: Pool, description: string): Promise<void> {
  let settings;
  try {
    settings = await readDurabilitySettings(pool);
  } catch (error) {
    throw new PostgresStoreError(`cannot reach ${description}`, error);
  }
  const weak = nonDurableSetting(settings);
  if (weak !== null) throw new NonDurableServerError(description, weak);
  try {
    await migrate(pool);
  } catch (error) {
    throw error instanceof AistockError ? error : new PostgresStoreError(`cannot migrate the schema of ${description}`, error);
  }
}

/** Takes the lease, or (standby) waits for the holder's to expire and takes it then. */
async function takeLease(
  pool: Pool,
  sessionId: string,
  leaseMs: number,
  standby: boolean,
  timers: LeaseTimers,
  log: (entry: Record<string, unknown>) => void,
): Promise<HeldLease> {
  for (let waited = false; ; waited = true) {
    const taken = await tryTakeLease(pool, sessionId, leaseMs);
    if ('token' in taken) {
      // Token 1: the session's first holder; any other took over from an earlier one (expired or released).
      log({ event: 'LEASE_TAKEN', sessionId, token: taken.token, waited });
      return taken;
    }
    if (!standby) throw new SessionLeaseHeldError(sessionId, taken);
    if (!waited) log({ event: 'STANDBY_WAITING', sessionId, holderHost: taken.host, holderPid: taken.pid, expiresInMs: Math.round(taken.expiresInMs) });
    // Until just after the holder's lease would expire; it may renew, and then this waits again.
    const waitMs = Math.min(Math.max(10, Math.ceil(taken.expiresInMs) + 5), leaseMs);
    await new Promise<void>((resolve) => timers.setTimeout(resolve, waitMs));
  }
}
