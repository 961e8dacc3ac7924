import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { DateTime } from 'luxon';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { parseClientOrderId, sessionTag } from '../../src/idempotency/clientOrderId.js';
import { readLedger, runCli, sampleSlice } from '../support/replayFixture.js';
import { aistock } from '../support/inProcessCli.js';

/**
 * The README's strategy file and config (examples/), run as they stand through `aistock replay`:
 * the settings they carry show in what the session did, the flags override them, and the summary
 * of a resumed run tells this run from the state dir's totals.
 */

const examples = join(import.meta.dirname, '../../examples');
const config = join(examples, 'aistock.json');
const strategyFile = join(examples, 'meanReversion.strategy.js');
const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');

let dir: string;
let bars: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-example-'));
  bars = await sampleSlice(dir, 4_000);
});

describe('the README example: examples/aistock.json with examples/meanReversion.strategy.js', () => {
  it('is shown in the README exactly as the files hold it, each in the block its <!-- example: PATH --> marks', () => {
    const shown = new Map([...readme.matchAll(/^<!-- example: (\S+) -->\n```\w+\n([\s\S]*?)^```$/gm)].map((match) => [match[1] ?? '', match[2] ?? '']));
    expect([...shown.keys()].sort()).toEqual(['examples/aistock.json', 'examples/meanReversion.strategy.js']);
    for (const file of [config, strategyFile]) expect(shown.get(`examples/${basename(file)}`)).toBe(readFileSync(file, 'utf8'));
  });

  it('replays with the config\'s strategy, params, risk limit and commission; flags override it; a resume prints this run apart from the state dir\'s total', async () => {
    const stateDir = join(dir, 'state');
    // --state-dir and --cash override the config's stateDir and initialCash.
    const first = await runCli(['replay', bars, '--config', config, '--state-dir', stateDir, '--cash', '200000', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const summary = JSON.parse(first.stdout.trim().split('\n').at(-1) ?? '');
    expect(summary.portfolio.initialCash).toBe('200000.00');
    const ledger = await readLedger(stateDir);
    expect(ledger.orders.length).toBe(summary.orders.submitted);
    expect(ledger.orders.length).toBeGreaterThan(0);

    // The strategy module ran, with the config's params: its id (window 30, entryZ 2.5) is in every order's tag.
    const tag = sessionTag('aistock', 'meanrev30z2.5');
    expect(ledger.orders.every((order) => parseClientOrderId(order.clientOrderId)?.tag === tag)).toBe(true);
    // risk.maxOrdersPerDay 6: denied beyond it, and never more than 6 orders in one New York trading day.
    expect(summary.orders.deniedBy.RATE_LIMIT_DAY).toBeGreaterThan(0);
    const perDay = new Map<string, number>();
    for (const fill of ledger.fills) {
      const day = DateTime.fromMillis(fill.filledAt, { zone: 'America/New_York' }).toISODate() ?? '';
      perDay.set(day, (perDay.get(day) ?? 0) + 1);
    }
    expect(Math.max(...perDay.values())).toBeLessThanOrEqual(6);
    // paperBroker: 0.005 a share, at least 1.00 a fill (these fills are all under 200 shares).
    expect(ledger.fills.every((fill) => Number(fill.qty) < 200 && Number(fill.commission) === 1)).toBe(true);
    expect(summary.thisRun).toEqual({ bars: { accepted: 4_000, rejected: {}, resumedSkips: 0 }, orders: ledger.orders.length, fills: ledger.fills.length });
    expect(summary.stateDirTotal).toEqual({ bars: { accepted: 4_000, rejected: {} }, orders: ledger.orders.length, fills: ledger.fills.length });

    const resumed = await runCli(['replay', bars, '--config', config, '--state-dir', stateDir, '--cash', '200000']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain('this run:        bars 0 accepted, 0 rejected, 4000 already processed (resumed)\n');
    expect(resumed.stdout).toMatch(/^ +orders 0 submitted, 0 duplicates blocked, 0 rejected, 0 unknown, 0 denied by risk\n +fills 0\n/m);
    expect(resumed.stdout).toContain(`state dir total: bars 4000 accepted, 0 rejected; orders ${ledger.orders.length} submitted; fills ${ledger.fills.length}\n`);
    expect((await readLedger(stateDir)).orders.length).toBe(ledger.orders.length);
  }, 60_000);

  it('counts only the new bars as this run\'s when a longer file resumes a shorter one', async () => {
    const stateDir = join(dir, 'longer');
    const shorter = await sampleSlice(dir, 1_500);
    expect((await aistock(['replay', shorter, '--config', config, '--state-dir', stateDir], 30_000)).code).toBe(EXIT.ok);
    const { code, stdout } = await aistock(['replay', bars, '--config', config, '--state-dir', stateDir], 30_000);
    expect(code).toBe(EXIT.ok);
    const ledger = await readLedger(stateDir);
    expect(stdout).toMatch(/^this run: +bars 2500 accepted, 0 rejected, 1500 already processed \(resumed\)$/m);
    expect(stdout).toContain(`state dir total: bars 4000 accepted, 0 rejected; orders ${ledger.orders.length} submitted; fills ${ledger.fills.length}\n`);
  }, 60_000);
});

describe('aistock replay --config', () => {
  it('reads the bar file as its bars key says, and a flag given overrides that key', async () => {
    const configFile = join(dir, 'epoch-seconds.json');
    await writeFile(configFile, JSON.stringify({ bars: { symbol: 'SPY', epoch: 's' }, timeZone: 'UTC' }));
    const file = join(import.meta.dirname, '../fixtures/bar-formats/epoch-seconds-SPY-1m.csv');
    const run = await aistock(['replay', file, '--config', configFile, '--state-dir', join(dir, 'epoch-seconds'), '--json']);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '').thisRun.bars).toEqual({ accepted: 30, rejected: {}, resumedSkips: 0 });
    // --epoch ms over the config's "s": every time lands in 1970 and is refused.
    const overridden = await aistock(['replay', file, '--config', configFile, '--epoch', 'ms', '--state-dir', join(dir, 'epoch-ms')]);
    expect(overridden.code).toBe(EXIT.badInput);
    expect(overridden.stdout).toMatch(/^this run: +bars 0 accepted, 30 rejected/m);
  });

  it('exits 2 listing every bad field of a config with its path', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ risk: { maxOrdersPerDay: 0, maxOrderPerMinute: 5 }, paperBroker: { slippageBps: -1 }, strategy: { use: 'sma-cross', parms: {} } }));
    const run = await aistock(['replay', bars, '--config', bad, '--state-dir', join(dir, 'never')]);
    expect(run.code).toBe(EXIT.badInput);
    for (const field of ['risk.maxOrdersPerDay', 'risk.maxOrderPerMinute', 'paperBroker.slippageBps', 'strategy.parms']) expect(run.stderr).toContain(`${field}: `);
    expect(run.stderr).toContain(`INVALID_REPLAY_CONFIG: invalid config ${bad}`);
    expect(run.stderr).not.toContain('usage:');
  });

  it('exits 2 naming the file and its exports for a --strategy module that exports no strategy', async () => {
    const module = join(dir, 'helpers.mjs');
    await writeFile(module, 'export const average = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;\n');
    const run = await aistock(['replay', bars, '--strategy', module, '--state-dir', join(dir, 'never')]);
    expect(run.code).toBe(EXIT.badInput);
    expect(run.stderr).toContain(`STRATEGY_NOT_EXPORTED: strategy module ${module} exports no strategy`);
    expect(run.stderr).toMatch(/it exports average\n/);
  });
});
