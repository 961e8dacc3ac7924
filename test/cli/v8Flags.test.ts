import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

/**
 * The CLI sets its V8 settings with `v8.setFlagsFromString`, which ignores a flag this V8 does not
 * know: a renamed or dropped flag would silently stop applying. On the command line an unknown flag
 * is an error, so each one is tried there.
 */
const flagsFile = join(import.meta.dirname, '../../bin/v8-flags.json');

describe('the CLI V8 settings (bin/v8-flags.json)', () => {
  it('are flags this Node accepts, each a --name or --name=value', async () => {
    const flags = z.array(z.string().regex(/^--[a-z-]+(=\d+)?$/)).min(1).parse(JSON.parse(await readFile(flagsFile, 'utf8')));
    const { stdout } = await promisify(execFile)(process.execPath, [...flags, '-e', 'process.stdout.write("ran")']);
    expect(stdout).toBe('ran');
  });

  it('reject an unknown flag on the command line, so the check above can fail', async () => {
    await expect(promisify(execFile)(process.execPath, ['--no-such-v8-flag-at-all', '-e', '0'])).rejects.toThrow(/bad option/);
  });
});
