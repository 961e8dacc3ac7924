import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { openPool, type Pool } from '../../src/postgresStore/postgresClient.js';
import { tryTakeLease, type HeldLease } from '../../src/postgresStore/postgresLease.js';
import { migrate } from '../../src/postgresStore/postgresSchema.js';
import { testDatabase } from './testDatabase.js';

/** A pool on a migrated test database, and fresh leased session ids on it. */
export async function migratedPool(url: string): Promise<Pool> {
  const pool = await openPool(url, 8);
  await migrate(pool);
  return pool;
}

/** A session id no other test uses, its lease taken (a long one: tests that need it expired say so). */
export async function leasedSession(pool: Pool, leaseMs = 60_000): Promise<HeldLease> {
  const sessionId = `s-${randomBytes(6).toString('hex')}`;
  const lease = await tryTakeLease(pool, sessionId, leaseMs);
  if (!('token' in lease)) throw new Error(`a fresh session id ${sessionId} was held`);
  return lease;
}

/** This test file's own migrated database and a pool on it, made before its tests and dropped after them. */
export function useMigratedDatabase(label: string): { url: () => string; pool: () => Pool } {
  let db: Awaited<ReturnType<typeof testDatabase>> | undefined;
  let pool: Pool | undefined;
  beforeAll(async () => {
    db = await testDatabase(label);
    pool = await migratedPool(db.url);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });
  const made = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the test database is made in beforeAll');
    return value;
  };
  return { url: () => made(db).url, pool: () => made(pool) };
}
