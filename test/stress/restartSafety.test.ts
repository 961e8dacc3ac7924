import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/testing/seededRandom.js';
import { completeLines, ledgerBook, readLedger, runCli, sampleSlice, startCli } from '../support/replayFixture.js';

/**
 * Exactly once after any restart (real processes, real files): resumed after long downtime, with
 * the journal lost or damaged, or with the checkpoint gone, a replay sends exactly the orders of
 * one uninterrupted run — none twice — and ends with its cash and positions, which equal the
 * broker's own fills, with no reconciliation difference. A state file that must not be repaired
 * (the paper broker's ledger, a lock held on another host) is refused with its exit code and
 * typed code; a broker that lost orders is noticed by reconciliation. Never a silent divergence.
 * (A read-only state dir: test/stress/unwritableStateDir.test.ts.)
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

interface Reference {
  ids: string[];
  portfolio: unknown;
}

let dir: string;
let bars: string;
let reference: Reference;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-restart-'));
  bars = await sampleSlice(dir, 12_000);
  const run = await runCli(['replay', bars, '--state-dir', join(dir, 'reference'), '--json']);
  expect(run.code, run.stderr).toBe(0);
  const ledger = await readLedger(join(dir, 'reference'));
  expect(ledger.orders.length).toBeGreaterThan(100);
  reference = { ids: ledger.orders.map((o) => o.clientOrderId).sort(), portfolio: lastJson(run.stdout).portfolio };
}, 60_000);

function lastJson(stdout: string) {
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '');
}

/**
 * A replay with the wall clock `offsetMs` ahead, SIGKILLed once the broker holds `killAfter`
 * orders (and, with `afterCheckpoint`, once a checkpoint is on disk). With `earlyCheckpoint`,
 * a copy of the checkpoint as it was once the broker held `afterOrders` orders is kept at `path`.
 */
async function killedRun(
  stateDir: string,
  killAfter: number,
  offsetMs: number,
  extraMs: number,
  afterCheckpoint = false,
  earlyCheckpoint?: { path: string; afterOrders: number },
): Promise<number> {
  const ledgerFile = join(stateDir, 'broker', 'orders.jsonl');
  const checkpointFile = join(stateDir, 'checkpoint.json');
  const child = startCli(['replay', bars, '--state-dir', stateDir, '--json'], { AISTOCK_CLOCK_OFFSET_MS: String(offsetMs) });
  const exited = once(child, 'exit');
  const checkpointed = async () => !afterCheckpoint || (await stat(checkpointFile).then(() => true, () => false));
  let early: 'waiting' | 'copying' | 'kept' = earlyCheckpoint === undefined ? 'kept' : 'waiting';
  const watcher = setInterval(() => {
    void Promise.all([completeLines(ledgerFile), checkpointed()]).then(async ([sent, hasCheckpoint]) => {
      if (earlyCheckpoint !== undefined && early === 'waiting' && sent >= earlyCheckpoint.afterOrders && hasCheckpoint) {
        early = 'copying';
        // The checkpoint is replaced by rename, so a read gets one whole version of it.
        await writeFile(earlyCheckpoint.path, await readFile(checkpointFile));
        early = 'kept';
      }
      if (sent >= killAfter && hasCheckpoint && early === 'kept') setTimeout(() => child.kill('SIGKILL'), extraMs);
    });
  }, 3);
  const [code, signal] = await exited;
  clearInterval(watcher);
  expect({ code, signal }, `the run was to be killed after order ${killAfter}`).toEqual({ code: null, signal: 'SIGKILL' });
  return completeLines(ledgerFile);
}

/** Resumes to the end and checks the run against the reference, the broker's ledger and the reconciliation. */
async function expectCleanResult(stateDir: string, offsetMs: number) {
  const final = await runCli(['replay', bars, '--state-dir', stateDir, '--json'], { AISTOCK_CLOCK_OFFSET_MS: String(offsetMs) });
  expect(final.code, final.stderr).toBe(0);
  const summary = lastJson(final.stdout);
  const ledger = await readLedger(stateDir);
  const ids = ledger.orders.map((o) => o.clientOrderId);
  // No client order id reached the market twice, and exactly the uninterrupted run's did.
  expect(new Set(ids).size).toBe(ids.length);
  expect([...ids].sort()).toEqual(reference.ids);
  // The same cash and positions as the uninterrupted run, which the broker's own fills give too.
  expect(summary.portfolio).toEqual(reference.portfolio);
  const book = ledgerBook('100000', ledger.fills);
  expect(summary.portfolio.cash).toBe(book.cash);
  const positions = Object.fromEntries(Object.entries(summary.portfolio.positions as Record<string, { qty: string }>).map(([s, p]) => [s, p.qty]));
  expect(positions).toEqual(book.positions);
  // Nothing was explained away: no difference, no adopted position, at start or stop.
  expect(summary.reconciled).toMatchObject({ differences: 0, adoptedFills: 0 });
  expect(summary.reconciliation.map((r: { at: string; differences: unknown[] }) => [r.at, r.differences])).toEqual([
    ['start', []],
    ['stop', []],
  ]);
  return { summary, stderr: final.stderr };
}

/** The session's log lines (JSON on stderr) with this `event`. */
function logged(stderr: string, event: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry['event'] === event);
}

/** Prefix lengths of `fills` after which every position is flat. */
function flatPrefixes(fills: readonly { symbol: string; side: string; qty: string }[]): number[] {
  const positions = new Map<string, number>();
  const flat: number[] = [];
  fills.forEach((fill, index) => {
    positions.set(fill.symbol, (positions.get(fill.symbol) ?? 0) + (fill.side === 'buy' ? 1 : -1) * Number(fill.qty));
    if ([...positions.values()].every((qty) => qty === 0)) flat.push(index + 1);
  });
  return flat;
}

/** A ledger file's lines, as written (checksums included). */
async function ledgerLines(stateDir: string, file: string): Promise<string[]> {
  return (await readFile(join(stateDir, 'broker', file), 'utf8')).split('\n').filter((line) => line !== '');
}

/** The ledger's bytes, to see that a refused run changed nothing. */
async function ledgerBytes(stateDir: string): Promise<string[]> {
  return Promise.all(['orders.jsonl', 'fills.jsonl', 'cancels.jsonl'].map((file) => readFile(join(stateDir, 'broker', file), 'utf8').catch(() => '')));
}

/** Removes the orders `ids` from the ledger, with their fills, as a broker that lost them would. */
async function cutLedger(stateDir: string, ids: ReadonlySet<string>): Promise<void> {
  for (const file of ['orders.jsonl', 'fills.jsonl']) {
    const kept = (await ledgerLines(stateDir, file)).filter((line) => !ids.has((JSON.parse(line) as { clientOrderId: string }).clientOrderId));
    await writeFile(join(stateDir, 'broker', file), kept.map((line) => `${line}\n`).join(''));
  }
}

/** Rewrites the checkpoint's envelope through `edit`. */
async function editCheckpoint(stateDir: string, edit: (envelope: any) => void): Promise<void> {
  const file = join(stateDir, 'checkpoint.json');
  const envelope = JSON.parse(await readFile(file, 'utf8'));
  edit(envelope);
  await writeFile(file, JSON.stringify(envelope));
}

describe('exactly once after any restart', () => {
  it(
    'resumes after downtimes of 6 minutes to 30 days, SIGKILLed mid-run each time, with exactly the uninterrupted run',
    async () => {
      const stateDir = join(dir, 'downtime');
      const random = seededRandom(20261201);
      // Each resume happens this much later than the start of the first run (the journal's old TTL was 5 minutes).
      const downtimes = [0, 6 * MINUTE, HOUR, DAY, 3 * DAY, 30 * DAY];
      const sentCounts: number[] = [];
      for (const offsetMs of downtimes) {
        const sentBefore = await completeLines(join(stateDir, 'broker', 'orders.jsonl'));
        sentCounts.push(await killedRun(stateDir, sentBefore + 5 + Math.floor(random() * 30), offsetMs, Math.floor(random() * 20)));
      }
      // Every kill hit a run with its orders half sent.
      expect(sentCounts.every((sent) => sent > 0 && sent < reference.ids.length)).toBe(true);
      await expectCleanResult(stateDir, 31 * DAY);
    },
    240_000,
  );

  it('lets exactly one of four replays restarted together after a SIGKILL run; the others exit 3 naming it', async () => {
    const stateDir = join(dir, 'racing');
    await killedRun(stateDir, 20, 0, 0);
    // The bars come through a FIFO that gets a writer only once the losers are out, so the
    // winner still holds the state dir while the others try it, however the four are scheduled.
    const fifo = join(dir, 'racing-bars.csv');
    await promisify(execFile)('mkfifo', [fifo]);
    const children = Array.from({ length: 4 }, () => startCli(['replay', fifo, '--state-dir', stateDir, '--json']));
    const stderr = children.map((child) => {
      let text = '';
      child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.stdout?.resume();
      return () => text;
    });
    const exits = children.map((child) => once(child, 'exit').then(([code]) => code as number | null));
    const finished: (number | null | undefined)[] = children.map(() => undefined);
    exits.forEach((exit, i) => void exit.then((code) => (finished[i] = code)));
    await expect.poll(() => finished.filter((code) => code === 3).length, { timeout: 30_000 }).toBe(3);
    await writeFile(fifo, await readFile(bars));
    const codes = await Promise.all(exits);
    expect([...codes].sort()).toEqual([0, 3, 3, 3]);
    for (const [i, code] of codes.entries()) {
      if (code === 3) expect(stderr[i]?.()).toMatch(/locked by another process \(pid \d+ on /);
    }
    await expectCleanResult(stateDir, 0);
  }, 60_000);

  describe('with a state file lost or damaged after a SIGKILL', () => {
    let crashed: string;
    let earlyCheckpoint: string;
    beforeAll(async () => {
      crashed = join(dir, 'crashed');
      earlyCheckpoint = join(dir, 'early-checkpoint.json');
      // Past its first checkpoint, so both "the checkpoint is there" and "it is gone" are tried,
      // and at a point where the portfolio has held positions for the last 80 orders (the
      // checkpoint lags the ledger by a few dozen): a broker that lost them shows as a difference.
      const flatAfter = flatPrefixes((await readLedger(join(dir, 'reference'))).fills);
      const killAt = Array.from({ length: reference.ids.length }, (_, k) => k).find(
        (k) => k >= Math.floor(reference.ids.length / 3) && !flatAfter.some((n) => n >= k - 80 && n <= k + 20),
      );
      expect(killAt, `no kill point with positions held around it; flat after ${flatAfter.join(', ')} fills`).toBeDefined();
      await killedRun(crashed, killAt ?? 0, 0, 0, true, { path: earlyCheckpoint, afterOrders: Math.floor((killAt ?? 0) / 3) });
    }, 60_000);

    /** What a spoil left to check: the damaged line, the symbols whose broker position it took away. */
    type Spoiled = { line?: number; symbols?: string[] } | undefined;
    /** What must happen (`says`, for the test's name), and the check of it. */
    type Outcome = { says: string; check: (stateDir: string, spoiled: Spoiled) => Promise<void> };

    const replayADayLater = (stateDir: string) => runCli(['replay', bars, '--state-dir', stateDir, '--json'], { AISTOCK_CLOCK_OFFSET_MS: String(DAY) });

    /**
     * Recovers, a day later, to exactly the uninterrupted run. `setAside`: why the checkpoint was
     * set aside (`*.corrupt-<time>`, never overwritten or deleted; the summary says where), or null.
     */
    const recovers = (setAside: string | null, also?: (run: { summary: any; stderr: string }, spoiled: Spoiled) => void): Outcome => ({
      says: `${setAside === null ? '' : `set aside (${setAside}), `}recovers to the uninterrupted run`,
      check: async (stateDir, spoiled) => {
        const run = await expectCleanResult(stateDir, DAY);
        const expected = setAside === null ? null : { reason: setAside, movedTo: expect.stringContaining('checkpoint.json.corrupt-') };
        expect(run.summary.checkpoints.setAside).toEqual(expected);
        expect((await readdir(stateDir)).some((file) => file.startsWith('checkpoint.json.corrupt-'))).toBe(setAside !== null);
        also?.(run, spoiled);
      },
    });

    /** Refused before anything is sent: exit `exit`, one line on stderr matching `line`, the ledger untouched. */
    const refused = (exit: number, code: string, line: (spoiled: Spoiled) => RegExp): Outcome => ({
      says: `refused, exit ${exit}, ${code}`,
      check: async (stateDir, spoiled) => {
        const before = await ledgerBytes(stateDir);
        const run = await replayADayLater(stateDir);
        expect(run.code, run.stderr).toBe(exit);
        const said = run.stderr.split('\n').filter((text) => text.startsWith('aistock replay: '));
        expect(said).toHaveLength(1);
        expect(said[0]).toMatch(`aistock replay: ${code}: `);
        expect(said[0]).toMatch(line(spoiled));
        expect(await ledgerBytes(stateDir)).toEqual(before);
      },
    });

    /**
     * The broker lost positions the checkpoint holds: reconciliation at start names each symbol,
     * logs RECONCILIATION_DIFFERENCES and counts it (policy adopt: the broker's position is
     * booked, so the run goes on and agrees at stop); no id reaches the broker twice. Orders the
     * journal holds as sent after the checkpoint, which the broker lost with them, are each
     * BROKER_LOST_ORDER when their bar is re-decided — never sent again — and the run exits 4.
     */
    const noticed: Outcome = {
      says: 'noticed at start: a reconciliation difference, logged and counted',
      check: async (stateDir, spoiled) => {
        const run = await replayADayLater(stateDir);
        const summary = lastJson(run.stdout);
        const lost = [...run.stderr.matchAll(/"event":"BROKER_LOST_ORDER","clientOrderId":"([^"]+)"/g)].map((match) => match[1] ?? '');
        expect(summary.orders.lostByBroker).toBe(lost.length);
        expect(run.code, run.stderr).toBe(lost.length > 0 ? 4 : 0);
        const atStart = summary.reconciliation.find((report: { at: string }) => report.at === 'start');
        expect(atStart.differences.map((d: { symbol: string }) => d.symbol)).toEqual(expect.arrayContaining(spoiled?.symbols ?? ['(none given)']));
        expect(summary.reconciled.differences).toBeGreaterThanOrEqual(spoiled?.symbols?.length ?? 1);
        expect(logged(run.stderr, 'RECONCILIATION_DIFFERENCES')).toContainEqual(expect.objectContaining({ at: 'start' }));
        const ids = (await readLedger(stateDir)).orders.map((o) => o.clientOrderId);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.filter((id) => lost.includes(id))).toEqual([]);
      },
    };

    // [what, how, what must happen]
    const damage: [string, (stateDir: string) => Promise<Spoiled | void>, Outcome][] = [
      // The journal: set aside or cut, and rebuilt from the broker, the source of truth for what was sent.
      ['the journal emptied', (d) => writeFile(join(d, 'orders.journal'), ''), recovers(null)],
      ['the journal deleted', (d) => rm(join(d, 'orders.journal')), recovers(null)],
      ['the journal cut to its header', async (d) => writeFile(join(d, 'orders.journal'), `${(await readFile(join(d, 'orders.journal'), 'utf8')).split('\n')[0]}\n`), recovers(null)],
      [
        'a byte of the journal flipped mid-file',
        async (d) => {
          const bytes = await readFile(join(d, 'orders.journal'));
          const at = Math.floor(bytes.length / 2);
          bytes[at] = (bytes[at] ?? 0) ^ 0x04;
          await writeFile(join(d, 'orders.journal'), bytes);
          return { line: bytes.subarray(0, at).filter((byte) => byte === 0x0a).length + 1 };
        },
        // Found by its line's checksum and named; the journal is set aside and rebuilt from the broker.
        recovers(null, ({ summary, stderr }, spoiled) => {
          expect(logged(stderr, 'JOURNAL_CORRUPT')).toEqual([
            expect.objectContaining({ reason: 'CHECKSUM_MISMATCH', line: spoiled?.line, movedTo: expect.stringContaining('orders.journal.corrupt-') }),
          ]);
          expect(summary.reconciled.journalRebuilt).toBeGreaterThan(0);
        }),
      ],
      [
        'the journal torn mid-line (SIGKILL mid-append)',
        async (d) => writeFile(join(d, 'orders.journal'), (await readFile(join(d, 'orders.journal'))).subarray(0, -9)),
        recovers(null, ({ stderr }) => expect(logged(stderr, 'JOURNAL_TORN_TAIL')).toHaveLength(1)),
      ],
      // The checkpoint: anything but a valid one is set aside; the session starts fresh and the broker rebuilds it.
      ['the checkpoint deleted', (d) => rm(join(d, 'checkpoint.json')), recovers(null)],
      ['journal and checkpoint deleted', async (d) => Promise.all([rm(join(d, 'orders.journal')), rm(join(d, 'checkpoint.json'))]).then(() => undefined), recovers(null)],
      ['the checkpoint replaced by garbage', (d) => writeFile(join(d, 'checkpoint.json'), '{"schemaVersion": 1, "da'), recovers('UNPARSABLE')],
      ['the checkpoint truncated to half', async (d) => writeFile(join(d, 'checkpoint.json'), (await readFile(join(d, 'checkpoint.json'))).subarray(0, -Math.floor((await stat(join(d, 'checkpoint.json'))).size / 2))), recovers('UNPARSABLE')],
      ['the checkpoint 0 bytes', (d) => writeFile(join(d, 'checkpoint.json'), ''), recovers('UNPARSABLE')],
      ['the checkpoint {}', (d) => writeFile(join(d, 'checkpoint.json'), '{}'), recovers('INVALID_ENVELOPE')],
      ['the checkpoint of another schemaVersion', (d) => editCheckpoint(d, (envelope) => (envelope.schemaVersion += 1)), recovers('WRONG_VERSION')],
      // An older checkpoint is a valid state the broker is ahead of: its later fills are the session's own.
      ['the checkpoint rolled back (an earlier one copied over it)', async (d) => writeFile(join(d, 'checkpoint.json'), await readFile(earlyCheckpoint)), recovers(null)],
      ["the checkpoint's cash edited (it parses, but breaks an invariant)", (d) => editCheckpoint(d, (envelope) => (envelope.data.portfolio.cash = '1000000.00')), recovers('INVALID_STATE')],
      // The paper broker's ledger stands in for the market: never repaired, never silently accepted.
      [
        'one price digit of a fill in the ledger edited',
        async (d) => {
          const lines = await ledgerLines(d, 'fills.jsonl');
          const index = Math.floor(lines.length / 2);
          lines[index] = (lines[index] ?? '').replace(/"price":"(\d)/, (_, digit: string) => `"price":"${(Number(digit) + 1) % 10}`);
          await writeFile(join(d, 'broker', 'fills.jsonl'), lines.map((text) => `${text}\n`).join(''));
          return { line: index + 1 };
        },
        refused(2, 'BROKER_LEDGER_CORRUPT', (spoiled) => new RegExp(`broker ledger \\S+/broker/fills\\.jsonl line ${spoiled?.line}: CHECKSUM_MISMATCH: `)),
      ],
      // A crash between an order's line and its fill's: the fill is made again at the price its order was given.
      ["the ledger's last fill torn (SIGKILL mid-append)", async (d) => writeFile(join(d, 'broker', 'fills.jsonl'), (await readFile(join(d, 'broker', 'fills.jsonl'))).subarray(0, -9)), recovers(null)],
      [
        'the ledger cut back to before the last order the checkpoint had seen',
        async (d) => {
          const applied = new Set(Object.keys(JSON.parse(await readFile(join(d, 'checkpoint.json'), 'utf8')).data.appliedFills));
          const orders = await ledgerLines(d, 'orders.jsonl');
          const cutAt = orders.findLastIndex((line) => applied.has(JSON.parse(line).clientOrderId));
          expect(cutAt).toBeGreaterThan(0);
          const lost = orders.slice(cutAt).map((line) => JSON.parse(line) as { clientOrderId: string; symbol: string });
          await cutLedger(d, new Set(lost.map((order) => order.clientOrderId)));
          return { symbols: [lost[0]?.symbol ?? ''] };
        },
        noticed,
      ],
      [
        'the ledger deleted',
        async (d) => {
          await rm(join(d, 'broker'), { recursive: true });
          const { positions } = JSON.parse(await readFile(join(d, 'checkpoint.json'), 'utf8')).data.portfolio as { positions: { symbol: string; qty: string }[] };
          const symbols = positions.filter((position) => position.qty !== '0').map((position) => position.symbol);
          expect(symbols.length, 'the crash was to leave a checkpoint holding positions').toBeGreaterThan(0);
          return { symbols };
        },
        noticed,
      ],
      // A holder on another host is never taken over; once its owner file is deleted (as the message says), the run resumes.
      [
        'a lock owner file naming a holder on another host',
        (d) => writeFile(join(d, 'lock.owner.json'), `${JSON.stringify({ pid: 4242, host: 'elsewhere.example', since: Date.now() - 60_000, netns: 'net:[1]', bootId: 'b' })}\n`),
        {
          says: 'refused, exit 3, STATE_DIR_LOCKED_ELSEWHERE; with the file deleted, recovers to the uninterrupted run',
          check: async (d, spoiled) => {
            await refused(3, 'STATE_DIR_LOCKED_ELSEWHERE', () => /pid 4242 on elsewhere\.example.*delete \S+lock\.owner\.json/).check(d, spoiled);
            await rm(join(d, 'lock.owner.json'));
            await recovers(null).check(d, spoiled);
          },
        },
      ],
    ];

    for (const [name, spoil, outcome] of damage) {
      it(`${name}: ${outcome.says}`, async () => {
        const stateDir = join(dir, `damaged-${name.replaceAll(/[^a-z]+/g, '-')}`);
        await cp(crashed, stateDir, { recursive: true });
        const spoiled = (await spoil(stateDir)) ?? undefined;
        await outcome.check(stateDir, spoiled);
      }, 60_000);
    }

    // A ledger that lost orders decided after the checkpoint, which the journal holds as sent:
    // the broker is the truth about what it has, the journal the truth about what was sent, so
    // those orders are neither sent again nor taken as filled — each is BROKER_LOST_ORDER, and
    // the run exits 4 naming how many. The early checkpoint makes sure the orders cut are after it.
    it('notices a ledger that lost its last orders, all decided after the checkpoint, and sends none again (exit 4)', async () => {
      const stateDir = join(dir, 'damaged-lost-after-checkpoint');
      await cp(crashed, stateDir, { recursive: true });
      await writeFile(join(stateDir, 'checkpoint.json'), await readFile(earlyCheckpoint));
      const orders = await ledgerLines(stateDir, 'orders.jsonl');
      const cut = orders.slice(-3).map((line) => (JSON.parse(line) as { clientOrderId: string }).clientOrderId);
      await cutLedger(stateDir, new Set(cut));
      const run = await replayADayLater(stateDir);
      expect(run.code, run.stderr).toBe(4);
      // Those the journal durably holds as sent are named; one still `reserved` on disk (its mark
      // rides a later commit) is not evidence of a send, so the broker's word stands: sent again.
      const lost = [...run.stderr.matchAll(/"event":"BROKER_LOST_ORDER","clientOrderId":"([^"]+)"/g)].map((match) => match[1] ?? '');
      expect(lost.length).toBeGreaterThan(0);
      expect(cut).toEqual(expect.arrayContaining(lost));
      expect(run.stderr).toContain(`the broker does not know ${lost.length} order(s) the journal recorded as sent`);
      expect(lastJson(run.stdout).orders.lostByBroker).toBe(lost.length);
      // None sent again, none twice. (Later decisions may differ from the clean run's: the account
      // truly lacks what the broker lost — which is why the run exits 4.)
      const ids = (await readLedger(stateDir)).orders.map((o) => o.clientOrderId);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.filter((id) => lost.includes(id))).toEqual([]);
    }, 60_000);
  });
});
