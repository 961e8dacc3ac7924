import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

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
