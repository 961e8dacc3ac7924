import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { importFailure, isStrategyModule, loadStrategy, StrategyLoadError } from '../../src/strategy/loadStrategy.js';
import { smaCross } from '../../src/strategy/strategy.js';

let dir: string;

/**
 * A strategy module's source: `exports` is the module's export statements. Its state schema is
 * zod's shape (parse, safeParse) written out, so the module needs no node_modules beside it.
 */
const moduleSource = (exports: string): string => `const make = (params = {}) => ({
  id: 'fixture' + (params.size ?? ''),
  stateSchema: { parse: (v) => v, safeParse: (v) => ({ success: true, data: v }) },
  initialState: () => ({}),
  onBar: (state) => ({ state, intents: [] }),
});
${exports}
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aistock-strategies-'));
  const files: Record<string, string> = {
    'default-object.mjs': moduleSource('export default make();'),
    'named.js': moduleSource('export const strategy = make();'),
    'factory.mjs': moduleSource(`export default (params) => {
  if (params.size !== undefined && typeof params.size !== 'number') throw new Error('size must be a number');
  return make(params);
};`),
    'nothing.mjs': moduleSource('export const helper = 1;\nexport function other() {}'),
    'half.mjs': "export default { id: 'half', initialState: () => ({}) };",
    'throws.mjs': "throw new Error('boom at import');",
    // What TypeScript (or tsx, outside a "type": "module" package) makes of `export default`.
    'compiled.cjs': moduleSource('Object.defineProperty(exports, "__esModule", { value: true });\nexports.default = make();'),
    'named.cjs': moduleSource('exports.strategy = make();'),
    'whole.cjs': moduleSource('module.exports = make();'),
  };
  await Promise.all(Object.entries(files).map(([name, text]) => writeFile(join(dir, name), text)));
});

async function refusal(load: Promise<unknown>): Promise<StrategyLoadError> {
  const error = await load.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StrategyLoadError);
  return error as StrategyLoadError;
}

describe('loadStrategy', () => {
  it('makes a built-in strategy by name with its params', async () => {
    const strategy = await loadStrategy('sma-cross', { fast: 5, slow: 20 }, dir);
    expect(strategy.id).toBe(smaCross({ fast: 5, slow: 20 }).id);
  });

  it('refuses an unknown name, listing the built-in ones', async () => {
    const error = await refusal(loadStrategy('sma-crosss', {}, dir));
    expect(error.code).toBe('UNKNOWN_STRATEGY');
    expect(error.message).toContain('built in: sma-cross');
  });

  it('refuses params a built-in strategy does not take, saying which', async () => {
    const error = await refusal(loadStrategy('sma-cross', { fast: 30, slow: 10 }, dir));
    expect(error.code).toBe('STRATEGY_INVALID');
    expect(error.message).toMatch(/fast must be shorter than slow/);
  });

  it('loads a module exporting a Strategy as default, or as "strategy", resolved against the base directory', async () => {
    expect((await loadStrategy('./default-object.mjs', {}, dir)).id).toBe('fixture');
    expect((await loadStrategy(join(dir, 'named.js'), {}, '/nowhere')).id).toBe('fixture');
  });

  it('loads a CommonJS module exporting a Strategy as module.exports, exports.strategy or a compiled default export', async () => {
    for (const file of ['./compiled.cjs', './named.cjs', './whole.cjs']) expect((await loadStrategy(file, {}, dir)).id).toBe('fixture');
  });

  it('calls a factory export with the params, and reports its refusal as the cause', async () => {
    expect((await loadStrategy('./factory.mjs', { size: 3 }, dir)).id).toBe('fixture3');
    const error = await refusal(loadStrategy('./factory.mjs', { size: 'big' }, dir));
    expect(error.code).toBe('STRATEGY_INVALID');
    expect(error.message).toContain('factory.mjs refused its params {"size":"big"}: size must be a number');
  });

  it('refuses params for a module that exports a strategy object rather than a factory', async () => {
    const error = await refusal(loadStrategy('./default-object.mjs', { size: 3 }, dir));
    expect(error.message).toMatch(/exports a strategy object, which takes no params/);
  });

  it('refuses a module that exports no strategy, naming the file and what it does export', async () => {
    const error = await refusal(loadStrategy('./nothing.mjs', {}, dir));
    expect(error.code).toBe('STRATEGY_NOT_EXPORTED');
    expect(error.message).toContain(join(dir, 'nothing.mjs'));
    expect(error.message).toMatch(/it exports helper, other$/);
  });

  it('refuses an export without a Strategy\'s shape, naming every missing part', async () => {
    const error = await refusal(loadStrategy('./half.mjs', {}, dir));
    expect(error.code).toBe('STRATEGY_INVALID');
    expect(error.message).toMatch(/stateSchema must be a zod schema \(found nothing\); onBar must be a function \(found nothing\)$/);
  });

  it('refuses a missing file and a module that throws while loading, naming the file', async () => {
    expect((await refusal(loadStrategy('./absent.js', {}, dir))).code).toBe('STRATEGY_FILE_UNREADABLE');
    const thrown = await refusal(loadStrategy('./throws.mjs', {}, dir));
    expect(thrown.code).toBe('STRATEGY_IMPORT_FAILED');
    expect(thrown.message).toMatch(/throws\.mjs failed to load: boom at import/);
  });

  it('says how to load TypeScript when Node refuses a .ts module for want of a loader', () => {
    const nodeRefusal = Object.assign(new TypeError('Unknown file extension ".ts"'), { code: 'ERR_UNKNOWN_FILE_EXTENSION' });
    const error = importFailure('/x/mine.ts', nodeRefusal);
    expect(error.code).toBe('STRATEGY_NEEDS_TS_LOADER');
    expect(error.message).toMatch(/compile it to \.js, or run aistock under a TypeScript loader \(NODE_OPTIONS="--import tsx"/);
    expect(importFailure('/x/mine.js', nodeRefusal).code).toBe('STRATEGY_IMPORT_FAILED');
  });

  it('takes a path or a file name with a module extension for a module, anything else for a built-in name', () => {
    expect(['./a.js', '../a', '/abs/a', 'dir/a', 'a.mjs', 'a.ts'].map(isStrategyModule)).toEqual([true, true, true, true, true, true]);
    expect(['sma-cross', 'meanReversion'].map(isStrategyModule)).toEqual([false, false]);
  });
});
