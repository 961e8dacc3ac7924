import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/**
 * A database of its own for one test file, on the run's cluster (postgresCluster.globalSetup.ts
 * starts it on first use). Returns its URL and `drop`, which removes it (call it in `afterAll`).
 */
export async function testDatabase(label: string): Promise<{ url: string; adminUrl: string; drop: () => Promise<void> }> {
  const response = await fetch(`${inject('postgresControl')}/cluster`);
  if (!response.ok) throw new Error(`no test PostgreSQL: ${await response.text()}`);
  const { adminUrl } = (await response.json()) as { adminUrl: string };
  const name = `${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    adminUrl,
    drop: async () => {
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Runs one statement on the cluster's `postgres` database. */
export async function adminQuery(adminUrl: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}
