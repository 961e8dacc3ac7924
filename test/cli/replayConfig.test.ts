import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runReplayCommand } from '../../src/cli/replayCommand.js';
import {
  InvalidReplayConfigError,
  parseReplayConfig,
  readReplayConfig,
  ReplayConfigError,
  replaySettings,
} from '../../src/cli/replayConfig.js';

const file = '/home/trader/backtests/aistock.json';

function issuesOf(json: unknown): { field: string; message: string }[] {
  try {
    parseReplayConfig(json, file);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidReplayConfigError);
    return [...(error as InvalidReplayConfigError).issues];
  }
  throw new Error('the config was accepted');
}

describe('a replay config file', () => {
  it('fills every key it leaves out with the default the flags have', () => {
    const settings = replaySettings({}, parseReplayConfig({}, file), '/cwd');
    expect(settings).toEqual({
      stateDir: '/home/trader/backtests/.aistock',
      timeZone: 'America/New_York',
      assumeTimeZone: null,
      baseTimeframe: '1m',
      timeframes: ['1m', '5m', '1h', '1d'],
      initialCash: '100000',
      strategy: { use: 'sma-cross', params: {}, baseDir: '/home/trader/backtests' },
      risk: undefined,
      paperBroker: { slippageBps: 0, commissionPerShare: '0', minCommission: '0' },
      durability: 'full',
      barFormat: { epoch: null, symbol: null, adjusted: false, ignoreExtra: false },
    });
  });

  it('lists every bad field at once, each by its path', () => {
    const issues = issuesOf({
      risk: { maxOrdersPerDay: -1, maxDrawdownPct: 2 },
      paperBroker: { commissionPerShare: 'cheap' },
      timeframes: ['1m', '7m'],
      bars: { epoch: 'minutes' },
      timeZone: 'Mars/Olympus',
      initialCash: '-5',
    });
    expect(issues.map((issue) => issue.field).sort()).toEqual([
      'bars.epoch',
      'initialCash',
      'paperBroker.commissionPerShare',
      'risk.maxDrawdownPct',
      'risk.maxOrdersPerDay',
      'timeZone',
      'timeframes.1',
    ]);
  });

  it('refuses a zone luxon does not know in assumeTimeZone as in timeZone, with the session’s message', () => {
    const issues = issuesOf({ timeZone: 'Mars/Olympus', assumeTimeZone: 'Mars/Phobos' });
    expect(issues).toEqual([
      { field: 'timeZone', message: 'unknown IANA time zone' },
      { field: 'assumeTimeZone', message: 'unknown IANA time zone' },
    ]);
  });

  it('takes as --cash what it takes as initialCash: a non-negative decimal', async () => {
    /** What `--cash` says of a value (the file is missing: a value taken gets as far as refusing it). */
    const cashFlag = async (cash: string): Promise<string> => {
      let stderr = '';
      await runReplayCommand([join(tmpdir(), 'aistock-absent.csv'), `--cash=${cash}`], { stdout: { write: () => true }, stderr: { write: (text: string) => (stderr += text) } });
      return stderr;
    };
    for (const refused of ['-5', '1e5', '+5', '2500.', '']) {
      expect(issuesOf({ initialCash: refused }).map((issue) => issue.field)).toEqual(['initialCash']);
      expect(await cashFlag(refused)).toContain(`--cash: expected a non-negative number, got ${JSON.stringify(refused)}`);
    }
    for (const taken of ['2500.50', '100000', '0']) {
      expect(parseReplayConfig({ initialCash: taken }, file).config.initialCash).toBe(taken);
      expect(await cashFlag(taken)).not.toContain('--cash');
    }
  });

  it('refuses unknown keys, naming each with its path (typos do not pass silently)', () => {
    const issues = issuesOf({ strategy: { use: 'sma-cross', parms: {} }, risk: { maxOrderPerDay: 5 }, cash: 1 });
    expect(issues.map((issue) => issue.field).sort()).toEqual(['cash', 'risk.maxOrderPerDay', 'strategy.parms']);
  });

  it('resolves a relative stateDir and strategy module against the config file\'s directory, not the working directory', () => {
    const settings = replaySettings({}, parseReplayConfig({ stateDir: 'runs/a', strategy: { use: './mine.js' } }, file), '/cwd');
    expect(settings.stateDir).toBe('/home/trader/backtests/runs/a');
    expect(settings.strategy).toEqual({ use: './mine.js', params: {}, baseDir: '/home/trader/backtests' });
  });

  it('is overridden by every flag given, and keeps its values for the flags not given', () => {
    const loaded = parseReplayConfig(
      { stateDir: 'state', timeZone: 'Europe/London', assumeTimeZone: 'Europe/London', timeframes: ['1m', '1h'], initialCash: 5000, durability: 'none', bars: { symbol: 'SPY', epoch: 's', ignoreExtra: true }, strategy: { use: './mine.js', params: { window: 3 } } },
      file,
    );
    const flags = {
      stateDir: 'elsewhere',
      tz: 'Asia/Tokyo',
      cash: '250',
      strategy: './other.js',
      durability: 'full',
      barFormat: { epoch: 'ms', symbol: null, adjusted: true, ignoreExtra: false },
    } as const;
    const settings = replaySettings(flags, loaded, '/cwd');
    expect(settings).toMatchObject({
      stateDir: 'elsewhere',
      timeZone: 'Asia/Tokyo',
      assumeTimeZone: 'Europe/London',
      timeframes: ['1m', '1h'],
      initialCash: '250',
      durability: 'full',
      // Flags set what they name; a flag not given (--symbol, --ignore-extra) leaves the config's.
      barFormat: { epoch: 'ms', symbol: 'SPY', adjusted: true, ignoreExtra: true },
      // A module on the command line is relative to where the command runs; the params stay the config's.
      strategy: { use: './other.js', params: { window: 3 }, baseDir: '/cwd' },
    });
  });

  it('refuses a file that is not JSON, or is missing, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aistock-config-'));
    await writeFile(join(dir, 'broken.json'), '{ "risk": { maxOrdersPerDay: 5 } }');
    const notJson = await readReplayConfig(join(dir, 'broken.json')).catch((e: unknown) => e);
    expect(notJson).toBeInstanceOf(ReplayConfigError);
    expect(notJson).toMatchObject({ code: 'CONFIG_NOT_JSON', message: expect.stringContaining(join(dir, 'broken.json')) });
    await expect(readReplayConfig(join(dir, 'absent.json'))).rejects.toMatchObject({ code: 'CONFIG_UNREADABLE' });
  });
});
