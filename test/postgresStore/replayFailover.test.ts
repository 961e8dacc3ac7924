import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { parseClientOrderId } from '../../src/idempotency/clientOrderId.js';
import { postgresStore } from '../../src/postgresStore/postgresStore.js';
import { seededRandom } from '../../src/testing/seededRandom.js';
import { bin, runCli, sampleCsv, sampleSlice } from '../support/replayFixture.js';
import { aistock } from '../support/inProcessCli.js';
import { migratedPool } from './postgresTestStore.js';
import { adminQuery, testDatabase } from './testDatabase.js';

/**
 * `aistock replay --store postgresql://… --session-id ID [--standby]` as real processes: a
 * second holder refused with exit 3, a SIGSTOPped holder fenced after a standby took over, and
 * a failover loop of SIGKILLs with a standby taking over each time — every run ending with no
 * client order id twice in the broker's ledger (in PostgreSQL, read with `aistock ledger`), the
 * ledger's orders and fills those of one clean run on files, and that run's portfolio.
 */

let db: Awaited<ReturnType<typeof testDatabase>>;
let work: string;
let slice: string;
const strategy = join(import.meta.dirname, '../fixtures/slowSmaCross.ts');
const children: ChildProcess[] = [];

beforeAll(async () => {
  db = await testDatabase('failover');
  await (await migratedPool(db.url)).end(); // the tables exist before any process polls them
  work = await mkdtemp(join(tmpdir(), 'aistock-failover-'));
  slice = await sampleSlice(work, 6_000);
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
afterAll(async () => {
  await db.drop();
  await rm(work, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `aistock replay …` as a child (under tsx, which the strategy module needs); `exit` settles when it ends. */
function replay(args: string[], spinMs: number): { child: ChildProcess; exit: Promise<Exit>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', bin, 'replay', ...args], {
    env: { ...process.env, AISTOCK_TEST_SPIN_MS: String(spinMs) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, exit, stderr: () => stderr };
}

/** Ids without their session tag (the clean run's session id differs): symbol and bar time, sorted. */
const decisions = (ids: readonly string[]): string[] =>
  ids.map((id) => `${parseClientOrderId(id)?.symbolPrefix ?? id} ${parseClientOrderId(id)?.barTime ?? 0}`).sort();

const lastJson = (stdout: string): Record<string, any> => JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, any>;

/** A PaperBroker ledger's lines as `aistock ledger` prints them, of the store or state dir `source` names. */
async function ledger(source: string[], kind: 'orders' | 'fills'): Promise<Record<string, unknown>[]> {
  const { code, stdout, stderr } = await aistock(['ledger', ...source, '--kind', kind]);
  expect(code, stderr).toBe(0);
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The client order ids in a ledger, in order. */
const ledgerIds = async (source: string[]): Promise<string[]> => (await ledger(source, 'orders')).map((order) => String(order.clientOrderId));

/** A ledger's orders and fills as any session with the same decisions has them: ids as decisions, no receivedAt; sorted. */
async function sameRun(source: string[]): Promise<{ orders: string[]; fills: string[] }> {
  const normal = (lines: Record<string, unknown>[]): string[] =>
    lines.map(({ clientOrderId, receivedAt: _receivedAt, ...rest }) => JSON.stringify({ decision: decisions([String(clientOrderId)]), ...rest })).sort();
  return { orders: normal(await ledger(source, 'orders')), fills: normal(await ledger(source, 'fills')) };
}

/** Orders in the PostgreSQL ledger of `sessionId` (a poll, cheaper than a process). */
async function ordersIn(sessionId: string): Promise<number> {
  const row = await adminQuery(db.url, `SELECT count(*)::int AS n FROM aistock_broker_orders WHERE session_id = '${sessionId}'`);
  return Number((row.rows[0] as { n?: number } | undefined)?.n ?? 0);
}

const inStore = (sessionId: string): string[] => ['--store', db.url, '--session-id', sessionId];

async function leaseToken(sessionId: string): Promise<number> {
  const row = await adminQuery(db.url, `SELECT token FROM aistock_leases WHERE session_id = '${sessionId}'`);
  return Number((row.rows[0] as { token?: string } | undefined)?.token ?? 0);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether `p` says (on stderr) that it took the lease with `token`. */
const holding = (p: { stderr: () => string }, token: number): boolean => p.stderr().includes(`"event":"LEASE_TAKEN","sessionId":"loop","token":"${token}"`);

interface CleanRun {
  portfolio: unknown;
  ids: string[];
  ledger: { orders: string[]; fills: string[] };
}
const clean = new Map<string, Promise<CleanRun>>();
/** `file` replayed once, on its own state dir's files, undisturbed (once per file). */
function cleanRun(file: string): Promise<CleanRun> {
  let run = clean.get(file);
  if (run === undefined) {
    run = (async () => {
      const stateDir = join(work, `clean-${clean.size}`);
      const { code, stdout, stderr } = await replay([file, '--state-dir', stateDir, '--strategy', strategy, '--json'], 0).exit;
      expect(code, stderr).toBe(0);
      const source = ['--state-dir', stateDir];
      return { portfolio: lastJson(stdout).portfolio, ids: await ledgerIds(source), ledger: await sameRun(source) };
    })();
    clean.set(file, run);
  }
  return run;
}

describe('aistock replay --store', () => {
  it('exits 3 naming the holder\'s host and pid while another process holds the session', async () => {
    const holder = await postgresStore({ url: db.url }).open({ sessionId: 'held', clock: new ManualClock({ wallMs: 0 }), log: () => undefined });
    const { code, stderr } = await runCli(['replay', slice, '--state-dir', join(work, 'held'), '--store', db.url, '--session-id', 'held']);
    expect(code).toBe(3);
    expect(stderr).toContain(`SESSION_LEASE_HELD: session held is held by pid ${process.pid} on ${hostname()}`);
    await holder.release();
  });

  it('exits 2 for --store without --session-id, or --standby without --store', async () => {
    expect(await runCli(['replay', slice, '--store', db.url])).toMatchObject({ code: 2, stderr: expect.stringContaining('--store needs --session-id') as string });
    expect(await runCli(['replay', slice, '--standby'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--standby needs --store') as string });
  });

  it('fences a SIGSTOPped holder: a standby takes over and finishes, and the holder, woken, faults with LEASE_LOST sending nothing', async () => {
    const expected = await cleanRun(slice);
    const stateDir = join(work, 'stopped');
    const fifo = join(work, 'bars.fifo');
    execFileSync('mkfifo', [fifo]);
    const store = ['--store', db.url, '--session-id', 'stopped', '--lease-ms', '600', '--state-dir', stateDir, '--strategy', strategy, '--json'];
    const holder = replay([fifo, ...store], 0);
    const lines = (await readFile(slice, 'utf8')).trimEnd().split('\n');
    const feed = createWriteStream(fifo);
    // The header and one reader batch (4,096 bars); the holder then waits on the FIFO, between batches, nothing in flight.
    const cut = 4_097;
    const cutTs = Date.parse(lines[cut - 1]?.split(',')[0] ?? '');
    const sentBeforeCut = expected.ids.filter((id) => (parseClientOrderId(id)?.barTime ?? Infinity) < cutTs).length;
    expect(sentBeforeCut).toBeGreaterThan(10);
    feed.write(`${lines.slice(0, cut).join('\n')}\n`);
    await until('the holder has sent the first part\'s orders', async () => (await ordersIn('stopped')) >= sentBeforeCut);
    holder.child.kill('SIGSTOP');

    const standby = replay([slice, ...store, '--standby'], 0);
    const done = await standby.exit;
    expect(done.code, `${done.stderr}\n${done.stdout.slice(-600)}`).toBe(0);
    // The stopped holder's lease expired: the standby took it over with the next token.
    expect(done.stderr).toContain('"event":"LEASE_TAKEN","sessionId":"stopped","token":"2"');
    expect(lastJson(done.stdout).portfolio).toEqual(expected.portfolio);
    const afterStandby = await ledgerIds(inStore('stopped'));

    holder.child.kill('SIGCONT');
    feed.end(`${lines.slice(cut).join('\n')}\n`);
    const woken = await holder.exit;
    // Its first reservation after waking fails on the fencing token: the session faults, exit 3 (taken over).
    expect(woken.code).toBe(3);
    expect(woken.stderr).toContain('"event":"LEASE_LOST","sessionId":"stopped","token":"1"');
    expect(woken.stderr).toMatch(/SESSION_FAULTED: session faulted: LEASE_LOST: the lease of session stopped \(token 1\) was lost/);
    // The table's unique key would refuse a second send of an id silently; the broker says so when it does: neither tried one.
    expect(woken.stderr).not.toContain('"event":"BROKER_DUPLICATE_ID"');
    expect(done.stderr).not.toContain('"event":"BROKER_DUPLICATE_ID"');
    // The ledger in PostgreSQL, where the market keeps it: nothing of the broker under the state dir.
    expect(await ledgerIds(inStore('stopped'))).toEqual(afterStandby);
    expect(existsSync(join(stateDir, 'broker'))).toBe(false);
    expect(new Set(afterStandby).size).toBe(afterStandby.length);
    expect(decisions(afterStandby)).toEqual(decisions(expected.ids));
    expect(await sameRun(inStore('stopped'))).toEqual(expected.ledger);
  }, 120_000);

  it('survives a failover loop: the holder SIGKILLed 10 times at random moments, a standby taking over each time, until the file is done', async () => {
    const expected = await cleanRun(sampleCsv);
    const stateDir = join(work, 'loop');
    const args = [sampleCsv, '--store', db.url, '--session-id', 'loop', '--lease-ms', '1500', '--state-dir', stateDir, '--strategy', strategy, '--json'];
    // 0.1 ms of strategy per bar: the 39,000 bars take ~4 s, so ten holders die mid-run. A reader
    // batch (4,096 bars, ~0.4 s) runs without yielding, so the lease is well above it: a holder
    // whose renewals starve longer than its lease is taken over (and fenced) while alive.
    const spinMs = 0.1;
    const random = seededRandom(17);
    // Three at once, all --standby: whichever takes the lease first is the primary, the others wait.
    const processes = [replay([...args, '--standby'], spinMs), replay([...args, '--standby'], spinMs), replay([...args, '--standby'], spinMs)];
    let kills = 0;
    for (let killed = 0; kills < 10; ) {
      // The next holder (a takeover of a live holder whose renewals starved counts too: it is fenced, not killed).
      await until(`a holder after token ${killed}`, async () => (await leaseToken('loop')) > killed);
      // A random moment of its run (its start steps included), then the holder — the process whose stderr says it took the newest token — dies.
      await new Promise((resolve) => setTimeout(resolve, 150 + Math.floor(random() * 300)));
      const token = await leaseToken('loop');
      const holder = processes.find((p) => p.child.exitCode === null && p.child.signalCode === null && holding(p, token));
      if (holder === undefined) continue; // taken over again meanwhile, or its line not read yet: look again
      holder.child.kill('SIGKILL');
      await holder.exit;
      killed = token;
      kills += 1;
      processes.push(replay([...args, '--standby'], spinMs)); // one more standby for each holder killed
    }
    // The last holder finishes the file. One taken over while alive (its renewals starved on a
    // loaded machine) is fenced and faults with LEASE_LOST; another standby then steps in.
    let survivor: Exit | undefined;
    const seen = new Set<number>();
    await until('a holder finished the file', async () => {
      for (const p of processes.slice()) {
        if (p.child.exitCode === null || seen.has(p.child.pid ?? -1)) continue;
        seen.add(p.child.pid ?? -1);
        const exit = await p.exit;
        if (exit.code === 0) survivor = exit;
        else {
          // Found by its next fenced write ("another process took it over") or by a renewal ("a renewal found another process holding it").
          expect(exit.stderr, 'a process that was not killed failed for another reason than a lost lease').toMatch(/LEASE_LOST: the lease of session loop \(token \d+\) was lost: (another process took it over|a renewal found another process holding it)/);
          processes.push(replay([...args, '--standby'], spinMs));
        }
      }
      return survivor !== undefined;
    }, 120_000);
    if (survivor === undefined) throw new Error('no holder finished');
    expect(kills).toBe(10);
    expect(await leaseToken('loop')).toBeGreaterThanOrEqual(11);
    expect(lastJson(survivor.stdout).portfolio).toEqual(expected.portfolio);
    const ids = await ledgerIds(inStore('loop'));
    expect(new Set(ids).size).toBe(ids.length);
    // The unique key refuses a second send silently; the broker logs each refusal: no holder, killed or fenced, tried one.
    for (const p of processes) expect(p.stderr()).not.toContain('"event":"BROKER_DUPLICATE_ID"');
    expect(decisions(ids)).toEqual(decisions(expected.ids));
    // Order for order and fill for fill (prices, quantities, commissions, times) the clean run's, receivedAt aside.
    expect(await sameRun(inStore('loop'))).toEqual(expected.ledger);
    expect(existsSync(join(stateDir, 'broker'))).toBe(false);
  }, 180_000);
});
