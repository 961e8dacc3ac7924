import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBars } from '../../src/bars/barReader.js';
import { createTradingSession } from '../../src/session/createTradingSession.js';
import { sampleCsv } from '../support/replayFixture.js';
import { useMigratedDatabase } from './postgresTestStore.js';

const database = useMigratedDatabase('many');
const SESSIONS = 20;
const PROCESSES = 4;
const ROWS = 600;
let work: string;
/** Session i's bars: 600 rows of the sample from row 300 × i, so every session trades differently. */
const files: string[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'aistock-many-'));
  const [header = '', ...rows] = (await readFile(sampleCsv, 'utf8')).trimEnd().split('\n');
  for (let i = 0; i < SESSIONS; i += 1) {
    const file = join(work, `bars-${i}.csv`);
    await writeFile(file, `${header}\n${rows.slice(300 * i, 300 * i + ROWS).join('\n')}\n`);
    files.push(file);
  }
});
afterAll(async () => rm(work, { recursive: true, force: true }));

/** Session i's portfolio replayed alone, on its own state dir's files. */
async function cleanPortfolio(i: number): Promise<unknown> {
  const session = createTradingSession({ stateDir: join(work, `clean-${i}`), sessionId: `s${i}`, replay: true, log: () => undefined });
  await session.start();
  for await (const batch of readBars(files[i] ?? '')) await session.ingest(batch.bars);
  return (await session.stop()).portfolio;
}

describe('many sessions on one database', () => {
  it('runs 20 sessions with different ids in 4 processes side by side, each ending as its own clean run', async () => {
    const fixture = join(import.meta.dirname, '../fixtures/postgresSessions.ts');
    const perProcess = SESSIONS / PROCESSES;
    const outputs = await Promise.all(
      Array.from({ length: PROCESSES }, (_, p) => {
        const specs = Array.from({ length: perProcess }, (_, k) => p * perProcess + k).map((i) => `s${i}=${files[i] ?? ''}`);
        return promisify(execFile)(process.execPath, ['--import', 'tsx', fixture, database.url(), join(work, 'pg'), ...specs]);
      }),
    );
    const results = outputs.flatMap(({ stdout }) => stdout.trim().split('\n').map((line) => JSON.parse(line) as { sessionId: string; portfolio: unknown; submitted: number }));
    expect(results.map((r) => r.sessionId).sort()).toEqual(Array.from({ length: SESSIONS }, (_, i) => `s${i}`).sort());
    for (const result of results) expect(result.submitted, result.sessionId).toBeGreaterThan(0);
    const portfolios = new Set(results.map((r) => JSON.stringify(r.portfolio)));
    expect(portfolios.size, 'the sessions trade different bars').toBeGreaterThan(SESSIONS / 2);
    for (const result of results) expect(result.portfolio, result.sessionId).toEqual(await cleanPortfolio(Number(result.sessionId.slice(1))));
    const leases = await database.pool().query<{ n: number }>('SELECT count(*)::int AS n FROM aistock_leases');
    expect(leases.rows).toEqual([{ n: SESSIONS }]);
  }, 120_000);
});
