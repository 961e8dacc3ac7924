import { AistockError } from '../common/errors.js';
import type { Queryable } from './postgresClient.js';

/**
 * A commit is durable only when the server flushes its WAL before answering: `fsync` on
 * (else nothing reaches the disk reliably), `synchronous_commit` not `off` (else COMMIT answers
 * before its WAL is flushed, and a crash loses transactions already acknowledged — a
 * reservation the broker then saw), and `full_page_writes` on (else a torn page after a power
 * loss cannot be repaired from the WAL). The store refuses a server, or a session of it, that
 * runs without any of them.
 */

/** The settings read, by name, as `SHOW` prints them. */
export type DurabilitySettings = Readonly<Record<(typeof DURABILITY_SETTINGS)[number], string>>;

export const DURABILITY_SETTINGS = ['fsync', 'synchronous_commit', 'full_page_writes'] as const;

/** Which setting makes commits not durable, and its value; null when all are as needed. */
export function nonDurableSetting(settings: DurabilitySettings): { name: string; value: string } | null {
  for (const name of DURABILITY_SETTINGS) {
    const value = settings[name];
    const durable = name === 'synchronous_commit' ? value !== 'off' : value === 'on';
    if (!durable) return { name, value };
  }
  return null;
}

/** The server (or this session of it) runs with a setting that makes commits not durable. Not retryable. */
export class NonDurableServerError extends AistockError {
  readonly setting: string;
  readonly value: string;

  constructor(server: string, setting: { name: string; value: string }) {
    super(
      'POSTGRES_NOT_DURABLE',
      `refusing PostgreSQL ${server}: ${setting.name} is ${setting.value}, so a commit it acknowledges can be lost in a crash; ` +
        `set ${setting.name} = on (server, database, role and connection options)`,
    );
    this.setting = setting.name;
    this.value = setting.value;
  }
}

/** Reads the settings as this connection sees them (per-session and per-role values included). */
export async function readDurabilitySettings(db: Queryable): Promise<DurabilitySettings> {
  const result = await db.query<Record<string, string>>(
    `SELECT ${DURABILITY_SETTINGS.map((name) => `current_setting('${name}') AS ${name}`).join(', ')}`,
  );
  const row = result.rows[0] ?? {};
  return { fsync: row.fsync ?? '', synchronous_commit: row.synchronous_commit ?? '', full_page_writes: row.full_page_writes ?? '' };
}
