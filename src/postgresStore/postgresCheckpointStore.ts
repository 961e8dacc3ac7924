import type { z } from 'zod';
import type { Clock } from '../common/clock.js';
import { assertCheckpointKey, CHECKPOINT_SCHEMA_VERSION, type CheckpointStore } from '../checkpointer/checkpointStore.js';
import { checkEnvelope, envelopeText, type StateFileRead } from '../stateDir/stateFile.js';
import { inTransaction, PostgresStoreError, type Pool, type Queryable } from './postgresClient.js';
import { checkFence, LeaseLostError, type LeaseWatch } from './postgresLease.js';

/**
 * Checkpoints in PostgreSQL: one row per (session, key) holding the file store's envelope text
 * (`{ schemaVersion, savedAt, data }`), checked by the same code on read. A write replaces the
 * rows in one transaction that first checks the lease's fencing token, so a holder that lost
 * its lease can never overwrite its successor's checkpoint. A row that fails its check is moved
 * to `aistock_checkpoints_set_aside`, never deleted, and the read says where.
 */
export function postgresCheckpointStore(options: { pool: Pool; watch: LeaseWatch; clock: Clock }): CheckpointStore {
  const { pool, watch, clock } = options;
  const sessionId = watch.lease.sessionId;
  const fenced = async <T>(what: string, run: (client: Queryable) => Promise<T>): Promise<T> => {
    try {
      return await inTransaction(pool, async (client) => {
        await checkFence(client, watch);
        return run(client);
      });
    } catch (error) {
      throw error instanceof LeaseLostError ? error : new PostgresStoreError(what, error);
    }
  };
  const setAside = (key: string, reason: string): Promise<string> =>
    fenced(`set aside checkpoint ${key}`, async (client) => {
      const moved = await client.query<{ id: string }>(
        `WITH gone AS (DELETE FROM aistock_checkpoints WHERE session_id = $1 AND key = $2 RETURNING envelope)
         INSERT INTO aistock_checkpoints_set_aside (session_id, key, reason, envelope) SELECT $1, $2, $3, envelope FROM gone RETURNING id::text AS id`,
        [sessionId, key, reason],
      );
      const id = moved.rows[0]?.id;
      if (id === undefined) throw new Error(`session ${sessionId} has no checkpoint ${key}`);
      return `aistock_checkpoints_set_aside id ${id}`;
    });
  return {
    async write(writes) {
      for (const { key } of writes) assertCheckpointKey(key);
      if (writes.length === 0) return;
      // Serialised before the first await, as the file store does: the session's checkpoint
      // policy paces saves by the time a write holds the main thread before it yields.
      const envelopes = writes.map((w) => envelopeText(w.snapshot, CHECKPOINT_SCHEMA_VERSION, clock));
      await fenced('write checkpoints', async (client) => {
        await client.query(
          `INSERT INTO aistock_checkpoints (session_id, key, envelope) SELECT $1, * FROM unnest($2::text[], $3::text[])
           ON CONFLICT (session_id, key) DO UPDATE SET envelope = excluded.envelope, written_at = clock_timestamp()`,
          [sessionId, writes.map((w) => w.key), envelopes],
        );
      });
    },
    async read<T>(key: string, schema: z.ZodType<T>): Promise<StateFileRead<T>> {
      assertCheckpointKey(key);
      let envelope: string | undefined;
      try {
        const row = await pool.query<{ envelope: string }>('SELECT envelope FROM aistock_checkpoints WHERE session_id = $1 AND key = $2', [sessionId, key]);
        envelope = row.rows[0]?.envelope;
      } catch (error) {
        throw new PostgresStoreError(`read checkpoint ${key}`, error);
      }
      if (envelope === undefined) return { status: 'missing' };
      const verdict = checkEnvelope(envelope, { schema, schemaVersion: CHECKPOINT_SCHEMA_VERSION });
      if (verdict.ok) return { status: 'ok', data: verdict.data, savedAt: verdict.savedAt };
      return { status: 'corrupt', reason: verdict.reason, detail: verdict.detail, movedTo: await setAside(key, verdict.reason) };
    },
    setAside: (key) => setAside(key, 'INVALID_STATE'),
  };
}
