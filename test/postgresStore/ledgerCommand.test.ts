import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLedger } from '../../src/broker/paperBrokerLedger.js';
import { openPostgresAudit } from '../../src/postgresStore/postgresPaperBrokerLedger.js';
import { readReport } from '../../src/report/buildReport.js';
import { parseClientOrderId } from '../../src/idempotency/clientOrderId.js';
import { runCli, sampleSlice } from '../support/replayFixture.js';
import { aistock } from '../support/inProcessCli.js';
import { testDatabase } from './testDatabase.js';

/**
 * `aistock ledger --store URL --session-id ID`: a paper session on PostgreSQL keeps its broker
 * ledger there (nothing under the state dir), and the command prints it line for line as the
 * same session on files has it in broker/orders.jsonl and broker/fills.jsonl.
 */

let db: Awaited<ReturnType<typeof testDatabase>>;
let dir: string;
/** The same slice replayed on files, and on PostgreSQL as session `audit`. */
let onFiles: string;
let onPostgres: string;

beforeAll(async () => {
  db = await testDatabase('ledger_cli');
  dir = await mkdtemp(join(tmpdir(), 'aistock-ledger-pg-'));
  const slice = await sampleSlice(dir, 3_000);
  onFiles = join(dir, 'files');
  onPostgres = join(dir, 'postgres');
  const fileRun = await runCli(['replay', slice, '--state-dir', onFiles]);
  expect(fileRun.code, fileRun.stderr).toBe(0);
  const storeRun = await runCli(['replay', slice, '--state-dir', onPostgres, '--store', db.url, '--session-id', 'audit']);
  expect(storeRun.code, storeRun.stderr).toBe(0);
});
afterAll(async () => {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

const lines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** A line as any session with the same decisions has it: the id without its session tag, no receivedAt. */
const sameDecision = ({ clientOrderId, receivedAt: _receivedAt, ...rest }: Record<string, unknown>) => {
  const parts = parseClientOrderId(String(clientOrderId));
  return { decision: `${parts?.symbolPrefix} ${parts?.barTime}`, ...rest };
};

describe('aistock ledger --store', () => {
  it('prints the ledger of a session on PostgreSQL as the same session on files has it, receivedAt and the session tag aside', async () => {
    expect(existsSync(join(onPostgres, 'broker'))).toBe(false);

    const fileLedger = await readLedger(join(onFiles, 'broker'));
    expect(fileLedger.orders.length).toBeGreaterThan(10);
    for (const kind of ['orders', 'fills'] as const) {
      const printed = await aistock(['ledger', '--store', db.url, '--session-id', 'audit', '--kind', kind]);
      expect(printed.code, printed.stderr).toBe(0);
      const fromStore = lines(printed.stdout);
      expect(fromStore.map(sameDecision)).toEqual(fileLedger[kind].map((line) => sameDecision({ ...line })));
      const fromFiles = lines((await aistock(['ledger', '--state-dir', onFiles, '--kind', kind])).stdout);
      // Key for key, in the same order: one command, one shape, whichever store.
      expect(fromStore.map((line) => Object.keys(line))).toEqual(fromFiles.map((line) => Object.keys(line)));
    }
  });

  it('writes the PostgreSQL ledger to --out as ledger files readLedger reads', async () => {
    const out = join(dir, 'audit-copy');
    const run = await aistock(['ledger', '--store', db.url, '--session-id', 'audit', '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const copied = await readLedger(out);
    expect(copied.orders).toEqual(lines((await aistock(['ledger', '--store', db.url, '--session-id', 'audit'])).stdout));
  });

  it('reports a session on PostgreSQL with its trades and account, read from the database (aistock report --store)', async () => {
    const out = join(dir, 'audit.html');
    const run = await aistock(['report', onPostgres, '--store', db.url, '--session-id', 'audit', '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const audit = await openPostgresAudit({ url: db.url, sessionId: 'audit' });
    try {
      const fromStore = await readReport(onPostgres, Date.now, audit);
      const fromFiles = await readReport(onFiles);
      expect(fromFiles.fills).toBeGreaterThan(10);
      expect(fromStore.fills).toBe(fromFiles.fills);
      expect(fromStore.account).toEqual(fromFiles.account);
      expect(fromStore.book.trips.length).toBe(fromFiles.book.trips.length);
      expect(fromStore.notes).toEqual(fromFiles.notes);
    } finally {
      await audit.close();
    }
    // The state dir alone has neither: no trades, no checkpoint (said in the report's notes).
    const alone = await readReport(onPostgres);
    expect(alone.fills).toBe(0);
    expect(alone.notes).toContainEqual(expect.stringContaining('a session run with --store keeps its ledger in PostgreSQL'));
    expect(alone.notes).toContain('no checkpoint: the account is the last run’s summary, and open positions are not marked');
  });

  it('exits 2 naming a session the database never held, or --store without --session-id', async () => {
    expect(await aistock(['ledger', '--store', db.url, '--session-id', 'nobody'])).toMatchObject({ code: 2, stderr: expect.stringContaining('UNKNOWN_SESSION') as string });
    expect(await aistock(['ledger', '--store', db.url])).toMatchObject({ code: 2, stderr: expect.stringContaining('--store needs --session-id') as string });
    expect(await aistock(['report', onPostgres, '--store', db.url, '--session-id', 'nobody', '--out', join(dir, 'x.html')])).toMatchObject({ code: 2 });
  });
});
