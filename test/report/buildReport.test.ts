import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMoney } from '../../src/common/money.js';
import { readReport } from '../../src/report/buildReport.js';
import { createTradingSession, type Summary } from '../../src/session/createTradingSession.js';
import { buyOnBars, minuteBars, sessionDeps } from '../support/sessionFixture.js';

/** A state dir a session ran in (it bought twice, so its checkpoint holds a position and cash spent). */
let stateDir: string;
let summary: Summary;
let written: string;

beforeAll(async () => {
  const deps = await sessionDeps();
  stateDir = deps.stateDir;
  const session = createTradingSession({ ...deps, strategy: buyOnBars([2, 4]), replay: true, timeZone: 'UTC' });
  await session.start();
  await session.ingest(minuteBars(6));
  summary = await session.stop();
  written = await readFile(join(stateDir, 'checkpoint.json'), 'utf8');
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

describe('the report’s reading of the checkpoint', () => {
  it('takes the account from the checkpoint the checkpointer wrote', async () => {
    const report = await readReport(stateDir);

    expect(summary.fills).toBe(2);
    expect(report.account).toMatchObject({ source: 'checkpoint', cash: parseMoney(summary.portfolio.cash), initialCash: parseMoney(summary.portfolio.initialCash) });
    expect(report.notes.filter((note) => note.startsWith('checkpoint'))).toEqual([]);
  });

  it('notes a checkpoint of another envelope version as not usable (WRONG_VERSION), leaving the file where it is', async () => {
    const envelope = JSON.parse(written) as Record<string, unknown>;
    await writeFile(join(stateDir, 'checkpoint.json'), JSON.stringify({ ...envelope, schemaVersion: 2 }));

    const report = await readReport(stateDir);

    expect(report.account).toBeNull();
    expect(report.notes).toContain('checkpoint not usable (WRONG_VERSION: schemaVersion 2, expected 1): the account is the last run’s summary');
    expect(JSON.parse(await readFile(join(stateDir, 'checkpoint.json'), 'utf8'))).toMatchObject({ schemaVersion: 2 });
    await writeFile(join(stateDir, 'checkpoint.json'), written);
  });

  it('notes a checkpoint that is not JSON as not usable (UNPARSABLE)', async () => {
    await writeFile(join(stateDir, 'checkpoint.json'), written.slice(0, 40));

    const report = await readReport(stateDir);

    expect(report.account).toBeNull();
    expect(report.notes.some((note) => note.startsWith('checkpoint not usable (UNPARSABLE: '))).toBe(true);
    await writeFile(join(stateDir, 'checkpoint.json'), written);
  });
});
