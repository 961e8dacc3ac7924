import { stat } from 'node:fs/promises';
import { extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { AistockError, describeError } from '../common/errors.js';
import { smaCross, type SmaCrossOptionsSchema, type Strategy } from './strategy.js';

/**
 * Strategies by name (`--strategy sma-cross`) or from a user's module (`--strategy ./mine.js`).
 * A module exports, as `default` or as `strategy`, either a {@link Strategy} or a factory
 * `(params) => Strategy` that receives the config's `strategy.params` (and checks them itself).
 */

/** The strategies aistock ships, by the name `--strategy` and `strategy.use` take; each a factory of its params. */
export const BUILT_IN_STRATEGIES: ReadonlyMap<string, (params: Record<string, unknown>) => Strategy> = new Map([
  // smaCross checks its params with zod: the cast only lets them through to that check.
  ['sma-cross', (params: Record<string, unknown>): Strategy => smaCross(params as z.input<typeof SmaCrossOptionsSchema>) as Strategy],
]);

/** Why a strategy could not be had: a closed set. */
export type StrategyLoadCode =
  | 'UNKNOWN_STRATEGY'
  | 'STRATEGY_FILE_UNREADABLE'
  | 'STRATEGY_NEEDS_TS_LOADER'
  | 'STRATEGY_IMPORT_FAILED'
  | 'STRATEGY_NOT_EXPORTED'
  | 'STRATEGY_INVALID';

/** `--strategy` or `strategy.use` named something that is not a usable strategy; the message names the file and what was found. */
export class StrategyLoadError extends AistockError {
  constructor(code: StrategyLoadCode, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

const MODULE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);
const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);

/** Whether `use` names a module file rather than a built-in strategy: a path, or a name with a module's extension. */
export function isStrategyModule(use: string): boolean {
  return use.startsWith('.') || isAbsolute(use) || use.includes('/') || use.includes('\\') || MODULE_EXTENSIONS.has(extname(use));
}

/**
 * The strategy `use` names — a built-in name, or a module path resolved against `baseDir` — made
 * with `params`. Throws {@link StrategyLoadError}; a factory's own error (its params refused) is
 * its cause.
 */
export async function loadStrategy(use: string, params: Record<string, unknown>, baseDir: string): Promise<Strategy> {
  if (!isStrategyModule(use)) {
    const factory = BUILT_IN_STRATEGIES.get(use);
    if (factory === undefined) {
      throw new StrategyLoadError('UNKNOWN_STRATEGY', `unknown strategy ${JSON.stringify(use)} (built in: ${[...BUILT_IN_STRATEGIES.keys()].join(', ')}; a module is a path such as ./myStrategy.js)`);
    }
    return madeBy(factory, params, `strategy ${use}`);
  }
  const file = resolve(baseDir, use);
  const stats = await stat(file).catch((error: unknown) => {
    throw new StrategyLoadError('STRATEGY_FILE_UNREADABLE', `strategy module ${file}: ${describeError(error)}`, error);
  });
  if (!stats.isFile()) throw new StrategyLoadError('STRATEGY_FILE_UNREADABLE', `strategy module ${file}: not a file`);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw importFailure(file, error);
  }
  const exports = exportsOf(loaded);
  const exported = exports['default'] ?? exports['strategy'];
  if (exported === undefined) {
    const names = Object.keys(exports).filter((name) => name !== '__esModule');
    throw new StrategyLoadError(
      'STRATEGY_NOT_EXPORTED',
      `strategy module ${file} exports no strategy: expected a default export or one named "strategy" (a Strategy, or a function of the params returning one); it exports ${names.length === 0 ? 'nothing' : names.join(', ')}`,
    );
  }
  if (typeof exported === 'function') return madeBy(exported as (params: Record<string, unknown>) => unknown, params, `strategy module ${file}`);
  if (Object.keys(params).length > 0) {
    throw new StrategyLoadError('STRATEGY_INVALID', `strategy module ${file} exports a strategy object, which takes no params; export a function of the params to use strategy.params`);
  }
  return checkedStrategy(exported, `strategy module ${file}`);
}

/**
 * The module's exports. A CommonJS module (a `.cjs` file, or TypeScript that a loader compiled to
 * CommonJS outside a `"type": "module"` package) arrives as `{ default: module.exports }`; when
 * `module.exports` is itself an exports object (`__esModule`, or `exports.strategy = …`), it is the one.
 */
function exportsOf(loaded: Record<string, unknown>): Record<string, unknown> {
  const main = loaded['default'];
  if (typeof main !== 'object' || main === null) return loaded;
  const unwrap = '__esModule' in main || (!('onBar' in main) && 'strategy' in main);
  return unwrap ? (main as Record<string, unknown>) : loaded;
}

/**
 * Why `file` could not be imported. Node refuses a TypeScript file it has no loader for with
 * `ERR_UNKNOWN_FILE_EXTENSION`: then the error says how to run it.
 */
export function importFailure(file: string, error: unknown): StrategyLoadError {
  if (TYPESCRIPT_EXTENSIONS.has(extname(file)) && (error as { code?: unknown } | null)?.code === 'ERR_UNKNOWN_FILE_EXTENSION') {
    return new StrategyLoadError(
      'STRATEGY_NEEDS_TS_LOADER',
      `strategy module ${file}: this Node cannot import TypeScript; compile it to .js, or run aistock under a TypeScript loader ` +
        `(NODE_OPTIONS="--import tsx" aistock replay …, or Node 22.6+ with --experimental-strip-types)`,
      error,
    );
  }
  return new StrategyLoadError('STRATEGY_IMPORT_FAILED', `strategy module ${file} failed to load: ${describeError(error)}`, error);
}

function madeBy(factory: (params: Record<string, unknown>) => unknown, params: Record<string, unknown>, what: string): Strategy {
  let made: unknown;
  try {
    made = factory(params);
  } catch (error) {
    const why = error instanceof z.ZodError ? z.prettifyError(error).replaceAll('\n', ' ') : describeError(error);
    throw new StrategyLoadError('STRATEGY_INVALID', `${what} refused its params ${JSON.stringify(params)}: ${why}`, error);
  }
  return checkedStrategy(made, what);
}

/** `value` if it has a Strategy's shape; otherwise the error says which part is missing or wrong. */
function checkedStrategy(value: unknown, what: string): Strategy {
  if (typeof value !== 'object' || value === null) throw new StrategyLoadError('STRATEGY_INVALID', `${what}: expected a Strategy object, found ${describeValue(value)}`);
  const candidate = value as Record<string, unknown>;
  const schema = candidate['stateSchema'] as { safeParse?: unknown; parse?: unknown } | null | undefined;
  const problems = [
    typeof candidate['id'] === 'string' && /^[\x21-\x7e]{1,64}$/.test(candidate['id']) ? null : `id must be 1 to 64 printable ASCII characters, no spaces (found ${describeValue(candidate['id'])})`,
    typeof schema?.parse === 'function' && typeof schema.safeParse === 'function' ? null : `stateSchema must be a zod schema (found ${describeValue(schema)})`,
    typeof candidate['initialState'] === 'function' ? null : `initialState must be a function (found ${describeValue(candidate['initialState'])})`,
    typeof candidate['onBar'] === 'function' ? null : `onBar must be a function (found ${describeValue(candidate['onBar'])})`,
  ].filter((problem) => problem !== null);
  if (problems.length > 0) throw new StrategyLoadError('STRATEGY_INVALID', `${what} is not a Strategy: ${problems.join('; ')}`);
  return value as Strategy;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === 'object') return `an object with keys ${Object.keys(value).join(', ') || '(none)'}`;
  return typeof value === 'undefined' ? 'nothing' : `a ${typeof value}`;
}
