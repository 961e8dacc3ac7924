import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { clientOrderId } from '../../src/idempotency/clientOrderId.js';
import { smaCross } from '../../src/strategy/strategy.js';
import { systemClock } from '../../src/common/clock.js';
import { PaperBroker } from '../../src/broker/paperBroker.js';
import { lockStateDir } from '../../src/stateDir/stateDirLock.js';
import { ledgerBook, readLedger, runCli, sampleSlice } from '../support/replayFixture.js';
import { failureExitCode, replayOutcome, withReportRecorded } from '../../src/cli/replayCommand.js';
import { LeaseLostError } from '../../src/postgresStore/postgresLease.js';
import { storeChoiceFrom } from '../../src/cli/storeFlags.js';
import { createTradingSession, SessionFaultedError, type Summary } from '../../src/session/createTradingSession.js';
import { buyOnBars, sessionDeps } from '../support/sessionFixture.js';

let dir: string;
let bars: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-replay-'));
  bars = await sampleSlice(dir, 4_000);
});

function lastJson(stdout: string) {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line);
}

describe('aistock replay', () => {
  it('paper-trades a file and prints the summary as JSON on the last line', async () => {
    const stateDir = join(dir, 'first');
    const run = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const summary = lastJson(run.stdout);
    expect(summary.bars.accepted).toBe(4_000);
    expect(summary.orders.submitted).toBeGreaterThan(0);
    expect(summary.fills).toBe(summary.orders.submitted);

    const ledger = await readLedger(stateDir);
    const ids = ledger.orders.map((o) => o.clientOrderId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(summary.orders.submitted);
    // The portfolio equals the broker's fills, recomputed independently, to the cent.
    const book = ledgerBook('100000', ledger.fills);
    expect(summary.portfolio.cash).toBe(book.cash);
    expect(Object.fromEntries(Object.entries(summary.portfolio.positions).map(([s, p]) => [s, (p as { qty: string }).qty]))).toEqual(book.positions);
  });

  it('resumes on the same state dir: bars already processed are skipped and nothing is sent twice', async () => {
    const stateDir = join(dir, 'resume');
    const first = lastJson((await runCli(['replay', bars, '--state-dir', stateDir, '--json'])).stdout);
    const again = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
    expect(again.code, again.stderr).toBe(0);
    const second = lastJson(again.stdout);
    expect(second.bars.resumedSkips).toBe(4_000);
    expect(second.orders.submitted).toBe(0);
    expect(second.portfolio).toEqual(first.portfolio);
    const ledger = await readLedger(stateDir);
    expect(ledger.orders.length).toBe(first.orders.submitted);
  });

  it('exits 5 naming the report dir when the report could not be recorded, the run itself complete', async () => {
    const stateDir = join(dir, 'report-blocked');
    await mkdir(stateDir);
    // A file where the recorder makes its directory: it cannot start, warns, and records nothing.
    await writeFile(join(stateDir, 'report'), 'not a directory');
    const run = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
    expect(run.code, run.stderr).toBe(5);
    expect(run.stderr).toContain('report recording: could not start');
    expect(run.stderr).toContain(`${join(stateDir, 'report')} could not be written`);
    expect(lastJson(run.stdout).bars.accepted).toBe(4_000);
  });

  it('exits 2 when a resumed state dir is given a file none of whose rows can be used', async () => {
    const stateDir = join(dir, 'resumed-then-bad');
    expect((await runCli(['replay', bars, '--state-dir', stateDir])).code).toBe(0);
    const bad = join(dir, 'all-bad.csv');
    await writeFile(bad, 'timestamp,symbol,open,high,low,close,volume\n2025-11-04T09:30:00-05:00,AAPL,-1,1,1,1,100\n2025-11-04T09:31:00-05:00,AAPL,-1,1,1,1,100\n');
    const run = await runCli(['replay', bad, '--state-dir', stateDir]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain('every one of the 2 bars read was rejected');
  });

  it('exits 3 naming the pid when another process holds the state dir', async () => {
    const stateDir = join(dir, 'locked');
    const lock = await lockStateDir(stateDir);
    const run = await runCli(['replay', bars, '--state-dir', stateDir]);
    await lock.release();
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`pid ${process.pid}`);
  });

  it('exits 4 naming the symbol when at stop the broker holds what nothing the session sent explains', async () => {
    const stateDir = join(dir, 'diverged');
    // An order with this session's tag, on the file's first bar, that the strategy never asks for.
    const broker = await PaperBroker.open({ dir: join(stateDir, 'broker'), clock: systemClock });
    const firstBar = Date.parse('2025-10-20T09:30:00-04:00');
    broker.observeBar({ symbol: 'AAPL', ts: firstBar, open: 251.45, high: 251.49, low: 250.94, close: 250.99 });
    const id = clientOrderId({ sessionId: 'aistock', strategyId: smaCross().id, symbol: 'AAPL', barTime: firstBar, intentIndex: 0, quantity: '1' });
    await broker.submit({ clientOrderId: id, symbol: 'AAPL', side: 'buy', qty: '1', type: 'market' });
    await broker.close();

    const run = await runCli(['replay', bars, '--state-dir', stateDir, '--json']);
    expect(run.code, run.stderr).toBe(4);
    expect(run.stderr).toMatch(/disagree at stop \(AAPL local \S+ broker \S+\)/);
    const summary = lastJson(run.stdout);
    expect(summary.reconciliation.at(-1)).toMatchObject({ at: 'stop', differences: [expect.objectContaining({ symbol: 'AAPL', unexplained: '1' })] });
  });

  it('exits 2 saying what to do when the broker holds orders of aistock 0.1 (LEGACY_ORDER_IDS)', async () => {
    const stateDir = join(dir, 'legacy');
    const broker = await PaperBroker.open({ dir: join(stateDir, 'broker'), clock: systemClock });
    broker.observeBar({ symbol: 'AAPL', ts: Date.parse('2025-10-20T09:30:00-04:00'), open: 251.45, high: 251.49, low: 250.94, close: 250.99 });
    // An id of the first scheme: symbol and a hash, naming neither its bar nor its session.
    await broker.submit({ clientOrderId: 'AAPL-6e0d4e7adcc08379c97f4608', symbol: 'AAPL', side: 'buy', qty: '1', type: 'market' });
    await broker.close();

    const run = await runCli(['replay', bars, '--state-dir', stateDir]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/LEGACY_ORDER_IDS.*resume .* with aistock 0\.1, or start a new state dir/s);
  });

  it('exits 2 naming the file for a missing bar file', async () => {
    const run = await runCli(['replay', join(dir, 'nope.csv'), '--state-dir', join(dir, 'missing')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('nope.csv');
  });

  it('exits 2 naming the option for an unknown zone', async () => {
    const run = await runCli(['replay', bars, '--tz', 'Mars/Olympus']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--tz');
  });
});

describe('the exit-5 message of a replay whose writes failed', () => {
  let summary: Summary;
  beforeAll(async () => {
    const session = createTradingSession({ ...(await sessionDeps()), strategy: buyOnBars([]) });
    await session.start();
    summary = await session.stop();
  });
  const failedWrites = (): Summary => ({ ...summary, checkpoints: { ...summary.checkpoints, failed: 2 } });

  it('exits 3 for a run fenced before it finished: a start step refused on the lease, or a session faulted LEASE_LOST', () => {
    // A start step's own write refused on the token: start() rejects with that error itself.
    expect(failureExitCode(new LeaseLostError('acct1-sma', '1', 'another process holds token 2'))).toBe(3);
    const fault = { code: 'LEASE_LOST' as const, cause: 'LEASE_LOST', detail: 'the lease of session acct1-sma (token 1) was lost' };
    expect(failureExitCode(new SessionFaultedError('session faulted', fault))).toBe(3);
    // A fault whose cause is a lost lease (the start's step named it): the other process has the session.
    expect(failureExitCode(new SessionFaultedError('session failed to start', { ...fault, code: 'START_FAILED' as const }))).toBe(3);
    expect(failureExitCode(new SessionFaultedError('session faulted', { ...fault, code: 'EXECUTION_FAILED' as const, cause: 'BROKER_ERROR' }))).toBe(1);
    expect(failureExitCode(new Error('a bug'))).toBe(1);
  });

  it('exits 3, not 5, for a session another process took over, its checkpoint writes refused on the lease too', () => {
    const fault = { code: 'LEASE_LOST' as const, cause: 'LEASE_LOST', detail: 'the lease of session acct1-sma (token 1) was lost' };
    expect(replayOutcome({ ...failedWrites(), fault }, '/var/lib/aistock/acct1')).toEqual({ code: 3, message: null });
    expect(replayOutcome({ ...failedWrites(), fault: { ...fault, code: 'DRAIN_FAILED' as const } }, '/var/lib/aistock/acct1').code).toBe(1);
  });

  it('names the state dir when the journal and checkpoints are its files', () => {
    const outcome = replayOutcome(failedWrites(), '/var/lib/aistock/acct1');

    expect(outcome.code).toBe(5);
    expect(outcome.message).toMatch(/^\/var\/lib\/aistock\/acct1 could not be written: 2 checkpoint writes failed, 0 orders were refused .*a full disk/);
  });

  it('names the store and the session, not the state dir, with --store; no password', () => {
    const store = storeChoiceFrom({ store: 'postgresql://aistock:secret@db:5432/trading', 'session-id': 'acct1-sma' });

    const outcome = replayOutcome(failedWrites(), '/var/lib/aistock/acct1', store);

    expect(outcome.code).toBe(5);
    expect(outcome.message).toMatch(/^the store postgresql:\/\/aistock@db:5432\/trading \(session acct1-sma\) could not be written: 2 checkpoint writes failed/);
    expect(outcome.message).toContain('the database');
    expect(outcome.message).not.toContain('/var/lib/aistock/acct1');
    expect(outcome.message).not.toContain('secret');
  });

  it('names the state dir’s report folder for a report that could not be recorded, with --store too: the report is kept there', () => {
    const store = storeChoiceFrom({ store: 'postgresql://aistock:secret@db:5432/trading', 'session-id': 'acct1-sma' });

    const outcome = withReportRecorded(replayOutcome(summary, '/var/lib/aistock/acct1', store), false, '/var/lib/aistock/acct1');

    expect(outcome).toMatchObject({ code: 5, message: expect.stringMatching(/^\/var\/lib\/aistock\/acct1\/report could not be written/) });
  });
});
