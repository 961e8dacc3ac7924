import { hostname } from 'node:os';
import { AistockError } from '../common/errors.js';
import type { Pool, Queryable } from './postgresClient.js';
import type { DeadlineTimers } from '../session/orderExecution.js';

/**
 * The session lease, in place of the state-dir lock: one row per session naming its holder
 * (host, pid), an expiry the holder renews, and a fencing token that every takeover increments.
 * Expiry is judged on the server's clock (`clock_timestamp()`), so no host's clock decides it.
 * A holder that stops renewing (dead, paused, cut off) loses the lease once it expires; a
 * standby then takes it with the next token, and every write of the old holder — a journal
 * append, a checkpoint — fails on its stale token in its own transaction (`LEASE_LOST`).
 */

/** Who holds a lease, as its row says. */
export interface LeaseHolder {
  readonly host: string;
  readonly pid: number;
  /** Milliseconds until it expires unless renewed (server clock). */
  readonly expiresInMs: number;
}

/** Another process holds the session's lease. Not retryable until it expires (see `standby`). */
export class SessionLeaseHeldError extends AistockError {
  readonly sessionId: string;
  readonly holderHost: string;
  readonly holderPid: number;

  constructor(sessionId: string, holder: LeaseHolder) {
    super(
      'SESSION_LEASE_HELD',
      `session ${sessionId} is held by pid ${holder.pid} on ${holder.host} (its lease expires in ${Math.max(0, Math.round(holder.expiresInMs))} ms unless renewed); ` +
        'start with --standby to take over when it expires',
    );
    this.sessionId = sessionId;
    this.holderHost = holder.host;
    this.holderPid = holder.pid;
  }
}

/** This process's lease was taken over (its token is stale): it must not write or send anything more. */
export class LeaseLostError extends AistockError {
  readonly sessionId: string;
  readonly token: string;

  constructor(sessionId: string, token: string, detail: string) {
    super('LEASE_LOST', `the lease of session ${sessionId} (token ${token}) was lost: ${detail}`);
    this.sessionId = sessionId;
    this.token = token;
  }
}

/** A lease this process holds: `token` fences its writes. */
export interface HeldLease {
  readonly sessionId: string;
  /** The fencing token, a bigint as text. */
  readonly token: string;
}

const TAKE = `
  INSERT INTO aistock_leases AS l (session_id, token, holder_host, holder_pid, acquired_at, expires_at)
  VALUES ($1, 1, $2, $3, clock_timestamp(), clock_timestamp() + $4 * interval '1 millisecond')
  ON CONFLICT (session_id) DO UPDATE
    SET token = l.token + 1, holder_host = excluded.holder_host, holder_pid = excluded.holder_pid,
        acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
    WHERE l.expires_at <= clock_timestamp()
  RETURNING token::text AS token`;

/** Takes the lease if it is free or expired; otherwise answers who holds it. */
export async function tryTakeLease(db: Queryable, sessionId: string, leaseMs: number): Promise<HeldLease | LeaseHolder> {
  const taken = await db.query<{ token: string }>(TAKE, [sessionId, hostname(), process.pid, leaseMs]);
  const token = taken.rows[0]?.token;
  if (token !== undefined) return { sessionId, token };
  const held = await db.query<{ host: string; pid: number; expires_in_ms: number }>(
    `SELECT holder_host AS host, holder_pid AS pid, extract(epoch FROM expires_at - clock_timestamp()) * 1000 AS expires_in_ms
       FROM aistock_leases WHERE session_id = $1`,
    [sessionId],
  );
  const row = held.rows[0];
  // Gone between the two statements (released, or taken and released): free now, try again.
  if (row === undefined) return tryTakeLease(db, sessionId, leaseMs);
  return { host: row.host, pid: row.pid, expiresInMs: Number(row.expires_in_ms) };
}

/** Extends the lease by `leaseMs` from now; false when its token is stale (taken over). */
export async function renewLease(db: Queryable, lease: HeldLease, leaseMs: number): Promise<boolean> {
  const renewed = await db.query(
    `UPDATE aistock_leases SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' WHERE session_id = $1 AND token = $2::bigint`,
    [lease.sessionId, lease.token, leaseMs],
  );
  return renewed.rowCount === 1;
}

/** Expires the lease now (a clean stop hands over at once); the token stays, so the next holder's is higher. */
export async function releaseLease(db: Queryable, lease: HeldLease): Promise<void> {
  await db.query(`UPDATE aistock_leases SET expires_at = clock_timestamp() WHERE session_id = $1 AND token = $2::bigint`, [lease.sessionId, lease.token]);
}

/**
 * What this process knows of its lease: `lost` once a renewal or a fenced write found its token
 * stale. From then on nothing may be sent: the session checks {@link LeaseWatch.assertHeld}
 * before every round of broker calls, and the store's writes fail without asking the server.
 */
export class LeaseWatch {
  readonly lease: HeldLease;
  readonly #onLost: (error: LeaseLostError) => void;
  #lost: LeaseLostError | undefined;

  constructor(lease: HeldLease, onLost: (error: LeaseLostError) => void = () => undefined) {
    this.lease = lease;
    this.#onLost = onLost;
  }

  /** The loss, once known. */
  get lost(): LeaseLostError | undefined {
    return this.#lost;
  }

  /** The lease was found stale (`detail` says how): the loss, recorded (the first report wins) and returned to throw. */
  stale(detail: string): LeaseLostError {
    if (this.#lost === undefined) {
      this.#lost = new LeaseLostError(this.lease.sessionId, this.lease.token, detail);
      this.#onLost(this.#lost);
    }
    return this.#lost;
  }

  /** Throws the {@link LeaseLostError} once the lease is known lost. */
  assertHeld(): void {
    if (this.#lost !== undefined) throw this.#lost;
  }
}

/**
 * In the caller's transaction: holds the lease row (FOR SHARE, so a takeover waits for this
 * transaction) and throws {@link LeaseLostError} unless its token is still the watch's — which
 * then knows it is lost.
 */
export async function checkFence(db: Queryable, watch: LeaseWatch): Promise<void> {
  watch.assertHeld();
  const { lease } = watch;
  const row = await db.query<{ token: string }>(`SELECT token::text AS token FROM aistock_leases WHERE session_id = $1 FOR SHARE`, [lease.sessionId]);
  const current = row.rows[0]?.token;
  if (current !== lease.token) throw watch.stale(current === undefined ? 'its row is gone' : `another process took it over (token ${current})`);
}

/** What waits between tries and renewals: Node's timers by default, a test's own to pause a holder. */
export type LeaseTimers = DeadlineTimers;

/**
 * Renews the watched lease every `everyMs` until stopped (or lost). A stale token stops the
 * renewals and tells the watch; a failed renewal (server unreachable)
 * is reported to `onError` and tried again at the next tick.
 */
export function keepRenewing(options: {
  pool: Pool;
  watch: LeaseWatch;
  leaseMs: number;
  everyMs: number;
  timers: LeaseTimers;
  onError: (error: unknown) => void;
}): { stop: () => Promise<void> } {
  const { lease } = options.watch;
  let timer: unknown;
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  const tick = (): void => {
    inFlight = renewLease(options.pool, lease, options.leaseMs).then(
      (held) => {
        if (!held) {
          stopped = true;
          options.watch.stale('a renewal found another process holding it');
        }
      },
      (error: unknown) => options.onError(error),
    );
    void inFlight.then(schedule);
  };
  const schedule = (): void => {
    if (!stopped) timer = options.timers.setTimeout(tick, options.everyMs);
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      options.timers.clearTimeout(timer);
      await inFlight;
    },
  };
}
