import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EXIT } from '../../src/cli/io.js';
import { LOCK_OWNER_FILE } from '../../src/stateDir/stateDirLock.js';
import { aistock, type CliRun as Run } from '../support/inProcessCli.js';

/**
 * The bad-input corpus: every file of test/fixtures/bad-input/ goes through `aistock bars` and
 * `aistock replay` in-process, and each command's exit code, typed error (file, line, field,
 * reason) or counts must be what outcomes.json says. The table is written by makeBadInput.ts
 * next to it, with the files. Its schema admits exit 0 and 2 only: an unexpected failure (1)
 * is never an expected outcome.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const corpus = join(root, 'test', 'fixtures', 'bad-input');
/** The files of the corpus dir that are not inputs. */
const NOT_INPUTS = new Set(['outcomes.json', 'makeBadInput.ts', '.gitattributes']);
/** Longest a command may take on one file before it counts as hung. */
const CASE_TIMEOUT_MS = 10_000;
/** Reasons only a session's data guard gives: `bars` screens bars for order alone. */
const SESSION_GUARD_ONLY = new Set(['EXTREME_RANGE', 'STALE']);

/** Line 0: the file as a whole (it cannot be read). */
const errorSchema = z.object({ reason: z.string(), line: z.number().int().nonnegative(), field: z.string().nullable() });
const counts = z.record(z.string(), z.number().int().positive());
const tableSchema = z.object({
  defaults: z.object({ bars: z.array(z.string()), replay: z.array(z.string()) }),
  cases: z.array(
    z.object({
      file: z.string(),
      about: z.string(),
      args: z.array(z.string()).optional(),
      barsArgs: z.array(z.string()).optional(),
      generated: z.string().optional(),
      bars: z.union([
        z.object({ exit: z.literal(EXIT.badInput), error: errorSchema }),
        z.object({ exit: z.literal(EXIT.ok), rows: z.number().int().nonnegative(), leftOut: counts }),
      ]),
      replay: z.union([
        z.object({ exit: z.literal(EXIT.badInput), error: errorSchema }),
        // Counted rows: exit 0, or 2 when every row read was rejected.
        z.object({ exit: z.union([z.literal(EXIT.ok), z.literal(EXIT.badInput)]), accepted: z.number().int().nonnegative(), rejected: counts }),
      ]),
    }),
  ),
});
const table = tableSchema.parse(JSON.parse(readFileSync(join(corpus, 'outcomes.json'), 'utf8')));
type Case = (typeof table.cases)[number];

/** The inputs git cannot hold or that are too large to commit, made as their row's `generated` says. */
const GENERATED: Record<string, (path: string) => Promise<unknown>> = {
  'huge-line.csv': (path) => writeFile(path, `timestamp,symbol,open,high,low,close,volume\n${'A'.repeat(2 << 20)}\n`),
  'huge-line.jsonl': (path) =>
    writeFile(path, `{"timestamp":"2025-11-03T14:30:00Z","symbol":"AAPL","open":1,"high":1,"low":1,"close":1,"volume":1}\n{"symbol":"${'A'.repeat(2 << 20)}"}\n`),
  'a-directory.csv': (path) => mkdir(path),
};

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'aistock-bad-input-'));
  for (const [name, make] of Object.entries(GENERATED)) await make(join(scratch, name));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function pathOf(entry: Case): string {
  return entry.generated === undefined ? join(corpus, entry.file) : join(scratch, entry.file);
}

/** What every run must be, whatever the file: no crash, nothing of the input echoed raw or whole. */
function expectContained(run: Run, command: string): void {
  expect(run.code, `${command} exited 1 (unexpected failure): ${run.stderr}`).not.toBe(EXIT.failure);
  expect(run.stderr.length, 'stderr stays short').toBeLessThan(4096);
  // No control character of the input reaches the terminal (an escape sequence, a NUL).
  expect(run.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
}

/** The error line names the file, the line and the field (or no field), and ends with the reason. */
function expectNamedError(stderr: string, command: string, file: string, error: z.infer<typeof errorSchema>): void {
  const lines = stderr.split('\n').filter((line) => line !== '');
  expect(lines, stderr).toHaveLength(1);
  const [line = ''] = lines;
  const prefix = `aistock ${command}: BAD_BAR_INPUT: ${file}${error.line === 0 ? '' : `:${error.line}`}: `;
  expect(line.startsWith(prefix), `${line}\ndoes not start with\n${prefix}`).toBe(true);
  const rest = line.slice(prefix.length);
  if (error.field === null) expect(rest.startsWith('field ')).toBe(false);
  else expect(rest.startsWith(`field ${JSON.stringify(error.field)}: `), rest).toBe(true);
  expect(line.endsWith(` (${error.reason})`), line).toBe(true);
}

function parseLeftOut(stderr: string): Record<string, number> {
  const match = /^aistock bars: left out (\d+) bar\(s\): (.+)\n$/.exec(stderr);
  if (match === null) return {};
  const leftOut = Object.fromEntries((match[2] ?? '').split(', ').map((part) => {
    const [reason = '', n = ''] = part.split(' ');
    return [reason, Number(n)];
  }));
  expect(Object.values(leftOut).reduce((sum, n) => sum + n, 0)).toBe(Number(match[1]));
  return leftOut;
}

const barsArgv = (entry: Case): string[] => ['bars', pathOf(entry), ...(entry.barsArgs ?? table.defaults.bars), ...(entry.args ?? [])];

describe('the bad-input corpus (test/fixtures/bad-input)', () => {
  it('has a row for every file and a file for every row', () => {
    const inputs = readdirSync(corpus).filter((name) => !NOT_INPUTS.has(name)).sort();
    const committed = table.cases.filter((entry) => entry.generated === undefined).map((entry) => entry.file).sort();
    expect(committed).toEqual(inputs);
    const generated = table.cases.filter((entry) => entry.generated !== undefined).map((entry) => entry.file).sort();
    expect(generated).toEqual(Object.keys(GENERATED).sort());
    expect(new Set(table.cases.map((entry) => entry.file)).size).toBe(table.cases.length);
  });

  it.each(table.cases)('$file ($about)', async (entry) => {
    const file = pathOf(entry);

    const bars = await aistock(barsArgv(entry), CASE_TIMEOUT_MS);
    const stateDir = await mkdtemp(join(scratch, 'state-'));
    const replay = await aistock(['replay', file, '--state-dir', stateDir, ...table.defaults.replay, ...(entry.args ?? [])], CASE_TIMEOUT_MS);

    expectContained(bars, 'bars');
    expectContained(replay, 'replay');
    // bars
    expect(bars.code, bars.stderr).toBe(entry.bars.exit);
    if (entry.bars.exit === EXIT.badInput) expectNamedError(bars.stderr, 'bars', file, entry.bars.error);
    else {
      const printedRows = bars.stdout.split('\n').filter((line) => line !== '').length - 1;
      expect({ rows: printedRows, leftOut: parseLeftOut(bars.stderr) }).toEqual({ rows: entry.bars.rows, leftOut: entry.bars.leftOut });
      if (Object.keys(entry.bars.leftOut).length === 0) expect(bars.stderr).toBe('');
    }
    // replay
    expect(replay.code, replay.stderr).toBe(entry.replay.exit);
    if ('error' in entry.replay) expectNamedError(replay.stderr, 'replay', file, entry.replay.error);
    else {
      if (entry.replay.exit === EXIT.ok) expect(replay.stderr).toBe('');
      else expect(replay.stderr).toMatch(/^aistock replay: every one of the \d+ bars read was rejected \(see bars\.rejected\); nothing was replayed\n$/);
      const summary = JSON.parse(replay.stdout.trim().split('\n').at(-1) ?? '') as { bars: { accepted: number; rejected: Record<string, number> }; fault: unknown };
      expect({ accepted: summary.bars.accepted, rejected: summary.bars.rejected, fault: summary.fault }).toEqual({
        accepted: entry.replay.accepted,
        rejected: entry.replay.rejected,
        fault: null,
      });
    }
    expect(existsSync(join(stateDir, LOCK_OWNER_FILE)), 'the state dir is released').toBe(false);

    // The two commands agree: a file one refuses whole, the other refuses with the same error; a
    // row bars stops at, replay counts under the same reason; bars's left-out bars are replay's.
    if ('error' in entry.replay || entry.bars.exit === EXIT.ok) {
      expect(bars.code === EXIT.badInput, 'bars refuses the file whole where replay does').toBe('error' in entry.replay);
    }
    if ('error' in entry.replay) {
      expect(replay.stderr.replace('aistock replay: ', '')).toBe(bars.stderr.replace('aistock bars: ', ''));
    } else if (entry.bars.exit === EXIT.badInput) {
      expect(entry.replay.rejected[entry.bars.error.reason], `replay counts ${entry.bars.error.reason}`).toBeGreaterThan(0);
    } else {
      for (const [reason, n] of Object.entries(entry.replay.rejected)) {
        if (!SESSION_GUARD_ONLY.has(reason)) expect(entry.bars.leftOut[reason], reason).toBe(n);
      }
    }
  });
});
