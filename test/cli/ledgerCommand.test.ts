import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLedger } from '../../src/broker/paperBrokerLedger.js';
import { PaperBroker } from '../../src/broker/paperBroker.js';
import { ManualClock } from '../../src/common/clock.js';
import { lockStateDir } from '../../src/stateDir/stateDirLock.js';
import { runCli, sampleSlice } from '../support/replayFixture.js';
import { aistock } from '../support/inProcessCli.js';

/** `aistock ledger --state-dir DIR` (in-process): the file ledger as JSON lines, or copied to --out (the PostgreSQL side: test/postgresStore/ledgerCommand.test.ts). */

let dir: string;
let stateDir: string;

const lines = (stdout: string): unknown[] =>
  stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as unknown);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-ledger-cli-'));
  stateDir = join(dir, 'state');
  const run = await runCli(['replay', await sampleSlice(dir, 3_000), '--state-dir', stateDir]);
  expect(run.code, run.stderr).toBe(0);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('aistock ledger --state-dir', () => {
  it('prints the orders, fills or cancels of the state dir\'s ledger as JSON lines, the shapes readLedger gives', async () => {
    const ledger = await readLedger(join(stateDir, 'broker'));
    expect(ledger.orders.length).toBeGreaterThan(10);
    for (const kind of ['orders', 'fills', 'cancels'] as const) {
      const run = await aistock(['ledger', '--state-dir', stateDir, ...(kind === 'orders' ? [] : ['--kind', kind])]);
      expect(run.code, run.stderr).toBe(0);
      expect(lines(run.stdout)).toEqual(ledger[kind]);
    }
    // DESIGN.md's shape: an order line without the fill it carries on disk, nor its checksum.
    const [first] = ledger.orders;
    expect(Object.keys(first ?? {})).toEqual(['clientOrderId', 'symbol', 'side', 'qty', 'type', 'receivedAt', 'pricedAt', 'pricedClose']);
  });

  it('writes the ledger to --out as ledger files that readLedger reads back the same, and never over a ledger', async () => {
    const out = join(dir, 'copy');
    const run = await aistock(['ledger', '--state-dir', stateDir, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^ledger: \d+ orders, \d+ fills, 0 cancels in /);
    expect(await readLedger(out)).toEqual(await readLedger(join(stateDir, 'broker')));
    const again = await aistock(['ledger', '--state-dir', stateDir, '--out', join(stateDir, 'broker')]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('orders.jsonl exists');
  });

  it('exits 3 while a session holds the state dir, and 2 for a missing state dir or a wrong command line', async () => {
    const lock = await lockStateDir(stateDir);
    try {
      expect((await aistock(['ledger', '--state-dir', stateDir])).code).toBe(3);
    } finally {
      await lock.release();
    }
    expect(await aistock(['ledger', '--state-dir', join(dir, 'nowhere')])).toMatchObject({ code: 2, stderr: expect.stringContaining('no such state dir') as string });
    expect(await aistock(['ledger'])).toMatchObject({ code: 2, stderr: expect.stringContaining('which ledger') as string });
    expect(await aistock(['ledger', '--state-dir', stateDir, '--kind', 'trades'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--kind') as string });
    expect(await aistock(['ledger', '--state-dir', stateDir, '--store', 'postgresql://db/x'])).toMatchObject({ code: 2 });
  });

  it('exits 2 naming the file and line for a damaged ledger, and for a state dir with no broker/ (a session run with --store)', async () => {
    const damaged = join(dir, 'damaged');
    await cp(stateDir, damaged, { recursive: true });
    const orders = join(damaged, 'broker', 'orders.jsonl');
    const text = await readFile(orders, 'utf8');
    // One price digit of the second line changed: its checksum no longer matches.
    const [head, second, ...rest] = text.split('\n');
    await writeFile(orders, [head, second?.replace(/"qty":"(\d)/, (_, d: string) => `"qty":"${(Number(d) + 1) % 10}`), ...rest].join('\n'));
    expect(await aistock(['ledger', '--state-dir', damaged])).toMatchObject({ code: 2, stderr: expect.stringMatching(/orders\.jsonl.*line 2.*CHECKSUM_MISMATCH|CHECKSUM_MISMATCH.*orders\.jsonl.*2/s) as string });
    const storeSession = join(dir, 'store-session');
    await mkdir(storeSession);
    expect(await aistock(['ledger', '--state-dir', storeSession])).toMatchObject({ code: 2, stderr: expect.stringContaining('keeps its ledger in PostgreSQL') as string });
  });

  it('refuses --kind beside --out, which writes every kind', async () => {
    expect(await aistock(['ledger', '--state-dir', stateDir, '--out', join(dir, 'unused'), '--kind', 'fills'])).toMatchObject({ code: 2, stderr: expect.stringContaining('not with --kind') as string });
  });

  it('writes --out as a ledger a PaperBroker opens to the same book', async () => {
    const out = join(dir, 'reopened');
    expect((await aistock(['ledger', '--state-dir', stateDir, '--out', out])).code).toBe(0);
    const clock = new ManualClock({ wallMs: Date.UTC(2025, 10, 3, 15) });
    const [copy, original] = await Promise.all([PaperBroker.open({ dir: out, clock }), PaperBroker.open({ dir: join(stateDir, 'broker'), clock })]);
    try {
      expect(await copy.positions()).toEqual(await original.positions());
      expect((await copy.knownClientOrderIds()).sort()).toEqual((await original.knownClientOrderIds()).sort());
    } finally {
      await Promise.all([copy.close(), original.close()]);
    }
  });

  it('is described by aistock help and aistock help ledger', async () => {
    expect((await aistock(['help'])).stdout).toContain('ledger (--store URL --session-id ID | --state-dir DIR)');
    expect(await aistock(['help', 'ledger'])).toMatchObject({ code: 0, stdout: expect.stringContaining('usage: aistock ledger') as string });
  });
});
