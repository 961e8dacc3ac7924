import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { AistockError, describeError } from '../common/errors.js';
import { fieldIssues, FieldIssuesError, type FieldIssue } from '../common/fieldIssues.js';
import { RiskLimitsSchema, type RiskLimitsInput } from '../risk/riskLimits.js';
import { SessionOptionsSchema, TimeZoneSchema, type SessionConfig } from '../session/sessionOptions.js';
import type { Timeframe } from '../bars/timeframe.js';
import type { Durability } from '../stateDir/durability.js';
import { BarFormatSchema, type BarFormat } from '../bars/barFormat.js';

/**
 * `aistock replay --config aistock.json`: the settings of a replay in one file, zod-checked
 * (unknown keys refused, every bad field listed), merged under the command line's flags.
 * Relative paths in the file (`stateDir`, a strategy module) are relative to the file's directory.
 */

const session = SessionOptionsSchema.shape;

/** Starting cash as a replay takes it, from its config file or `--cash`: a non-negative decimal (the session also takes a number). */
export const ReplayCashSchema = session.initialCash.refine((cash) => /^\d+(\.\d+)?$/.test(String(cash)), 'a non-negative decimal such as 100000 or "2500.50"');

/** The keys of a replay config file and their defaults (the session's own where it has one). */
export const ReplayConfigSchema = z
  .object({
    /** The strategy: a built-in name or a module path (`./myStrategy.js`), and the params its factory receives. */
    strategy: z
      .object({
        use: z.string().min(1).default('sma-cross'),
        params: z.record(z.string(), z.unknown()).default({}),
      })
      .strict()
      .prefault({}),
    /** Risk limits (RiskLimitsSchema); missing ones take their defaults. */
    risk: RiskLimitsSchema.optional(),
    /** The paper broker's commission and slippage. */
    paperBroker: session.paperBroker,
    /** Where the session's state lives (`--state-dir`). */
    stateDir: z.string().min(1).default('.aistock'),
    /** The zone bars are aggregated in (`--tz`). */
    timeZone: session.timeZone,
    /** The zone of timestamps written without an offset (`--assume-tz`); null refuses them. */
    assumeTimeZone: TimeZoneSchema.nullable().default(null),
    /** How to read the bar file (`--epoch`, `--symbol`, `--adjusted`, `--ignore-extra`): see `BarFormatSchema`. */
    bars: BarFormatSchema.optional(),
    /** The timeframe of the file's bars. */
    baseTimeframe: session.baseTimeframe,
    /** Timeframes aggregated (`--timeframes`). */
    timeframes: session.timeframes,
    /** `none`: research mode, nothing fsynced (`--durability`). */
    durability: session.durability,
    /** Starting cash (`--cash`). */
    initialCash: ReplayCashSchema,
  })
  .strict();

/** A replay config as read: every key present, defaults filled in. */
export type ReplayConfig = z.infer<typeof ReplayConfigSchema>;

/** The config file could not be read or is not JSON. */
export class ReplayConfigError extends AistockError {
  constructor(code: 'CONFIG_UNREADABLE' | 'CONFIG_NOT_JSON', message: string, cause: unknown) {
    super(code, message, { cause });
  }
}

/** The config file is JSON but not a replay config: `issues` names every bad field by its path (`risk.maxOrdersPerDay`). */
export class InvalidReplayConfigError extends FieldIssuesError {
  constructor(file: string, issues: readonly FieldIssue[]) {
    super('INVALID_REPLAY_CONFIG', `config ${file}`, issues);
  }
}

/** The config as read from `file`, with its paths resolved against the file's directory. */
export interface LoadedReplayConfig {
  readonly config: ReplayConfig;
  /** What strategy module paths are relative to. */
  readonly dir: string;
}

/** Reads and checks a config file. Throws {@link ReplayConfigError} or {@link InvalidReplayConfigError}. */
export async function readReplayConfig(file: string): Promise<LoadedReplayConfig> {
  const path = resolve(file);
  const text = await readFile(path, 'utf8').catch((error: unknown) => {
    throw new ReplayConfigError('CONFIG_UNREADABLE', `config ${path}: ${describeError(error)}`, error);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ReplayConfigError('CONFIG_NOT_JSON', `config ${path} is not JSON: ${describeError(error)}`, error);
  }
  return parseReplayConfig(json, path);
}

/** Checks a parsed config (`file` names it in errors, and its directory anchors relative paths). */
export function parseReplayConfig(json: unknown, file: string): LoadedReplayConfig {
  const parsed = ReplayConfigSchema.safeParse(json);
  if (!parsed.success) throw new InvalidReplayConfigError(file, fieldIssues(parsed.error));
  const dir = dirname(resolve(file));
  return { config: { ...parsed.data, stateDir: resolve(dir, parsed.data.stateDir) }, dir };
}

/** The replay flags that override a config key, as given (undefined: not on the command line). */
export interface ReplayFlags {
  stateDir?: string | undefined;
  tz?: string | undefined;
  assumeTz?: string | undefined;
  timeframes?: Timeframe[] | undefined;
  strategy?: string | undefined;
  cash?: string | undefined;
  durability?: Durability | undefined;
  /** The bar-file flags, checked (a flag not given: null or false). */
  barFormat?: BarFormat | undefined;
}

/** What a replay runs with: the flags over the config over the defaults. */
export interface ReplaySettings {
  stateDir: string;
  timeZone: string;
  assumeTimeZone: string | null;
  baseTimeframe: Timeframe;
  timeframes: Timeframe[];
  initialCash: string | number;
  /** The strategy to load: a built-in name or a module path relative to `baseDir`. */
  strategy: { use: string; params: Record<string, unknown>; baseDir: string };
  risk: RiskLimitsInput | undefined;
  paperBroker: SessionConfig['paperBroker'];
  durability: Durability;
  /** How to read the bar file: the flags over the config's `bars`. */
  barFormat: BarFormat;
}

/**
 * Merges `flags` over `loaded` (no `--config`: the defaults, relative to `cwd`). A `--strategy`
 * flag replaces `strategy.use` (a module path on the command line is relative to `cwd`) and keeps
 * the config's `strategy.params`.
 */
export function replaySettings(flags: ReplayFlags, loaded: LoadedReplayConfig | null, cwd: string): ReplaySettings {
  const { config, dir } = loaded ?? { config: ReplayConfigSchema.parse({}), dir: cwd };
  return {
    stateDir: flags.stateDir ?? config.stateDir,
    timeZone: flags.tz ?? config.timeZone,
    assumeTimeZone: flags.assumeTz ?? config.assumeTimeZone,
    baseTimeframe: config.baseTimeframe,
    timeframes: flags.timeframes ?? config.timeframes,
    initialCash: flags.cash ?? config.initialCash,
    strategy:
      flags.strategy === undefined
        ? { use: config.strategy.use, params: config.strategy.params, baseDir: dir }
        : { use: flags.strategy, params: config.strategy.params, baseDir: cwd },
    risk: config.risk,
    paperBroker: config.paperBroker,
    durability: flags.durability ?? config.durability,
    barFormat: mergedBarFormat(flags.barFormat, config.bars),
  };
}

/** The bar-file flags over the config's `bars`: a flag can only set (`--adjusted` has no "off"), so a config's `true` stays. */
function mergedBarFormat(flags: BarFormat | undefined, config: BarFormat | undefined): BarFormat {
  return {
    epoch: flags?.epoch ?? config?.epoch ?? null,
    symbol: flags?.symbol ?? config?.symbol ?? null,
    adjusted: flags?.adjusted === true || config?.adjusted === true,
    ignoreExtra: flags?.ignoreExtra === true || config?.ignoreExtra === true,
  };
}
