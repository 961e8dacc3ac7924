import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { PostgresOrderJournal } from '../../src/postgresStore/postgresJournal.js';
import { postgresCheckpointStore } from '../../src/postgresStore/postgresCheckpointStore.js';
import { LeaseLostError, LeaseWatch, tryTakeLease } from '../../src/postgresStore/postgresLease.js';
import { describeOrderJournalContract } from '../idempotency/orderJournalContract.js';
import { describeCheckpointStoreContract } from '../checkpointer/checkpointStoreContract.js';
import { leasedSession, useMigratedDatabase } from './postgresTestStore.js';

const database = useMigratedDatabase('journal');

describeOrderJournalContract('PostgresOrderJournal', async () => {
  const lease = await leasedSession(database.pool());
  const opened: PostgresOrderJournal[] = [];
  return {
    open: () => {
      const journal = new PostgresOrderJournal({ pool: database.pool(), watch: new LeaseWatch(lease), where: 'test' });
      opened.push(journal);
      return journal;
    },
    commits: () => opened.reduce((sum, journal) => sum + journal.stats().commits, 0),
    close: async () => undefined,
  };
});

describeCheckpointStoreContract('postgresCheckpointStore', async () => {
  const lease = await leasedSession(database.pool());
  return {
    store: (clock) => postgresCheckpointStore({ pool: database.pool(), watch: new LeaseWatch(lease), clock }),
    corrupt: async (key, text) => {
      await database.pool().query('UPDATE aistock_checkpoints SET envelope = $3 WHERE session_id = $1 AND key = $2', [lease.sessionId, key, text]);
    },
    close: async () => undefined,
  };
});

describe('the PostgreSQL journal and checkpoints, fenced by the lease', () => {
  it('fails an append with LEASE_LOST once another process took the lease over, and writes none of it', async () => {
    const old = await leasedSession(database.pool(), 1);
    const journal = new PostgresOrderJournal({ pool: database.pool(), watch: new LeaseWatch(old), where: 'test' });
    await journal.load();
    await journal.append([{ id: 'BEFORE', state: 'reserved', at: 1 }]);
    // The 1 ms lease has expired on the server's clock: a standby takes it, with the next token.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const taken = await tryTakeLease(database.pool(), old.sessionId, 60_000);
    expect(taken).toEqual({ sessionId: old.sessionId, token: String(Number(old.token) + 1) });
    await expect(journal.append([{ id: 'AFTER', state: 'reserved', at: 2 }])).rejects.toBeInstanceOf(LeaseLostError);
    await expect(journal.append([{ id: 'AFTER', state: 'reserved', at: 2 }])).rejects.toMatchObject({ code: 'LEASE_LOST' });
    const rows = await database.pool().query<{ id: string }>('SELECT client_order_id AS id FROM aistock_journal WHERE session_id = $1', [old.sessionId]);
    expect(rows.rows).toEqual([{ id: 'BEFORE' }]);
  });

  it('refuses a checkpoint write with LEASE_LOST after a takeover, leaving the new holder\'s checkpoint', async () => {
    const old = await leasedSession(database.pool(), 1);
    const clock = new ManualClock({ wallMs: 1 });
    await postgresCheckpointStore({ pool: database.pool(), watch: new LeaseWatch(old), clock }).write([{ key: 'checkpoint', snapshot: { by: 'old' } }]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const taken = await tryTakeLease(database.pool(), old.sessionId, 60_000);
    if (!('token' in taken)) throw new Error('not taken over');
    await postgresCheckpointStore({ pool: database.pool(), watch: new LeaseWatch(taken), clock }).write([{ key: 'checkpoint', snapshot: { by: 'new' } }]);
    await expect(postgresCheckpointStore({ pool: database.pool(), watch: new LeaseWatch(old), clock }).write([{ key: 'checkpoint', snapshot: { by: 'old' } }])).rejects.toMatchObject({
      code: 'LEASE_LOST',
    });
    const row = await database.pool().query<{ envelope: string }>('SELECT envelope FROM aistock_checkpoints WHERE session_id = $1', [old.sessionId]);
    expect(JSON.parse(row.rows[0]?.envelope ?? '{}')).toMatchObject({ data: { by: 'new' } });
  });

  it('keeps a session\'s records apart from every other session\'s on the same database', async () => {
    const [a, b] = [await leasedSession(database.pool()), await leasedSession(database.pool())];
    const journalA = new PostgresOrderJournal({ pool: database.pool(), watch: new LeaseWatch(a), where: 'a' });
    await journalA.load();
    await journalA.append([{ id: 'ONLY-A', state: 'reserved', at: 1 }]);
    expect(await new PostgresOrderJournal({ pool: database.pool(), watch: new LeaseWatch(b), where: 'b' }).load()).toMatchObject({ records: [], created: true });
  });
});
