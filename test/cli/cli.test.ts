import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';

const run = promisify(execFile);
const bin = join(import.meta.dirname, '../../bin/aistock.js');

describe('the aistock command', () => {
  it('prints help with exit code 0', async () => {
    const { stdout } = await run(process.execPath, [bin, '--help']);
    expect(stdout).toContain('Usage:');
    expect(stdout).toContain('Exit codes');
  });

  it('prints the package version', async () => {
    const { stdout } = await run(process.execPath, [bin, '--version']);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('exits 2 and names an unknown command', async () => {
    const error = await run(process.execPath, [bin, 'frobnicate']).catch((e) => e);
    expect(error.code).toBe(2);
    expect(error.stderr).toContain('unknown command "frobnicate"');
  });
});

describe('usage, in plain words (in-process)', () => {
  /** Runs `main` with captured output. */
  async function aistock(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await main(argv, { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } });
    return { code, stdout, stderr };
  }

  it.each(['replay', 'bars', 'report', 'diagrams'])('help %s prints that command’s usage, exit 0', async (command) => {
    const help = await aistock(['help', command]);
    expect(help).toEqual({ code: 0, stdout: (await aistock([command, '--help'])).stdout, stderr: '' });
    expect(help.stdout).toMatch(new RegExp(`^usage: aistock ${command}`));
  });

  it('exits 2 for help on a command that does not exist', async () => {
    const help = await aistock(['help', 'frobnicate']);
    expect(help.code).toBe(2);
    expect(help.stderr).toContain('no command "frobnicate"');
  });

  it.each([
    [['replay', 'bars.csv', '--bogus'], 'aistock replay: unknown option --bogus'],
    [['replay', 'bars.csv', '--tz'], 'aistock replay: --tz needs a value'],
    [['replay', 'bars.csv', '--json=yes'], 'aistock replay: --json takes no value'],
    [['bars', 'a.csv', 'b.csv', '--timeframe', '1m'], 'aistock bars: unexpected argument "b.csv"'],
    [['diagrams', 'extra'], 'aistock diagrams: unexpected argument "extra"'],
    [['report', '--nope'], 'aistock report: unknown option --nope'],
  ])('names the bad flag or argument: %j', async (argv, said) => {
    const run = await aistock(argv);
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toBe(said);
  });
});
