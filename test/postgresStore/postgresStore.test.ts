import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { nonDurableSetting } from '../../src/postgresStore/durabilitySettings.js';
import { postgresStore } from '../../src/postgresStore/postgresStore.js';
import { migrate, POSTGRES_SCHEMA_VERSION, PostgresSchemaTooNewError } from '../../src/postgresStore/postgresSchema.js';
import type { LeaseTimers } from '../../src/postgresStore/postgresLease.js';
import { migratedPool, useMigratedDatabase } from './postgresTestStore.js';
import { testDatabase } from './testDatabase.js';

const database = useMigratedDatabase('store');

const clock = new ManualClock({ wallMs: Date.UTC(2025, 0, 2) });
const log = (): void => undefined;
let nextId = 0;
const sessionId = (): string => `store-${process.pid}-${(nextId += 1)}`;

/** Timers that never fire: a holder whose renewals never run, as if its process were paused. */
const paused: LeaseTimers = { setTimeout: () => undefined, clearTimeout: () => undefined };

describe('durability settings', () => {
  it('refuses a server or session with fsync, synchronous_commit or full_page_writes off, and accepts local and remote commits', () => {
    const durable = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' };
    expect(nonDurableSetting(durable)).toBeNull();
    expect(nonDurableSetting({ ...durable, synchronous_commit: 'local' })).toBeNull();
    expect(nonDurableSetting({ ...durable, synchronous_commit: 'remote_apply' })).toBeNull();
    expect(nonDurableSetting({ ...durable, fsync: 'off' })).toEqual({ name: 'fsync', value: 'off' });
    expect(nonDurableSetting({ ...durable, synchronous_commit: 'off' })).toEqual({ name: 'synchronous_commit', value: 'off' });
    expect(nonDurableSetting({ ...durable, full_page_writes: 'off' })).toEqual({ name: 'full_page_writes', value: 'off' });
  });

  it('refuses to open on connections where synchronous_commit is off, naming the setting', async () => {
    const url = new URL(database.url());
    url.searchParams.set('options', '-c synchronous_commit=off');
    const opening = postgresStore({ url: url.toString() }).open({ sessionId: sessionId(), clock, log });
    await expect(opening).rejects.toMatchObject({ code: 'POSTGRES_NOT_DURABLE', setting: 'synchronous_commit', value: 'off' });
    await expect(opening).rejects.toThrow(/synchronous_commit is off/);
  });
});

describe('schema', () => {
  it('migrates once: a second migration applies nothing, and the version table holds every version', async () => {
    expect(await migrate(database.pool())).toEqual([]);
    const versions = await database.pool().query<{ version: number }>('SELECT version FROM aistock_schema ORDER BY version');
    expect(versions.rows.map((row) => row.version)).toEqual(Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1));
  });

  it('refuses to open a database a newer aistock migrated (POSTGRES_SCHEMA_TOO_NEW, both versions named), taking no lease', async () => {
    // A database of its own: the version added here would refuse every other test's open.
    const newer = await testDatabase('store_newer');
    const pool = await migratedPool(newer.url);
    try {
      await pool.query('INSERT INTO aistock_schema (version) VALUES ($1)', [POSTGRES_SCHEMA_VERSION + 1]);

      const opening = postgresStore({ url: newer.url }).open({ sessionId: sessionId(), clock, log });

      await expect(opening).rejects.toBeInstanceOf(PostgresSchemaTooNewError);
      await expect(opening).rejects.toMatchObject({
        code: 'POSTGRES_SCHEMA_TOO_NEW',
        retryable: false,
        message: `the database's aistock schema is version ${POSTGRES_SCHEMA_VERSION + 1}; this aistock knows up to ${POSTGRES_SCHEMA_VERSION}: upgrade aistock`,
      });
      const leases = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM aistock_leases');
      expect(leases.rows).toEqual([{ n: 0 }]);
    } finally {
      await pool.end();
      await newer.drop();
    }
  });
});

describe('the session lease', () => {
  it('refuses a second holder of the same session id with SESSION_LEASE_HELD naming the holder\'s host and pid', async () => {
    const id = sessionId();
    const first = await postgresStore({ url: database.url() }).open({ sessionId: id, clock, log });
    const second = postgresStore({ url: database.url() }).open({ sessionId: id, clock, log });
    await expect(second).rejects.toMatchObject({ code: 'SESSION_LEASE_HELD', holderHost: hostname(), holderPid: process.pid });
    await expect(second).rejects.toThrow(`held by pid ${process.pid} on ${hostname()}`);
    await first.release();
  });

  it('hands over at once on release: the next holder starts with the next token', async () => {
    const id = sessionId();
    const first = await postgresStore({ url: database.url() }).open({ sessionId: id, clock, log });
    await first.release();
    const second = await postgresStore({ url: database.url() }).open({ sessionId: id, clock, log });
    const token = await database.pool().query<{ token: string }>('SELECT token::text AS token FROM aistock_leases WHERE session_id = $1', [id]);
    expect(token.rows).toEqual([{ token: '2' }]);
    await second.release();
  });

  it('keeps the lease while the holder renews it, past many lease lengths', async () => {
    const id = sessionId();
    const holder = await postgresStore({ url: database.url(), leaseMs: 150, renewEveryMs: 30 }).open({ sessionId: id, clock, log });
    await new Promise((resolve) => setTimeout(resolve, 600));
    await expect(postgresStore({ url: database.url() }).open({ sessionId: id, clock, log })).rejects.toMatchObject({ code: 'SESSION_LEASE_HELD' });
    await holder.release();
  });

  it('lets a standby take over once a holder stops renewing, and fences the old holder\'s journal', async () => {
    const id = sessionId();
    const entries: Record<string, unknown>[] = [];
    const holder = await postgresStore({ url: database.url(), leaseMs: 200, timers: paused }).open({ sessionId: id, clock, log });
    await holder.journal.load();
    const standby = await postgresStore({ url: database.url(), leaseMs: 200, standby: true }).open({ sessionId: id, clock, log: (entry) => entries.push(entry) });
    expect(entries.map((entry) => entry.event)).toEqual(['STANDBY_WAITING', 'LEASE_TAKEN']);
    expect(entries[1]).toMatchObject({ token: '2', waited: true });
    expect(entries[0]).toMatchObject({ holderHost: hostname(), holderPid: process.pid });
    await expect(holder.journal.append([{ id: 'LATE', state: 'reserved', at: 1 }])).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await holder.release();
    await standby.release();
  });
});
